"""Delay from a frame leaving the engine to it showing in OBS's program output, the engine's
former way against its present way, with and without audio in the stream.

A headless OBS Studio (anchor.harness, under its own Xvfb) holds the engine's scene, built by
the engine's own `ObsController`; its Media Source reads MPEG-TS over UDP (or SRT, OBS
listening) on loopback. The stream is made by the engine's encoder with the shipped video and
audio settings (a quiet tone as the sound), paced in real time by absolute deadlines as the
playout does. Its picture is flat dark and turns flat bright at moments chosen here; the time
the first bright frame is handed to the encoder is noted. Meanwhile a thread asks OBS for tiny
screenshots of the program scene (GetSourceScreenshot, 64 px wide) back to back, as fast as OBS
answers, and the first bright answer after a hand-off marks that flip's delay. Flips come every
0.8-1.4 s (random, so they do not lock to OBS's frame ticks), without waiting for OBS, so a run
takes the same time whatever the delay.

OBS settles on a delay when its Media Source opens a stream and keeps it while the stream
runs: its player starts on the first keyframe and plays everything it buffered before it
(with audio, the sound since it opened) in real time; when that wait exceeds 2 s, the picture
runs ahead and the sound alone stays late. So each mode is measured over several
stream starts (a new stream on a new UDP port, and a new controller that points the Media
Source at it), the modes interleaved; the median of each start is printed too.

The modes: "before" is the Media Source as the engine used to set it (no FFmpeg options,
restart on activate) and a keyframe only every `--keyframe-seconds`; "settings" adds the
present Media Source settings (`SceneKeeper.media_settings`: FFmpeg's stream analysis ends
once both codecs are known); "now" adds a keyframe whenever the Media Source opens the stream
(`ObsController.on_media_opened`: OBS's MediaInputPlaybackStarted, or the input created).

    .venv/bin/python benchmarks/bench_obs_latency.py [--starts 5] [--flips 4]
        [--keyframe-seconds 2] [--transport udp|srt]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import itertools
import logging
import os
import random
import shlex
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from anchor.config import AudioConfig, ObsConfig, VideoConfig
from anchor.harness.obs_studio import ObsRequestFailed, ObsStudio
from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, ReconnectingEncoder, StreamEncoder
from anchor.media.output import OutputTarget
from anchor.obs import ObsController
from anchor.obs.scene import SceneKeeper

T = TypeVar("T")

DARK_Y, BRIGHT_Y = 16, 235  # limited-range black and white
BRIGHT_ABOVE = 128  # mean gray level (0-255) of the screenshot that counts as bright
SHOT_WIDTH = 64
WARMUP_FLIPS = 1
SEEN_TIMEOUT_S = 10.0
STREAM_UP_TIMEOUT_S = 40.0
RECHECK_S = 0.05
HOLD_S = (0.4, 0.7)  # how long each picture is sent before the next flip (random)
SRT_RETRY_S = 0.2


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(slots=True)
class Shot:
    sent: float  # monotonic time the request left
    answered: float  # monotonic time the answer arrived
    bright: bool | None  # None: OBS could not render the scene (not built yet)


class ScreenshotPoller:
    """A thread asking OBS for a tiny screenshot of one source, back to back, on its own
    synchronous connection, so the event loop that paces the stream is never in the way.

    Every answer is kept (with the times its request left and its answer came); the thread
    also notes each dark-to-bright change and wakes the loop on every change."""

    def __init__(self, studio: ObsStudio, source: str) -> None:
        self._studio = studio
        self._source = source
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._last: bool | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="obs-screenshots", daemon=True)
        self.shots: list[Shot] = []
        self.bright_onsets: list[Shot] = []  # the first bright answer after a dark one
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SEEN_TIMEOUT_S)

    def _run(self) -> None:
        request = {"sourceName": self._source, "imageFormat": "png", "imageWidth": SHOT_WIDTH}
        try:
            with self._studio.probe() as probe:
                while not self._stop.is_set():
                    sent = time.monotonic()
                    try:
                        data = probe.request("GetSourceScreenshot", request)["imageData"]
                    except ObsRequestFailed:  # the scene is not built yet
                        self.shots.append(Shot(sent, time.monotonic(), None))
                        time.sleep(0.05)
                        continue
                    answered = time.monotonic()
                    png = base64.b64decode(data.split(",", 1)[1])
                    gray = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
                    self._record(Shot(sent, answered, float(gray.mean()) > BRIGHT_ABOVE))
        except BaseException as exc:
            self.error = exc
            self._loop.call_soon_threadsafe(self._changed.set)

    def _record(self, shot: Shot) -> None:
        self.shots.append(shot)
        if shot.bright is self._last:
            return
        if shot.bright and self._last is False:
            self.bright_onsets.append(shot)
        self._last = shot.bright
        self._loop.call_soon_threadsafe(self._changed.set)

    async def seen(self, bright: bool, *, after: float, within: float) -> float | None:
        """When OBS first answered `bright` to a request sent at or after `after`; None if not
        within `within` seconds."""
        checked = bisect.bisect_left(self.shots, after, key=lambda shot: shot.sent)

        def find() -> float | None:
            nonlocal checked
            shots = self.shots
            for shot in itertools.islice(shots, checked, None):
                if shot.sent >= after and shot.bright is bright:
                    return shot.answered
            checked = len(shots)
            return None

        return await self.until(find, within=within)

    def onsets(self, since: float) -> list[float]:
        """When each dark-to-bright change was first answered, among requests sent since."""
        return [shot.answered for shot in self.bright_onsets if shot.sent >= since]

    async def until(self, find: Callable[[], T | None], *, within: float) -> T | None:
        """`find()`'s first answer that is not None, checked on every change of picture (and
        every RECHECK_S); None if there is none within `within` seconds."""
        try:
            async with asyncio.timeout(within):
                while True:
                    if self.error is not None:
                        raise RuntimeError(f"screenshot polling stopped: {self.error!r}")
                    self._changed.clear()
                    found = find()
                    if found is not None:
                        return found
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), RECHECK_S)
        except TimeoutError:
            return None

    def intervals_ms(self, since: float) -> list[float]:
        start = bisect.bisect_left(self.shots, since, key=lambda shot: shot.sent)
        answered = [shot.answered for shot in self.shots[start:]]
        return [(b - a) * 1000 for a, b in itertools.pairwise(answered)]


class FlipSender:
    """A live stream of a flat picture that turns dark or bright on request.

    Paced like the playout: frame n is handed to the encoder at start + n/fps on the monotonic
    clock, on one owned media thread. `show` returns the monotonic time at which the first
    frame with the new picture was handed to the encoder."""

    def __init__(self, url: str, clock: MediaClock, settings: EncoderSettings) -> None:
        self._clock = clock
        target = OutputTarget.parse(url)
        self._encoder: StreamEncoder | ReconnectingEncoder = StreamEncoder(target, clock, settings)
        if url.startswith("srt://"):  # OBS listens, once its Media Source is open: retry till then
            self._encoder = ReconnectingEncoder(
                lambda: StreamEncoder(target, clock, settings),
                label="OBS over SRT",
                first_retry_s=SRT_RETRY_S,
                max_retry_s=SRT_RETRY_S,
            )
        size = (settings.height * 3 // 2, settings.width)
        self._pictures = {}
        for bright, luma in ((False, DARK_Y), (True, BRIGHT_Y)):
            picture = np.full(size, 128, dtype=np.uint8)
            picture[: settings.height] = luma
            self._pictures[bright] = picture
        self._bright = True
        self._handed: asyncio.Future[float] | None = None

    def request_keyframe(self) -> None:
        self._encoder.request_keyframe()

    def show(self, bright: bool) -> asyncio.Future[float]:
        self._bright = bright
        self._handed = asyncio.get_running_loop().create_future()
        return self._handed

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        media = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media")
        try:
            await loop.run_in_executor(media, self._encoder.open)
            start = time.monotonic()
            frame = 0
            while True:
                wait = start + frame / self._clock.fps - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                handed, self._handed = self._handed, None
                at = await loop.run_in_executor(media, self._write, frame, self._bright)
                if handed is not None and not handed.done():
                    handed.set_result(at)
                frame += 1
        finally:
            await loop.run_in_executor(media, self._encoder.close)
            media.shutdown(wait=True)

    def _write(self, frame: int, bright: bool) -> float:
        clock = self._clock
        first = clock.frame_start_sample(frame)
        t = (first + np.arange(clock.samples_in_frame(frame))) / clock.sample_rate
        tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        at = time.monotonic()
        self._encoder.write(frame, self._pictures[bright], tone)
        return at


class FormerSceneKeeper(SceneKeeper):
    """The Media Source as the engine set it before: FFmpeg's default stream analysis (it
    counts 20 frames to guess a frame rate) and a restart whenever its scene is shown."""

    @property
    def media_settings(self) -> dict[str, Any]:
        return {**super().media_settings, "ffmpeg_options": "", "restart_on_activate": True}


@dataclass(slots=True)
class ModeResult:
    name: str
    audio: bool
    settings_now: bool  # the present Media Source settings; False: the former ones
    keyframe_on_open: bool
    delays_ms: list[float] = field(default_factory=list)
    per_start_ms: list[float] = field(default_factory=list)  # the median of each stream start
    failed_starts: int = 0
    intervals_ms: list[float] = field(default_factory=list)


@contextlib.contextmanager
def _running_obs(workdir: Path) -> Iterator[ObsStudio]:
    studio = ObsStudio(workdir)
    try:
        studio.start()
        yield studio
    finally:
        studio.close()


def _encoder_settings(audio: bool, keyframe_s: float) -> tuple[MediaClock, EncoderSettings]:
    """The shipped defaults of config.yaml's video and audio blocks (keyframe interval aside)."""
    video, sound = VideoConfig(keyframe_seconds=keyframe_s), AudioConfig()
    settings = EncoderSettings.from_config(video, sound, with_audio=audio)
    return MediaClock(sound.sample_rate, video.fps), settings


async def _one_start(
    studio: ObsStudio,
    poller: ScreenshotPoller,
    result: ModeResult,
    *,
    flips: int,
    keyframe_s: float,
    transport: str,
) -> None:
    """A new stream on a new port, and a new controller pointing OBS at it; then `flips`
    flips (after the warm-up ones), added to `result`.

    Flips are sent on a fixed rhythm without waiting for OBS, so a run takes the same time
    whatever the delay; the k-th bright onset OBS shows belongs to the k-th bright hand-off,
    which holds as long as OBS misses none (checked: the counts must match)."""
    clock, settings = _encoder_settings(result.audio, keyframe_s)
    port = _free_udp_port()
    if transport == "srt":
        url, send_to = (
            f"srt://127.0.0.1:{port}?mode=listener",
            f"srt://127.0.0.1:{port}?mode=caller",
        )
    else:
        url, send_to = f"udp://127.0.0.1:{port}", f"udp://127.0.0.1:{port}?pkt_size=1316"
    config = ObsConfig(enabled=True, host=studio.host, port=studio.port)
    controller = ObsController(config, password=studio.password, media_url=url)
    sender = FlipSender(send_to, clock, settings)
    if not result.settings_now:  # the controller's own scene keeper, swapped for the former
        controller._scene = FormerSceneKeeper(config, url)
    if result.keyframe_on_open:
        controller.on_media_opened(sender.request_keyframe)
    tasks = [
        asyncio.create_task(controller.run(), name="obs-controller"),
        asyncio.create_task(sender.run(), name="flip-sender"),
    ]
    try:
        if await poller.seen(True, after=time.monotonic(), within=STREAM_UP_TIMEOUT_S) is None:
            raise RuntimeError(f"OBS never showed the stream\n{studio.log_tail()}")
        dark = await sender.show(False)
        if await poller.seen(False, after=dark, within=SEEN_TIMEOUT_S) is None:
            raise RuntimeError("OBS never showed the dark picture")
        await asyncio.sleep(HOLD_S[1])
        origin = time.monotonic()
        handed = []
        for _ in range(WARMUP_FLIPS + flips):
            handed.append(await sender.show(True))
            await asyncio.sleep(random.uniform(*HOLD_S))
            await sender.show(False)
            await asyncio.sleep(random.uniform(*HOLD_S))
        for task in tasks:
            if task.done():
                task.result()
        await poller.until(
            lambda: len(poller.onsets(origin)) >= len(handed) or None, within=SEEN_TIMEOUT_S
        )
        await asyncio.sleep(HOLD_S[1])  # an extra onset (a glitch) would show by now
        onsets = poller.onsets(origin)
        result.intervals_ms += poller.intervals_ms(origin)
        # End on a dark picture seen: OBS keeps the last frame, which must not pass for the
        # next stream's first one.
        await poller.seen(False, after=onsets[-1] if onsets else origin, within=SEEN_TIMEOUT_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await controller.aclose()
    if len(onsets) != len(handed):
        result.failed_starts += 1
        return
    delays = [(seen - sent) * 1000 for seen, sent in zip(onsets, handed, strict=True)]
    result.delays_ms += delays[WARMUP_FLIPS:]
    result.per_start_ms.append(statistics.median(delays[WARMUP_FLIPS:]))


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))]


def _summary(values: list[float]) -> str:
    ms = sorted(values)
    if not ms:
        return "no samples"
    return (
        f"p50 {statistics.median(ms):4.0f} ms  p95 {_percentile(ms, 0.95):4.0f} ms  "
        f"min {ms[0]:4.0f} ms  max {ms[-1]:4.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="stream starts per mode")
    parser.add_argument("--flips", type=int, default=4, help="measured flips per start")
    parser.add_argument(
        "--keyframe-seconds",
        type=float,
        default=VideoConfig().keyframe_seconds,
        help="the stream's regular keyframe interval",
    )
    parser.add_argument(
        "--transport",
        choices=("udp", "srt"),
        default="udp",
        help="MPEG-TS over UDP, or over SRT with OBS listening and the engine calling",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = [
        ModeResult("H.264 + AAC, before", audio=True, settings_now=False, keyframe_on_open=False),
        ModeResult("H.264 only, before", audio=False, settings_now=False, keyframe_on_open=False),
        ModeResult("H.264 + AAC, settings", audio=True, settings_now=True, keyframe_on_open=False),
        ModeResult("H.264 + AAC, now", audio=True, settings_now=True, keyframe_on_open=True),
    ]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, _running_obs(Path(tmp)) as studio:
        version = studio.request("GetVersion")["obsVersion"]
        poller = ScreenshotPoller(studio, ObsConfig().scene)
        poller.start()
        try:
            for _ in range(args.starts):
                for result in results:  # interleaved, so both modes see the same conditions
                    await _one_start(
                        studio,
                        poller,
                        result,
                        flips=args.flips,
                        keyframe_s=args.keyframe_seconds,
                        transport=args.transport,
                    )
        finally:
            poller.stop()
    video = VideoConfig()
    print(
        f"frame handed to the encoder -> first seen in OBS's program output; OBS {version} "
        f"(canvas {studio.width}x{studio.height} @ {studio.fps} fps), stream "
        f"{video.width}x{video.height} @ {video.fps} fps {video.preset}, a keyframe every "
        f"{args.keyframe_seconds:g} s, MPEG-TS over {args.transport.upper()} on "
        f"loopback; {args.starts} stream starts per mode x {args.flips} flips "
        f"(+{WARMUP_FLIPS} warm-up each), modes interleaved:"
    )
    width = max(len(result.name) for result in results)
    for result in results:
        print(
            f"  {result.name:<{width}}  {_summary(result.delays_ms)}  (n={len(result.delays_ms)})"
        )
    for result in results:
        starts = ", ".join(f"{ms:.0f}" for ms in result.per_start_ms)
        failed = f"; {result.failed_starts} start(s) lost flips" if result.failed_starts else ""
        print(f"  {result.name:<{width}}  median of each start: {starts} ms{failed}")
    intervals = sorted(i for result in results for i in result.intervals_ms)
    print(
        f"screenshot polling (GetSourceScreenshot, {SHOT_WIDTH} px png, back to back): an "
        f"answer every {statistics.median(intervals):.1f} ms (median; p95 "
        f"{_percentile(intervals, 0.95):.1f} ms), while OBS renders a frame every "
        f"{1000 / studio.fps:.1f} ms; a delay is taken when the first bright answer arrived"
    )
    print(
        f"1-minute load average: {load_before:.2f} before the run, {os.getloadavg()[0]:.2f} "
        f"after ({os.cpu_count()} CPUs)"
    )
    print(
        "command:",
        shlex.join([".venv/bin/python", "benchmarks/bench_obs_latency.py", *sys.argv[1:]]),
    )


if __name__ == "__main__":
    asyncio.run(main())
