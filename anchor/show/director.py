"""What the host says next.

The director is pulled, one sentence at a time, by the speech stage; it never pushes. That keeps
lookahead bounded by the speech queue and means a timetable start or an operator's line takes
effect at the next sentence boundary. It knows the time only through the `now` it is given,
which the engine derives from stream time, so a fast offline run follows the same timetable a
live one would.

Order of a day: the show opens with the first segment, then loops the segments, saying an idle
line between segments; at each timetable time the named segment starts (at the next sentence)
and the loop carries on after it. A schedule with no segments is all idle lines.

An emergency hold (`hold`) airs only the standby loop, one line in turn with a pause after each,
until `release`; an operator's line still goes first. The schedule stands still meanwhile and
carries on where it was.

Each scheduled sentence knows its place (segment, sentence index), so the engine can note the
place as the sentence airs and, after a restart with the same schedule, `resume_at` it instead
of starting the show from the top.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from anchor.events import Event, SegmentStarted
from anchor.messages import Line, Priority
from anchor.show.schedule import Schedule, Segment
from anchor.speech.text import split_sentences

log = logging.getLogger(__name__)

MAX_PLACED_LINES = 256  # sentences handed out whose place can still be looked up
DEFAULT_STANDBY = ("直播稍作休息，马上回来。",)
STANDBY_PAUSE_S = 4.0  # between standby lines: a loop viewers recognise, not a silent stream


class Director:
    def __init__(
        self,
        schedule: Schedule,
        *,
        now: Callable[[], datetime],
        idle_interval: float,
        seed: int | None = None,
        publish: Callable[[Event], None] | None = None,
        standby: Sequence[str] = DEFAULT_STANDBY,
    ) -> None:
        self._now = now
        # What airs during an emergency hold. Not the schedule's idle lines: they invite
        # questions, and none is answered until the release.
        self._standby = tuple(text for text in standby if text.strip()) or DEFAULT_STANDBY
        self._standby_turn = 0
        self._held = False
        self._idle_interval = idle_interval
        self._rng = random.Random(seed)
        self._publish = publish
        self._inserts: deque[Line] = deque(maxlen=32)
        self._paused = False
        # id(line) → (line, segment id, sentence index); the line is kept so its id stays unique.
        self._places: OrderedDict[int, tuple[Line, str, int]] = OrderedDict()
        self._load(schedule)

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    @property
    def current_segment(self) -> Segment | None:
        if self._segment_index is None:
            return None
        return self._schedule.segments[self._segment_index]

    def load(self, schedule: Schedule) -> None:
        """Replace the schedule (already validated); the new show starts at its next sentence."""
        log.info("schedule %r loaded from %s", schedule.name, schedule.source)
        self._load(schedule)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def held(self) -> bool:
        """On emergency hold: only the standby loop (and operators' lines) air."""
        return self._held

    @property
    def standby(self) -> tuple[str, ...]:
        return self._standby

    def is_standby(self, line: Line) -> bool:
        """A line of the standby loop (the only kind besides an operator's that airs on hold)."""
        return line.priority is Priority.IDLE and (not line.text or line.text in self._standby)

    @property
    def has_inserts(self) -> bool:
        return bool(self._inserts)

    def say_now(self, text: str) -> None:
        """Queue an operator's line ahead of everything scheduled."""
        for sentence in split_sentences(text):
            self._inserts.append(Line(sentence, Priority.OPERATOR))

    def place_of(self, line: Line) -> tuple[str, int] | None:
        """(segment id, sentence index in the segment) of a scheduled line this director made."""
        found = self._places.get(id(line))
        if found is None or found[0] is not line:
            return None
        return found[1], found[2]

    def resume_at(self, segment_id: str, sentence: int) -> bool:
        """Carry on from sentence `sentence` (0-based) of a segment; False if there is none.

        Used at start with the place saved when the engine last stopped; a sentence past the
        segment's end starts the segment after it. The timetable is untouched: a timetabled
        start still happens at its time."""
        ids = [segment.id for segment in self._schedule.segments]
        if segment_id not in ids or sentence < 0:
            return False
        index = ids.index(segment_id)
        segment = self._schedule.segments[index]
        counted = 0
        for point_index, point in enumerate(segment.points):
            count = len(split_sentences(point.text))
            if sentence < counted + count:
                log.info("resuming %s at sentence %d", segment_id, sentence + 1)
                self._start_segment(index)
                self._point_index = point_index + 1
                self._sentence_index = counted
                self._queue_point(point.text, point.pause, segment.id, skip=sentence - counted)
                return True
            counted += count
        following = (index + 1) % len(self._schedule.segments)
        log.info("resuming after %s: it had aired to its end", segment_id)
        self._start_segment(following)
        return True

    def give_back(self, lines: list[Line]) -> None:
        """Scheduled lines that were synthesized but preempted: they will be said next."""
        for line in reversed(lines):
            if line.priority is Priority.OPERATOR:
                self._inserts.appendleft(line)
            elif line.priority is Priority.SCHEDULE and line.segment == self._current_id():
                self._pending.appendleft(line)
            # Idle lines and silences are not worth repeating.

    def pause(self) -> None:
        """Stop the talking points (the host idles, answers questions); resume carries on."""
        self._paused = True
        log.info("schedule paused")

    def resume(self) -> None:
        self._paused = False
        log.info("schedule resumed")

    def hold(self) -> None:
        """Emergency hold: the standby loop from the next line; the schedule waits where it is."""
        self._held = True
        log.warning("emergency hold: standby loop on air")

    def release(self) -> None:
        self._held = False
        log.info("emergency hold released")

    def skip(self) -> None:
        """Leave the current segment now; the next one starts at the next sentence."""
        index = self._segment_index
        if self._schedule.segments and index is not None:
            following = (index + 1) % len(self._schedule.segments)
            self._start_segment(following)

    def next_line(self) -> Line:
        """The next sentence to speak. Always returns something: silence is a line too."""
        if self._inserts:
            return self._inserts.popleft()
        if self._held:
            return self._standby_line()
        if self._paused:
            return self._idle_line(pause=self._idle_interval)
        self._follow_timetable()
        if self._pending:
            return self._pending.popleft()
        index = self._segment_index
        if not self._schedule.segments or index is None:
            return self._idle_line(pause=self._idle_interval)
        segment = self._schedule.segments[index]
        if self._point_index < len(segment.points):
            point = segment.points[self._point_index]
            self._point_index += 1
            self._queue_point(point.text, point.pause, segment.id)
            if self._pending:
                return self._pending.popleft()
        return self._between_segments(index)

    def _current_id(self) -> str | None:
        segment = self.current_segment
        return None if segment is None else segment.id

    def _load(self, schedule: Schedule) -> None:
        self._schedule = schedule
        self._pending: deque[Line] = deque()
        self._segment_index: int | None = None
        self._point_index = 0
        self._sentence_index = 0
        self._idle_order: list[str] = []
        self._last_check = self._now().astimezone(schedule.timezone)
        if schedule.segments:
            self._start_segment(0)

    def _start_segment(self, index: int) -> None:
        self._segment_index = index
        self._point_index = 0
        self._sentence_index = 0
        self._pending.clear()
        segment = self._schedule.segments[index]
        log.info("segment %s: %s", segment.id, segment.title)
        if self._publish is not None:
            self._publish(SegmentStarted(segment.id, segment.title))

    def _between_segments(self, index: int) -> Line:
        """Close segment ``index``: an idle line (or the gap as silence), then the next one."""
        following = (index + 1) % len(self._schedule.segments)
        self._start_segment(following)
        if self._schedule.idle:
            return self._idle_line(pause=self._schedule.gap_seconds)
        return Line("", Priority.IDLE, pause_after=self._schedule.gap_seconds)

    def _queue_point(self, text: str, pause: float, segment_id: str, *, skip: int = 0) -> None:
        sentences = split_sentences(text)
        for i, sentence in enumerate(sentences):
            place = self._sentence_index
            self._sentence_index += 1
            if i < skip:
                continue
            last = i == len(sentences) - 1
            line = Line(
                sentence,
                Priority.SCHEDULE,
                pause_after=pause if last else 0.0,
                segment=segment_id,
            )
            self._pending.append(line)
            self._places[id(line)] = (line, segment_id, place)
            if len(self._places) > MAX_PLACED_LINES:
                self._places.popitem(last=False)

    def _idle_line(self, pause: float) -> Line:
        """Idle lines in a shuffled rotation, so none repeats before all have been said."""
        if not self._schedule.idle:
            return Line("", Priority.IDLE, pause_after=pause)
        if not self._idle_order:
            self._idle_order = list(self._schedule.idle)
            self._rng.shuffle(self._idle_order)
        return Line(self._idle_order.pop(), Priority.IDLE, pause_after=pause)

    def _standby_line(self) -> Line:
        text = self._standby[self._standby_turn % len(self._standby)]
        self._standby_turn += 1
        return Line(text, Priority.IDLE, pause_after=STANDBY_PAUSE_S)

    def _follow_timetable(self) -> None:
        """Start the segment whose daily time has passed since the last look, if any."""
        timetable = self._schedule.timetable
        if not timetable:
            return
        now = self._now().astimezone(self._schedule.timezone)
        since, self._last_check = self._last_check, now
        if now <= since:
            return
        due = None
        for day in (now.date() - timedelta(days=1), now.date()):
            for entry in timetable:
                start = datetime.combine(day, entry.at, tzinfo=self._schedule.timezone)
                if since < start <= now and (due is None or start > due[0]):
                    due = (start, entry.segment)
        if due is None:
            return
        ids = [segment.id for segment in self._schedule.segments]
        log.info("timetable %s: starting segment %s", due[0].strftime("%H:%M"), due[1])
        self._start_segment(ids.index(due[1]))
