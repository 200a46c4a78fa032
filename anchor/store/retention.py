"""Retention: old rows leave the store on a timer, so a channel that runs for months keeps a
file of bounded size.

Shortly after start (once the engine has settled) and then every ``store.prune_every_hours``,
`Store.prune` deletes as-run rows, finished questions and operator audit records older than
``store.retention_days``, and `Store.purge_raw_text` replaces the original text of questions by
their masked text: all of it unless ``store.keep_raw_text``, else what is older than
``store.raw_text_days``. Blocked viewers and schedule versions are not pruned by age: the store
caps their number itself.
It works in small chunks on the store's thread, so a question arriving meanwhile waits at
most one chunk. A prune that fails (a full disk, a locked or damaged file) is logged and
tried again at the next interval: a missed prune costs some disk, a stopped show costs the
channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from anchor.config import StoreConfig
from anchor.store.database import Pruned, StoreError

log = logging.getLogger(__name__)

FIRST_PRUNE_AFTER_SECONDS = 60.0
HOUR_SECONDS = 3600.0


class Prunable(Protocol):
    """What retention needs of the store: `Store` itself, or a fake in tests."""

    async def prune(self, older_than_days: float, *, now: float | None = None) -> Pruned: ...

    async def purge_raw_text(self, older_than_days: float, *, now: float | None = None) -> int: ...


class Retention:
    """Prunes the store for ever; the owner runs `run` as a named task and cancels it at stop.

    A cancel during a prune is safe: each chunk is its own transaction, and the next start
    carries on where this one stopped. ``wall_clock`` sets the cutoff (the store's times are
    wall-clock times); the interval is paced on the event loop's monotonic clock, so a
    changed system time neither skips nor repeats a prune.
    """

    def __init__(
        self,
        store: Prunable,
        config: StoreConfig,
        *,
        first_after_seconds: float = FIRST_PRUNE_AFTER_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if first_after_seconds < 0:
            raise ValueError(f"first_after_seconds must not be negative, got {first_after_seconds}")
        self._store = store
        self._keep_days = config.retention_days
        self._raw_text_days = config.raw_text_days if config.keep_raw_text else 0
        self._every_seconds = config.prune_every_hours * HOUR_SECONDS
        self._first_after = first_after_seconds
        self._wall_clock = wall_clock
        self.prunes = 0
        self.failures = 0
        self.rows_deleted = 0
        self.raw_texts_purged = 0

    async def run(self) -> None:
        """Prune after ``first_after_seconds``, then once every interval; never returns."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self._first_after
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self.prune_once()
            due += self._every_seconds
            now = loop.time()
            if due <= now:  # a prune longer than the interval, or a suspended machine
                due = now + self._every_seconds  # no burst of prunes to catch up

    async def prune_once(self) -> Pruned | None:
        """Delete what is past the retention period, then purge original question texts;
        what was deleted, or None if the prune failed.

        A failure is logged, never raised: the next interval tries again.
        """
        now = self._wall_clock()
        try:
            pruned = await self._store.prune(self._keep_days, now=now)
        except Exception as exc:
            self._failed(f"could not delete store rows older than {self._keep_days} days", exc)
            return None
        self.prunes += 1
        self.rows_deleted += pruned.as_run + pruned.questions + pruned.audit
        log.info(
            "deleted %d as-run rows and %d finished questions (and %d audit records)"
            " older than %d days",
            pruned.as_run,
            pruned.questions,
            pruned.audit,
            self._keep_days,
        )
        await self._purge_raw_text(now)
        return pruned

    async def _purge_raw_text(self, now: float) -> None:
        try:
            purged = await self._store.purge_raw_text(self._raw_text_days, now=now)
        except Exception as exc:
            self._failed("could not replace original question texts by the masked text", exc)
            return
        self.raw_texts_purged += purged
        if purged:
            log.info("replaced the original text of %d questions by the masked text", purged)

    def _failed(self, what: str, exc: Exception) -> None:
        self.failures += 1
        log.warning(
            "%s (next try in %s): %s",
            what,
            _duration(self._every_seconds),
            exc,
            exc_info=not isinstance(exc, StoreError),  # StoreError already says it all
        )


def _duration(seconds: float) -> str:
    if seconds >= HOUR_SECONDS:
        return f"{seconds / HOUR_SECONDS:g} h"
    return f"{seconds:.3g} s"
