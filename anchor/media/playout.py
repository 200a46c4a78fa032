"""The frame loop: one frame of picture and its share of sound, n after n.

For frame n the playout takes exactly the samples the media clock assigns to it (speech from
the line on air, else silence), derives the mouth from them, renders, and encodes. Rendering
and encoding are blocking, so they run on one owned media thread; the event loop only decides
what goes into each frame.

Live mode paces by absolute deadlines (start + n/fps on the monotonic clock), never by sleeping
a fixed interval, so small delays do not accumulate. When the machine falls more than a frame
behind, the render is skipped and the previous picture is encoded again under the new
timestamp: the stream keeps its clock, only the picture stutters. Fast mode ignores the wall
clock and waits for speech instead of airing silence, so it shows exactly what live would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from anchor.events import Event, LineAired
from anchor.media.clock import MediaClock
from anchor.media.linequeue import LineQueue
from anchor.media.lipsync import MouthTrack
from anchor.messages import Card, MouthShape, SpokenLine

log = logging.getLogger(__name__)


CAPTION_LINGER_S = 1.0
MIN_GAP_S = 0.25  # a pause cut short for a more important line still keeps this much silence
FAST_BATCH = 8

# frame index, its samples, mouth openness, lip shape, caption, card, skip the render
_FrameWork = tuple[int, np.ndarray, float, MouthShape, str | None, Card | None, bool]


class FrameRenderer(Protocol):
    """Draws the picture of frame n; the avatar renderer is one. Blocking: called on the
    media thread."""

    def render(
        self,
        frame_index: int,
        mouth: float,
        caption: str | None,
        shape: MouthShape,
        card: Card | None = None,
    ) -> np.ndarray: ...


class FrameEncoder(Protocol):
    """Writes frame n and its samples to the output; StreamEncoder and ReconnectingEncoder are
    two. Blocking: called on the media thread."""

    def open(self) -> None: ...

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None: ...

    def close(self) -> None: ...


# Upper bounds (seconds) of the frame-lateness buckets: a frame more than one frame late
# (33 ms at 30 fps) has its render skipped; beyond a few hundred ms the picture visibly stalls.
LATENESS_BUCKETS = (0.001, 0.005, 0.010, 0.020, 0.033, 0.050, 0.100, 0.250, 0.500, 1.0, 2.5)


@dataclass(slots=True)
class LatenessCounts:
    """How late each live frame started, counted into fixed buckets (a frame on time counts
    as 0). The gauge of lateness "now" reads 0 nearly always, because the playout sleeps
    whenever it is ahead; only a count over every frame shows how often it was behind.
    Fixed buckets keep this the same size for a day-long run."""

    counts: list[int]  # per bucket of LATENESS_BUCKETS, not cumulative; the last is beyond it
    total_s: float = 0.0
    frames: int = 0

    @classmethod
    def empty(cls) -> LatenessCounts:
        return cls(counts=[0] * (len(LATENESS_BUCKETS) + 1))

    def observe(self, lateness_s: float) -> None:
        late = max(0.0, lateness_s)
        index = next(
            (i for i, bound in enumerate(LATENESS_BUCKETS) if late <= bound), len(LATENESS_BUCKETS)
        )
        self.counts[index] += 1
        self.total_s += late
        self.frames += 1


@dataclass(slots=True)
class PlayoutStats:
    frames: int = 0
    renders: int = 0
    renders_skipped: int = 0
    underrun_frames: int = 0
    lines_aired: int = 0
    max_lateness_s: float = 0.0
    lateness_s: float = 0.0  # behind the clock at the last frame (live mode; 0 when ahead)
    render_seconds: float = 0.0  # total time spent in renderer.render (perf_counter)
    encode_seconds: float = 0.0  # total time spent in encoder.write
    frame_lateness: LatenessCounts = field(default_factory=LatenessCounts.empty)  # live only


@dataclass(slots=True)
class _OnAir:
    spoken: SpokenLine
    position: int = 0

    @property
    def speech_done(self) -> bool:
        return self.position >= self.spoken.speech_samples

    @property
    def finished(self) -> bool:
        return self.position >= len(self.spoken.samples)


class Playout:
    def __init__(
        self,
        clock: MediaClock,
        renderer: FrameRenderer,
        encoder: FrameEncoder,
        lines: LineQueue,
        *,
        live: bool,
        duration_frames: int | None = None,
        publish: Callable[[Event], None] | None = None,
        draw_cards: bool = True,
    ) -> None:
        self._clock = clock
        self._draw_cards = draw_cards  # False: OBS shows the cards, not the picture
        self._renderer = renderer
        self._encoder = encoder
        self._lines = lines
        self._live = live
        self._duration_frames = duration_frames
        self._publish = publish
        self._mouth = MouthTrack(clock.fps, clock.sample_rate)
        self._on_air: _OnAir | None = None
        self._frame = clock.first_frame
        self._stop_by_frame: int | None = None
        self._picture: np.ndarray | None = None
        self._media = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media")
        self.stats = PlayoutStats()

    @property
    def frame_index(self) -> int:
        return self._frame

    @property
    def picture(self) -> np.ndarray | None:
        """The last rendered picture (yuv420p), for a preview; None before the first."""
        return self._picture

    @property
    def stream_seconds(self) -> float:
        return self._clock.frame_time(self._frame)

    def request_stop(self, grace_seconds: float = 3.0) -> None:
        """Stop once the sentence on air is finished, but within `grace_seconds` of stream time."""
        if self._stop_by_frame is None:
            self._stop_by_frame = self._frame + self._clock.frames_for(grace_seconds)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Fast mode hands the media thread a few frames at a time: the hop between the loop and
        # the thread costs about as much as rendering a frame does.
        batch_size = 1 if self._live else FAST_BATCH
        try:
            await loop.run_in_executor(self._media, self._encoder.open)
            start = time.monotonic()
            frame_s = 1.0 / self._clock.fps
            while not self._should_stop():
                batch: list[_FrameWork] = []
                while len(batch) < batch_size and not self._should_stop():
                    skip_render = False
                    if self._live:
                        since_start = (self._frame - self._clock.first_frame) * frame_s
                        lateness = time.monotonic() - (start + since_start)
                        self.stats.lateness_s = max(0.0, lateness)
                        self.stats.frame_lateness.observe(lateness)
                        if lateness < 0:
                            await asyncio.sleep(-lateness)
                        else:
                            self.stats.max_lateness_s = max(self.stats.max_lateness_s, lateness)
                            skip_render = lateness > frame_s and self._picture is not None
                    samples = await self._take_samples(self._frame)
                    mouth, shape = self._mouth_for(samples)
                    batch.append(
                        (
                            self._frame,
                            samples,
                            mouth,
                            shape,
                            self._caption(),
                            self._card(),
                            skip_render,
                        )
                    )
                    self._frame += 1
                await loop.run_in_executor(self._media, self._produce, batch)
        finally:
            await loop.run_in_executor(self._media, self._encoder.close)
            self._media.shutdown(wait=True)
            log.info(
                "playout ended at %.2f s: %d frames, %d renders skipped, %d silent underrun frames",
                self.stream_seconds,
                self.stats.frames,
                self.stats.renders_skipped,
                self.stats.underrun_frames,
            )

    def _should_stop(self) -> bool:
        if (
            self._duration_frames is not None
            and self._frame - self._clock.first_frame >= self._duration_frames
        ):
            return True
        if self._stop_by_frame is None:
            return False
        on_air = self._on_air
        return on_air is None or on_air.speech_done or self._frame >= self._stop_by_frame

    def _produce(self, batch: list[_FrameWork]) -> None:
        """Media thread: render (unless behind) and encode each frame of the batch."""
        for index, samples, mouth, shape, caption, card, skip in batch:
            if skip:
                self.stats.renders_skipped += 1
            else:
                began = time.perf_counter()
                self._picture = self._renderer.render(index, mouth, caption, shape, card)
                self.stats.render_seconds += time.perf_counter() - began
                self.stats.renders += 1
            picture = self._picture
            assert picture is not None, "a render is skipped only once there is a picture"
            began = time.perf_counter()
            self._encoder.write(index, picture, samples)
            self.stats.encode_seconds += time.perf_counter() - began
            self.stats.frames += 1

    async def _take_samples(self, index: int) -> np.ndarray:
        """The samples of frame `index`: the line on air, then the next ones, else silence."""
        need = self._clock.samples_in_frame(index)
        out = np.zeros(need, dtype=np.float32)
        filled = 0
        while filled < need:
            self._cut_pause_if_preempted()
            on_air = self._on_air
            if on_air is None or on_air.finished:
                on_air = await self._next_line(index, filled)
                if on_air is None:
                    self.stats.underrun_frames += 1
                    break
            take = min(need - filled, len(on_air.spoken.samples) - on_air.position)
            out[filled : filled + take] = on_air.spoken.samples[
                on_air.position : on_air.position + take
            ]
            on_air.position += take
            filled += take
        return out

    def _cut_pause_if_preempted(self) -> None:
        """A pause (the silence after a sentence) gives way to a more important line."""
        on_air = self._on_air
        if on_air is None or on_air.finished:
            return
        head = self._lines.head_priority()
        if head is None or head <= on_air.spoken.line.priority:
            return
        min_gap = int(MIN_GAP_S * self._clock.sample_rate)
        if on_air.position >= on_air.spoken.speech_samples + min_gap:
            on_air.position = len(on_air.spoken.samples)

    async def _next_line(self, index: int, offset: int) -> _OnAir | None:
        """Put the next line on air (None: nothing to air now, or stopping)."""
        if self._stop_by_frame is not None:
            self._on_air = None
            return None
        spoken = self._lines.get_nowait()
        if spoken is None:
            if self._live:
                self._on_air = None
                return None
            spoken = await self._lines.get()
        self._on_air = on_air = _OnAir(spoken)
        self.stats.lines_aired += 1
        if self._publish is not None:
            rate = self._clock.sample_rate
            start_sample = self._clock.frame_start_sample(index) + offset
            self._publish(
                LineAired(
                    spoken.line,
                    stream_time=start_sample / rate,
                    aired_at=time.time(),
                    speech_seconds=spoken.speech_samples / rate,
                    tail_seconds=(len(spoken.samples) - spoken.speech_samples) / rate,
                )
            )
        return on_air

    def _mouth_for(self, samples: np.ndarray) -> tuple[float, MouthShape]:
        """The frame's mouth; lip shapes come from the line on air at the frame's end."""
        on_air = self._on_air
        if on_air is None:
            return self._mouth.update(samples)
        spoken = on_air.spoken
        return self._mouth.update(samples, spoken.cues, on_air.position, spoken.speech_samples)

    def _card(self) -> Card | None:
        """The card of the line on air, through its pause: on screen while the answer airs."""
        on_air = self._on_air
        return None if on_air is None or not self._draw_cards else on_air.spoken.line.card

    def _caption(self) -> str | None:
        on_air = self._on_air
        if on_air is None or not on_air.spoken.line.text:
            return None
        linger = int(CAPTION_LINGER_S * self._clock.sample_rate)
        if on_air.position > on_air.spoken.speech_samples + linger:
            return None
        return on_air.spoken.line.text
