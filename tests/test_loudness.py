"""Every voice airs at −16 LUFS with its peaks under −1 dBFS, measured on what airs.

The end-to-end tests speak real sentences with the real espeak-ng voice through the Speaker,
at two volumes and in two voices, and measure the result with a meter of their own (ITU-R
BS.1770 integrated loudness, true peak four times oversampled with scipy's polyphase
resampler, not the soxr the leveller uses).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from anchor.messages import Line, SpeechAudio
from anchor.speech.base import Voice
from anchor.speech.loudness import LoudnessLeveller
from anchor.speech.speaker import Speaker

RATE = 48000
TARGET = -16.0
PEAK_LIMIT_DBFS = -1.0


def integrated_lufs(pcm: np.ndarray) -> float:
    return float(pyloudnorm.Meter(RATE).integrated_loudness(np.asarray(pcm, dtype=np.float64)))


def true_peak_db(pcm: np.ndarray) -> float:
    oversampled = resample_poly(np.asarray(pcm, dtype=np.float64), 4, 1)
    peak = max(float(np.max(np.abs(oversampled))), float(np.max(np.abs(pcm))))
    return 20 * math.log10(peak)


def tone(seconds: float, amplitude: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def speech_like(seconds: float, amplitude: float, seed: int = 7) -> np.ndarray:
    """Syllable-shaped bursts of a voiced buzz with sharp peaks, and pauses between them."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * 160 * k * t) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    noise = rng.standard_normal(t.size) * 0.05
    pcm = (buzz * syllables + noise * syllables) * amplitude / 2.5
    return pcm.astype(np.float32)


@pytest.mark.parametrize("amplitude", [0.3, 1.0, 3.0])  # −27.6, −17.2, −7.6 LUFS
def test_a_sentence_at_any_level_airs_at_the_target(amplitude):
    leveller = LoudnessLeveller(RATE, TARGET)
    out = leveller.level(speech_like(3.0, amplitude))
    assert abs(integrated_lufs(out) - TARGET) <= 0.5
    assert true_peak_db(out) <= -1.4


def test_peaks_are_limited_without_losing_loudness():
    """A voice with a wide peak-to-loudness ratio: at −16 LUFS its peaks would be at
    +0.5 dBFS, so the limiter, not the gain, keeps them down."""
    wide = speech_like(3.0, 1.0)
    wide[:: RATE // 7] = 0.9  # a few sharp clicks on top
    out = LoudnessLeveller(RATE, TARGET).level(wide)
    assert true_peak_db(wide) + (TARGET - integrated_lufs(wide)) > 0
    assert true_peak_db(out) <= -1.4
    assert abs(integrated_lufs(out) - TARGET) <= 0.5


def test_a_word_shorter_than_a_gating_block_is_measured_ungated():
    leveller = LoudnessLeveller(RATE, TARGET)
    word = tone(0.25, 0.1)
    assert math.isfinite(leveller.measure(word))
    out = leveller.level(word)
    padded = np.concatenate([out, out])  # two of them make one gated block
    assert abs(integrated_lufs(padded) - TARGET) <= 0.5


def test_a_word_of_any_length_can_be_measured():
    """One block as long as the word: float rounding must not make it a sample too long."""
    leveller = LoudnessLeveller(RATE)
    for size in range(round(0.05 * RATE), round(0.4 * RATE), 7):
        assert math.isfinite(leveller.measure(np.full(size, 0.1, dtype=np.float32))), size


def test_quiet_noise_is_never_raised_more_than_the_clamp():
    noise = (np.random.default_rng(1).standard_normal(RATE * 2) * 1e-3).astype(np.float32)
    leveller = LoudnessLeveller(RATE, TARGET, max_gain_db=12.0)
    before = integrated_lufs(noise)
    after = integrated_lufs(leveller.level(noise))
    assert before < TARGET - 12
    assert after == pytest.approx(before + 12.0, abs=0.1)


def test_silence_and_nothing_stay_as_they_are():
    leveller = LoudnessLeveller(RATE, TARGET)
    silence = np.zeros(RATE, dtype=np.float32)
    assert np.array_equal(leveller.level(silence), silence)
    assert leveller.level(np.zeros(0, dtype=np.float32)).size == 0
    click = np.zeros(100, dtype=np.float32)
    click[50] = 0.5
    assert np.array_equal(leveller.level(click), click)  # too short to be speech


class _Tone(Voice):
    name = "tone"

    def __init__(self, amplitude: float) -> None:
        self._amplitude = amplitude

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        return SpeechAudio(speech_like(2.0, self._amplitude), RATE)

    async def aclose(self) -> None:
        return None


async def test_the_speaker_levels_every_voice_and_can_be_told_not_to():
    loud, quiet = _Tone(2.0), _Tone(0.3)
    levels = []
    for voice in (loud, quiet):
        speaker = Speaker(voice, sample_rate=RATE, sentence_gap=0.1, max_sentence_seconds=30)
        spoken = await speaker.speak(Line("一句话。"))
        levels.append(integrated_lufs(spoken.samples[: spoken.speech_samples]))
    assert all(abs(level - TARGET) <= 0.5 for level in levels)
    raw = Speaker(
        quiet, sample_rate=RATE, sentence_gap=0.1, max_sentence_seconds=30, loudness_lufs=None
    )
    spoken = await raw.speak(Line("一句话。"))
    assert integrated_lufs(spoken.samples[: spoken.speech_samples]) < TARGET - 10


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

MANDARIN = [
    "大家好，欢迎来到职工服务直播间，今天我们聊聊互助保障的理赔流程。",
    "有问题请拨打12351热线，每人每年最高补助12000元。",
    "好的。",  # 0.4 s: shorter than a gating block once trimmed
]
ENGLISH = ["Hello everyone, welcome to the union channel."]


@needs_espeak
@pytest.mark.parametrize(
    ("volume", "pitch", "sentences"),
    [
        # espeak-ng's own level: Mandarin −18 LUFS with peaks at full scale, English −21
        (1.0, 50, [(text, "zh") for text in MANDARIN] + [(text, "en") for text in ENGLISH]),
        # half volume and a higher voice: Mandarin at −25 LUFS
        (0.5, 70, [(text, "zh") for text in MANDARIN]),
    ],
)
async def test_espeak_airs_at_minus_16_lufs_with_peaks_under_minus_1_dbfs(volume, pitch, sentences):
    from anchor.speech.espeak_voice import EspeakVoice

    voice = EspeakVoice({"zh": "cmn-latn-pinyin", "en": "en-us"}, volume=volume, pitch=pitch)
    speaker = Speaker(voice, sample_rate=RATE, sentence_gap=0.3, max_sentence_seconds=30)
    try:
        aired = [await speaker.speak(Line(text, language=lang)) for text, lang in sentences]
    finally:
        await voice.aclose()
    for line in aired:
        speech = line.samples[: line.speech_samples]
        loudness = (
            integrated_lufs(speech)
            if len(speech) >= 0.4 * RATE
            else integrated_lufs(np.tile(speech, 2))
        )
        assert abs(loudness - TARGET) <= 1.0, (line.line.text, loudness)
        assert true_peak_db(speech) <= PEAK_LIMIT_DBFS, line.line.text
    programme = np.concatenate([line.samples for line in aired])
    assert abs(integrated_lufs(programme) - TARGET) <= 1.0
    assert true_peak_db(programme) <= PEAK_LIMIT_DBFS
