"""The offline voice against the real espeak-ng, plus resampling and backend selection."""

import asyncio
import re
import subprocess
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from anchor.speech import SpeechError, create_voice, to_rate, trim_silence
from anchor.speech.pyttsx3_voice import Pyttsx3Voice

VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}
CHINESE = "大家好，欢迎来到职工服务直播间。"
ENGLISH = "Welcome to the workers' service channel."
LONG_CHINESE = "职工互助保障住院可以申请理赔，请带好身份证和会员证。" * 12


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))


@pytest.fixture
async def voice():
    speaker = Pyttsx3Voice(VOICES, rate=175, volume=1.0, pitch=50)
    yield speaker
    await speaker.aclose()


def espeak_phonemes(voice_name: str, text: str) -> str:
    result = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", voice_name, text],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_pinyin_voice_reads_chinese_as_mandarin():
    phonemes = espeak_phonemes("cmn-latn-pinyin", "大家好")
    assert "(en)" not in phonemes
    syllables = re.findall(r"\D+?(\d+)_", phonemes)
    assert syllables == ["51", "55", "214"], phonemes


def test_plain_cmn_voice_switches_chinese_to_english():
    """Why profiles name cmn-latn-pinyin: espeak-ng 1.51's `cmn` reads 大家好 in English."""
    assert "(en)" in espeak_phonemes("cmn", "大家好")


@pytest.mark.parametrize(("text", "language"), [(CHINESE, "zh"), (ENGLISH, "en")])
async def test_speaks_a_sentence_audibly(voice, text, language):
    audio = await voice.synthesize(text, language)
    assert audio.pcm.dtype == np.float32
    assert audio.pcm.ndim == 1
    assert 8000 <= audio.sample_rate <= 48000
    assert 0.5 <= audio.duration <= 10.0
    assert rms(audio.pcm) > 0.03
    assert np.max(np.abs(audio.pcm)) <= 1.0


async def test_twice_the_text_gives_longer_audio(voice):
    once = await voice.synthesize(CHINESE, "zh")
    twice = await voice.synthesize(CHINESE + CHINESE, "zh")
    assert twice.duration > 1.6 * once.duration


async def test_long_text_is_synthesized_to_the_end(voice):
    audio = await voice.synthesize(LONG_CHINESE, "zh")
    short = await voice.synthesize(LONG_CHINESE[: len(LONG_CHINESE) // 12], "zh")
    assert audio.duration > 8 * short.duration
    last_second = audio.pcm[-audio.sample_rate :]
    assert rms(last_second) > 0.01


async def test_trimming_removes_the_pause_espeak_adds_after_a_sentence(voice):
    audio = await voice.synthesize(CHINESE, "zh")
    edge = int(0.2 * audio.sample_rate)
    assert rms(audio.pcm[-edge:]) < 0.001
    trimmed = trim_silence(audio.pcm, audio.sample_rate)
    assert len(trimmed) < len(audio.pcm) - edge
    assert rms(trimmed[:edge]) > 0.005
    assert rms(trimmed[-edge:]) > 0.005


async def test_full_width_digits_are_spoken(voice):
    without = await voice.synthesize("请拨打热线。", "zh")
    with_number = await voice.synthesize("请拨打１２３５１热线。", "zh")
    assert with_number.duration > without.duration + 1.0


async def test_blank_text_gives_no_samples(voice):
    audio = await voice.synthesize("  \n ", "zh")
    assert audio.pcm.size == 0
    assert audio.sample_rate > 0


async def test_regional_language_tag_uses_the_base_language_voice(voice):
    audio = await voice.synthesize(CHINESE, "zh-CN")
    assert audio.duration > 0.5


async def test_language_without_a_voice_is_a_speech_error(voice):
    with pytest.raises(SpeechError, match="'fr'"):
        await voice.synthesize("Bonjour.", "fr")


async def test_unknown_engine_voice_reports_the_engine_message():
    speaker = Pyttsx3Voice({"zh": "no-such-voice"})
    try:
        with pytest.raises(SpeechError, match="SetVoiceByName.*no-such-voice"):
            await speaker.synthesize(CHINESE, "zh")
    finally:
        await speaker.aclose()


async def test_engine_progress_notices_stay_off_stdout(voice, capsys):
    print("before")
    await voice.synthesize(CHINESE, "zh")
    print("after")
    assert capsys.readouterr().out == "before\nafter\n"


async def test_synthesis_leaves_the_event_loop_free(voice):
    ticks = 0
    running = True

    async def ticker():
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await voice.synthesize(LONG_CHINESE, "zh")
    during = ticks - before
    running = False
    await task
    assert during >= 2


async def test_closing_removes_scratch_files_and_stops_speaking(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    speaker = Pyttsx3Voice(VOICES)
    await speaker.synthesize(CHINESE, "zh")
    scratch = list(tmp_path.glob("anchor-tts-*"))
    assert len(scratch) == 1
    assert list(scratch[0].iterdir()) == []
    await speaker.aclose()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SpeechError):
        await speaker.synthesize(CHINESE, "zh")
    await speaker.aclose()


async def test_registry_builds_the_voice_a_profile_names():
    profile = SimpleNamespace(
        engine="pyttsx3", voices=VOICES, default_language="zh", rate=175, volume=0.9, pitch=50
    )
    speaker = create_voice(profile)
    try:
        assert isinstance(speaker, Pyttsx3Voice)
        audio = await speaker.synthesize("Bonjour.", "fr")
        assert audio.duration > 0.3
    finally:
        await speaker.aclose()


def test_registry_rejects_an_unknown_engine_by_name():
    profile = SimpleNamespace(engine="festival")
    with pytest.raises(ValueError, match="festival"):
        create_voice(profile)


def sine(rate: int, seconds: float, amplitude: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_resampling_keeps_duration_and_level():
    tone = sine(22050, 1.0)
    resampled = to_rate(tone, 22050, 48000)
    assert resampled.dtype == np.float32
    assert abs(len(resampled) - 48000) <= 48
    inner = resampled[4800:-4800]
    assert rms(inner) == pytest.approx(rms(tone), rel=0.02)
    spectrum = np.abs(np.fft.rfft(inner))
    peak_hz = np.argmax(spectrum) * 48000 / len(inner)
    assert peak_hz == pytest.approx(440, abs=2)


def test_resampling_to_the_same_rate_is_identity():
    tone = sine(48000, 0.1)
    assert to_rate(tone, 48000, 48000) is tone


async def test_voice_output_resamples_to_the_stream_rate(voice):
    audio = await voice.synthesize(CHINESE, "zh")
    stream = to_rate(audio.pcm, audio.sample_rate, 48000)
    assert len(stream) / 48000 == pytest.approx(audio.duration, abs=0.01)
    assert rms(stream) == pytest.approx(rms(audio.pcm), rel=0.05)


def test_trim_silence_cuts_padding_but_keeps_a_margin():
    rate = 22050
    silence = np.zeros(rate // 2, dtype=np.float32)
    tone = sine(rate, 0.3)
    trimmed = trim_silence(np.concatenate([silence, tone, silence]), rate, keep=0.05)
    assert len(trimmed) / rate == pytest.approx(0.4, abs=0.02)
    assert rms(trimmed) > 0.3


def test_trim_silence_of_pure_silence_is_empty():
    assert trim_silence(np.zeros(22050, dtype=np.float32), 22050).size == 0
    assert trim_silence(np.full(22050, 1e-4, dtype=np.float32), 22050).size == 0
