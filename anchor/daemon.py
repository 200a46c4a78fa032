"""One channel's engine: the components built, subscribed to the on-air events, and supervised.

Start: store → moderation → knowledge base (and the optional LLM) → voice → service sites →
avatar renderer (built off the loop: it decodes and precomposes images) → director, desk and
rundown → the questions still pending from the last run → the broker link → playout. What a
line going on air sets off (the as-run log, answers recorded and published, the schedule bookmark,
telemetry, OBS captions) is not routed here: each of those parts subscribes to the event feed.
Stop, in reverse: the playout finishes the sentence on air (bounded) and closes the stream so
the file is playable; the event feed drains, so what aired is recorded; then every task is
cancelled and awaited, the link says "offline", the voice and store close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anchor import build
from anchor.answers.answerer import Answerer
from anchor.answers.knowledge import KnowledgeError
from anchor.answers.live import LiveKnowledge
from anchor.answers.retrieval import RetrieverFactory
from anchor.avatar.pack import AvatarError
from anchor.avatar.renderer import AvatarRenderer
from anchor.config import Config, ConfigError
from anchor.console.launch import ConsoleService
from anchor.console.onair import OnAirBoard
from anchor.console.parts import BlockList, ConsoleParts
from anchor.feed import EventFeed
from anchor.links.mqtt import MqttLink
from anchor.links.outbox import Outbox
from anchor.media.clock import MediaClock
from anchor.media.linequeue import LineQueue
from anchor.media.output import OutputTarget
from anchor.media.playout import Playout, PlayoutStats
from anchor.moderation import NEAR_DUPLICATE, ModerationError, Moderator, similarity
from anchor.obs.captioning import CardFiles, ObsCaptions
from anchor.obs.controller import ObsController
from anchor.ops.telemetry import ChannelTelemetry, Watched
from anchor.questions.console import read_console
from anchor.questions.desk import QuestionDesk
from anchor.questions.reception import Reception
from anchor.questions.review import ReviewDesk
from anchor.show.airlog import AirLog
from anchor.show.bookmark import ShowBookmark
from anchor.show.control import Control
from anchor.show.director import Director
from anchor.show.engagement import Engagement
from anchor.show.library import ScheduleLibrary
from anchor.show.rundown import EXPIRED_APOLOGY, OnAirScreen, Rundown
from anchor.show.schedule import Schedule
from anchor.speech.cache import SynthesisCache
from anchor.speech.chain import VoiceChain
from anchor.store import Retention, Store, StoreError

log = logging.getLogger(__name__)

STATUS_EVERY_S = 15.0
REPORT_EVERY_S = 60.0
TASK_CANCEL_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 5.0


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
        self._start_wall = options.start_time or datetime.now(UTC)
        self._feed = EventFeed()
        self._playout: Playout | None = None
        self._link: MqttLink | None = None
        self._obs: ObsController | None = None
        self._stop_requested = False
        # /metrics, /healthz, the watchdog, the status topic
        self.telemetry = ChannelTelemetry(config.health, channel=config.channel)
        self.stats: PlayoutStats | None = None
        self.voice: VoiceChain | None = None  # the voice chain, for its health counters
        self.speech_cache: SynthesisCache | None = None
        self.knowledge: LiveKnowledge | None = None  # reloaded when its file changes
        self.console: ConsoleService | None = None  # the operator's pages, once started

    @property
    def feed(self) -> EventFeed:
        """The channel's on-air events; subscribe before `run()`."""
        return self._feed

    def request_stop(self) -> None:
        """Graceful stop: finish the sentence on air (at most 3 s), then close the stream."""
        self._stop_requested = True
        if self._playout is not None:
            self._playout.request_stop(grace_seconds=3.0)

    def gauges(self) -> dict[str, float]:
        """How full the channel's queues are and how the playout keeps up, for monitoring."""
        return self.telemetry.gauges()

    async def run(self) -> PlayoutStats:
        config = self._config
        try:
            store = await Store.open(config.store.path, tolerate_disk_errors=True)
        except StoreError as exc:
            raise StartupError(str(exc)) from exc
        voice = None
        answerer = None
        try:
            try:
                moderator = await asyncio.to_thread(Moderator, config.moderation.wordlists)
                knowledge = self.knowledge = await LiveKnowledge.open(
                    RetrieverFactory.from_config(config), config.knowledge.path
                )
                self.speech_cache = build.speech_cache(config)
                voice = self.voice = await build.voice(config, self.speech_cache)
            except (ModerationError, KnowledgeError, ConfigError) as exc:
                raise StartupError(str(exc)) from exc
            sites = await build.sites(config, store, self._schedule.timezone, moderator)
            answerer = Answerer.from_config(
                knowledge,
                config.knowledge,
                config.llm,
                sites=None if sites is None else sites.desk,
                cards=None if sites is None else sites.painter,
            )
            try:
                renderer = await asyncio.to_thread(build.renderer, config)
            except AvatarError as exc:
                raise StartupError(str(exc)) from exc
            if sites is not None and renderer.card_box is not None:
                sites.painter.size = renderer.card_box[2], renderer.card_box[3]
            return await self._run_show(store, moderator, answerer, voice, renderer)
        finally:
            if voice is not None:
                await voice.aclose()
            if answerer is not None:
                await answerer.aclose()  # closes the LLM client, if any
            await store.close()

    async def _run_show(
        self,
        store: Store,
        moderator: Moderator,
        answerer: Answerer,
        voice: VoiceChain,
        renderer: AvatarRenderer,
    ) -> PlayoutStats:
        config, options, feed = self._config, self._options, self._feed
        lines = LineQueue(config.speech.lookahead)
        duration = (
            None if options.duration_s is None else self._clock.frames_for(options.duration_s)
        )
        self._link = build.link(config, self.telemetry.status)
        self._obs = build.obs(config, options.output)
        encoder = build.encoder(config, options.output, self._clock)
        if self._obs is not None:
            # OBS shows a stream from its first keyframe and keeps the wait as a delay: each
            # time its Media Source opens the stream, the next frame is made a keyframe.
            self._obs.on_media_opened(encoder.request_keyframe)
        playout = Playout(
            self._clock,
            renderer,
            encoder,
            lines,
            live=not options.fast,
            duration_frames=duration,
            publish=feed.publish,
            draw_cards=self._obs is None or not config.obs.card_input,
        )
        if self._obs is not None and renderer.card_box is not None:
            self._obs.place_cards(renderer.card_box, (renderer.width, renderer.height))
        director = Director(
            self._schedule,
            now=self._wall_now,
            idle_interval=config.idle.interval_seconds,
            publish=feed.publish,
            standby=config.console.standby,
        )
        desk = QuestionDesk(
            max_pending=config.questions.max_pending,
            max_age_s=config.questions.max_age_seconds,
            merge_window_s=config.questions.merge_window_seconds,
            similarity=similarity,
            near_duplicate=NEAR_DUPLICATE,
        )
        screen = OnAirScreen(moderator)
        review = ReviewDesk(
            screen=screen,
            publish=feed.publish,
            enabled=config.console.review,
            timeout_s=config.console.review_timeout_seconds,
        )
        engagement = Engagement(
            config.audience, screen=screen, clock=lambda: self._wall_now().timestamp()
        )
        rundown = Rundown(
            director,
            desk,
            build.speaker(config, voice),
            lines,
            answerer=answerer,
            screen=screen,
            publish=feed.publish,
            expired_apology=EXPIRED_APOLOGY if config.questions.expired == "apologize" else None,
            review=review,
            thanks=engagement.due_line,
        )
        blocked = BlockList(store)
        reception = Reception(
            config.questions,
            store=store,
            moderator=moderator,
            desk=desk,
            nudge=rundown.nudge,
            publish=feed.publish,
            keep_raw_text=config.store.keep_raw_text,
            blocked=blocked,
        )
        library = ScheduleLibrary(config.schedule_library)
        control = Control(
            director,
            rundown,
            screen=screen,
            publish=feed.publish,
            library=library,
            audit=store,
            obs=self._obs,
        )
        self._playout = playout
        if self._stop_requested:
            playout.request_stop()
        board = OnAirBoard()
        console = self.console = ConsoleService(
            ConsoleParts(
                config=config,
                control=control,
                director=director,
                review=review,
                reception=reception,
                desk=desk,
                store=store,
                knowledge=self.knowledge,
                answerer=answerer,
                screen=screen,
                telemetry=self.telemetry,
                playout=playout,
                lines=lines,
                library=library,
                blocked=blocked,
                board=board,
            )
        )
        bookmark = ShowBookmark(store, director)
        self._subscribe(AirLog(store, publish=feed.publish), bookmark)
        feed.subscribe("console", board.handle, OnAirBoard.KINDS)
        await bookmark.restore()
        resumed = await reception.try_resume(config.questions.max_pending)
        for text in options.questions:
            await reception.take_local(text, "cli")
        log.info("%s", options.output.describe())
        background: dict[str, Coroutine[Any, Any, None]] = {
            "speech-rundown": rundown.run(),
            "operator-control": control.run(),
            "event-feed": feed.run(),
            "status-reporter": self.telemetry.report_progress(REPORT_EVERY_S),
            "loop-heartbeat": self.telemetry.heartbeat.run(),
            "store-retention": Retention(store, config.store).run(),
        }
        if self._link is not None:
            self._link.bind(
                on_question=reception.take_payload,
                on_control=control.take_payload,
                on_audience=engagement.take_payload if engagement.enabled else None,
            )
            background["mqtt-link"] = self._link.run()
            background["mqtt-status"] = self._link.keep_status(STATUS_EVERY_S)
        if not resumed:
            background["pending-questions"] = reception.resume(config.questions.max_pending)
        if options.console:
            background["console"] = read_console(reception)
        if self.knowledge is not None:  # embeds a large new KB, then watches its file
            background["knowledge-base"] = self.knowledge.watch(config.knowledge.reload_seconds)
        if self._obs is not None:
            background["obs"] = self._obs.run()
        self.telemetry.attach(
            Watched(
                director=director,
                playout=playout,
                lines=lines,
                store=store,
                desk=desk,
                reception=reception,
                link=self._link,
                obs=self._obs,
                voice=voice,
                speech_cache=self.speech_cache,
            )
        )
        await self.telemetry.start()
        await console.start()
        try:
            await self._supervise(playout, background)
        finally:
            await console.aclose()
            await self.telemetry.aclose()
            if self._obs is not None:
                await self._obs.aclose()
            if self._link is not None:
                await self._link.close()
        self.stats = playout.stats
        return playout.stats

    def _subscribe(self, airlog: AirLog, bookmark: ShowBookmark) -> None:
        """Who hears of what goes on air; each has its own bounded queue in the feed."""
        feed = self._feed
        feed.subscribe("as-run log", airlog.handle, AirLog.KINDS)
        feed.subscribe("schedule bookmark", bookmark.handle, ShowBookmark.KINDS)
        feed.subscribe("telemetry", self.telemetry.handle, ChannelTelemetry.KINDS)
        if self._link is not None:
            outbox = Outbox(self._link, channel=self._config.channel)
            feed.subscribe("broker outbox", outbox.handle, Outbox.KINDS)
        if self._obs is not None:
            config = self._config
            cards = None
            if config.obs.card_input:  # the card images OBS reads, beside the store
                cards = CardFiles(Path(config.store.path).parent / "obs-cards")
            captions = ObsCaptions(self._obs, delay_s=config.obs.caption_delay_seconds, cards=cards)
            feed.subscribe("OBS captions", captions.handle, ObsCaptions.KINDS)

    async def _supervise(
        self, playout: Playout, background: dict[str, Coroutine[Any, Any, None]]
    ) -> None:
        """Run the playout to its end; if a helper task dies, stop the show and report it.

        When the playout ends, the event feed drains first (what aired is recorded, the last
        answers are published), then the helpers are cancelled."""
        tasks = {asyncio.create_task(coro, name=name) for name, coro in background.items()}
        air = asyncio.create_task(playout.run(), name="playout")
        try:
            running: set[asyncio.Task[None]] = {air, *tasks}
            while not air.done():
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                failed = [task for task in done if task is not air and _failed(task)]
                if failed and not air.done():
                    # The playout may be waiting on the failed helper, so cancel it (its
                    # cleanup still closes the stream) and report the helper's error.
                    air.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await air
                    for task in failed:
                        task.result()
                    raise RuntimeError(f"task {failed[0].get_name()} ended unexpectedly")
            await air
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await self._feed.drain()
        finally:
            for task in (air, *tasks):
                task.cancel()
            for task in (air, *tasks):
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, TASK_CANCEL_TIMEOUT_S)

    def _wall_now(self) -> datetime:
        """The wall time the schedule sees: the start plus stream time, so fast runs agree."""
        stream_s = 0.0 if self._playout is None else self._playout.stream_seconds
        return self._start_wall + timedelta(seconds=stream_s)


def _failed(task: asyncio.Task[None]) -> bool:
    """A helper that returned has done its job (resuming questions); one that raised failed."""
    return task.cancelled() or task.exception() is not None
