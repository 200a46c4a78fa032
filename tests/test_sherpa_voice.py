"""Operator-installed models through sherpa-onnx: `anchor voice install` and engine `sherpa`.

No real voice is in a package registry, so a tiny VITS-shaped model is built here
(`anchor.harness.tiny_tts_model`): each token of its lexicon becomes 0.1 s of a tone, so what
sherpa-onnx made of a sentence can be read off the audio's length. It says nothing, and proves
the path: archive checks, unpacking, the profile, the engine's process, the chain around it.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest

from anchor.cli import main
from anchor.config import Config, ConfigError, load_voice_profile
from anchor.harness import tiny_tts_model as tiny
from anchor.messages import Line
from anchor.speech.base import SpeechError
from anchor.speech.chain import VoiceRestarting
from anchor.speech.install import TEST_SENTENCES, InstallError, install_archive
from anchor.speech.registry import build_voice
from anchor.speech.sherpa_voice import SherpaVoice, estimate_timings
from anchor.speech.speaker import Speaker

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "大家好，欢迎来到工会直播间。"
NAME = tiny.ARCHIVE_FOLDER
ESPEAK_RATE = 22050


def _voices(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "offline.yaml").write_text((ROOT / "voices" / "offline.yaml").read_text("utf-8"))
    return folder


def _db(pcm: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(pcm))) + 1e-12))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.write_archive(tmp_path_factory.mktemp("archive") / f"{NAME}.tar.bz2")


@pytest.fixture(scope="module")
def installed(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A voices folder with the tiny model installed (and espeak-ng's offline profile)."""
    voices = _voices(tmp_path_factory.mktemp("installed") / "voices")
    install_archive(archive, voices)
    return voices


def test_installs_from_the_command_line_and_writes_a_profile(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voices = _voices(tmp_path / "voices")
    assert main(["voice", "install", str(archive), "--voices-dir", str(voices)]) == 0
    said = capsys.readouterr().out
    assert "vits model, 16000 Hz, said a 2.6 s test sentence" in said
    assert f"voice: {NAME}" in said
    profile = load_voice_profile(voices, NAME)
    assert profile.engine == "sherpa" and profile.fallback == "offline"
    assert profile.model_dir == (voices / "models" / NAME).resolve()
    assert sorted(p.name for p in profile.model_dir.iterdir()) == [
        "lexicon.txt",
        "model.onnx",
        "tokens.txt",
    ]
    assert [p.name for p in (voices / "models").iterdir()] == [NAME], "no staging left"
    assert main(["voice", "install", str(archive), "--voices-dir", str(voices)]) == 1
    assert "--force replaces it" in capsys.readouterr().err
    args = ["voice", "install", str(archive), "--voices-dir", str(voices), "--name", "tiny"]
    assert main([*args, "--force"]) == 0 and (voices / "tiny.yaml").is_file()
    silent = tmp_path / "silent.tar.bz2"
    tiny.write_archive(silent, {**tiny.model_files(), "model.onnx": tiny.model_bytes(amplitude=0)})
    args[2] = str(silent)
    assert main([*args, "--force"]) == 1, "a replacement that fails..."
    assert "test sentence is silent" in capsys.readouterr().err
    kept = voices / "models" / "tiny" / "model.onnx"
    assert kept.read_bytes() == tiny.model_bytes(), "...puts the voice it replaced back"
    assert load_voice_profile(voices, "tiny").model_dir == kept.parent.resolve()
    assert sorted(p.name for p in (voices / "models").iterdir()) == ["tiny", NAME]
    assert main([*args[:-1], "offline", "--force"]) == 1, "an operator's own profile stays"
    assert "offline.yaml is not an installed model's profile" in capsys.readouterr().err


async def test_a_config_naming_it_speaks_mandarin_through_the_chain(installed: Path) -> None:
    config = Config.model_validate(
        {"voices_dir": str(installed), "voice": NAME}, context={"base_dir": ROOT}
    )
    chain = await build_voice(config.voices_dir, config.voice, None)
    try:
        assert chain.name == "sherpa > espeak"
        audio = await chain.synthesize(SENTENCE, "zh")
        english = await chain.synthesize("Hello there.", "en")
        speaker = Speaker(chain, sample_rate=48_000, sentence_gap=0.0, max_sentence_seconds=20)
        spoken = await speaker.speak(Line(SENTENCE))
    finally:
        await chain.aclose()
    assert audio.sample_rate == tiny.SAMPLE_RATE and chain.fallbacks == 1  # the English line
    tokens = tiny.token_count(SENTENCE)
    assert len(audio.pcm) == tokens * tiny.SAMPLES_PER_TOKEN, "one tone per token, all spoken"
    assert _db(audio.pcm) > -20
    assert [t.text for t in audio.timings] == [c for c in SENTENCE if c not in "，。"]
    starts = [t.start for t in audio.timings]
    assert starts == sorted(starts) and audio.timings[-1].end <= audio.duration + 1e-6
    assert len({cue.shape for cue in audio.cues}) >= 3, "the lips move through several shapes"
    assert english.sample_rate == ESPEAK_RATE, "a language the model lacks goes to espeak-ng"
    assert spoken.speech_samples == pytest.approx(audio.duration * 48_000, rel=0.05)


async def test_a_killed_engine_costs_one_sentence_then_the_model_speaks_again(
    installed: Path,
) -> None:
    chain = await build_voice(installed, NAME, None)
    voice = chain.voices[0]
    assert isinstance(voice, SherpaVoice)
    try:
        await chain.synthesize("大家好。", "zh")
        killed = voice.child_pid
        assert killed is not None
        os.kill(killed, signal.SIGSTOP)  # frozen: it takes the next sentence and says nothing
        sentence = asyncio.ensure_future(chain.synthesize(SENTENCE, "zh"))
        await asyncio.sleep(0.3)
        assert not sentence.done(), "the sentence waits on the engine"
        os.kill(killed, signal.SIGKILL)  # dies mid-sentence
        fallback = await sentence
        assert fallback.sample_rate == ESPEAK_RATE and _db(fallback.pcm) > -30, "espeak said it"
        assert chain.fallbacks == 1 and chain.health[0].up, "one crash does not bench the voice"
        again = await chain.synthesize(SENTENCE, "zh")
        restarted = voice.child_pid
    finally:
        await chain.aclose()
    assert again.sample_rate == tiny.SAMPLE_RATE, "the next sentence is the model's again"
    assert restarted not in (None, killed)


async def test_a_hung_engine_is_given_the_timeout_then_replaced(installed: Path) -> None:
    async with SherpaVoice(installed / "models" / NAME, {"zh": "0"}, timeout_seconds=0.5) as voice:
        await voice.warm_up()
        hung = voice.child_pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(VoiceRestarting):
            await voice.synthesize(SENTENCE, "zh")
        assert time.monotonic() - began < 2.0
        again = await voice.synthesize(SENTENCE, "zh")
        assert again.sample_rate == tiny.SAMPLE_RATE and voice.child_pid not in (None, hung)
    assert not psutil.pid_exists(hung) or psutil.Process(hung).status() == psutil.STATUS_ZOMBIE


async def test_speakers_and_settings_are_checked(installed: Path, tmp_path: Path) -> None:
    model = installed / "models" / NAME
    async with SherpaVoice(model, {"zh": "1"}) as other:
        second = await other.synthesize("大家好", "zh")
    async with SherpaVoice(model, {"zh": "0"}) as first:
        base = await first.synthesize("大家好", "zh")
    assert len(second.pcm) == len(base.pcm) and not np.allclose(second.pcm, base.pcm)
    async with SherpaVoice(model, {"zh": "5"}) as wrong:
        with pytest.raises(SpeechError, match=r"speaker 5 .* speakers 0\.\.1"):
            await wrong.synthesize("大家好", "zh")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: .*speaker number .*not 'xiaoxiao'"):
        load_voice_profile(_with_profile(tmp_path, "voices: {zh: xiaoxiao}", model), "bad")
    with pytest.raises(ConfigError, match="engine sherpa needs model_dir"):
        load_voice_profile(_with_profile(tmp_path, "voices: {zh: 0}", None), "bad")


def _with_profile(voices: Path, line: str, model: Path | None) -> Path:
    text = f"engine: sherpa\n{line}\n" + (f"model_dir: {model}\n" if model else "")
    (voices / "bad.yaml").write_text(text, encoding="utf-8")
    return voices


def test_timings_follow_the_sound_and_skip_pauses() -> None:
    rate = 16_000
    tone = np.sin(np.linspace(0, 2000, rate // 2)).astype(np.float32)
    pcm = np.concatenate([tone, np.zeros(rate // 2, np.float32), tone])  # 0.5 s, pause, 0.5 s
    timings = estimate_timings("你好，hello", pcm, rate)
    assert [t.text for t in timings] == ["你", "好", "hello"]
    assert timings[1].end <= 0.5 + 1e-6 and timings[2].start >= 1.0 - 1e-6


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:bz2") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def _text_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _prefixed(files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{NAME}/{name}": data for name, data in files.items()}


def _bad_archives() -> dict[str, tuple[Callable[[Path], Path], str]]:
    good = tiny.model_files()
    no_tokens = {k: v for k, v in good.items() if k != "tokens.txt"}
    no_rate = {k: v for k, v in tiny.default_metadata().items() if k != "sample_rate"}
    jieba = {**tiny.default_metadata(), "jieba": "1"}
    return {
        "path traversal": (
            lambda p: _tar(p, {**_prefixed(good), "../evil.sh": b"echo"}),
            "../evil.sh: a name that leaves the folder",
        ),
        "absolute name": (
            lambda p: _tar(p, {**_prefixed(good), "/etc/cron.d/x": b"x"}),
            "/etc/cron.d/x: an absolute name",
        ),
        "symlink": (
            lambda p: _tar(p, _prefixed(good), {f"{NAME}/dict": "/etc"}),
            f"{NAME}/dict: a link (regular files only), refused",
        ),
        "missing tokens": (
            lambda p: _tar(p, _prefixed(no_tokens)),
            "tokens.txt is missing",
        ),
        "two models": (
            lambda p: _tar(p, _prefixed({**good, "other.onnx": good["model.onnx"]})),
            "more than one model (model.onnx, other.onnx)",
        ),
        "not an archive": (
            lambda p: _text_file(p, "just some text\n" * 50),
            "model.tar.bz2: not an archive (expected .tar.bz2",
        ),
        "metadata without sample_rate": (
            lambda p: _tar(p, _prefixed({**good, "model.onnx": tiny.model_bytes(no_rate)})),
            "model.tar.bz2: model.onnx: metadata field sample_rate is missing",
        ),
        "jieba without its dictionary": (
            lambda p: _tar(p, _prefixed({**good, "model.onnx": tiny.model_bytes(jieba)})),
            "model.tar.bz2: model.onnx: metadata says jieba=1 but the folder has no dict/",
        ),
        "a model that says nothing": (
            lambda p: _tar(p, _prefixed({**good, "model.onnx": tiny.model_bytes(amplitude=0)})),
            "the model's test sentence is silent",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_archives()))
def test_a_bad_archive_is_refused_with_the_reason_and_leaves_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, reason = _bad_archives()[case]
    archive = make(tmp_path / "model.tar.bz2")
    voices = _voices(tmp_path / "voices")
    assert main(["voice", "install", str(archive), "--voices-dir", str(voices)]) == 1
    error = capsys.readouterr().err
    assert reason in error, error
    left = sorted(str(p.relative_to(voices)) for p in voices.rglob("*"))
    assert left in (["offline.yaml"], ["models", "offline.yaml"]), "nothing installed is left"
    assert not (tmp_path / "evil.sh").exists()


def test_limits_refuse_archives_too_big_or_too_many_files(archive: Path, tmp_path: Path) -> None:
    voices = _voices(tmp_path / "voices")
    with pytest.raises(InstallError, match="unpack to more than 10000 bytes"):
        install_archive(archive, voices, max_bytes=10_000)
    with pytest.raises(InstallError, match="more than 2 files"):
        install_archive(archive, voices, max_files=2)
    zipped = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in tiny.model_files().items():
            out.writestr(name, data)
        out.writestr("padding.bin", bytes(5_000_000))  # compresses to a few kilobytes
    with pytest.raises(InstallError, match="padding.bin: the files unpack to more than"):
        install_archive(zipped, voices, max_bytes=1_000_000)
    assert sorted(p.name for p in voices.iterdir()) == ["offline.yaml"]


def test_a_zip_archive_installs_too(tmp_path: Path) -> None:
    zipped = tmp_path / "Tiny Voice.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in tiny.model_files().items():
            out.writestr(name, data)
    done = install_archive(zipped, _voices(tmp_path / "voices"))
    assert done.name == "tiny-voice" and done.info.files.family == "vits"
    assert done.test_seconds == pytest.approx(tiny.token_count(TEST_SENTENCES["zh"]) * 0.1)


def test_doctor_checks_an_installed_model_and_says_it_airs(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"voices_dir: {installed}\nvoice: {NAME}\n", encoding="utf-8")
    main(["doctor", "--config", str(config)])
    said = capsys.readouterr().out
    assert f"[ok     ] voice {NAME}: sherpa-onnx vits model, 16000 Hz" in said, said
    assert f"[ok     ] voice on air: {NAME}\n" in said
    broken = tmp_path / "voices"
    shutil.copytree(installed, broken)
    (broken / "models" / NAME / "tokens.txt").unlink()
    config.write_text(f"voices_dir: {broken}\nvoice: {NAME}\n", encoding="utf-8")
    main(["doctor", "--config", str(config)])
    said = capsys.readouterr().out
    assert f"voice on air: offline (not {NAME}: " in said and "tokens.txt" in said, said
