"""One channel's engine: the components wired together, started and stopped in order.

Start: voice → avatar renderer (built off the loop: it decodes and precomposes images) →
director → speech producer → playout. Stop, in reverse: the playout finishes the sentence on
air (bounded), closes the stream so the file is playable, then the producer is cancelled and
the voice closed. Every task is created here, named, and awaited or cancelled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from anchor.avatar.pack import AvatarPack
from anchor.avatar.renderer import AvatarRenderer
from anchor.clock import MediaClock
from anchor.config import Config, load_voice_profile
from anchor.director import Director
from anchor.encoder import EncoderSettings, ReconnectingEncoder, StreamEncoder
from anchor.messages import SpokenLine
from anchor.output import OutputTarget, redact_url
from anchor.playout import Playout, PlayoutStats
from anchor.schedule import Schedule, Segment
from anchor.speaker import Speaker
from anchor.speech.registry import create_voice

log = logging.getLogger(__name__)

STATUS_EVERY_S = 60.0
TASK_CANCEL_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    output: OutputTarget
    fast: bool = False
    duration_s: float | None = None
    start_time: datetime | None = None  # wall time that stream time 0 stands for


class Channel:
    def __init__(self, config: Config, schedule: Schedule, options: RunOptions) -> None:
        self._config = config
        self._schedule = schedule
        self._options = options
        self._clock = MediaClock(config.audio.sample_rate, config.video.fps)
        self._playout: Playout | None = None
        self._stop_requested = False
        self.stats: PlayoutStats | None = None

    def request_stop(self) -> None:
        """Graceful stop: finish the sentence on air (at most 3 s), then close the stream."""
        self._stop_requested = True
        if self._playout is not None:
            self._playout.request_stop(grace_seconds=3.0)

    async def run(self) -> PlayoutStats:
        config, options = self._config, self._options
        profile = load_voice_profile(config.voices_dir, config.voice)
        voice = create_voice(profile)
        try:
            renderer = await asyncio.to_thread(self._build_renderer)
            speaker = Speaker(
                voice,
                sample_rate=config.audio.sample_rate,
                sentence_gap=config.speech.sentence_gap,
                max_sentence_seconds=config.speech.max_sentence_seconds,
            )
            start_wall = options.start_time or datetime.now(UTC)
            lines: asyncio.Queue[SpokenLine] = asyncio.Queue(maxsize=config.speech.lookahead)
            encoder = self._build_encoder()
            duration = (
                None if options.duration_s is None else self._clock.frames_for(options.duration_s)
            )
            playout = Playout(
                self._clock,
                renderer,
                encoder,
                lines,
                live=not options.fast,
                duration_frames=duration,
                on_line=self._on_air,
            )
            director = Director(
                self._schedule,
                now=lambda: start_wall + timedelta(seconds=playout.stream_seconds),
                idle_interval=config.idle.interval_seconds,
                on_segment=self._on_segment,
            )
            self._playout = playout
            if self._stop_requested:
                playout.request_stop()
            log.info("%s", options.output.describe())
            await self._run_tasks(playout, director, speaker, lines)
            self.stats = playout.stats
            return playout.stats
        finally:
            await voice.aclose()

    async def _run_tasks(
        self,
        playout: Playout,
        director: Director,
        speaker: Speaker,
        lines: asyncio.Queue[SpokenLine],
    ) -> None:
        producer = asyncio.create_task(
            self._produce_lines(director, speaker, lines), name="speech-producer"
        )
        reporter = asyncio.create_task(self._report(playout), name="status-reporter")
        air = asyncio.create_task(playout.run(), name="playout")
        try:
            done, _ = await asyncio.wait({air, producer}, return_when=asyncio.FIRST_COMPLETED)
            if producer in done and not air.done():
                # The producer only ends by failing; the playout may be waiting on it, so cancel
                # (its cleanup still closes the stream) and report the producer's error.
                air.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await air
                producer.result()
            await air
        finally:
            for task in (air, producer, reporter):
                task.cancel()
            for task in (air, producer, reporter):
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, TASK_CANCEL_TIMEOUT_S)

    async def _produce_lines(
        self, director: Director, speaker: Speaker, lines: asyncio.Queue[SpokenLine]
    ) -> None:
        """Keep the speech queue full: it is bounded, so this is also the lookahead limit."""
        while True:
            line = director.next_line()
            spoken = await speaker.speak(line)
            await lines.put(spoken)

    async def _report(self, playout: Playout) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            stats = playout.stats
            log.info(
                "on air %.0f s: %d frames, %d renders skipped, max lateness %.0f ms, %d lines",
                playout.stream_seconds,
                stats.frames,
                stats.renders_skipped,
                stats.max_lateness_s * 1000,
                stats.lines_aired,
            )

    def _on_air(self, spoken: SpokenLine, at_seconds: float) -> None:
        if spoken.line.text:
            log.info("[%s] %s", _format_stream_time(at_seconds), spoken.line.text)

    def _on_segment(self, segment: Segment) -> None:
        log.debug("next segment: %s", segment.id)

    def _build_renderer(self) -> AvatarRenderer:
        config = self._config
        pack = AvatarPack.load(Path(config.avatars_dir) / config.avatar)
        return AvatarRenderer(
            pack,
            config.video.width,
            config.video.height,
            fps=config.video.fps,
            caption_font=str(config.captions.font) if config.captions.font else None,
            captions=config.captions.enabled,
        )

    def _build_encoder(self) -> StreamEncoder | ReconnectingEncoder:
        """Files fail loudly; a network peer may come and go, so its output reconnects."""
        target, settings = self._options.output, self._encoder_settings()

        def make() -> StreamEncoder:
            return StreamEncoder(target, self._clock, settings)

        if target.is_file:
            return make()
        return ReconnectingEncoder(make, label=redact_url(target.url))

    def _encoder_settings(self) -> EncoderSettings:
        video, audio = self._config.video, self._config.audio
        return EncoderSettings(
            width=video.width,
            height=video.height,
            video_bitrate_kbps=video.bitrate_kbps,
            preset=video.preset,
            keyframe_seconds=video.keyframe_seconds,
            audio_bitrate_kbps=audio.bitrate_kbps,
        )


def _format_stream_time(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
