"""Drives OBS Studio as the broadcast sink, without ever holding up the engine.

`ObsController.run` is the one task that talks to OBS: it connects (capped exponential
backoff), makes OBS hold the engine's scene, starts streaming/recording when configured, then
polls OBS's stats and re-checks the scene on every poll. OBS quitting, crashing or restarting
ends the connection; the task notices, reconnects and rebuilds what is missing. A failed
request is logged with OBS's own code and comment and never stops the task.

`show_caption` / `show_lower_third` only note the wanted text and its time (the engine calls
them from its render path); a second task in the same run applies the newest due text, and
after a reconnect applies it again, since OBS may have lost it.

OBS's Media Source shows nothing of a stream before a keyframe, and its player keeps what it
buffered meanwhile (the stream's sound) as a delay for as long as it plays. So whenever the
Media Source (re)opens the stream, OBS says so (MediaInputPlaybackStarted; not when the input
is created, which the controller knows anyway) and the controller asks the engine's encoder for
a keyframe (`on_media_opened`), at once and twice more within half a second in case the first
left before OBS was listening. On every new connection the Media Source is reopened, since OBS
may have opened it before the engine could hear of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from anchor.config import ObsConfig
from anchor.media.safearea import SafeArea
from anchor.obs.cues import CueSheet
from anchor.obs.scene import SceneKeeper
from anchor.obs.session import (
    AUTHENTICATION_FAILED,
    MEDIA_INPUT_EVENTS,
    ObsError,
    ObsSession,
    ObsUnavailable,
)

log = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
TEXT_RETRY_S = 1.0
# Keyframes after OBS says it opened the stream (seconds after): OBS starts reading in a
# thread of its own, so the first may leave before it listens; then a later one starts it.
KEYFRAMES_AFTER_OPEN_S = (0.0, 0.15, 0.4)
OUTPUT_RUNNING = 500  # obs-websocket RequestStatus::OutputRunning
OUTPUT_NOT_RUNNING = 501  # RequestStatus::OutputNotRunning
_STATS_KEYS = (
    "activeFps",
    "averageFrameRenderTime",
    "renderSkippedFrames",
    "renderTotalFrames",
    "outputSkippedFrames",
    "outputTotalFrames",
)


class ObsController:
    """The engine's hand on OBS. Call everything from the event loop's thread."""

    def __init__(
        self,
        config: ObsConfig,
        *,
        password: str | None,
        media_url: str,
        safe_area: SafeArea | None = None,
    ) -> None:
        self._config = config
        self._password = password
        self._scene = SceneKeeper(config, media_url, safe_area)
        self._cues: dict[str, CueSheet] = {config.caption_input: CueSheet()}
        if config.lower_third_input:
            self._cues[config.lower_third_input] = CueSheet()
        if config.card_input:
            self._cues[config.card_input] = CueSheet()  # the card's image file; "": hidden
        self._cue_added = asyncio.Event()
        self._session: ObsSession | None = None
        self._want_streaming = config.start_streaming
        self._want_recording = config.start_recording
        self._state = ""
        self._problems: dict[str, str] = {}  # step → the refusal last logged for it
        self._held_outputs: set[str] = set()  # outputs last seen running
        self._keyframe_requests: list[Callable[[], None]] = []
        self._media_opened = asyncio.Event()
        self.media_opens = 0  # times the Media Source (re)opened the stream, as far as we know
        self.connected = False
        self.stats: dict[str, Any] = {}

    # What the engine calls: never waits on OBS.

    def show_caption(self, text: str | None, *, at: float) -> None:
        """Show `text` (None hides the caption) from wall time `at` (``time.time()``)."""
        self._cue(self._config.caption_input, text, at)

    def show_lower_third(self, text: str | None, *, at: float) -> None:
        if self._config.lower_third_input:
            self._cue(self._config.lower_third_input, text, at)

    def show_card(self, path: str | None, *, at: float) -> None:
        """Show the card image at `path` (None hides it) from wall time `at`."""
        if self._config.card_input:
            self._cue(self._config.card_input, path, at)

    def place_cards(self, box: tuple[int, int, int, int], stream: tuple[int, int]) -> None:
        """Where the picture's card area is (x, y, w, h of a stream of `stream` size): the
        card's Image Source is created over it."""
        self._scene.card_area = (box, stream)

    def on_media_opened(self, request_keyframe: Callable[[], None]) -> None:
        """Call `request_keyframe()` (the encoder's) whenever OBS's Media Source (re)opens the
        stream, so OBS starts showing it at once instead of after a delay it then keeps."""
        self._keyframe_requests.append(request_keyframe)

    def _cue(self, input_name: str, text: str | None, at: float) -> None:
        self._cues[input_name].cue(text, at)
        self._cue_added.set()

    # Outputs, on an operator's command: OBS's refusal is raised with its code and comment.

    async def start_streaming(self) -> None:
        await self._output("StartStream", ok=OUTPUT_RUNNING)
        self._want_streaming = True

    async def stop_streaming(self) -> None:
        self._want_streaming = False
        await self._output("StopStream", ok=OUTPUT_NOT_RUNNING)

    async def start_recording(self) -> None:
        await self._output("StartRecord", ok=OUTPUT_RUNNING)
        self._want_recording = True

    async def stop_recording(self) -> str | None:
        """Stop recording; the recorded file's path as OBS reports it."""
        self._want_recording = False
        data = await self._output("StopRecord", ok=OUTPUT_NOT_RUNNING)
        return data.get("outputPath")

    async def _output(self, request_type: str, *, ok: int) -> dict[str, Any]:
        session = self._session
        if session is None:
            raise ObsUnavailable(request_type, "not connected to OBS")
        try:
            return await session.request(request_type)
        except ObsError as exc:
            if exc.code == ok:
                return {}
            raise

    # The task.

    async def run(self) -> None:
        """Forever: connect, keep the scene, poll stats; reconnect when OBS goes away."""
        config = self._config
        delay = FIRST_RETRY_S
        while True:
            try:
                session = await ObsSession.open(
                    config.host,
                    config.port,
                    self._password,
                    request_timeout=config.request_timeout_seconds,
                    events=MEDIA_INPUT_EVENTS,
                )
            except ObsError as exc:
                self._change_state(str(exc), self._unreachable(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, config.max_reconnect_seconds)
                continue
            delay = FIRST_RETRY_S
            try:
                await self._serve(session)
            except ObsUnavailable as exc:
                log.debug("dropping the OBS connection: %s", exc)
            except Exception:
                log.exception("OBS controller error; reconnecting")
                await asyncio.sleep(config.max_reconnect_seconds)
            finally:
                self._session = None
                self.connected = False
                await session.aclose()
            self._change_state("lost", "lost the connection to OBS; reconnecting")

    async def _serve(self, session: ObsSession) -> None:
        """Until the connection ends: the scene and stats task, and the text task."""
        version = await session.request("GetVersion")
        self._session = session
        self.connected = True
        self._problems.clear()
        self._change_state(
            "connected",
            f"connected to OBS {version.get('obsVersion')} at "
            f"{self._config.host}:{self._config.port}",
        )
        for sheet in self._cues.values():
            sheet.forget_shown()
        self._media_opened.clear()
        session.on_event("MediaInputPlaybackStarted", self._on_media_started)
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(self._keep(session, ready), name="obs-scene"),
            asyncio.create_task(self._apply_texts(session, ready), name="obs-texts"),
            asyncio.create_task(self._follow_media(), name="obs-media-opened"),
            asyncio.create_task(session.wait_closed(), name="obs-link"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _on_media_started(self, data: dict[str, Any] | None) -> None:
        if data and data.get("inputName") == self._config.media_input:
            self._note_media_opened()

    def _note_media_opened(self) -> None:
        self.media_opens += 1
        self._media_opened.set()

    async def _follow_media(self) -> None:
        """Keyframes whenever the Media Source opened the stream (a new opening starts over)."""
        while True:
            await self._media_opened.wait()
            self._media_opened.clear()
            if self._keyframe_requests:
                log.info("OBS opened the stream: keyframes sent so it shows at once")
            done = 0.0
            for after in KEYFRAMES_AFTER_OPEN_S:
                await asyncio.sleep(after - done)
                done = after
                if self._media_opened.is_set():
                    break
                self._request_keyframe()

    def _request_keyframe(self) -> None:
        for request in self._keyframe_requests:
            request()

    async def _keep(self, session: ObsSession, ready: asyncio.Event) -> None:
        """Build the scene, start the wanted outputs, then poll stats and re-check the scene."""
        await self._attempt("prepare", self._scene.prepare(session))
        await self._attempt("scene", self._ensure(session))
        if self._config.set_program_scene:
            await self._attempt("program", self._scene.show_program(session))
        ready.set()
        await self._keep_outputs()
        while True:
            await self._attempt("stats", self._poll_stats(session))
            await self._keep_outputs(self.stats)
            await asyncio.sleep(self._config.stats_every_seconds)
            await self._attempt("scene", self._ensure(session))

    async def _keep_outputs(self, seen: dict[str, Any] | None = None) -> None:
        """Start the outputs the channel wants that OBS is not running.

        OBS stops an output by itself when it fails (a full recordings disk, a stream server
        that went away for good); as long as the operator still wants it, it is started again
        at the next stats poll, so the channel recovers without anyone at the desk.
        """
        if seen is None:  # a new connection: nothing has been seen running on it yet
            self._held_outputs.clear()
        for step, wanted, active, request in (
            ("stream", self._want_streaming, "streaming", "StartStream"),
            ("record", self._want_recording, "recording", "StartRecord"),
        ):
            if seen is not None and seen.get(active):
                self._held_outputs.add(active)
                continue
            was_running = active in self._held_outputs
            self._held_outputs.discard(active)
            if not wanted:
                continue
            if was_running:
                log.warning("OBS stopped %s by itself; starting it again until it holds", active)
            await self._attempt(step, self._output(request, ok=OUTPUT_RUNNING))

    async def _attempt(self, step: str, request: Awaitable[object]) -> bool:
        """Run one step; OBS's refusal is logged (once while it repeats), never raised.

        Losing OBS is raised, so the connection is dropped and made again.
        """
        try:
            await request
        except ObsUnavailable:
            raise
        except ObsError as exc:
            problem = str(exc)
            if self._problems.get(step) != problem:
                log.error("%s", problem)
                self._problems[step] = problem
            return False
        self._problems.pop(step, None)
        return True

    async def _ensure(self, session: ObsSession) -> None:
        texts = {name: sheet.current for name, sheet in self._cues.items()}
        for name in await self._scene.ensure(session, texts):
            if name in self._cues:
                self._cues[name].shown = texts[name]
            elif name == self._config.media_input:  # it opened the stream as it was created,
                self._note_media_opened()  # before OBS could tell anyone

    async def _poll_stats(self, session: ObsSession) -> None:
        stats = await session.request("GetStats")
        stream = await session.request("GetStreamStatus")
        record = await session.request("GetRecordStatus")
        snapshot = {key: stats[key] for key in _STATS_KEYS if key in stats}
        snapshot["streaming"] = bool(stream.get("outputActive"))
        snapshot["recording"] = bool(record.get("outputActive"))
        if snapshot["streaming"]:
            snapshot["outputCongestion"] = stream.get("outputCongestion")
            snapshot["streamReconnecting"] = bool(stream.get("outputReconnecting"))
        self.stats = snapshot

    async def _apply_texts(self, session: ObsSession, ready: asyncio.Event) -> None:
        """Apply the newest due text of each source; sleep until the next cue or a new one."""
        await ready.wait()
        while True:
            self._cue_added.clear()
            now = time.time()
            failed = False
            for name, sheet in self._cues.items():
                sheet.advance(now)
                if sheet.stale:
                    failed |= not await self._apply_text(session, name, sheet)
            waits = [
                sheet.next_at - now for sheet in self._cues.values() if sheet.next_at is not None
            ]
            if failed:
                waits.append(TEXT_RETRY_S)
            timeout = max(0.0, min(waits)) if waits else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cue_added.wait(), timeout)

    async def _apply_text(self, session: ObsSession, name: str, sheet: CueSheet) -> bool:
        text = sheet.current
        request: Awaitable[object]
        if name == self._config.card_input:
            request = self._scene.set_card(session, text)
        else:
            request = session.request(
                "SetInputSettings",
                {"inputName": name, "inputSettings": {"text": text}, "overlay": True},
            )
        if not await self._attempt(f"text:{name}", request):
            return False
        sheet.shown = text
        return True

    def _unreachable(self, exc: ObsError) -> str:
        config = self._config
        message = f"OBS at {config.host}:{config.port} is not available: {exc.comment}"
        if exc.code is not None:
            message += f" (code {exc.code})"
        if exc.code == AUTHENTICATION_FAILED:
            message += f"; its password is read from the environment variable {config.password_env}"
        return message + "; retrying"

    def _change_state(self, state: str, message: str) -> None:
        if state != self._state:
            self._state = state
            (log.info if state == "connected" else log.warning)("%s", message)

    async def aclose(self) -> None:
        """Drop the connection if `run` was not cancelled first; OBS keeps its outputs."""
        session, self._session = self._session, None
        self.connected = False
        if session is not None:
            await session.aclose()
