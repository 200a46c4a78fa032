"""The espeak-ng voice, for real: audible Chinese and English, sane timing, lip shapes that
close on m/b and open on the vowel, and errors an operator can act on.

The engine runs in a child process of the voice's own, so these tests leave the test
process's libespeak-ng untouched for the pyttsx3 tests that share the session.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from anchor.avatar import AvatarRenderer
from anchor.avatar.loader import load_pack
from anchor.media.clock import MediaClock
from anchor.media.linequeue import LineQueue
from anchor.media.playout import Playout
from anchor.messages import Line, MouthShape, SpeechAudio
from anchor.speech import SpeechError, create_voice
from anchor.speech.espeak_voice import EspeakVoice
from anchor.speech.speaker import Speaker

DEFAULT_PACK = Path(__file__).resolve().parent.parent / "avatars" / "default"
VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}
CLOSED, OPEN = MouthShape.CLOSED, MouthShape.OPEN


def _rms_db(pcm: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(pcm.astype(np.float64) ** 2)) + 1e-20)


def _check_timing(audio: SpeechAudio) -> None:
    starts = [c.start for c in audio.cues]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert starts[0] >= 0.0 and starts[-1] <= audio.duration
    words = [(w.start, w.end) for w in audio.timings]
    assert all(0.0 <= s <= e <= audio.duration for s, e in words)
    assert [s for s, _ in words] == sorted(s for s, _ in words)


@pytest.mark.parametrize(
    ("text", "language", "words"),
    [
        ("大家好，欢迎来到职工服务直播间。", "zh", "大家好欢迎来到职工服务直播间"),
        ("Welcome to the union channel.", "en", "Welcometotheunionchannel"),
    ],
)
async def test_speaks_chinese_and_english_audibly_with_timing(
    text: str, language: str, words: str
) -> None:
    async with EspeakVoice(VOICES, default_language="zh") as voice:
        audio = await voice.synthesize(text, language)
    assert audio.sample_rate == 22050 and audio.pcm.dtype == np.float32
    assert 1.0 < audio.duration < 8.0
    assert _rms_db(audio.pcm) > -30, "speech must be clearly audible"
    assert np.abs(audio.pcm).max() <= 1.0
    _check_timing(audio)
    assert "".join(w.text for w in audio.timings) == words
    assert {MouthShape.WIDE, MouthShape.ROUND, OPEN, CLOSED} <= {c.shape for c in audio.cues}


@pytest.mark.parametrize(("text", "language"), [("妈妈", "zh"), ("ma ma", "en"), ("bob", "en")])
async def test_lips_close_on_the_consonant_and_open_on_the_vowel(text: str, language: str) -> None:
    async with EspeakVoice(VOICES) as voice:
        audio = await voice.synthesize(text, language)
    shapes = [c.shape for c in audio.cues]
    assert shapes[:3] == [CLOSED, OPEN, CLOSED], shapes
    # The cue really sits where the sound is: quiet lips-together, then the loud vowel.
    closed_end = round(audio.cues[1].start * audio.sample_rate)
    vowel = audio.pcm[closed_end : round(audio.cues[2].start * audio.sample_rate)]
    assert _rms_db(vowel) > _rms_db(audio.pcm[:closed_end]) + 3


async def test_closed_and_open_cues_show_on_the_rendered_mouth() -> None:
    """Speech -> Speaker -> Playout -> renderer: the frame at an m is shut, at the a open."""
    clock = MediaClock(48000, 25)
    pack = load_pack(DEFAULT_PACK)
    renderer = AvatarRenderer(pack, 640, 360, fps=clock.fps, captions=False)
    frames: dict[int, np.ndarray] = {}

    class _Keep:
        def open(self) -> None:
            pass

        def write(self, index: int, picture: np.ndarray, samples: np.ndarray) -> None:
            frames[index] = picture.copy()

        def close(self) -> None:
            pass

    async with EspeakVoice(VOICES) as voice:
        speaker = Speaker(voice, sample_rate=48000, sentence_gap=0.2, max_sentence_seconds=10)
        spoken = await speaker.speak(Line("妈妈", language="zh"))
    lines = LineQueue(maxsize=2)
    await lines.put(spoken)
    total_frames = len(spoken.samples) // clock.samples_in_frame(0)
    playout = Playout(clock, renderer, _Keep(), lines, live=False, duration_frames=total_frames)
    await playout.run()

    def frame_at(seconds: float) -> int:
        sample = round(seconds * 48000)
        return next(n for n in range(10**6) if clock.frame_start_sample(n + 1) > sample)

    x, y, w, h = renderer.mouth_box

    def dark(index: int) -> int:
        return int((frames[index][y : y + h, x : x + w] < 100).sum())

    cues = spoken.cues
    second_m = next(c for c in cues[1:] if c.shape == CLOSED)
    second_a = cues[cues.index(second_m) + 1]
    assert second_a.shape == OPEN
    shut = frame_at(second_m.start)
    opened = frame_at(second_a.start) + 1
    rest = renderer.render(shut, 0.0, None).copy()
    assert np.array_equal(frames[shut][:360], rest[:360]), "the m frame shows the closed mouth"
    assert dark(opened) > dark(shut) + 20, "the vowel frame shows an open mouth"


async def test_profile_builds_the_voice_through_the_registry() -> None:
    profile = SimpleNamespace(
        engine="espeak", voices=VOICES, default_language="zh", rate=200, volume=0.5, pitch=40
    )
    voice = create_voice(profile)
    assert isinstance(voice, EspeakVoice)
    async with voice:
        quiet = await voice.synthesize("你好", "fr")  # unknown language: the default (zh)
    async with EspeakVoice(VOICES, volume=1.0) as loud_voice:
        loud = await loud_voice.synthesize("你好", "zh")
    assert _rms_db(loud.pcm) > _rms_db(quiet.pcm) + 3, "volume 0.5 is quieter than 1.0"


async def test_bad_voice_id_is_a_speech_error() -> None:
    async with EspeakVoice({"en": "no-such-voice"}) as voice:
        with pytest.raises(SpeechError, match="no-such-voice"):
            await voice.synthesize("hello", "en")
    async with EspeakVoice({"en": "en-us"}) as voice:
        with pytest.raises(SpeechError, match="no espeak voice for language 'de'"):
            await voice.synthesize("hallo", "de")
        assert (await voice.synthesize("   ", "en")).pcm.size == 0


async def test_closed_voice_refuses_to_speak() -> None:
    voice = EspeakVoice(VOICES)
    await voice.aclose()
    with pytest.raises(SpeechError, match="closed"):
        await voice.synthesize("hello", "en")


async def test_a_dead_engine_process_is_started_again() -> None:
    async with EspeakVoice(VOICES) as voice:
        first = await voice.synthesize("hello", "en")
        os.kill(voice._child._process.pid, signal.SIGKILL)
        voice._child._process.join(timeout=5)
        again = await voice.synthesize("hello again", "en")
    assert first.pcm.size > 0 and again.pcm.size > first.pcm.size
