"""Where the show stood, kept in the store so a restart carries on from there.

As each scheduled sentence starts airing, its place (which schedule, which segment, which
sentence) is written to the store. The bookmark is an event-feed subscriber, so the frame loop
never waits for the disk, and the feed drains before a stop, so the last place is kept.
At start, if the schedule is the same one (same content, whatever its file
is called), the director resumes at the sentence after the last one aired; a changed schedule
starts from the top, because its sentence numbers no longer mean the same thing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging

from anchor.events import Event, LineAired
from anchor.messages import Line
from anchor.show.director import Director
from anchor.show.schedule import Schedule
from anchor.store import Store, StoreError

log = logging.getLogger(__name__)

STATE_KEY = "schedule_position"


def schedule_identity(schedule: Schedule) -> str:
    """A digest of what the schedule says (names, segments, points): equal means same show."""
    content = {
        "name": schedule.name,
        "segments": [
            [segment.id, [[point.text, point.pause] for point in segment.points]]
            for segment in schedule.segments
        ],
    }
    encoded = json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


class ShowBookmark:
    KINDS: tuple[type, ...] = (LineAired,)

    def __init__(self, store: Store, director: Director) -> None:
        self._store = store
        self._director = director
        self._latest: dict[str, object] | None = None
        self._written: dict[str, object] | None = None
        self._identities: dict[int, tuple[Schedule, str]] = {}

    async def restore(self) -> bool:
        """Resume the director at the saved place if it belongs to this schedule."""
        try:
            saved = await self._store.get_state(STATE_KEY)
            place = json.loads(saved) if saved else None
        except (ValueError, TypeError, StoreError) as exc:
            log.warning("saved schedule position unreadable, starting from the top: %s", exc)
            return False
        if not isinstance(place, dict):
            return False
        if place.get("schedule") != self._identity(self._director.schedule):
            log.info("the schedule changed since the last run: starting from the top")
            return False
        segment, sentence = place.get("segment"), place.get("sentence")
        if not isinstance(segment, str) or not isinstance(sentence, int):
            return False
        return self._director.resume_at(segment, sentence + 1)

    async def handle(self, event: Event) -> None:
        if isinstance(event, LineAired):
            self.on_air(event.line)
            with contextlib.suppress(StoreError):  # the store logs its failure; kept for later
                await self.flush()

    def on_air(self, line: Line) -> None:
        """A line started airing: note its place, if it is the schedule's."""
        place = self._director.place_of(line)
        if place is None:
            return
        self._latest = {
            "schedule": self._identity(self._director.schedule),
            "segment": place[0],
            "sentence": place[1],
        }

    async def flush(self) -> None:
        """Write the latest place, if it is not written yet."""
        latest = self._latest
        if latest is None or latest == self._written:
            return
        await self._store.set_state(STATE_KEY, json.dumps(latest, ensure_ascii=False))
        self._written = latest

    def _identity(self, schedule: Schedule) -> str:
        cached = self._identities.get(id(schedule))
        if cached is None or cached[0] is not schedule:
            cached = (schedule, schedule_identity(schedule))
            self._identities = {id(schedule): cached}
        return cached[1]
