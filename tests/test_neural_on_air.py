"""The natural (neural) voice on air, judged from what a viewer gets: a minute of the demo show
with its speech, its lip shapes and its lip sync on decoded frames; and the neural engine killed
mid-sentence in a live run, the sentence airing in espeak-ng without a gap.

Which voice made a sentence is read from the speech cache the run leaves next to its store:
each voice of the chain files its audio under its own key (engine, voice id, text...), so the
entries a sentence's text has name the voices that spoke it. A missing model fails here, it is
never skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from configs import write_config

from anchor.avatar.loader import load_pack
from anchor.avatar.renderer import AvatarRenderer
from anchor.config import load_voice_chain
from anchor.messages import Line, MouthShape, Priority, SpeechAudio, SpokenLine
from anchor.speech.base import Voice
from anchor.speech.cache import SynthesisCache, synthesis_key
from anchor.speech.speaker import Speaker
from anchor.speech.text import detect_language

# The model is built by ./anchor.sh test in the background: wait for it, fail if it failed.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("neural_model_built")]

ROOT = Path(__file__).resolve().parent.parent
VOICES = ROOT / "voices"
FPS, RATE = 30, 48000
PER_FRAME = RATE // FPS
WIDTH, HEIGHT = 320, 180
SENTENCE_GAP = 0.35  # config speech.sentence_gap, left at its default here
# The quiet lead-in and tail each sentence keeps when the speaker trims it: speech_bounds keeps
# 50 ms beyond its first and last 10 ms window above -45 dBFS.
EDGE_S = 0.06
AIRED = re.compile(r"anchor\.show\.airlog: \[\d\d:\d\d:\d\d\] (.+)$", re.MULTILINE)
CONSOLE = re.compile(r"console on http://(127\.0\.0\.1:\d+)/")
# What the voice chain logs when a voice hands a sentence on (anchor.speech.chain).
FELL_BACK = re.compile(r"voice \S+: .*; the next voice says this sentence|voice \S+ failed \(")

# A show of short Mandarin sentences with no pauses of its own: every silence between two
# sentences is by design exactly the sentence gap, so a longer one is the kill's doing.
LIVE_SCHEDULE = """\
name: 夜班测试
timezone: Asia/Shanghai
gap_seconds: 3
segments:
  - id: rest
    title: 休息休假
    points:
{points}
"""
LIVE_POINTS = (
    "大家好，欢迎来到职工服务直播间。",
    "劳动者每周至少休息一日，这是劳动法明确规定的权利。",
    "职工连续工作一年以上的，可以享受带薪年休假。",
    "年休假的天数，和职工累计工作的年限有直接的关系。",
    "单位安排职工加班的，应当依法支付加班工资，不能拖欠。",
    "休息日加班又不能安排补休的，工资不低于平时的两倍。",
    "法定节假日安排加班的，工资不低于平时工资的三倍。",
    "如果遇到单位不给加班费的情况，可以先和单位好好协商。",
    "协商不成的，可以向当地的劳动保障监察部门投诉。",
    "也可以拨打职工服务热线，请工会的同志帮您出出主意。",
    "工会会帮您理清思路，依法维护您的合法权益。",
    "有什么拿不准的地方，欢迎在评论区给我们留言。",
    "我们会挑选大家关心的问题，在直播里一一解答。",
    "感谢大家的收看和支持，祝大家工作顺利，身体健康。",
    "接下来我们再聊一聊职工的劳动安全和职业健康。",
    "工作中受了伤，请第一时间告诉单位和工会。",
)


def _anchor(*args: str) -> list[str]:
    return [sys.executable, "-m", "anchor", *args]


def _natural_config(tmp_path: Path, *, schedule: Path | None = None, extra: str = "") -> Path:
    return write_config(
        tmp_path, width=WIDTH, height=HEIGHT, schedule=schedule, extra="voice: natural\n" + extra
    )


def _renderer() -> AvatarRenderer:
    pack = load_pack(ROOT / "avatars" / "default")
    return AvatarRenderer(pack, WIDTH, HEIGHT, fps=FPS, captions=False)


def _decode(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Gray frames and mono samples, the samples from the first frame's presentation time on
    (the audio stream starts earlier by the AAC encoder's priming), as a player lines them up."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        first_frame = frames[0].time
        gray = [frame.to_ndarray(format="gray") for frame in frames]
    with av.open(str(path)) as container:
        chunks = list(container.decode(audio=0))
        first_sample = chunks[0].time
        samples = np.concatenate([chunk.to_ndarray().mean(axis=0) for chunk in chunks])
    assert first_frame is not None and first_sample is not None
    lead = round((first_frame - first_sample) * RATE)
    assert 0 <= lead < PER_FRAME, "audio and video start within a frame of each other"
    return gray, samples[lead:].astype(np.float32)


def _frame_rms(samples: np.ndarray, frames: int) -> np.ndarray:
    return np.sqrt((samples[: frames * PER_FRAME].reshape(frames, PER_FRAME) ** 2).mean(axis=1))


def _as_run(tmp_path: Path) -> list[tuple[float, str]]:
    """(stream time, text) of every sentence aired, from the run's as-run table."""
    with sqlite3.connect(f"file:{tmp_path / 'anchor.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT stream_time, text FROM as_run ORDER BY stream_time").fetchall()
    return [(float(when), str(text)) for when, text in rows]


def _spoken_by(tmp_path: Path, texts: list[str]) -> dict[str, dict[str, SpeechAudio]]:
    """Per text, the voice profiles (by name) that made audio for it, with that audio."""
    chain = load_voice_chain(VOICES, "natural")
    cache = SynthesisCache(tmp_path / "speech-cache", 1 << 40)

    async def look() -> dict[str, dict[str, SpeechAudio]]:
        found: dict[str, dict[str, SpeechAudio]] = {}
        for text in texts:
            language = detect_language(text)
            found[text] = {}
            for name, profile in chain:
                audio = await cache.get(synthesis_key(profile, text, language))
                if audio is not None:
                    found[text][name] = audio
        return found

    return asyncio.run(look())


class _Recorded(Voice):
    """Gives back audio a voice already made, so the speaker trims and shifts it as on air."""

    name = "recorded"

    def __init__(self, audio: SpeechAudio) -> None:
        self._audio = audio

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        return self._audio


def _as_aired(text: str, audio: SpeechAudio) -> SpokenLine:
    """The line as the engine's speaker made it from `audio`: its speech length and cues."""
    speaker = Speaker(
        _Recorded(audio),
        sample_rate=RATE,
        sentence_gap=SENTENCE_GAP,
        max_sentence_seconds=30.0,
        loudness_lufs=None,  # the level changes neither the length nor the cues
    )
    return asyncio.run(speaker.speak(Line(text, Priority.SCHEDULE)))


def _cue_shapes(lines: list[tuple[int, SpokenLine]], frames: int) -> np.ndarray:
    """Per frame, the shape of the cue the line on air has at the frame's last sample (CLOSED
    after its speech): what the voice's phonemes ask the mouth to show."""
    starts = [start for start, _ in lines]
    shapes = np.full(frames, int(MouthShape.CLOSED))
    for index in range(frames):
        end = (index + 1) * PER_FRAME
        on_air = bisect_left(starts, end) - 1
        if on_air < 0:
            continue
        start, spoken = lines[on_air]
        position = end - start
        if position >= spoken.speech_samples or not spoken.cues:
            continue
        cue_samples = [round(cue.start * RATE) for cue in spoken.cues]
        cue = bisect_left(cue_samples, position) - 1
        shapes[index] = int(spoken.cues[cue].shape) if cue >= 0 else int(MouthShape.OPEN)
    return shapes


def _nearest_shapes(crops: list[np.ndarray], renderer: AvatarRenderer) -> np.ndarray:
    """Each decoded mouth classified as the renderer's own drawing it is nearest to: every
    shape at every opening, drawn for the same frame (so in the same pose of the head)."""
    x, y, w, h = renderer.mouth_box
    levels = len(load_pack(ROOT / "avatars" / "default").mouth.frames)
    drawings = [(MouthShape.CLOSED, 0.0)] + [
        (shape, level / (levels - 1))
        for shape in (MouthShape.OPEN, MouthShape.WIDE, MouthShape.ROUND)
        for level in range(1, levels)
    ]
    seen = np.zeros(len(crops), dtype=int)
    for index, crop in enumerate(crops):
        distances = [
            np.abs(crop - renderer.render(index, opening, None, shape)[y : y + h, x : x + w]).mean()
            for shape, opening in drawings
        ]
        seen[index] = int(drawings[int(np.argmin(distances))][0])
    return seen


def _silent_runs(silent: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(int), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def test_a_minute_of_the_demo_show_in_the_natural_voice(tmp_path: Path) -> None:
    out = tmp_path / "show.ts"
    run = subprocess.run(
        _anchor(
            "run",
            "--config",
            str(_natural_config(tmp_path)),
            "--fast",
            "--duration",
            "60s",
            "--out",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    renderer = _renderer()
    x, y, w, h = renderer.mouth_box
    pad = max(6, w // 6)
    bottom = min(y + h + pad, renderer.caption_box[1])
    gray, samples = _decode(out)
    assert abs(len(samples) / RATE - 60.0) < 0.1
    frames = min(len(gray), len(samples) // PER_FRAME)
    assert abs(frames - 60 * FPS) <= 1
    rms = _frame_rms(samples, frames)
    assert np.percentile(rms, 90) > 0.02, "the show should contain speech well above silence"
    loud, silent = rms > 0.03, rms < 0.001
    assert loud.sum() > 10 * FPS, "at least ten seconds of clear speech"

    # Every sentence that aired was made by the neural voice, none by its fallback.
    aired = _as_run(tmp_path)
    assert len(aired) >= 8, aired
    chain = [name for name, _ in load_voice_chain(VOICES, "natural")]
    made = _spoken_by(tmp_path, [text for _, text in aired])
    assert {text: sorted(voices) for text, voices in made.items()} == {
        text: [chain[0]] for _, text in aired
    }
    assert not FELL_BACK.search(run.stderr), run.stderr

    # Lip sync: the dark inside of the mouth follows the audio envelope; best lag 0 ± 1 frame.
    dark = np.array(
        [(frame[y - pad : bottom, x - pad : x + w + pad] < 90).sum() for frame in gray[:frames]],
        dtype=np.float64,
    )
    assert dark.std() > 0, "the mouth should move"
    a = (dark - dark.mean()) / dark.std()
    e = (rms - rms.mean()) / rms.std()
    lags = range(-5, 6)
    scores = [
        float(np.mean(a[max(0, k) : frames + min(0, k)] * e[max(0, -k) : frames - max(0, k)]))
        for k in lags
    ]
    best = list(lags)[int(np.argmax(scores))]
    assert abs(best) <= 1, dict(zip(lags, scores, strict=True))
    assert max(scores) > 0.4, "the mouth should clearly follow the speech"

    # Lip shapes: each decoded mouth is the drawing of the shape the phonemes ask for.
    seen = _nearest_shapes(
        [frame[y : y + h, x : x + w].astype(np.float32) for frame in gray[:frames]], renderer
    )
    lines = [(round(when * RATE), _as_aired(text, made[text][chain[0]])) for when, text in aired]
    asked = _cue_shapes(lines, frames)
    shapes_in_speech = {MouthShape(s): int((seen[loud] == s).sum()) for s in set(seen[loud])}
    assert sum(count >= FPS // 2 for count in shapes_in_speech.values()) >= 3, shapes_in_speech
    agree = float((seen[loud] == asked[loud]).mean())
    assert agree >= 0.9, f"decoded shape = phoneme's shape on {agree:.0%} of loud frames"
    changes = np.flatnonzero((np.diff(seen) != 0) & loud[1:]) + 1
    cue_changes = np.flatnonzero(np.diff(asked) != 0) + 1
    near = [np.abs(cue_changes - change).min() <= 1 for change in changes]
    assert len(changes) > 100 and np.mean(near) >= 0.9, (len(changes), np.mean(near))
    # Long silences (a third of a second and more): the lips rest shut.
    settled = np.convolve(silent.astype(int), np.ones(FPS // 3, dtype=int))[:frames] >= FPS // 3
    assert settled.sum() > FPS
    closed = float((seen[settled] == MouthShape.CLOSED).mean())
    assert closed >= 0.95, f"closed on {closed:.0%} of the frames deep in a silence"


def _metric(port: str, name: str) -> float:
    with urllib.request.urlopen(f"http://{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def _until(
    what: str,
    check: Callable[[str], list[str] | bool],
    log: Path,
    process: subprocess.Popen,
    timeout: float = 90.0,
) -> list[str] | bool:
    """What `check` finds in the run's log once it finds something; fails if the run ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the live run ended early: {log.read_text()[-2000:]}")
        found = check(log.read_text(encoding="utf-8"))
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen in {timeout:.0f} s: {log.read_text()[-2000:]}")


def _neural_engine(anchor: psutil.Process) -> psutil.Process:
    """The engine's child process: the one of the run's children that has onnxruntime loaded
    (it is started by multiprocessing's spawn, so its command line names no module)."""
    engines = [
        child
        for child in anchor.children(recursive=True)
        if any("onnxruntime" in m.path for m in child.memory_maps())
    ]
    assert len(engines) == 1, [child.cmdline() for child in anchor.children(recursive=True)]
    return engines[0]


def _kill_while_busy(engine: psutil.Process) -> None:
    """SIGKILL the engine as soon as it spends CPU time: it has a sentence and is speaking it."""
    idle = sum(engine.cpu_times()[:2])
    deadline = time.monotonic() + 60
    while sum(engine.cpu_times()[:2]) < idle + 0.02:
        assert time.monotonic() < deadline, "the engine never started on a sentence"
        time.sleep(0.002)
    os.kill(engine.pid, signal.SIGKILL)


def test_killed_engine_mid_sentence_airs_it_in_espeak_without_a_gap(tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(
        LIVE_SCHEDULE.format(points="\n".join(f"      - {text}" for text in LIVE_POINTS)),
        encoding="utf-8",
    )
    out, log = tmp_path / "live.ts", tmp_path / "anchor.log"
    # The least lookahead there is: the fallback has only the sentence on air to get ready in.
    config = _natural_config(tmp_path, schedule=schedule, extra="speech: {lookahead: 1}\n")
    with log.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            _anchor(
                "run",
                "--config",
                str(config),
                "--out",
                str(out),
            ),
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=tmp_path,
        )
    try:
        ports = _until("the console", lambda text: CONSOLE.findall(text), log, process)
        assert isinstance(ports, list)
        port = ports[0]
        _until("a sentence on air", lambda text: len(AIRED.findall(text)) >= 1, log, process)
        engine = _neural_engine(psutil.Process(process.pid))
        underruns_before = _metric(port, "anchor_underrun_frames_total")
        _kill_while_busy(engine)
        killed_at = _metric(port, "anchor_stream_time_seconds")
        aired_at_kill = len(AIRED.findall(log.read_text(encoding="utf-8")))
        # The sentence being made airs at most two after the one on air (one more may be
        # waiting in the lookahead of 1); then one more, from the restarted engine.
        _until(
            "three more sentences on air",
            lambda text: len(AIRED.findall(text)) >= aired_at_kill + 3,
            log,
            process,
        )
        underruns_after = _metric(port, "anchor_underrun_frames_total")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text(encoding="utf-8")

    # Which voice made each sentence: one, the sentence being made at the kill, by espeak-ng.
    aired = _as_run(tmp_path)
    (neural, _), (fallback, fallback_profile) = load_voice_chain(VOICES, "natural")
    assert fallback_profile.engine == "espeak"
    made = _spoken_by(tmp_path, [line for _, line in aired])
    by = {line: sorted(voices) for line, voices in made.items()}
    rescued = [(when, line) for when, line in aired if by[line] == [fallback]]
    assert len(rescued) == 1, by
    ((rescued_at, rescued_line),) = rescued
    assert rescued_at >= killed_at, "it aired after the kill"
    assert all(by[line] == [neural] for _, line in aired if line != rescued_line), by
    assert aired[-1][0] > rescued_at, "a later sentence aired, neural again"
    # The log: the chain handed a sentence to the next voice, then the killed sentence aired.
    assert rescued_line in AIRED.findall(text)
    handed_on = FELL_BACK.search(text)
    assert handed_on and handed_on.start() < text.index(rescued_line), text

    # No gap: no frame aired as silence for want of speech after the kill, ...
    assert underruns_after == underruns_before, (underruns_before, underruns_after)
    # ... each sentence starts exactly the sentence gap after the speech before it ends (the
    # speech as its voice made it and the engine trimmed it) ...
    for (when, line), (following, _) in itertools.pairwise(aired):
        spoken = _as_aired(line, made[line][by[line][0]])
        late = following - when - (spoken.speech_samples / RATE + SENTENCE_GAP)
        assert abs(late) < 1 / FPS, f"{late * 1000:.0f} ms of extra silence after {line!r}"
    # ... and what a viewer hears from the first sentence to the last holds no silence longer
    # than the sentence gap with the quiet lead-in and tail each sentence keeps, + one frame.
    _, samples = _decode(out)
    first, last = round(aired[0][0] * RATE), round(aired[-1][0] * RATE)
    window = PER_FRAME // 4
    heard = samples[first:last][: (last - first) // window * window].reshape(-1, window)
    quiet = 20 * np.log10(np.sqrt((heard**2).mean(axis=1)) + 1e-12) < -50.0
    longest = max(end - begin for begin, end in _silent_runs(quiet)) * window / RATE
    assert longest <= SENTENCE_GAP + 2 * EDGE_S + 1 / FPS, f"a silence of {longest:.3f} s"
