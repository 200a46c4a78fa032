"""Today's rundown of a schedule, before it airs: which segment starts when, in its time zone.

An estimate, made without synthesizing anything: a sentence takes its length at the voice's
usual pace (about 4.5 Chinese characters or 14 Latin letters a second) plus its pause and the
gap between sentences. Daily timetable starts are exact; between them the segments loop, as
the director plays them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anchor.show.schedule import Schedule, Segment

CJK_PER_SECOND = 4.5
LATIN_PER_SECOND = 14.0
MAX_ROWS = 200


@dataclass(frozen=True, slots=True)
class Slot:
    start: dt.datetime
    segment_id: str
    title: str
    seconds: float
    timetabled: bool  # started by a timetable entry rather than by the loop


def sentence_seconds(text: str) -> float:
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
    latin = len(text) - cjk
    return cjk / CJK_PER_SECOND + latin / LATIN_PER_SECOND


def segment_seconds(segment: Segment, sentence_gap: float) -> float:
    return sum(sentence_seconds(p.text) + p.pause + sentence_gap for p in segment.points)


def today(schedule: Schedule, now: dt.datetime, *, sentence_gap: float = 0.35) -> list[Slot]:
    """The segments from `now` to the end of its day, in the schedule's time zone."""
    zone = schedule.timezone
    now = now.astimezone(zone)
    end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    starts = [
        (dt.datetime.combine(now.date(), entry.at, tzinfo=zone), entry.segment)
        for entry in schedule.timetable
    ]
    ids = [segment.id for segment in schedule.segments]
    index, timetabled = 0, False
    for start, segment_id in starts:
        if start <= now:
            index, timetabled = ids.index(segment_id), True
    upcoming = [(start, sid) for start, sid in starts if start > now]
    slots: list[Slot] = []
    at = now
    while at < end and len(slots) < MAX_ROWS:
        segment = schedule.segments[index]
        length = segment_seconds(segment, sentence_gap) + schedule.gap_seconds
        slots.append(Slot(at, segment.id, segment.title, length, timetabled))
        finish = at + dt.timedelta(seconds=max(1.0, length))
        if upcoming and upcoming[0][0] <= finish:
            at, segment_id = upcoming.pop(0)
            index, timetabled = ids.index(segment_id), True
        else:
            at, index, timetabled = finish, (index + 1) % len(ids), False
    return slots
