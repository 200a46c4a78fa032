"""Show schedules: what the host says, in which order, and when each segment starts.

A schedule is written by union staff, not engineers, so it is forgiving where that is
safe (a talking point may be plain text; ``8:00`` unquoted is read as the time it looks
like) and strict where a mistake would air (blank lines, a timetable naming a segment
that does not exist, two segments with one id). Every problem names its file and line;
``check_schedule_file`` gives them all at once for ``anchor schedule check``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from anchor.yamlsource import (
    DEFAULT_MAX_BYTES,
    Loc,
    SourceError,
    YamlDocument,
    describe,
    load_yaml,
    parse_yaml,
    validate,
)

_SEGMENT_ID = re.compile(r"^[a-z0-9_-]+$")
_CLOCK_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
DEFAULT_TIMEZONE = "Asia/Shanghai"


class ScheduleError(SourceError):
    """A schedule file is missing or invalid; every problem is listed with file:line."""


def _spoken_text(value: str) -> str:
    """Text that will be aired: surrounding whitespace dropped, and never blank."""
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _segment_id(value: str) -> str:
    if not _SEGMENT_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid id: use lowercase letters, digits, - or _")
    return value


SpokenText = Annotated[str, AfterValidator(_spoken_text)]
SegmentId = Annotated[str, AfterValidator(_segment_id)]


def parse_clock_time(value: Any) -> dt.time:
    """``"08:00"`` -> 08:00; raise ValueError with an operator hint for anything else."""
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str):
        raise ValueError(f'expected a time like "08:00" (in quotes), got {describe(value)}')
    match = _CLOCK_TIME.fullmatch(value.strip())
    hour, minute = (int(match[1]), int(match[2])) if match else (99, 99)
    if hour > 23 or minute > 59:
        raise ValueError(f"{value!r} is not a time of day: use HH:MM from 00:00 to 23:59")
    return dt.time(hour, minute)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )


class Point(_Model):
    """One talking point; ``pause`` is the silence after it, in seconds."""

    text: SpokenText
    pause: float = Field(0.0, ge=0, le=60)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        """A point may be written as just its text."""
        if isinstance(data, str | int | float) and not isinstance(data, bool):
            return {"text": data}
        if data is None or not isinstance(data, dict | Point):
            raise ValueError(f"expected text or {{text: ..., pause: ...}}, got {describe(data)}")
        return data


class Segment(_Model):
    """A block of talking points on one topic, aired in order."""

    id: SegmentId
    title: SpokenText
    points: tuple[Point, ...] = Field(min_length=1)


class TimetableEntry(_Model):
    """A daily start: at ``at`` (schedule time zone) the host moves to ``segment``."""

    at: dt.time
    segment: str

    @field_validator("at", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> dt.time:
        return parse_clock_time(value)


class Schedule(_Model):
    """A whole show; ``source`` is the file it came from (None when built in code)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: SpokenText
    timezone: ZoneInfo = Field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    gap_seconds: float = Field(3.0, ge=0, le=60)
    segments: tuple[Segment, ...] = ()
    timetable: tuple[TimetableEntry, ...] = ()
    idle: tuple[SpokenText, ...] = ()
    source: Path | None = None

    @field_validator("segments", "timetable", "idle", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """``idle:`` with every line commented out means no lines, not an error."""
        return () if value is None else value

    @field_validator("timetable")
    @classmethod
    def _by_time(cls, value: tuple[TimetableEntry, ...]) -> tuple[TimetableEntry, ...]:
        return tuple(sorted(value, key=lambda entry: entry.at))

    @field_validator("timezone", mode="before")
    @classmethod
    def _zone(cls, value: Any) -> ZoneInfo:
        if isinstance(value, ZoneInfo):
            return value
        if not isinstance(value, str):
            raise ValueError(
                f"expected a time zone name such as Asia/Shanghai, got {describe(value)}"
            )
        try:
            return ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
            hint = f"did you mean {close[0]}?" if close else "use a name such as Asia/Shanghai"
            raise ValueError(f"unknown time zone {value!r}; {hint}") from None

    @field_validator("source", mode="before")
    @classmethod
    def _not_a_file_key(cls, value: Any, info: ValidationInfo) -> Any:
        """``source`` is set by the loader; in a schedule file it is an unknown key."""
        if (info.context or {}).get("from_file"):
            raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted")
        return value

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> Schedule:
        if not self.segments and not self.idle:
            raise ValueError("nothing to say: add at least one segment or one idle line")
        if not (info.context or {}).get("references_checked"):
            problems = [message for _, message in _reference_problems(*_references(self))]
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def segment(self, segment_id: str) -> Segment:
        """The segment with ``segment_id`` (KeyError if there is none)."""
        for segment in self.segments:
            if segment.id == segment_id:
                return segment
        raise KeyError(segment_id)


_Start = tuple[Loc, dt.time | None, str | None]


def _references(schedule: Schedule) -> tuple[list[tuple[Loc, str]], list[_Start]]:
    ids: list[tuple[Loc, str]] = [
        (("segments", i, "id"), segment.id) for i, segment in enumerate(schedule.segments)
    ]
    starts: list[_Start] = [
        (("timetable", i), entry.at, entry.segment) for i, entry in enumerate(schedule.timetable)
    ]
    return ids, starts


def _reference_problems(
    ids: Sequence[tuple[Loc, str]], starts: Sequence[_Start]
) -> Iterator[tuple[Loc, str]]:
    """Duplicate segment ids, duplicate start times, and starts naming no segment."""
    first_id: dict[str, Loc] = {}
    for loc, segment_id in ids:
        if segment_id in first_id:
            first = ".".join(map(str, first_id[segment_id]))
            yield loc, f"duplicate segment id {segment_id!r} (already used by {first})"
        else:
            first_id[segment_id] = loc
    first_at: dict[dt.time, Loc] = {}
    for loc, at, named in starts:
        if at is not None and at in first_at:
            yield (*loc, "at"), f"{at:%H:%M} is already taken by timetable.{first_at[at][1]}"
        elif at is not None:
            first_at[at] = loc
        if named is not None and named not in first_id:
            yield (*loc, "segment"), _unknown_segment(named, list(first_id))


def _unknown_segment(segment_id: str, known: list[str]) -> str:
    close = difflib.get_close_matches(segment_id, known, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    else:
        hint = f"known ids: {', '.join(known)}" if known else "the schedule has no segments"
    return f"no segment with id {segment_id!r}; {hint}"


def _raw_references(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Cross-reference problems found on the raw file data, so they are reported together
    with type errors instead of only after every type error is fixed."""
    segments = data.get("segments")
    ids = [
        (("segments", i, "id"), segment["id"])
        for i, segment in enumerate(segments if isinstance(segments, list) else [])
        if isinstance(segment, dict) and isinstance(segment.get("id"), str)
    ]
    timetable = data.get("timetable")
    starts: list[_Start] = []
    for i, entry in enumerate(timetable if isinstance(timetable, list) else []):
        if not isinstance(entry, dict):
            continue
        try:
            at: dt.time | None = parse_clock_time(entry.get("at"))
        except ValueError:
            at = None
        segment_id = entry.get("segment")
        starts.append((("timetable", i), at, segment_id if isinstance(segment_id, str) else None))
    return list(_reference_problems(ids, starts))


def load_schedule(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Schedule:
    """Read and validate a schedule file; raise ScheduleError listing every problem."""
    path = Path(path)
    try:
        return _validated(load_yaml(path, max_bytes=max_bytes), path)
    except SourceError as exc:
        raise ScheduleError(exc.errors) from None


def parse_schedule(raw: bytes, name: Path) -> Schedule:
    """A schedule sent as text (the control topic's inline YAML); `name` labels its errors."""
    try:
        return _validated(parse_yaml(raw, name), name)
    except SourceError as exc:
        raise ScheduleError(exc.errors) from None


def _validated(doc: YamlDocument, path: Path) -> Schedule:
    try:
        problems = _raw_references(doc.data)
        context = {"from_file": True, "references_checked": True}
        schedule = validate(Schedule, doc, context=context, problems=problems)
    except SourceError as exc:
        raise ScheduleError(exc.errors) from None
    return schedule.model_copy(update={"source": path})


def check_schedule_file(path: Path) -> list[str]:
    """Every problem in a schedule file as ``file:line: key: message``; [] when it is fine."""
    try:
        load_schedule(path)
    except ScheduleError as exc:
        return exc.errors
    return []
