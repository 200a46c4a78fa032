"""A tiny VITS-shaped TTS model, built on the spot, packed like the archives sherpa-onnx ships.

No real voice is in a package registry, so the `sherpa` engine and `anchor voice install` are
tested with this stand-in: an ONNX graph with the inputs, output and metadata sherpa-onnx
reads from a VITS model (`x`, `x_length`, `noise_scale`, `length_scale`, `noise_scale_w`,
`sid` in; `y` [1, 1, T] out), a tokens.txt and a lexicon.txt of a few Mandarin characters
split into pinyin initials and toned finals. Each token becomes `SAMPLES_PER_TOKEN` samples of
a tone whose pitch rises with the token's id (and with the speaker id), shaped like a syllable,
so the audio is long exactly in proportion to the tokens the lexicon gave, and says nothing.

Needs the `onnx` package (the `test` extra); building the archive takes well under a second.
"""

from __future__ import annotations

import io
import math
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SAMPLES_PER_TOKEN = 1_600  # 0.1 s per token
SPEAKERS = 2
ARCHIVE_FOLDER = "vits-anchor-tiny-zh"

# character → pinyin phones (initial, toned final); enough for the tests' sentences
LEXICON: Mapping[str, tuple[str, ...]] = {
    "大": ("d", "a4"),
    "家": ("j", "ia1"),
    "好": ("h", "ao3"),
    "欢": ("h", "uan1"),
    "迎": ("y", "ing2"),
    "来": ("l", "ai2"),
    "到": ("d", "ao4"),
    "工": ("g", "ong1"),
    "会": ("h", "ui4"),
    "直": ("zh", "i2"),
    "播": ("b", "o1"),
    "间": ("j", "ian1"),
    "职": ("zh", "i2"),
    "服": ("f", "u2"),
    "务": ("w", "u4"),
    "有": ("y", "ou3"),
    "问": ("w", "en4"),
    "题": ("t", "i2"),
    "请": ("q", "ing3"),
    "留": ("l", "iu2"),
    "言": ("y", "an2"),
}
PUNCTUATION = ("，", "。", "？", "！", ",", ".", "?", "!")


def tokens() -> dict[str, int]:
    """Token → id: 0 is the blank, then punctuation, then every phone of the lexicon."""
    table = {"_": 0}
    for symbol in [*PUNCTUATION, *sorted({p for phones in LEXICON.values() for p in phones})]:
        table.setdefault(symbol, len(table))
    return table


def token_count(text: str) -> int:
    """How many tokens the lexicon gives `text` (its characters and punctuation)."""
    return sum(len(LEXICON[c]) if c in LEXICON else int(c in PUNCTUATION) for c in text)


def model_bytes(
    metadata: Mapping[str, str] | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    amplitude: float = 0.4,
) -> bytes:
    """The serialized ONNX model; `metadata` replaces the default metadata when given, and
    `amplitude` 0 makes a model that says nothing."""
    import onnx
    from onnx import TensorProto, helper

    floats, ints = TensorProto.FLOAT, TensorProto.INT64
    k = np.arange(SAMPLES_PER_TOKEN, dtype=np.float32)
    seconds = (k / sample_rate).reshape(1, 1, -1)
    window = (0.05 + 0.95 * np.sin(np.pi * k / SAMPLES_PER_TOKEN)).reshape(1, 1, -1)
    constants: dict[str, np.ndarray] = {
        "step_hz": np.array(12.0, np.float32),
        "base_hz": np.array(180.0, np.float32),
        "speaker_hz": np.array(40.0, np.float32),
        "two_pi": np.array(2 * math.pi, np.float32),
        "amplitude": np.array(amplitude, np.float32),
        "seconds": seconds.astype(np.float32),
        "window": window.astype(np.float32),
        "axis": np.array([2], np.int64),
        "out_shape": np.array([1, 1, -1], np.int64),
    }
    nodes = [
        helper.make_node("Cast", ["x"], ["x_f"], to=floats),
        helper.make_node("Mul", ["x_f", "step_hz"], ["token_hz"]),
        helper.make_node("Cast", ["sid"], ["sid_f"], to=floats),
        helper.make_node("Mul", ["sid_f", "speaker_hz"], ["voice_hz"]),
        helper.make_node("Add", ["token_hz", "voice_hz"], ["offset_hz"]),
        helper.make_node("Add", ["offset_hz", "base_hz"], ["hz"]),
        helper.make_node("Unsqueeze", ["hz", "axis"], ["hz3"]),
        helper.make_node("Mul", ["hz3", "seconds"], ["turns"]),
        helper.make_node("Mul", ["turns", "two_pi"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "window"], ["shaped"]),
        helper.make_node("Mul", ["shaped", "amplitude"], ["loud"]),
        helper.make_node("Reshape", ["loud", "out_shape"], ["y"]),
    ]
    inputs = [
        helper.make_tensor_value_info("x", ints, [1, "N"]),
        helper.make_tensor_value_info("x_length", ints, [1]),
        helper.make_tensor_value_info("noise_scale", floats, [1]),
        helper.make_tensor_value_info("length_scale", floats, [1]),
        helper.make_tensor_value_info("noise_scale_w", floats, [1]),
        helper.make_tensor_value_info("sid", ints, [1]),
    ]
    output = helper.make_tensor_value_info("y", floats, [1, 1, "T"])
    initializers = [onnx.numpy_helper.from_array(v, name) for name, v in constants.items()]
    graph = helper.make_graph(nodes, "anchor-tiny-vits", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata is None:
        metadata = default_metadata(sample_rate)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def default_metadata(sample_rate: int = SAMPLE_RATE) -> dict[str, str]:
    """What sherpa-onnx reads from a VITS model (sample_rate, n_speakers, language and
    comment are required; the rest have defaults)."""
    return {
        "model_type": "vits",
        "comment": "anchor tiny test model",
        "language": "Chinese",
        "sample_rate": str(sample_rate),
        "add_blank": "0",
        "n_speakers": str(SPEAKERS),
        "punctuation": " ".join(PUNCTUATION),
    }


def model_files(metadata: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """The model folder's files by name (model.onnx, tokens.txt, lexicon.txt)."""
    table = tokens()
    return {
        "model.onnx": model_bytes(metadata),
        "tokens.txt": "".join(f"{t} {i}\n" for t, i in table.items()).encode(),
        "lexicon.txt": "".join(f"{c} {' '.join(p)}\n" for c, p in LEXICON.items()).encode(),
    }


def write_archive(
    path: Path,
    files: Mapping[str, bytes] | None = None,
    *,
    folder: str | None = ARCHIVE_FOLDER,
) -> Path:
    """`files` (default: `model_files()`) as a .tar.bz2 / .tar.gz / .tar archive under one
    top folder, as sherpa-onnx's releases are; names may carry their own sub-folders."""
    files = model_files() if files is None else files
    mode = "w:bz2" if path.name.endswith(".bz2") else "w:gz" if path.name.endswith("gz") else "w"
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}" if folder else name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path
