"""`anchor voice install`: a sherpa-onnx model archive from a local file into the voices folder.

An archive is untrusted input: it came on a USB stick from a machine with internet. So it is
judged before anything is unpacked (a readable tar or zip; regular files only, no links; no
absolute names and no `..`; bounded in file count and in unpacked bytes; exactly one model
.onnx and its tokens.txt), unpacked into a hidden folder beside the target while the bytes are
counted again, checked against the model's metadata, and only then renamed into
`<voices>/models/<name>/`. A profile `<voices>/<name>.yaml` names it with engine `sherpa`, and
the model must then load and say a test sentence in its own process. If anything fails, what
was installed is removed (a model it was to replace comes back) and the error names the file
and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import yaml

from anchor.config import ConfigError, load_voice_profile
from anchor.speech.base import SpeechError
from anchor.speech.sherpa_engine import ModelFiles, ModelInfo, ModelProblem, inspect_model
from anchor.speech.sherpa_voice import SherpaVoice

MAX_UNPACKED_BYTES = 2 * 1024**3  # the largest sherpa-onnx TTS archives unpack to ~1 GB
MAX_FILES = 20_000  # espeak-ng-data and jieba's dictionaries are a few hundred files
MODELS = "models"
FALLBACK = "offline"  # the espeak-ng profile: speaks whatever the model cannot
TEST_SENTENCES = {"zh": "大家好，欢迎来到工会直播间。", "en": "Hello, and welcome to the channel."}
_SILENT = 1e-3  # a test sentence whose loudest sample is below this said nothing
_CHUNK = 1 << 20
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_LANGUAGE_NAMES = {"zh": {"chinese", "mandarin", "zh", "cmn"}, "en": {"english", "en"}}
_SUFFIXES = (".tar.bz2", ".tar.gz", ".tar.xz", ".tgz", ".tbz2", ".tar", ".zip")


class InstallError(Exception):
    """The archive or its model cannot be installed; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Installed:
    name: str
    folder: Path
    profile: Path
    info: ModelInfo
    test_seconds: float  # length of the test sentence's audio
    elapsed: float  # starting the engine and saying the test sentence, in seconds


@dataclass(frozen=True, slots=True)
class _Member:
    name: str  # inside the model folder: the archive's one top folder, if any, stripped
    size: int
    open: Callable[[], IO[bytes]]


def install_archive(
    archive: Path,
    voices_dir: Path,
    *,
    name: str | None = None,
    force: bool = False,
    max_bytes: int = MAX_UNPACKED_BYTES,
    max_files: int = MAX_FILES,
) -> Installed:
    """Check, unpack, profile and try the model in `archive`: see the module docstring."""
    archive, voices_dir = Path(archive), Path(voices_dir)
    with _listed(archive, _Listing(archive, max_bytes, max_files)) as listing:
        members, top = listing.members()
        try:
            ModelFiles.from_names(member.name for member in members)
        except ModelProblem as exc:
            raise InstallError(f"{archive}: {exc}") from None
        name = name or _default_name(archive, top)
        if not _NAME.fullmatch(name):
            raise InstallError(
                f"{name!r} cannot name a voice: use lowercase letters, digits, - or _ (--name)"
            )
        models = voices_dir / MODELS
        target, profile = models / name, voices_dir / f"{name}.yaml"
        if not force and (target.exists() or profile.exists()):
            raise InstallError(f"voice {name!r} is installed ({target}); --force replaces it")
        if profile.exists() and _engine_of(profile) != "sherpa":
            raise InstallError(
                f"{profile} is not an installed model's profile: choose another --name"
            )
        models.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=models))
        staging.chmod(0o755)
        try:
            _unpack(archive, members, staging, max_bytes)
            try:
                inspect_model(staging)
            except ModelProblem as exc:
                said = str(exc).replace(f"{staging}/", f"{archive}: ")
                raise InstallError(said.replace(str(staging), str(archive))) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    with _replacing(target, profile):
        try:
            staging.rename(target)
            info = inspect_model(target)
            profile.write_text(profile_text(name, archive, info, voices_dir), encoding="utf-8")
            seconds, elapsed = asyncio.run(_try_voice(voices_dir, name))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return Installed(name, target, profile, info, seconds, elapsed)


def profile_text(name: str, archive: Path, info: ModelInfo, voices_dir: Path) -> str:
    """The voice profile for an installed model: its languages → speaker 0, espeak-ng after."""
    languages = _languages(info)
    speakers = f"{info.speakers} speakers" if info.speakers > 1 else "one speaker"
    lines = [
        f"# Installed by `anchor voice install` from {archive.name}: a {info.files.family} model,",
        f"# {info.sample_rate} Hz, {speakers}. Before airing it, check the model's licence and its",
        "# training data's (README: Installing a model for sherpa-onnx).",
        "engine: sherpa",
        f"model_dir: {MODELS}/{name}   # relative to this folder",
        "",
        "# Language -> the model's speaker number"
        + (f" (0..{info.speakers - 1})" if info.speakers > 1 else "")
        + "; other languages go to the fallback.",
        "voices:",
        *(f'  {language}: "0"' for language in languages),
        "",
        f"default_language: {languages[0]}",
        "rate: 175              # words per minute: 175 = the model's own pace",
        "volume: 1.0            # 0.0..1.0 (sherpa-onnx has no pitch control)",
        "timeout_seconds: 15    # a sentence taking longer goes to the fallback",
    ]
    if (voices_dir / f"{FALLBACK}.yaml").is_file():
        lines.append(f"fallback: {FALLBACK}      # espeak-ng: whatever this model cannot say")
    return "\n".join(lines) + "\n"


def _languages(info: ModelInfo) -> list[str]:
    """The languages the metadata names ("Chinese", "zh_en", "en_US"), Mandarin if none."""
    words = set(re.findall(r"[a-z]+", info.language.lower()))
    found = [code for code, names in _LANGUAGE_NAMES.items() if words & names]
    return found or ["zh"]


def _engine_of(profile: Path) -> object:
    try:
        data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data.get("engine") if isinstance(data, dict) else None


async def _try_voice(voices_dir: Path, name: str) -> tuple[float, float]:
    """Load the model through its new profile and say a test sentence: (seconds, elapsed)."""
    try:
        profile = load_voice_profile(voices_dir, name)
    except ConfigError as exc:
        raise InstallError(f"the profile written for {name!r} is invalid: {exc}") from None
    language = profile.default_language
    began = time.monotonic()
    voice = SherpaVoice.from_profile(profile)
    try:
        audio = await voice.synthesize(TEST_SENTENCES.get(language, TEST_SENTENCES["en"]), language)
    except SpeechError as exc:
        raise InstallError(f"{profile.model_dir}: the model did not speak: {exc}") from None
    finally:
        await voice.aclose()
    elapsed = time.monotonic() - began
    if not len(audio.pcm) or float(np.max(np.abs(audio.pcm))) < _SILENT:
        raise InstallError(f"{profile.model_dir}: the model's test sentence is silent")
    return audio.duration, elapsed


class _Listing:
    """The archive's regular files, admitted one by one as the archive is read, so a bad name
    or a bomb is refused before the rest of it is decompressed."""

    def __init__(self, archive: Path, max_bytes: int, max_files: int) -> None:
        self._archive = archive
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._files: list[_Member] = []
        self._entries = 0
        self._total = 0

    def admit(self, raw: str, kind: str, size: int, opener: Callable[[], IO[bytes]]) -> None:
        name = raw.replace("\\", "/")
        path = PurePosixPath(name)
        if name.startswith("/") or re.match(r"[A-Za-z]:", name):
            raise self._refused(raw, "an absolute name")
        if ".." in path.parts:
            raise self._refused(raw, "a name that leaves the folder (..)")
        self._entries += 1
        if self._entries > self._max_files:
            raise InstallError(f"{self._archive}: more than {self._max_files} files, refused")
        if kind == "dir":
            return
        if kind != "file":
            raise self._refused(raw, f"a {kind} (regular files only)")
        self._total += size
        if self._total > self._max_bytes:
            raise self._refused(raw, f"the files unpack to more than {self._max_bytes} bytes")
        self._files.append(_Member(path.as_posix(), size, opener))

    def members(self) -> tuple[list[_Member], str | None]:
        """The files named inside the model folder, and the archive's one top folder (every
        file inside it, as in sherpa-onnx's archives), if it has one."""
        parts = [PurePosixPath(member.name).parts for member in self._files]
        firsts = {part[0] for part in parts}
        if len(firsts) != 1 or any(len(part) < 2 for part in parts):
            return self._files, None
        members = [
            _Member("/".join(part[1:]), member.size, member.open)
            for part, member in zip(parts, self._files, strict=True)
        ]
        return members, firsts.pop()

    def _refused(self, raw: str, why: str) -> InstallError:
        return InstallError(f"{self._archive}: {raw}: {why}, refused")


@contextlib.contextmanager
def _listed(archive: Path, listing: _Listing) -> Iterator[_Listing]:
    """`listing` with every entry of the archive admitted; the archive stays open (for
    unpacking) until the block ends."""
    if not archive.is_file():
        raise InstallError(f"{archive}: no such file")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for item in zipped.infolist():
                mode = item.external_attr >> 16
                kind = "dir" if item.is_dir() else "link" if stat.S_ISLNK(mode) else "file"
                listing.admit(item.filename, kind, item.file_size, _zip_opener(zipped, item))
            yield listing
        return
    with _open_tar(archive) as tar:
        try:
            for info in tar:
                listing.admit(info.name, _tar_kind(info), info.size, _tar_opener(tar, info))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InstallError(f"{archive}: damaged archive ({exc})") from None
        yield listing


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise InstallError(
            f"{archive}: not an archive (expected .tar.bz2, .tar.gz, .tar.xz, .tar or .zip)"
        ) from None


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isfile():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym() or info.islnk():
        return "link"
    return "special file"


def _tar_opener(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def opened() -> IO[bytes]:
        stream = tar.extractfile(info)
        if stream is None:
            raise InstallError(f"{info.name}: cannot be read")
        return stream

    return opened


def _zip_opener(zipped: zipfile.ZipFile, item: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: zipped.open(item)


def _unpack(archive: Path, members: list[_Member], folder: Path, max_bytes: int) -> None:
    """Write the members under `folder`, counting bytes as they come (a zip's sizes can lie)."""
    root = folder.resolve()
    total = 0
    for member in members:
        target = (folder / member.name).resolve()
        if not target.is_relative_to(root):
            raise InstallError(f"{archive}: {member.name}: a name that leaves the folder, refused")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with member.open() as source, open(target, "xb") as out:
                written = 0
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    if written > member.size or total > max_bytes:
                        raise InstallError(
                            f"{archive}: {member.name}: more bytes than the archive declares "
                            f"or than {max_bytes} in all, refused"
                        )
                    out.write(chunk)
        except FileExistsError:
            raise InstallError(f"{archive}: {member.name}: in the archive twice, refused") from None
        except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
            raise InstallError(f"{archive}: {member.name}: cannot be unpacked ({exc})") from None
        target.chmod(0o644)


@contextlib.contextmanager
def _replacing(target: Path, profile: Path) -> Iterator[None]:
    """Move an existing model and profile aside for the block; if it fails, remove what it
    made and put them back, else delete them."""
    old_profile = profile.read_bytes() if profile.exists() else None
    aside: Path | None = None
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        aside.rmdir()
        target.rename(aside)
    try:
        yield
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        profile.unlink(missing_ok=True)
        if aside is not None:
            aside.rename(target)
        if old_profile is not None:
            profile.write_bytes(old_profile)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _default_name(archive: Path, top: str | None) -> str:
    base = top or archive.name
    for suffix in _SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-_") or "model"
