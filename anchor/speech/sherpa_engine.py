"""An operator-installed model for sherpa-onnx: what its folder holds, and the engine process.

sherpa-onnx's TTS models (VITS, including Piper and MeloTTS; Matcha; Kokoro) come as archives
of one ONNX model plus what its text front-end needs: tokens.txt always, then a lexicon, a
jieba dictionary folder (dict/), espeak-ng-data/, or number and date rules (*.fst, *.far).
`ModelFiles.from_names` recognises the family and those parts from the file names alone, so
an archive is judged before a byte of it is unpacked; `inspect_model` adds what the ONNX file's
metadata says. That check matters: sherpa-onnx ends the whole process, not with an exception,
when a required metadata key is missing or the jieba dictionary and the model disagree, so it
must find nothing to object to, and the model runs in a child process all the same.

This module is what that child imports (see `sherpa_voice`): the standard library, numpy and,
once started, sherpa_onnx; nothing of the daemon's. Inference uses one thread, as the other
engines do, because the machine also encodes video.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

import numpy as np

from anchor.speech.engine_child import answer_requests, ignore_interrupts

Family = Literal["vits", "matcha", "kokoro"]

TOKENS = "tokens.txt"
VOICES_BIN = "voices.bin"  # Kokoro's speaker embeddings
DICT_DIR = "dict"  # jieba's dictionaries, for models that segment Chinese words with it
ESPEAK_DATA = "espeak-ng-data"
VOCODER_PREFIXES = ("vocos", "hifigan")  # Matcha's vocoder, the one other .onnx allowed
FST_ORDER = ("phone.fst", "date.fst", "number.fst")  # as sherpa-onnx's own examples list them
# What sherpa-onnx insists on in a VITS model's metadata (offline-tts-vits-model.cc).
VITS_REQUIRED = ("sample_rate", "n_speakers", "language", "comment")
_MAX_METADATA_BYTES = 1 << 20


class ModelProblem(ValueError):
    """A model folder or archive sherpa-onnx cannot use; the message names the file."""


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """The parts of one model, as paths relative to its folder (POSIX separators)."""

    family: Family
    model: str
    tokens: str = TOKENS
    lexicons: tuple[str, ...] = ()
    dict_dir: str | None = None
    data_dir: str | None = None
    voices: str | None = None
    vocoder: str | None = None
    rule_fsts: tuple[str, ...] = ()
    rule_fars: tuple[str, ...] = ()

    @classmethod
    def from_names(cls, names: Iterable[str]) -> ModelFiles:
        """Recognise a model from the relative names of its regular files."""
        paths = [PurePosixPath(name) for name in names]
        top = {path.name for path in paths if len(path.parts) == 1}
        folders = {path.parts[0] for path in paths if len(path.parts) > 1}
        onnx = sorted(str(path) for path in paths if path.suffix.lower() == ".onnx")
        vocoders = [name for name in onnx if _is_vocoder(name)]
        models = [name for name in onnx if name not in vocoders]
        if not models:
            raise ModelProblem("no model: the archive holds no .onnx file")
        if len(models) > 1:
            raise ModelProblem(f"more than one model ({', '.join(models)}); expected exactly one")
        if len(vocoders) > 1:
            raise ModelProblem(f"more than one vocoder ({', '.join(vocoders)})")
        model = models[0]
        if "/" in model:
            raise ModelProblem(f"{model}: the model must be at the top of the folder")
        if TOKENS not in top:
            raise ModelProblem(f"{TOKENS} is missing (every sherpa-onnx model needs one)")
        family: Family = "kokoro" if VOICES_BIN in top else "matcha" if vocoders else "vits"
        lexicons = tuple(
            sorted(
                n
                for n in top
                if n == "lexicon.txt" or (n.startswith("lexicon-") and n.endswith(".txt"))
            )
        )
        fsts = [n for n in FST_ORDER if n in top] + sorted(
            n for n in top if n.endswith(".fst") and n not in FST_ORDER
        )
        return cls(
            family=family,
            model=model,
            lexicons=lexicons,
            dict_dir=DICT_DIR if DICT_DIR in folders else None,
            data_dir=ESPEAK_DATA if ESPEAK_DATA in folders else None,
            voices=VOICES_BIN if family == "kokoro" else None,
            vocoder=vocoders[0] if vocoders else None,
            rule_fsts=tuple(fsts),
            rule_fars=tuple(sorted(n for n in top if n.endswith(".far"))),
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model folder checked against its metadata: what to hand sherpa-onnx."""

    folder: Path
    files: ModelFiles
    sample_rate: int
    speakers: int  # 0 or 1: a single voice
    language: str  # as the metadata says it ("Chinese", "English", "zh", ...), or ""
    metadata: dict[str, str] = field(repr=False)

    @property
    def use_dict_dir(self) -> bool:
        """sherpa-onnx stops the process when a VITS model and dict_dir disagree on jieba."""
        if self.files.family != "vits":
            return self.files.dict_dir is not None
        return self.files.dict_dir is not None and self.metadata.get("jieba") == "1"


def inspect_model(folder: Path) -> ModelInfo:
    """Check a model folder as sherpa-onnx would, and say what it holds; ModelProblem if not."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelProblem(f"{folder}: no such model folder")
    files = ModelFiles.from_names(_relative_files(folder))
    model = folder / files.model
    metadata = read_onnx_metadata(model)
    if files.family == "vits":
        _check_vits(model, files, metadata)
    elif files.family == "kokoro" and files.data_dir is None:
        raise ModelProblem(f"{folder}: a Kokoro model needs its {ESPEAK_DATA}/ folder")
    elif files.family == "matcha" and not files.lexicons and files.data_dir is None:
        raise ModelProblem(f"{folder}: a Matcha model needs lexicon.txt or {ESPEAK_DATA}/")
    if "sample_rate" not in metadata:
        raise ModelProblem(f"{model}: metadata field sample_rate is missing")
    rate = _integer(model, metadata, "sample_rate")
    if not 8_000 <= rate <= 48_000:
        raise ModelProblem(f"{model}: metadata field sample_rate is {rate}, not 8000..48000 Hz")
    speakers = _integer(model, metadata, "n_speakers") if "n_speakers" in metadata else 0
    language = metadata.get("language", "")
    return ModelInfo(folder, files, rate, speakers, language, metadata)


def _check_vits(model: Path, files: ModelFiles, metadata: dict[str, str]) -> None:
    for key in VITS_REQUIRED:
        if key not in metadata:
            raise ModelProblem(f"{model}: metadata field {key} is missing (sherpa-onnx needs it)")
    if metadata.get("jieba") == "1" and files.dict_dir is None:
        raise ModelProblem(f"{model}: metadata says jieba=1 but the folder has no {DICT_DIR}/")
    comment = metadata["comment"].lower()
    if "melo" in comment and _integer(model, metadata, "version", default=0) < 2:
        raise ModelProblem(
            f"{model}: metadata field version: MeloTTS models need version 2 or later"
        )
    characters = metadata.get("frontend") == "characters"
    piper_like = any(word in comment for word in ("piper", "coqui", "icefall"))
    if not (characters or files.lexicons or (piper_like and files.data_dir)):
        raise ModelProblem(
            f"{model.parent}: lexicon.txt is missing (or {ESPEAK_DATA}/ for a Piper model)"
        )


def _integer(model: Path, metadata: dict[str, str], key: str, default: int | None = None) -> int:
    if key not in metadata and default is not None:
        return default
    try:
        return int(metadata[key])
    except ValueError:
        raise ModelProblem(
            f"{model}: metadata field {key} is {metadata[key]!r}, not a number"
        ) from None


def _is_vocoder(name: str) -> bool:
    return PurePosixPath(name).name.lower().startswith(VOCODER_PREFIXES)


def _relative_files(folder: Path) -> Iterator[str]:
    for root, _, names in os.walk(folder):
        for name in names:
            yield (Path(root) / name).relative_to(folder).as_posix()


# --- ONNX metadata without onnx --------------------------------------------------------------
# An ONNX file is one protobuf ModelProto; its metadata_props (field 14) are key/value pairs.
# Reading them needs only the wire format, and skipping the graph (field 7, nearly all of the
# file) by its length means a 300 MB model costs a few reads.

_METADATA_FIELD = 14


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The model's metadata_props; ModelProblem when the file is not an ONNX model."""
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            for number, wire, value in _fields(stream, size):
                if number == _METADATA_FIELD and wire == 2:
                    key, text = _entry(value)
                    found[key] = text
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelProblem(f"{path}: not a readable ONNX model ({exc})") from None
    return found


def _fields(stream: BinaryIO, size: int) -> Iterator[tuple[int, int, bytes]]:
    """(field number, wire type, bytes) of the top-level message; skips what it can."""
    while stream.tell() < size:
        tag = _varint(stream)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _varint(stream)
        elif wire == 1:
            stream.seek(8, os.SEEK_CUR)
        elif wire == 5:
            stream.seek(4, os.SEEK_CUR)
        elif wire == 2:
            length = _varint(stream)
            if stream.tell() + length > size:
                raise ValueError("a field runs past the end of the file")
            if number == _METADATA_FIELD:
                if length > _MAX_METADATA_BYTES:
                    raise ValueError("a metadata entry is too large")
                yield number, wire, stream.read(length)
                continue
            stream.seek(length, os.SEEK_CUR)
        else:
            raise ValueError(f"wire type {wire}")


def _varint(stream: BinaryIO) -> int:
    result = shift = 0
    while shift < 64:
        byte = stream.read(1)
        if not byte:
            raise ValueError("the file ends inside a field")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
    raise ValueError("a varint longer than 64 bits")


def _entry(data: bytes) -> tuple[str, str]:
    """A StringStringEntryProto: key (1) and value (2)."""
    values = {1: "", 2: ""}
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        tag = _varint(stream)
        if tag & 7 != 2:
            raise ValueError("a metadata entry that is not two strings")
        length = _varint(stream)
        values[tag >> 3] = stream.read(length).decode("utf-8")
    return values[1], values[2]


# --- the engine process ----------------------------------------------------------------------


def serve(conn: Connection, folder: str) -> None:
    """The child process: load the model, then one sentence at a time until told to stop.

    Requests are (text, speaker id, speed); answers ("ok", 16-bit samples, sample rate) or
    ("error", message). The first message is ("ready", sample rate, speakers) or ("error", ...).
    """
    ignore_interrupts()
    try:
        info = inspect_model(Path(folder))
        tts = _load(info)
    except Exception as exc:
        conn.send(("error", f"cannot load the model in {folder}: {exc}"))
        return
    conn.send(("ready", int(tts.sample_rate), info.speakers))

    def speak(text: str, speaker: int, speed: float) -> tuple[bytes, int]:
        audio = tts.generate(text, sid=int(speaker), speed=float(speed))
        pcm = np.clip(np.asarray(audio.samples, dtype=np.float32), -1.0, 1.0) * 32767.0
        return pcm.astype("<i2").tobytes(), int(audio.sample_rate)

    answer_requests(conn, speak)


def _load(info: ModelInfo) -> Any:
    import sherpa_onnx

    def path(relative: str | None) -> str:
        return str(info.folder / relative) if relative else ""

    files = info.files
    lexicon = ",".join(path(name) for name in files.lexicons)
    dict_dir = path(files.dict_dir) if info.use_dict_dir else ""
    family: dict[str, Any] = {}
    if files.family == "vits":
        family["vits"] = sherpa_onnx.OfflineTtsVitsModelConfig(
            model=path(files.model),
            lexicon=lexicon,
            tokens=path(files.tokens),
            data_dir=path(files.data_dir),
            dict_dir=dict_dir,
        )
    elif files.family == "matcha":
        family["matcha"] = sherpa_onnx.OfflineTtsMatchaModelConfig(
            acoustic_model=path(files.model),
            vocoder=path(files.vocoder),
            lexicon=lexicon,
            tokens=path(files.tokens),
            data_dir=path(files.data_dir),
            dict_dir=dict_dir,
        )
    else:
        family["kokoro"] = sherpa_onnx.OfflineTtsKokoroModelConfig(
            model=path(files.model),
            voices=path(files.voices),
            tokens=path(files.tokens),
            lexicon=lexicon,
            data_dir=path(files.data_dir),
            dict_dir=dict_dir,
        )
    config = sherpa_onnx.OfflineTtsConfig(
        model=sherpa_onnx.OfflineTtsModelConfig(**family, num_threads=1, provider="cpu"),
        rule_fsts=",".join(path(name) for name in files.rule_fsts),
        rule_fars=",".join(path(name) for name in files.rule_fars),
        max_num_sentences=1,
    )
    return sherpa_onnx.OfflineTts(config)
