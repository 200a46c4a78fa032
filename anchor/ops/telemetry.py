"""The channel's signals: which figures it exposes, where they come from, and the verdict.

The daemon names the channel's parts in a `Watched` record once they exist; from then on every
scrape of `/metrics` copies their current figures into the registry (the playout's counters,
the line queue's depth, OBS's and the broker's state) and asks the store for question counts,
which runs on the store's own thread, never blocking the loop. Telemetry subscribes to the
event feed: answer latency (question received → its answer on air) is observed as answers air.
`/healthz` and the status topic share one verdict built from the watchdog and the peers'
connection state: 200 while on air (``ok``, or ``degraded`` when a peer such as OBS or the
broker is away), 503 when ``stalled`` (the picture or the event loop stopped), so a probe can
act on the status code alone. The console's web application serves both pages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from anchor.config import HealthConfig
from anchor.events import AnswerAired, AnswerStarted, Event
from anchor.links.mqtt import MqttLink
from anchor.links.payloads import status_payload
from anchor.media.linequeue import LineQueue
from anchor.media.playout import LATENESS_BUCKETS, Playout
from anchor.ops.metrics import Registry
from anchor.ops.watchdog import LoopHeartbeat, Watchdog
from anchor.questions.desk import QuestionDesk
from anchor.questions.reception import Reception
from anchor.show.director import Director
from anchor.speech.cache import SynthesisCache
from anchor.speech.chain import VoiceChain
from anchor.store import Store

log = logging.getLogger(__name__)

DEGRADED_LATENESS_S = 1.0  # live output this far behind the clock is visibly stuttering
MAX_TRACKED_ANSWERS = 500


class ObsState(Protocol):
    """What telemetry reads of the OBS controller."""

    @property
    def connected(self) -> bool: ...
    @property
    def stats(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class Watched:
    """The parts telemetry reads; a part the channel runs without is None and not reported."""

    director: Director | None = None
    playout: Playout | None = None
    lines: LineQueue | None = None
    store: Store | None = None
    desk: QuestionDesk | None = None
    reception: Reception | None = None
    link: MqttLink | None = None
    obs: ObsState | None = None
    voice: VoiceChain | None = None
    speech_cache: SynthesisCache | None = None


class ChannelTelemetry:
    KINDS: tuple[type, ...] = (AnswerStarted, AnswerAired)

    def __init__(
        self,
        config: HealthConfig,
        *,
        channel: str = "default",
        wall_clock: Callable[[], float] = time.time,
    ):
        self._config = config
        self._channel = channel
        self._now = wall_clock
        self._since = wall_clock()
        self.registry = Registry()
        self.watchdog = Watchdog(config.stall_seconds)
        self.heartbeat = LoopHeartbeat()
        self._parts = Watched()
        self._received: dict[str, float] = {}
        self._declare()

    def _declare(self) -> None:
        r = self.registry
        self._frames = r.counter("anchor_frames_encoded_total", "Video frames encoded.")
        self._renders = r.counter("anchor_renders_total", "Pictures rendered.")
        self._skipped = r.counter(
            "anchor_renders_skipped_total",
            "Renders dropped because the frame was late: the previous picture was repeated.",
        )
        self._underruns = r.counter(
            "anchor_underrun_frames_total", "Frames aired as silence because no speech was ready."
        )
        self._lines = r.counter("anchor_lines_aired_total", "Sentences (and pauses) aired.")
        self._render_s = r.summary("anchor_render_seconds", "Time spent rendering pictures.")
        self._encode_s = r.summary("anchor_encode_seconds", "Time spent encoding frames.")
        self._lateness = r.gauge(
            "anchor_lateness_seconds", "How far live output is behind the clock, now."
        )
        self._max_lateness = r.gauge(
            "anchor_lateness_max_seconds", "The furthest live output has been behind the clock."
        )
        self._frame_lateness = r.histogram(
            "anchor_frame_lateness_seconds",
            "How late each live frame started against the clock (0 when on time).",
            LATENESS_BUCKETS,
        )
        self._stream_time = r.gauge("anchor_stream_time_seconds", "Stream time on air.")
        self._queue = r.gauge("anchor_speech_queue_depth", "Synthesized sentences waiting to air.")
        self._loop_lag = r.gauge("anchor_event_loop_lag_seconds", "Event loop wake-up delay.")
        self._stalled = r.gauge("anchor_stalled", "1 while a heartbeat has stalled.")
        self._questions = r.gauge("anchor_questions", "Stored questions by status.")
        self._waiting = r.gauge("anchor_questions_waiting", "Questions waiting to be answered.")
        self._intake = r.counter(
            "anchor_questions_received_total", "Questions received since start, by outcome."
        )
        self._latency = r.histogram(
            "anchor_answer_latency_seconds", "From a question's arrival to its answer on air."
        )
        self._obs_up = r.gauge("anchor_obs_connected", "1 while connected to OBS.")
        self._obs_stats = r.gauge(
            "anchor_obs_stat", "OBS's own statistics: fps, rendered and skipped frames."
        )
        self._broker_up = r.gauge("anchor_broker_connected", "1 while connected to the broker.")
        self._voice = r.counter("anchor_voice_events_total", "Voice fallbacks and cache use.")
        self._voice_up = r.gauge("anchor_voice_up", "1 while a voice of the chain works.")
        r.collect_with(self._collect)

    # Wiring ---------------------------------------------------------------------------

    def attach(self, parts: Watched) -> None:
        """The parts to read from now on."""
        self._parts = parts
        playout = parts.playout
        if playout is not None:
            self.watchdog.watch("render", lambda: playout.stats.frames, what="render", unit="frame")
        self.watchdog.watch("loop", lambda: self.heartbeat.beats, what="event loop")

    async def start(self) -> None:
        """Start the watchdog thread (the console's web server serves the pages)."""
        self.watchdog.start()

    async def aclose(self) -> None:
        self.watchdog.stop()

    async def handle(self, event: Event) -> None:
        """Remember when each question arrived, and time its answer when it airs."""
        if isinstance(event, AnswerStarted):
            waiting = event.waiting
            for question in (waiting.question, *waiting.merged):
                self._received[question.id] = question.received_at
            while len(self._received) > MAX_TRACKED_ANSWERS:
                self._received.pop(next(iter(self._received)))
        elif isinstance(event, AnswerAired):
            received = self._received.pop(event.waiting.question.id, None)
            if received:
                self._latency.observe(max(0.0, event.aired_at - received))

    def status(self) -> dict[str, Any]:
        """What the retained status topic says about the channel."""
        parts = self._parts
        director, playout, obs = parts.director, parts.playout, parts.obs
        segment = director.current_segment if director is not None else None
        return status_payload(
            channel=self._channel,
            schedule="" if director is None else director.schedule.name,
            segment=None if segment is None else segment.id,
            paused=bool(director is not None and director.paused),
            stream_time=0.0 if playout is None else playout.stream_seconds,
            questions_waiting=0 if parts.desk is None else len(parts.desk),
            since=self._since,
            obs=None if obs is None else {"connected": obs.connected, **obs.stats},
            health=self.health(),
        )

    def gauges(self) -> dict[str, float]:
        """How full the channel's queues are and how the playout keeps up (empty before the
        show starts), for the soak's sampler and other in-process monitors."""
        parts = self._parts
        playout, desk, lines = parts.playout, parts.desk, parts.lines
        if playout is None or desk is None or lines is None:
            return {}
        stats = playout.stats
        return {
            "stream_s": playout.stream_seconds,
            "frames": stats.frames,
            "lines_queued": len(lines),
            "questions_waiting": len(desk),
            "renders_skipped": stats.renders_skipped,
            "underrun_frames": stats.underrun_frames,
            "max_lateness_s": stats.max_lateness_s,
            "mqtt_connected": float(parts.link is not None and parts.link.connected),
            "obs_connected": float(parts.obs is not None and parts.obs.connected),
        }

    async def report_progress(self, every_s: float) -> None:
        """One log line a while about the stream, so a log alone shows the channel was on air."""
        while True:
            await asyncio.sleep(every_s)
            playout = self._parts.playout
            if playout is None:
                continue
            stats = playout.stats
            log.info(
                "on air %.0f s: %d frames, %d renders skipped, max lateness %.0f ms, %d lines",
                playout.stream_seconds,
                stats.frames,
                stats.renders_skipped,
                stats.max_lateness_s * 1000,
                stats.lines_aired,
            )

    # Reading --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """{status, checks}: ok, degraded (a peer is away, still on air) or stalled."""
        watch = self.watchdog.state()
        checks = {
            "loop": _watched(watch.get("loop")),
            "render": _watched(watch.get("render")),
            "obs": _peer(self._parts.obs),
            "broker": _peer(self._parts.link),
            "voice": _voice(self._parts.voice),
            "store": _store(self._parts.store),
        }
        playout = self._parts.playout
        if (
            checks["render"] == "ok"
            and playout is not None
            and playout.stats.lateness_s > DEGRADED_LATENESS_S
        ):
            checks["render"] = "degraded"
        stalls = {name: state for name, state in watch.items() if not state["ok"]}
        return {"status": health_status(checks), "checks": checks, "stalls": stalls}

    async def _collect(self) -> None:
        parts = self._parts
        playout = parts.playout
        if playout is not None:
            stats = playout.stats
            self._frames.set(stats.frames)
            self._renders.set(stats.renders)
            self._skipped.set(stats.renders_skipped)
            self._underruns.set(stats.underrun_frames)
            self._lines.set(stats.lines_aired)
            self._render_s.set(stats.render_seconds, stats.renders)
            self._encode_s.set(stats.encode_seconds, stats.frames)
            self._lateness.set(stats.lateness_s)
            self._max_lateness.set(stats.max_lateness_s)
            late = stats.frame_lateness
            self._frame_lateness.mirror(late.counts, late.total_s)
            self._stream_time.set(playout.stream_seconds)
        if parts.lines is not None:
            self._queue.set(len(parts.lines))
        if parts.desk is not None:
            self._waiting.set(len(parts.desk))
        self._loop_lag.set(self.heartbeat.lag_s)
        self._stalled.set(1 if self.watchdog.stalled else 0)
        if parts.reception is not None:
            for outcome, count in dict(parts.reception.counts).items():
                self._intake.set(count, outcome=outcome)
        store = parts.store
        if store is not None:
            try:
                for status, count in (await store.counts()).items():
                    self._questions.set(count, status=status)
            except Exception as exc:  # a closed or failing store: the rest still reports
                log.debug("question counts unavailable: %s", exc)
        self._collect_peers()

    def _collect_peers(self) -> None:
        parts = self._parts
        if parts.obs is not None:
            self._obs_up.set(1 if parts.obs.connected else 0)
            for key, value in dict(parts.obs.stats or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._obs_stats.set(value, stat=key)
        if parts.link is not None:
            self._broker_up.set(1 if parts.link.connected else 0)
        if parts.voice is not None:
            self._voice.set(parts.voice.fallbacks, event="fallback")
            for entry in parts.voice.health:
                self._voice_up.set(1 if entry.up else 0, voice=entry.name)
        if parts.speech_cache is not None:
            self._voice.set(parts.speech_cache.hits, event="cache_hit")
            self._voice.set(parts.speech_cache.misses, event="cache_miss")


def health_status(checks: dict[str, str]) -> str:
    """The overall verdict from per-part checks (each ok, degraded, stalled or off)."""
    if "stalled" in checks.values():
        return "stalled"
    if "degraded" in checks.values():
        return "degraded"
    return "ok"


def _watched(state: dict[str, Any] | None) -> str:
    if state is None:
        return "off"
    return "ok" if state["ok"] else "stalled"


class _Peer(Protocol):
    @property
    def connected(self) -> bool: ...


def _peer(peer: _Peer | None) -> str:
    if peer is None:
        return "off"
    return "ok" if peer.connected else "degraded"


def _store(store: Store | None) -> str:
    """Degraded while the store fails (a full disk): on air still, questions wait at the broker."""
    if store is None:
        return "off"
    return "ok" if store.healthy else "degraded"


def _voice(voice: VoiceChain | None) -> str:
    """Degraded while any voice of the chain is down (sentences go to a fallback voice)."""
    if voice is None:
        return "off"
    return "ok" if all(entry.up for entry in voice.health) else "degraded"
