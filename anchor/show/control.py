"""Operator commands on the control topic: say a line now, load a schedule, skip, pause, resume.

A schedule is validated before it replaces the one on air; a broken one is refused with all of
its errors (in the log and as an event) and the old show keeps playing.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from anchor.events import ControlApplied, ControlRefused, Event, ScheduleLoaded, ScheduleRefused
from anchor.links.payloads import RejectedInput, parse_control
from anchor.show.director import Director
from anchor.show.rundown import Rundown, Screen
from anchor.show.schedule import Schedule, ScheduleError, load_schedule

log = logging.getLogger(__name__)

MAX_CONTROL_BYTES = 256 * 1024
OBS_COMMANDS = ("start_streaming", "stop_streaming", "start_recording", "stop_recording")


class ObsOutputs(Protocol):
    async def start_streaming(self) -> None: ...
    async def stop_streaming(self) -> None: ...
    async def start_recording(self) -> None: ...
    async def stop_recording(self) -> object: ...


class Control:
    def __init__(
        self,
        director: Director,
        rundown: Rundown,
        *,
        screen: Screen,
        publish: Callable[[Event], None],
        obs: ObsOutputs | None = None,
    ) -> None:
        self._director = director
        self._rundown = rundown
        self._screen = screen
        self._publish = publish
        self._obs = obs

    async def take_payload(self, payload: bytes) -> None:
        try:
            command = parse_control(payload, max_bytes=MAX_CONTROL_BYTES)
        except RejectedInput as exc:
            log.warning("control message refused (%s): %s", exc.reason, exc.detail)
            self._publish(ControlRefused(exc.reason, exc.detail))
            return
        if command.cmd == "say":
            self.say(command.text or "")
        elif command.cmd == "load_schedule":
            await self.load_schedule(path=command.path, inline=command.yaml)
        elif command.cmd == "skip":
            self._director.skip()
            self._rundown.drop_scheduled()
            self._publish(ControlApplied("skip"))
        elif command.cmd == "pause":
            self._director.pause()
            self._rundown.drop_scheduled()
            self._publish(ControlApplied("pause"))
        elif command.cmd == "resume":
            self._director.resume()
            self._publish(ControlApplied("resume"))
        elif command.cmd in OBS_COMMANDS:
            await self._obs_command(command.cmd)

    async def _obs_command(self, cmd: str) -> None:
        if self._obs is None:
            self._publish(ControlRefused("no_obs", "OBS is not enabled in the config"))
            return
        try:
            await getattr(self._obs, cmd)()
        except Exception as exc:  # OBS's own code and message, reported to the operator
            log.error("OBS %s failed: %s", cmd, exc)
            self._publish(ControlRefused("obs_error", str(exc)))
            return
        self._publish(ControlApplied(cmd))

    def say(self, text: str) -> None:
        allowed = self._screen(text)
        if allowed is None:
            log.warning("operator line refused by moderation: %r", text[:60])
            self._publish(ControlRefused("moderation", "the line did not pass moderation"))
            return
        self._director.say_now(allowed)
        self._rundown.nudge()
        self._publish(ControlApplied("say", allowed))

    async def load_schedule(self, *, path: str | None, inline: str | None) -> bool:
        try:
            schedule = await asyncio.to_thread(_load, path, inline)
        except ScheduleError as exc:
            log.error("schedule refused, the current one keeps playing:\n%s", exc)
            self._publish(ScheduleRefused(tuple(exc.errors)))
            return False
        self._director.load(schedule)
        self._rundown.drop_scheduled()
        self._publish(ScheduleLoaded(schedule.name))
        return True


def _load(path: str | None, inline: str | None) -> Schedule:
    if path is not None:
        return load_schedule(Path(path))
    with tempfile.TemporaryDirectory(prefix="anchor-schedule-") as tmp:
        file = Path(tmp) / "control-message.yaml"
        file.write_text(inline or "", encoding="utf-8")
        return load_schedule(file)
