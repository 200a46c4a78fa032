"""The mouth follows the loudness of the audio, rests closed in silence, and takes the lip
shapes the voice's timing gives, on the stream clock."""

from __future__ import annotations

import numpy as np
import pytest

from anchor.media.clock import MediaClock
from anchor.media.linequeue import LineQueue
from anchor.media.lipsync import LipTracker, MouthTrack
from anchor.media.playout import Playout
from anchor.messages import Line, MouthCue, MouthShape, SpeechAudio, WordTiming
from anchor.speech.base import Voice
from anchor.speech.speaker import Speaker
from anchor.speech.visemes import cues_from_phonemes, cues_from_words, phoneme_shapes, word_shapes

CLOSED, OPEN, WIDE, ROUND = MouthShape.CLOSED, MouthShape.OPEN, MouthShape.WIDE, MouthShape.ROUND

RATE, FPS = 48000, 30
CHUNK = RATE // FPS


def _tone(level: float, frames: int) -> list[np.ndarray]:
    t = np.arange(CHUNK * frames) / RATE
    wave = (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return [wave[i * CHUNK : (i + 1) * CHUNK] for i in range(frames)]


def _silence(frames: int) -> list[np.ndarray]:
    return [np.zeros(CHUNK, dtype=np.float32) for _ in range(frames)]


def test_mouth_opens_on_speech_and_closes_fully_in_silence() -> None:
    lips = LipTracker(FPS)
    assert [lips.update(c) for c in _silence(5)] == [0.0] * 5
    loud = [lips.update(c) for c in _tone(0.3, 10)]
    assert loud[0] > 0.3, "attack should open the mouth within one frame"
    assert loud[-1] > 0.8
    quiet = [lips.update(c) for c in _silence(15)]
    assert all(b <= a for a, b in zip(quiet, quiet[1:], strict=False)), "release must not reopen"
    assert quiet[-1] == 0.0, "mouth must close completely in silence"


def test_louder_speech_opens_wider() -> None:
    soft, loud = LipTracker(FPS), LipTracker(FPS)
    soft_values = [soft.update(c) for c in _tone(0.02, 10)]
    loud_values = [loud.update(c) for c in _tone(0.3, 10)]
    assert 0.0 < soft_values[-1] < loud_values[-1]


def test_release_is_slower_than_attack() -> None:
    lips = LipTracker(FPS)
    for chunk in _tone(0.3, 10):
        lips.update(chunk)
    after_one_silent_frame = lips.update(_silence(1)[0])
    assert after_one_silent_frame > 0.5, "the mouth closes over a few frames, not at once"


def test_noise_below_the_floor_keeps_the_mouth_shut() -> None:
    lips = LipTracker(FPS)
    rng = np.random.default_rng(1)
    hiss = [(rng.standard_normal(CHUNK) * 0.002).astype(np.float32) for _ in range(20)]
    assert max(lips.update(c) for c in hiss) == 0.0


# ---------------------------------------------------------------- lip shapes


def test_phonemes_map_onto_the_four_shapes() -> None:
    assert phoneme_shapes("m") == (CLOSED,) and phoneme_shapes("b") == (CLOSED,)
    assert phoneme_shapes("A") == (OPEN,) and phoneme_shapes("a#") == (OPEN,)
    assert phoneme_shapes("i:") == (WIDE,) and phoneme_shapes("s.") == (WIDE,)
    assert phoneme_shapes("u:") == (ROUND,) and phoneme_shapes("y") == (ROUND,)  # ü
    assert phoneme_shapes("ua") == (ROUND, OPEN)
    assert phoneme_shapes("_:") == (CLOSED,)


def test_phoneme_cues_spread_glides_and_skip_syllable_gaps() -> None:
    cues = cues_from_phonemes([(0.0, "m"), (0.1, "A"), (0.2, "_|"), (0.25, "X"), (0.3, "ua")], 0.5)
    assert cues == (
        MouthCue(0.0, CLOSED),
        MouthCue(0.1, OPEN),  # "_|" takes the next sound's shape: X is open too
        MouthCue(0.3, ROUND),
        MouthCue(0.4, OPEN),
    )


def test_word_cues_from_pinyin_and_spelling() -> None:
    zh = cues_from_words([WordTiming("妈妈", 0.0, 0.4)], "zh")
    assert [c.shape for c in zh] == [CLOSED, OPEN, CLOSED, OPEN, CLOSED]
    assert [c.start for c in zh[:4]] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    en = cues_from_words([WordTiming("map", 0.0, 0.3), WordTiming("see", 0.5, 0.7)], "en")
    assert [c.shape for c in en] == [CLOSED, OPEN, CLOSED, WIDE, CLOSED]
    assert en[3].start == pytest.approx(0.5) and en[-1].start == pytest.approx(0.7)
    assert word_shapes("吴", "zh") == (ROUND,)


def test_without_cues_the_envelope_alone_drives_the_mouth() -> None:
    track, lips = MouthTrack(FPS, RATE), LipTracker(FPS)
    chunks = _silence(3) + _tone(0.3, 8) + _silence(10)
    for chunk in chunks:
        openness, shape = track.update(chunk)
        assert openness == lips.update(chunk)
        assert shape == (OPEN if openness > 0 else CLOSED)


def test_closed_cue_shuts_the_lips_on_loud_audio() -> None:
    track = MouthTrack(FPS, RATE)
    cues = (
        MouthCue(0.0, WIDE),
        MouthCue(4 * CHUNK / RATE, CLOSED),
        MouthCue(6 * CHUNK / RATE, ROUND),
    )
    seen = [track.update(c, cues, (n + 1) * CHUNK) for n, c in enumerate(_tone(0.3, 9))]
    assert [shape for _, shape in seen] == [WIDE] * 4 + [CLOSED] * 2 + [ROUND] * 3
    assert all(openness == 0.0 for openness, _ in seen[4:6])
    assert seen[3][0] > 0.5 and seen[6][0] > 0.5, "other shapes open as the loudness says"


def test_after_the_speech_the_lips_settle_from_the_last_shape() -> None:
    """In the pause after a sentence the last phoneme's shape is not held: the mouth closes
    through the ordinary (OPEN) levels as the sound dies away."""
    track = MouthTrack(FPS, RATE)
    cues = (MouthCue(0.0, ROUND),)
    speech_end = 5 * CHUNK
    chunks = _tone(0.3, 5) + _silence(12)
    seen = [track.update(c, cues, (n + 1) * CHUNK, speech_end) for n, c in enumerate(chunks)]
    assert [shape for _, shape in seen[:4]] == [ROUND] * 4
    decaying = [(openness, shape) for openness, shape in seen[5:] if openness > 0]
    assert decaying and all(shape == OPEN for _, shape in decaying)
    assert seen[-1] == (0.0, CLOSED)


# ---------------------------------------------------------------- on the stream clock


class _CuedVoice(Voice):
    """A voice with known timing: `lead` seconds of silence, then a loud tone, fixed cues."""

    name = "cued"

    def __init__(self, rate: int, lead: float, speech: float, cues, timings=()) -> None:
        self.rate, self.lead, self.speech, self.cues, self.timings = (
            rate,
            lead,
            speech,
            cues,
            timings,
        )

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        t = np.arange(round(self.speech * self.rate)) / self.rate
        tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        pcm = np.concatenate([np.zeros(round(self.lead * self.rate), np.float32), tone])
        return SpeechAudio(pcm, self.rate, tuple(self.timings), tuple(self.cues))


async def test_speaker_shifts_cues_by_the_trimmed_silence() -> None:
    cues = (MouthCue(0.0, CLOSED), MouthCue(0.6, OPEN), MouthCue(0.9, ROUND), MouthCue(5.0, WIDE))
    voice = _CuedVoice(24000, lead=0.5, speech=1.0, cues=cues)
    speaker = Speaker(voice, sample_rate=RATE, sentence_gap=0.3, max_sentence_seconds=30)
    spoken = await speaker.speak(Line("x", language="en"))
    # 0.5 s of silence trimmed down to the 0.05 s margin: everything moves 0.45 s earlier.
    assert [c.shape for c in spoken.cues] == [CLOSED, OPEN, ROUND]
    assert [c.start for c in spoken.cues] == pytest.approx([0.0, 0.15, 0.45])
    assert spoken.speech_samples == round(1.05 * RATE)


async def test_speaker_turns_word_timings_into_cues() -> None:
    words = (WordTiming("妈", 0.5, 0.7), WordTiming("妈", 0.7, 0.9))
    voice = _CuedVoice(RATE, lead=0.5, speech=0.5, cues=(), timings=words)
    speaker = Speaker(voice, sample_rate=RATE, sentence_gap=0.0, max_sentence_seconds=30)
    spoken = await speaker.speak(Line("妈妈", language="zh"))
    assert [c.shape for c in spoken.cues] == [CLOSED, OPEN, CLOSED, OPEN, CLOSED]
    assert spoken.cues[0].start == pytest.approx(0.05)
    assert spoken.timings[0].start == pytest.approx(0.05)


class _ShapeRecorder:
    def __init__(self) -> None:
        self.shapes: dict[int, tuple[float, MouthShape]] = {}

    def render(self, frame_index, mouth, caption, shape=MouthShape.OPEN, card=None) -> np.ndarray:
        self.shapes[frame_index] = (mouth, shape)
        return np.zeros((6, 4), dtype=np.uint8)


class _NullEncoder:
    def open(self) -> None:
        pass

    def write(self, frame_index, picture, samples) -> None:
        pass

    def close(self) -> None:
        pass


async def test_shapes_switch_at_the_frame_holding_the_cue_sample() -> None:
    """Two lines; the second starts mid-frame. Each cue shows from the frame whose samples
    contain line start + cue.start x rate, not a frame earlier."""
    clock = MediaClock(RATE, FPS)
    step = 0.1013  # cues off any frame grid
    shapes = [WIDE, ROUND, OPEN, CLOSED, WIDE, ROUND, CLOSED, OPEN]
    cues = tuple(MouthCue(0.05 + k * step, s) for k, s in enumerate(shapes))
    voice = _CuedVoice(RATE, lead=0.0, speech=0.05 + len(shapes) * step, cues=cues)
    speaker = Speaker(voice, sample_rate=RATE, sentence_gap=0.0173, max_sentence_seconds=30)
    lines = LineQueue(maxsize=4)
    spoken = [await speaker.speak(Line(f"line {i}", language="en")) for i in range(2)]
    for line in spoken:
        await lines.put(line)
    starts: list[int] = []
    renderer = _ShapeRecorder()
    total = sum(len(line.samples) for line in spoken)
    playout = Playout(
        clock,
        renderer,
        _NullEncoder(),
        lines,
        live=False,
        duration_frames=total // clock.samples_in_frame(0) - 1,
        publish=lambda event: starts.append(round(event.stream_time * RATE)),
    )
    await playout.run()

    assert starts[1] % clock.samples_in_frame(0) != 0, "the second line starts mid-frame"
    for line, start in zip(spoken, starts, strict=True):
        assert line.cues == cues
        for previous, cue in zip(cues, cues[1:], strict=False):
            at = start + round(cue.start * RATE)
            frame = next(n for n in range(1, 10**6) if clock.frame_start_sample(n) > at) - 1
            assert renderer.shapes[frame][1] == cue.shape, f"cue {cue} at frame {frame}"
            assert renderer.shapes[frame - 1][1] == previous.shape, f"{cue} shown early"
            if cue.shape == CLOSED:
                assert renderer.shapes[frame][0] == 0.0
