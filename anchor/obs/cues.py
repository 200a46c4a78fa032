"""What a text source in OBS should show, and when it should change.

The engine knows a sentence's text the moment the sentence leaves it, but OBS shows the
stream later (its media buffer), so each change is a cue for a wall-clock time. Only the
newest due cue matters: when OBS is away or slow, intermediate texts are skipped rather than
replayed. Planned cues are few and bounded; a new cue replaces every cue planned for the same
time or later, because the engine's newer plan (an interruption, say) supersedes the old one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

MAX_PLANNED_CUES = 8


@dataclass(slots=True)
class CueSheet:
    """The text wanted now for one source, the few changes planned, and what OBS holds."""

    limit: int = MAX_PLANNED_CUES
    current: str = ""
    shown: str | None = None  # what OBS holds as far as we know; None: unknown
    _planned: list[tuple[float, str]] = field(default_factory=list)

    def cue(self, text: str | None, at: float) -> None:
        """Plan `text` (None or "" hides it) for wall time `at`."""
        del self._planned[bisect.bisect_left(self._planned, at, key=lambda cue: cue[0]) :]
        self._planned.append((at, text or ""))
        if len(self._planned) > self.limit:
            del self._planned[0]

    def advance(self, now: float) -> None:
        """Make the newest cue due by `now` current; earlier due cues are skipped."""
        due = bisect.bisect_right(self._planned, now, key=lambda cue: cue[0])
        if due:
            self.current = self._planned[due - 1][1]
            del self._planned[:due]

    @property
    def next_at(self) -> float | None:
        return self._planned[0][0] if self._planned else None

    @property
    def stale(self) -> bool:
        """OBS may not hold the current text (changed, or unknown since a reconnect)."""
        return self.shown != self.current

    def forget_shown(self) -> None:
        """After a reconnect OBS's text is unknown: apply the current one again."""
        self.shown = None
