"""Heartbeats that tell an operator the channel is alive, and say so loudly when it is not.

A stalled channel can look alive from outside: the process runs, the port answers, but no
frame has been encoded for a minute. The watchdog follows counters that must keep moving (the
playout's frame count; the beats of a small task on the event loop) and reports any that stood
still longer than the threshold: once, as an ERROR naming how long and where, and once more
when it moves again.

The checks run on a thread of their own, because the failure that matters most (something
blocking the event loop) would also stop any check that ran on the loop. The watchdog only
reports; it never kills the process. If the process dies, the service manager restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.25
BEAT_EVERY_S = 0.5


@dataclass(slots=True)
class _Watch:
    name: str
    progress: Callable[[], int]
    what: str  # "render", "event loop"
    unit: str | None  # "frame": the position is reported as "at frame N"
    last_value: int
    last_change: float
    stalled_since: float | None = None


class LoopHeartbeat:
    """A task on the event loop that beats every half second and measures how late it wakes.

    The beat count is what the watchdog follows: if the loop is blocked, it stops moving.
    """

    def __init__(self, interval_s: float = BEAT_EVERY_S) -> None:
        self._interval = interval_s
        self.beats = 0
        self.lag_s = 0.0
        self.max_lag_s = 0.0

    async def run(self) -> None:
        while True:
            asleep = time.monotonic()
            await asyncio.sleep(self._interval)
            self.lag_s = max(0.0, time.monotonic() - asleep - self._interval)
            self.max_lag_s = max(self.max_lag_s, self.lag_s)
            self.beats += 1


class Watchdog:
    """Follows named progress counters; a counter that stands still too long is a stall."""

    def __init__(
        self,
        stall_seconds: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        if stall_seconds <= 0:
            raise ValueError("stall_seconds must be positive")
        self._threshold = stall_seconds
        self._clock = clock
        self._check_every = check_every_s
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stall_seconds(self) -> float:
        return self._threshold

    def watch(
        self, name: str, progress: Callable[[], int], *, what: str, unit: str | None = None
    ) -> None:
        """Follow `progress` (read from the watchdog's thread: a plain attribute read is fine)."""
        with self._lock:
            self._watches[name] = _Watch(name, progress, what, unit, progress(), self._clock())

    def check(self) -> None:
        """One look at every counter: log a new stall, or a recovery."""
        now = self._clock()
        with self._lock:
            for watch in self._watches.values():
                self._check_one(watch, now)

    def _check_one(self, watch: _Watch, now: float) -> None:
        value = watch.progress()
        if value != watch.last_value:
            if watch.stalled_since is not None:
                log.warning(
                    "%s recovered after %.1f s stalled%s",
                    watch.what,
                    now - watch.last_change,
                    _position(watch.unit, value),
                )
                watch.stalled_since = None
            watch.last_value, watch.last_change = value, now
            return
        stalled_for = now - watch.last_change
        if watch.stalled_since is None and stalled_for > self._threshold:
            watch.stalled_since = watch.last_change
            log.error(
                "%s stalled for %.1f s%s",
                watch.what,
                stalled_for,
                _position(watch.unit, value),
                extra={"check": watch.name, "stalled_seconds": round(stalled_for, 3)},
            )

    def state(self) -> dict[str, dict[str, Any]]:
        """Per counter: ok, and for a stall how long it has lasted and where it stands."""
        now = self._clock()
        with self._lock:
            return {
                watch.name: {
                    "ok": watch.stalled_since is None,
                    "stalled_seconds": 0.0
                    if watch.stalled_since is None
                    else round(now - watch.stalled_since, 3),
                    "position": watch.last_value,
                }
                for watch in self._watches.values()
            }

    @property
    def stalled(self) -> list[str]:
        return [name for name, state in self.state().items() if not state["ok"]]

    def start(self) -> None:
        """Check on an owned daemon thread until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._check_every):
            try:
                self.check()
            except Exception:
                log.exception("watchdog check failed")


def _position(unit: str | None, value: int) -> str:
    return f" at {unit} {value}" if unit else ""
