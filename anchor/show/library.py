"""The schedules an operator may put on air by name: one folder, regular files, bounded reads.

The control topic names a schedule; it never gives a path. A name is one file name in the
configured schedules folder (".yaml" may be left off): no folders, no "..", and a symbolic
link that leads out of the folder is refused. Files are read with a size cap and only if they
are regular files, so a FIFO or a device can neither block nor flood the engine. Reading and
validating run on a worker thread with a time limit, so the frame loop and the broker's
message loop never wait on them. Inline schedules sent as text get the same caps.

Errors name the schedule and the line, as `anchor schedule check` does; since only schedule
files in the folder can be read, no other file's content can reach an error message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

from anchor.show.schedule import Schedule, ScheduleError, load_schedule, parse_schedule

MAX_SCHEDULE_BYTES = 256 * 1024
LOAD_TIMEOUT_S = 2.0
INLINE_NAME = Path("control-message.yaml")
_NAME = re.compile(r"[\w\u4e00-\u9fff][\w.\-\u4e00-\u9fff]*")
_SUFFIXES = (".yaml", ".yml")


class ScheduleLibrary:
    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = MAX_SCHEDULE_BYTES,
        timeout_s: float = LOAD_TIMEOUT_S,
    ) -> None:
        self.folder = folder
        self._max_bytes = max_bytes
        self._timeout = timeout_s

    def path_of(self, name: str) -> Path:
        """The file a name stands for; ScheduleError when the name is not one of ours."""
        if not _NAME.fullmatch(name) or ".." in name:
            raise ScheduleError(
                ["a schedule name is one file name in the schedules folder (no folders or '..')"]
            )
        file = name if name.endswith(_SUFFIXES) else f"{name}.yaml"
        folder = self.folder.resolve()
        path = (folder / file).resolve()
        if path.parent != folder:
            raise ScheduleError([f"{file}: leads outside the schedules folder"])
        return path

    async def load(self, name: str) -> Schedule:
        path = self.path_of(name)
        return await self._bounded(partial(load_schedule, path, max_bytes=self._max_bytes))

    async def parse(self, text: str) -> Schedule:
        raw = text.encode("utf-8")
        if len(raw) > self._max_bytes:
            raise ScheduleError(
                [f"{INLINE_NAME}: {len(raw)} bytes, more than {self._max_bytes} allowed"]
            )
        return await self._bounded(partial(parse_schedule, raw, INLINE_NAME))

    async def _bounded(self, read: Callable[[], Schedule]) -> Schedule:
        """Read on a worker thread within the time limit. The caps above bound the work, so a
        read that runs over still ends soon; it is refused, not waited for."""
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.to_thread(read)
        except TimeoutError:
            raise ScheduleError(
                [f"the schedule took longer than {self._timeout:.0f} s to read; refused"]
            ) from None
