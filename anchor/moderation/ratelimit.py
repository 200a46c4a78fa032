"""Per-viewer rate limit: at most ``limit`` questions in any ``window_s`` seconds.

A sliding window of accepted timestamps per viewer (refused attempts do not count, so a
viewer who keeps trying is not locked out longer). Memory is bounded twice: each viewer keeps
at most ``limit`` timestamps, and at most ``max_viewers`` viewers are remembered, the least
recently seen forgotten first. A forgotten viewer starts afresh, which only matters for a
flood of more than ``max_viewers`` distinct names inside one window.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class RateLimiter:
    def __init__(self, limit: int, window_s: float, *, max_viewers: int = 10000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        if max_viewers < 1:
            raise ValueError(f"max_viewers must be at least 1, got {max_viewers}")
        self._limit = limit
        self._window = window_s
        self._max_viewers = max_viewers
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many viewers are remembered."""
        return len(self._recent)

    def allow(self, viewer: str, now: float) -> bool:
        """Whether ``viewer`` may ask now; an allowed question is counted."""
        times = self._recent.get(viewer)
        if times is None:
            times = deque(maxlen=self._limit)
            self._recent[viewer] = times
            if len(self._recent) > self._max_viewers:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(viewer)
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) >= self._limit:
            return False
        times.append(now)
        return True

    def withdraw(self, viewer: str, at: float) -> None:
        """Uncount a question allowed at ``at`` that could not be taken after all (the store
        failed): it will come again from the broker and must not count twice."""
        times = self._recent.get(viewer)
        if times is not None and at in times:
            times.remove(at)
