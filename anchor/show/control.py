"""Operator commands: say a line now, load a schedule, skip, pause, resume, hold, release, OBS.

`hold` is the emergency stop for what the host says: everything queued and not yet on air is
dropped, only the standby loop airs (and an operator's `say`), questions wait at the desk and
approved answers wait for the release; `release` carries the schedule on where it was.

Only operators reach this (the broker's ACL lets no one else publish on the control topic),
and still every command is treated as input from outside. Payloads are parsed and queued at
once, so the broker's message loop, which also carries viewers' questions, never waits for a
command; one task carries the commands out in order. A `say` passes the same moderation as
every other line and is refused, with its reason, when it fails. A schedule is taken by name
from the schedules folder only (see `ScheduleLibrary`), validated with a size and time limit,
and a broken one is refused with all of its errors while the old show keeps playing.

Every command, carried out or refused, is written to the audit trail: who (as the sender
names itself), what, when, through which channel and with what result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from anchor.events import ControlApplied, ControlRefused, Event, ScheduleLoaded, ScheduleRefused
from anchor.links.payloads import ControlCommand, RejectedInput, parse_control
from anchor.moderation import mask_personal_data
from anchor.show.director import Director
from anchor.show.library import ScheduleLibrary
from anchor.show.rundown import Rundown, Screen
from anchor.show.schedule import ScheduleError

log = logging.getLogger(__name__)

MAX_CONTROL_BYTES = 256 * 1024 + 4096  # an inline schedule at its cap, and the JSON around it
MAX_WAITING_COMMANDS = 16
OBS_COMMANDS = ("start_streaming", "stop_streaming", "start_recording", "stop_recording")


class ObsOutputs(Protocol):
    async def start_streaming(self) -> None: ...
    async def stop_streaming(self) -> None: ...
    async def start_recording(self) -> None: ...
    async def stop_recording(self) -> object: ...


class AuditTrail(Protocol):
    async def record_command(
        self, *, at: float, by: str, via: str, cmd: str, detail: str, result: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a command: `applied` or `refused`, with a reason when refused."""

    result: str
    reason: str = ""
    detail: str = ""

    @property
    def applied(self) -> bool:
        return self.result == "applied"


APPLIED = Outcome("applied")


class Control:
    def __init__(
        self,
        director: Director,
        rundown: Rundown,
        *,
        screen: Screen,
        publish: Callable[[Event], None],
        library: ScheduleLibrary,
        audit: AuditTrail | None = None,
        obs: ObsOutputs | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._director = director
        self._rundown = rundown
        self._screen = screen
        self._publish = publish
        self._library = library
        self._audit = audit
        self._obs = obs
        self._now = wall_clock
        self._waiting: asyncio.Queue[tuple[ControlCommand, str]] = asyncio.Queue(
            MAX_WAITING_COMMANDS
        )

    @property
    def held(self) -> bool:
        """On emergency hold (see `hold`), for the console to show."""
        return self._director.held

    async def take_payload(self, payload: bytes) -> None:
        """A control message from the broker: parsed and queued, never waited on."""
        try:
            command = parse_control(payload, max_bytes=MAX_CONTROL_BYTES)
        except RejectedInput as exc:
            known = None if exc.cmd is None else ControlCommand(exc.cmd, by=exc.by)
            await self._refused(known, "mqtt", Outcome("refused", exc.reason, exc.detail))
            return
        try:
            self._waiting.put_nowait((command, "mqtt"))
        except asyncio.QueueFull:
            detail = f"{MAX_WAITING_COMMANDS} commands are already waiting"
            await self._refused(command, "mqtt", Outcome("refused", "busy", detail))

    async def run(self) -> None:
        """Carry out queued commands one at a time, in the order they came."""
        while True:
            command, via = await self._waiting.get()
            try:
                await self.apply(command, via)
            except Exception:
                log.exception("operator command %s failed", command.cmd)

    async def apply(self, command: ControlCommand, via: str) -> Outcome:
        outcome = await self._carry_out(command)
        if outcome.applied:
            await self._record(command, via, outcome)
        else:
            await self._refused(command, via, outcome)
        return outcome

    async def _carry_out(self, command: ControlCommand) -> Outcome:
        cmd = command.cmd
        if cmd == "say":
            return self._say(command.text or "")
        if cmd == "load_schedule":
            return await self._load_schedule(command)
        if cmd == "skip":
            self._director.skip()
            self._rundown.drop_scheduled()
        elif cmd == "pause":
            self._director.pause()
            self._rundown.drop_scheduled()
        elif cmd == "resume":
            self._director.resume()
        elif cmd == "hold":
            self._director.hold()
            self._rundown.cut_to_standby()
        elif cmd == "release":
            self._director.release()
            self._rundown.nudge()  # questions and approved answers waiting go first
        elif cmd in OBS_COMMANDS:
            return await self._obs_command(cmd)
        self._publish(ControlApplied(cmd))
        return APPLIED

    def _say(self, text: str) -> Outcome:
        allowed = self._screen(text)
        if allowed is None:
            return Outcome("refused", "moderation", "the line did not pass moderation")
        self._director.say_now(allowed)
        self._rundown.nudge()
        self._publish(ControlApplied("say", allowed))
        return Outcome("applied", detail=allowed)  # the line as it airs, masked

    async def _load_schedule(self, command: ControlCommand) -> Outcome:
        try:
            if command.name is not None:
                schedule = await self._library.load(command.name)
            else:
                schedule = await self._library.parse(command.yaml or "")
        except ScheduleError as exc:
            log.error("schedule refused, the current one keeps playing:\n%s", exc)
            self._publish(ScheduleRefused(tuple(exc.errors)))
            return Outcome("refused", "schedule_invalid", f"{len(exc.errors)} problems")
        self._director.load(schedule)
        self._rundown.drop_scheduled()
        self._publish(ScheduleLoaded(schedule.name))
        return APPLIED

    async def _obs_command(self, cmd: str) -> Outcome:
        if self._obs is None:
            return Outcome("refused", "no_obs", "OBS is not enabled in the config")
        try:
            await getattr(self._obs, cmd)()
        except Exception as exc:  # OBS's own code and message, reported to the operator
            log.error("OBS %s failed: %s", cmd, exc)
            return Outcome("refused", "obs_error", str(exc))
        self._publish(ControlApplied(cmd))
        return APPLIED

    async def _refused(self, command: ControlCommand | None, via: str, outcome: Outcome) -> None:
        what = command.cmd if command is not None else "(unreadable)"
        log.warning("operator command %s refused (%s): %s", what, outcome.reason, outcome.detail)
        if outcome.reason != "schedule_invalid":  # that one has its own event, with the errors
            self._publish(ControlRefused(outcome.reason, outcome.detail))
        await self._record(command, via, outcome)

    async def _record(self, command: ControlCommand | None, via: str, outcome: Outcome) -> None:
        if self._audit is None:
            return
        result = outcome.result if not outcome.reason else f"{outcome.result}: {outcome.reason}"
        try:
            await self._audit.record_command(
                at=self._now(),
                by=_masked((command.by if command is not None else None) or via),
                via=via,
                cmd=command.cmd if command is not None else "(unreadable)",
                detail=_masked(_detail(command, outcome)),
                result=result,
            )
        except Exception as exc:  # a failing store must not stop the command
            log.warning("operator command not recorded: %s", exc)


def _masked(text: str) -> str:
    """What the sender wrote goes into the record masked, like everything else that is kept."""
    return mask_personal_data(text)[0]


def _detail(command: ControlCommand | None, outcome: Outcome) -> str:
    """What the record keeps of a command: the line as it aired (masked; a refused line is not
    kept), the schedule's name or size, and why it was refused."""
    why = f" ({outcome.detail})" if outcome.reason else ""
    if command is None:
        return why.strip(" ()")
    if command.text is not None:
        return outcome.detail if outcome.applied else f"a line of {len(command.text)} characters"
    if command.name is not None:
        return f"schedule {command.name}{why}"
    if command.yaml is not None:
        return f"inline schedule of {len(command.yaml.encode('utf-8'))} bytes{why}"
    return why.strip()
