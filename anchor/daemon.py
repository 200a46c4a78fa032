"""One channel's engine: the components wired together, started and stopped in order.

Start: store → moderation → knowledge base (and the optional LLM) → voice → avatar renderer
(built off the loop: it decodes and precomposes images) → director, desk and rundown → the
questions still pending from the last run → the broker link → playout. Stop, in reverse: the
playout finishes the sentence on air (bounded), closes the stream so the file is playable;
then every task is cancelled and awaited, the link says "offline", the voice and store close.
Every task is created here, named, and awaited or cancelled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anchor.answers.answerer import Answerer
from anchor.answers.knowledge import KnowledgeBase, KnowledgeError
from anchor.avatar.loader import load_pack
from anchor.avatar.pack import AvatarError
from anchor.avatar.renderer import AvatarRenderer
from anchor.config import Config, ConfigError, secret_from_env
from anchor.links.mqtt import MqttLink
from anchor.links.outbox import Outbox
from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, ReconnectingEncoder, StreamEncoder
from anchor.media.linequeue import LineQueue
from anchor.media.output import OutputTarget
from anchor.media.playout import Playout, PlayoutStats
from anchor.messages import Priority, Question, SpokenLine
from anchor.moderation import NEAR_DUPLICATE, ModerationError, Moderator, similarity
from anchor.ops.telemetry import ChannelTelemetry
from anchor.questions.desk import QuestionDesk, WaitingQuestion
from anchor.questions.reception import Reception
from anchor.redact import redact_url
from anchor.show.airlog import AirLog
from anchor.show.bookmark import ShowBookmark
from anchor.show.control import Control
from anchor.show.director import Director
from anchor.show.rundown import Rundown
from anchor.show.schedule import Schedule, Segment
from anchor.speech.cache import SynthesisCache
from anchor.speech.chain import VoiceChain
from anchor.speech.registry import build_voice
from anchor.speech.speaker import Speaker
from anchor.store.database import Store, StoreError

log = logging.getLogger(__name__)

STATUS_EVERY_S = 15.0
REPORT_EVERY_S = 60.0
TASK_CANCEL_TIMEOUT_S = 5.0
CAPTION_LINGER_S = 1.0
EXPIRED_APOLOGY = (
    "刚才有几位朋友的提问等候时间太长，实在抱歉。工会的工作人员会根据记录跟进，也欢迎您再问一次。"
)


class StartupError(Exception):
    """A part the channel needs could not be loaded; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    output: OutputTarget
    fast: bool = False
    duration_s: float | None = None
    start_time: datetime | None = None  # wall time that stream time 0 stands for
    questions: tuple[str, ...] = field(default=())  # asked from the command line at start
    console: bool = False  # read questions typed on standard input
    start_at_s: float = 0.0  # stream time the clock starts at (0: a fresh channel)


class Channel:
    def __init__(self, config: Config, schedule: Schedule, options: RunOptions) -> None:
        self._config = config
        self._schedule = schedule
        self._options = options
        first_frame = round(options.start_at_s * config.video.fps)
        self._clock = MediaClock(config.audio.sample_rate, config.video.fps, first_frame)
        self._lines: LineQueue | None = None
        self._playout: Playout | None = None
        self._director: Director | None = None
        self._desk: QuestionDesk | None = None
        self._link: MqttLink | None = None
        self._obs = None
        self._stop_requested = False
        self._started = time.time()
        self._bookmark: ShowBookmark | None = None
        self.telemetry = ChannelTelemetry(config.health)  # /metrics, /healthz, the watchdog
        self.stats: PlayoutStats | None = None
        self.voice: VoiceChain | None = None  # the voice chain, for its health counters
        self.speech_cache: SynthesisCache | None = None

    def request_stop(self) -> None:
        """Graceful stop: finish the sentence on air (at most 3 s), then close the stream."""
        self._stop_requested = True
        if self._playout is not None:
            self._playout.request_stop(grace_seconds=3.0)

    def gauges(self) -> dict[str, float]:
        """How full the channel's queues are and how the playout keeps up, for monitoring."""
        playout, desk, lines = self._playout, self._desk, self._lines
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
            "mqtt_connected": float(self._link is not None and self._link.connected),
            "obs_connected": float(self._obs is not None and self._obs.connected),
        }

    async def run(self) -> PlayoutStats:
        config = self._config
        try:
            store = await Store.open(config.store.path)
        except StoreError as exc:
            raise StartupError(str(exc)) from exc
        voice = None
        answerer = None
        try:
            try:
                moderator = await asyncio.to_thread(Moderator, config.moderation.wordlists)
                knowledge = await KnowledgeBase.aload(config.knowledge.path)
                self.speech_cache = self._build_speech_cache()
                voice = self.voice = await build_voice(
                    config.voices_dir,
                    config.voice,
                    self.speech_cache,
                    retry_after=config.speech.voice_retry_seconds,
                )
            except (ModerationError, KnowledgeError, ConfigError) as exc:
                raise StartupError(str(exc)) from exc
            answerer = Answerer.from_config(knowledge, config.knowledge, config.llm)
            try:
                renderer = await asyncio.to_thread(self._build_renderer)
            except AvatarError as exc:
                raise StartupError(str(exc)) from exc
            return await self._run_show(store, moderator, answerer, voice, renderer)
        finally:
            if voice is not None:
                await voice.aclose()
            if answerer is not None:
                await answerer.aclose()  # closes the LLM client, if any
            await store.close()

    async def _run_show(self, store, moderator, answerer, voice, renderer) -> PlayoutStats:
        config, options = self._config, self._options
        speaker = Speaker(
            voice,
            sample_rate=config.audio.sample_rate,
            sentence_gap=config.speech.sentence_gap,
            max_sentence_seconds=config.speech.max_sentence_seconds,
        )
        start_wall = options.start_time or datetime.now(UTC)
        lines = LineQueue(config.speech.lookahead)
        duration = (
            None if options.duration_s is None else self._clock.frames_for(options.duration_s)
        )
        self._link = self._build_link()
        self._obs = self._build_obs()
        outbox = Outbox(self._link, channel=config.channel)
        airlog = AirLog(
            store,
            publish_event=outbox.event,
            publish_answer=self.telemetry.track_answers(outbox.answer),
        )
        playout = Playout(
            self._clock,
            renderer,
            self._build_encoder(),
            lines,
            live=not options.fast,
            duration_frames=duration,
            on_line=lambda spoken, t: self._on_air(airlog, spoken, t),
        )
        director = Director(
            self._schedule,
            now=lambda: start_wall + timedelta(seconds=playout.stream_seconds),
            idle_interval=config.idle.interval_seconds,
            on_segment=lambda segment: self._on_segment(outbox, segment),
        )
        desk = QuestionDesk(
            max_pending=config.questions.max_pending,
            max_age_s=config.questions.max_age_seconds,
            merge_window_s=config.questions.merge_window_seconds,
            similarity=similarity,
            near_duplicate=NEAR_DUPLICATE,
        )

        def screen(text: str) -> str | None:
            screening = moderator.screen(text)
            return screening.text if screening.allowed else None

        rundown = Rundown(
            director,
            desk,
            speaker,
            lines,
            answerer=answerer,
            screen=screen,
            on_answering=lambda waiting: self._answering(airlog, waiting),
            on_answered=airlog.answered,
            on_expired=lambda expired: self._expire(store, outbox, expired),
        )
        reception = Reception(
            config.questions,
            store=store,
            moderator=moderator,
            desk=desk,
            nudge=rundown.nudge,
            events=outbox.event,
        )
        control = Control(director, rundown, screen=screen, events=outbox.event, obs=self._obs)
        if self._link is not None:
            self._link.bind(on_question=reception.take_payload, on_control=control.take_payload)
        self._playout, self._director, self._desk = playout, director, desk
        self._lines = lines
        if self._stop_requested:
            playout.request_stop()
        self._bookmark = ShowBookmark(store, director)
        await self._bookmark.restore()
        await self._resume_pending(store, reception)
        for text in options.questions:
            await reception.take(_local_question(text, "cli"))
        log.info("%s", options.output.describe())
        background: dict[str, Coroutine[Any, Any, None]] = {
            "speech-rundown": rundown.run(),
            "air-log": airlog.run(),
            "outbox": outbox.run(),
            "status-reporter": self._report(playout),
            "schedule-bookmark": self._bookmark.run(),
            "loop-heartbeat": self.telemetry.heartbeat.run(),
        }
        if self._link is not None:
            background["mqtt-link"] = self._link.run()
            background["mqtt-status"] = self._publish_status()
        if options.console:
            background["console"] = self._console(reception)
        if self._obs is not None:
            background["obs"] = self._obs.run()
        self.telemetry.attach(
            playout=playout,
            lines=lines,
            store=store,
            desk=desk,
            reception=reception,
            link=self._link,
            obs=self._obs,
            voice=self.voice,
            speech_cache=self.speech_cache,
        )
        await self.telemetry.start()
        try:
            await self._supervise(playout, background)
            await self._bookmark.flush()
        finally:
            await self.telemetry.aclose()
        if self._obs is not None:
            await self._obs.aclose()
        if self._link is not None:
            await self._link.close()
        self.stats = playout.stats
        return playout.stats

    async def _supervise(
        self, playout: Playout, background: dict[str, Coroutine[Any, Any, None]]
    ) -> None:
        """Run the playout to its end; if a helper task dies, stop the show and report it."""
        tasks = {asyncio.create_task(coro, name=name) for name, coro in background.items()}
        air = asyncio.create_task(playout.run(), name="playout")
        try:
            done, _ = await asyncio.wait({air, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            failed = [task for task in done if task is not air]
            if failed and not air.done():
                # A helper only ends by failing; the playout may be waiting on it, so cancel
                # (its cleanup still closes the stream) and report the helper's error.
                air.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await air
                for task in failed:
                    task.result()
                raise RuntimeError(f"task {failed[0].get_name()} ended unexpectedly")
            await air
        finally:
            for task in (air, *tasks):
                task.cancel()
            for task in (air, *tasks):
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, TASK_CANCEL_TIMEOUT_S)

    async def _resume_pending(self, store: Store, reception: Reception) -> None:
        """Questions accepted before a crash or restart are answered now."""
        interrupted = await store.requeue_interrupted()
        if interrupted:
            log.info("%d questions were being answered when the engine stopped", interrupted)
        pending = await store.pending(self._config.questions.max_pending)
        for stored in pending:
            question = Question(
                id=stored.id,
                user=stored.user,
                text=stored.text,
                platform=stored.platform,
                received_at=stored.received_at,
            )
            await reception.admit(question, stored.masked_text)
        if pending:
            log.info(
                "%d questions from before the restart are waiting to be answered", len(pending)
            )

    async def _expire(
        self, store: Store, outbox: Outbox, expired: list[WaitingQuestion]
    ) -> str | None:
        for waiting in expired:
            for question_id in waiting.ids:
                await store.set_status(question_id, "expired", "waited too long to be answered")
            outbox.event({"type": "expired", "question_id": waiting.question.id})
        log.warning("%d questions waited too long and were not answered on air", len(expired))
        if self._config.questions.expired == "apologize":
            return EXPIRED_APOLOGY
        return None

    async def _answering(self, airlog: AirLog, waiting: WaitingQuestion) -> None:
        self.telemetry.answering(waiting)
        await airlog.answering(waiting)

    def _on_air(self, airlog: AirLog, spoken: SpokenLine, stream_time: float) -> None:
        if self._bookmark is not None:
            self._bookmark.on_air(spoken.line)
        if spoken.line.text:
            log.info("[%s] %s", _format_stream_time(stream_time), spoken.line.text)
        airlog.on_air(spoken, stream_time)
        if self._obs is not None and spoken.line.text:
            self._cue_obs(airlog, spoken)

    def _cue_obs(self, airlog: AirLog, spoken: SpokenLine) -> None:
        """Captions and the lower third change when OBS shows the line, not when it leaves us."""
        line, rate = spoken.line, self._config.audio.sample_rate
        at = time.time() + self._config.obs.caption_delay_seconds
        self._obs.show_caption(line.text, at=at)
        speech_s = spoken.speech_samples / rate
        if (len(spoken.samples) - spoken.speech_samples) / rate > CAPTION_LINGER_S + 0.5:
            self._obs.show_caption(None, at=at + speech_s + CAPTION_LINGER_S)
        if line.question_id is not None:
            question = airlog.question_text(line.question_id)
            if question:
                self._obs.show_lower_third(f"正在回答：{question}", at=at)
        elif line.priority is not Priority.ANSWER:  # fillers and apologies keep it
            self._obs.show_lower_third(None, at=at)

    def _on_segment(self, outbox: Outbox, segment: Segment) -> None:
        outbox.event({"type": "segment", "id": segment.id, "title": segment.title})

    def status(self) -> dict[str, Any]:
        """What the retained status topic says about the channel."""
        director, playout = self._director, self._playout
        segment = director.current_segment if director is not None else None
        return {
            "state": "online",
            "channel": self._config.channel,
            "schedule": self._schedule.name if director is None else director.schedule.name,
            "segment": None if segment is None else segment.id,
            "paused": bool(director is not None and director.paused),
            "stream_time": 0.0 if playout is None else round(playout.stream_seconds, 3),
            "questions_waiting": 0 if self._desk is None else len(self._desk),
            "since": self._started,
            "obs": None
            if self._obs is None
            else {"connected": self._obs.connected, **self._obs.stats},
            "health": self.telemetry.health(),
        }

    async def _publish_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            await self._link.publish_status()

    async def _report(self, playout: Playout) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            stats = playout.stats
            log.info(
                "on air %.0f s: %d frames, %d renders skipped, max lateness %.0f ms, %d lines",
                playout.stream_seconds,
                stats.frames,
                stats.renders_skipped,
                stats.max_lateness_s * 1000,
                stats.lines_aired,
            )

    async def _console(self, reception: Reception) -> None:
        """Questions typed on standard input, one per line."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        log.info("type a question and press Enter to ask it on air")
        while line := await reader.readline():
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                outcome = await reception.take(_local_question(text, "console"))
                log.info("question from the console: %s", outcome)
        await asyncio.Event().wait()  # end of input: keep the show going

    def _build_link(self) -> MqttLink | None:
        mqtt = self._config.mqtt
        if not mqtt.host:
            return None
        return MqttLink(
            mqtt,
            self._config.channel,
            password=secret_from_env(mqtt.password_env),
            status=self.status,
        )

    def _build_obs(self):
        obs = self._config.obs
        if not obs.enabled:
            return None
        from anchor.obs import ObsController

        return ObsController(
            obs, password=secret_from_env(obs.password_env), media_url=self._media_url_for_obs()
        )

    def _media_url_for_obs(self) -> str:
        """What OBS's Media Source opens: the engine's own UDP destination without its options,
        unless the config names it (an SRT listener, another machine)."""
        if self._config.obs.media_url:
            return self._config.obs.media_url
        url = self._options.output.url
        return url.split("?", 1)[0] if url.startswith("udp://") else url

    def _build_speech_cache(self) -> SynthesisCache | None:
        """Sentences already synthesized, kept next to the store unless the config says where."""
        speech = self._config.speech
        if speech.cache_max_mb == 0:
            return None
        directory = speech.cache_dir or Path(self._config.store.path).parent / "speech-cache"
        return SynthesisCache(directory, speech.cache_max_mb * 1024 * 1024)

    def _build_renderer(self) -> AvatarRenderer:
        config = self._config
        pack = load_pack(Path(config.avatars_dir) / config.avatar)
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
        return EncoderSettings.from_config(self._config.video, self._config.audio)


def _local_question(text: str, platform: str) -> Question:
    return Question(
        id=f"{platform}-{uuid.uuid4().hex[:12]}",
        user=platform,
        text=text,
        platform=platform,
        received_at=time.time(),
    )


def _format_stream_time(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
