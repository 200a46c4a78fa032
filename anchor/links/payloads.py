"""The MQTT payloads, both ways: questions and control commands in, events, answers and status out.

This is the one module that knows what goes on the wire. Coming in, anything may be wrong: a
bridge bug, a truncated message, a viewer pasting binary, someone probing the broker. Going
out, the typed on-air events (`anchor.events`) become the JSON that operators' tools and the
console read; their shapes are a contract, so they change here or nowhere.

Incoming payloads, parsed into typed values:

Parsing never raises anything but
`RejectedInput`, whose `reason` is a short stable code (published on the events topic and
counted in metrics) and whose `detail` names the field and what was wrong with it, so the
person running the bridge can fix it without reading this code.

This module is pure (no I/O, no clock): the caller passes the size limits and the arrival
time, which keeps every rule testable with plain bytes.

Rules worth knowing:

- The size limit is checked on the raw bytes before anything is decoded, so a huge
  payload costs nothing.
- Raw control bytes (NUL and friends; tab, CR and LF are allowed as JSON whitespace) mean
  the payload is binary, not a question.
- Unknown keys are ignored: bridges add their own fields (avatar URLs, badges ...).
- Text fields are cleaned: control characters become spaces, invisible format characters
  (zero-width, bidi overrides) and lone surrogates are dropped, runs of whitespace collapse
  to one space, ends are stripped. Length limits count characters after cleaning, not bytes,
  so a 200-character Chinese question is 200 whatever its UTF-8 size.
- ``ts`` is seconds since the epoch; a value above 1e11 (a date after the year 5000 in
  seconds) is read as milliseconds, since JavaScript bridges send ``Date.now()``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from anchor.events import (
    AnswerAired,
    ControlApplied,
    ControlRefused,
    Event,
    LineAired,
    QuestionAccepted,
    QuestionExpired,
    QuestionMerged,
    QuestionRejected,
    QuestionReviewed,
    ScheduleLoaded,
    ScheduleRefused,
    SegmentStarted,
)
from anchor.messages import AudienceEvent, Question

# The on-air events that go on the wire: to the events topic, and AnswerAired to answers.
WIRE_EVENTS: tuple[type, ...] = (
    LineAired,
    SegmentStarted,
    QuestionAccepted,
    QuestionMerged,
    QuestionRejected,
    QuestionExpired,
    QuestionReviewed,
    AnswerAired,
    ControlApplied,
    ControlRefused,
    ScheduleLoaded,
    ScheduleRefused,
)
MAX_ID_CHARS = 128
MAX_USER_CHARS = 128
MAX_PLATFORM_CHARS = 64
MAX_SAY_CHARS = 300  # an operator's inserted line: a few sentences, never a speech
MAX_OPERATOR_CHARS = 64
MAX_SCHEDULE_NAME_CHARS = 128
CONTROL_COMMANDS = (
    "say", "load_schedule", "skip", "pause", "resume", "hold", "release",
    "start_streaming", "stop_streaming", "start_recording", "stop_recording",
)  # fmt: skip

_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MILLISECONDS_ABOVE = 1e11


class RejectedInput(Exception):
    """A payload that cannot be accepted.

    ``reason`` is one of: ``too_large``, ``empty``, ``binary``, ``bad_utf8``, ``not_json``,
    ``not_object``, ``missing_field``, ``wrong_type``, ``too_long``, ``bad_value``,
    ``unknown_command``, ``conflicting_fields``. ``field`` names the offending key when
    there is one.
    """

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field
        self.cmd: str | None = None  # a control command that was recognised, then refused
        self.by: str | None = None


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """An operator command: ``say`` carries text, ``load_schedule`` a schedule's name in the
    schedules folder or the schedule itself as inline YAML. ``by`` is the operator's name as
    the sender gives it (for the record; the broker's ACL decides who may send at all)."""

    cmd: str
    text: str | None = None
    name: str | None = None
    yaml: str | None = None
    by: str | None = None


def parse_question(payload: bytes, *, max_bytes: int, max_chars: int, now: float) -> Question:
    """A viewer question from ``{"id", "user", "text", "platform"?, "ts"?}``.

    ``now`` becomes ``received_at``; ``max_chars`` limits the cleaned text.
    """
    data = _json_object(payload, max_bytes)
    question_id = _required_text(data, "id", MAX_ID_CHARS)
    user = _required_text(data, "user", MAX_USER_CHARS)
    text = _required_text(data, "text", max_chars)
    platform = _optional_text(data, "platform", MAX_PLATFORM_CHARS)
    return Question(
        id=question_id,
        user=user,
        text=text,
        platform=platform,
        sent_at=_optional_timestamp(data, "ts"),
        received_at=now,
    )


AUDIENCE_KINDS = ("enter", "like", "follow", "gift")
MAX_AUDIENCE_BYTES = 4096
MAX_AUDIENCE_COUNT = 1_000_000


def parse_audience(payload: bytes, *, max_bytes: int = MAX_AUDIENCE_BYTES) -> AudienceEvent:
    """An audience event from ``{"kind", "user", "count"?, "gift"?, "platform"?}`` (a bridge's
    ``id`` and ``ts`` are allowed and not needed)."""
    data = _json_object(payload, max_bytes)
    kind = _required_text(data, "kind", 16)
    if kind not in AUDIENCE_KINDS:
        raise RejectedInput("bad_value", f"kind is not one of {', '.join(AUDIENCE_KINDS)}", "kind")
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        raise RejectedInput("wrong_type", "count must be a whole number", "count")
    return AudienceEvent(
        kind=kind,  # type: ignore[arg-type]
        user=_required_text(data, "user", MAX_USER_CHARS),
        count=max(1, min(count, MAX_AUDIENCE_COUNT)),
        gift=_optional_text(data, "gift", MAX_USER_CHARS) or "",
        platform=_optional_text(data, "platform", MAX_PLATFORM_CHARS),
    )


def parse_control(payload: bytes, *, max_bytes: int) -> ControlCommand:
    """An operator command from ``{"cmd": ..., ...}``; arguments other commands need are checked."""
    data = _json_object(payload, max_bytes)
    cmd = _required_text(data, "cmd", 32).lower()
    if cmd not in CONTROL_COMMANDS:
        raise RejectedInput(
            "unknown_command",
            f"cmd is not one of {', '.join(CONTROL_COMMANDS)}",
            "cmd",
        )
    by = _optional_text(data, "by", MAX_OPERATOR_CHARS)
    try:
        if cmd == "say":
            return ControlCommand(cmd, text=_required_text(data, "text", MAX_SAY_CHARS), by=by)
        if cmd == "load_schedule":
            return _load_schedule(data, by)
    except RejectedInput as exc:
        exc.cmd, exc.by = cmd, by  # for the audit trail: which command was refused, and whose
        raise
    return ControlCommand(cmd, by=by)


def _load_schedule(data: dict[str, Any], by: str | None) -> ControlCommand:
    if data.get("path") is not None:
        raise RejectedInput(
            "bad_value",
            "load_schedule takes a schedule by name from the schedules folder, not a path",
            "path",
        )
    has_name = data.get("name") is not None
    has_yaml = data.get("yaml") is not None
    if has_name and has_yaml:
        raise RejectedInput(
            "conflicting_fields", "load_schedule takes name or yaml, not both", "name"
        )
    if has_name:
        name = _required_str(data, "name").strip()
        if not name:
            raise RejectedInput("empty", "name is empty", "name")
        _reject_control_characters(name, "name", allowed="")
        name = _within(name, "name", MAX_SCHEDULE_NAME_CHARS)
        return ControlCommand("load_schedule", name=name, by=by)
    if has_yaml:
        content = _required_str(data, "yaml")
        if not content.strip():
            raise RejectedInput("empty", "yaml is empty", "yaml")
        _reject_control_characters(content, "yaml", allowed="\t\n\r")
        return ControlCommand("load_schedule", yaml=content, by=by)
    raise RejectedInput(
        "missing_field",
        "load_schedule needs name (a schedule in the schedules folder) or yaml (the schedule)",
        "name",
    )


def _json_object(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Decode in the order that costs least and explains best: size, bytes, UTF-8, JSON."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise RejectedInput("wrong_type", f"payload is {type(payload).__name__}, not bytes")
    raw = bytes(payload)
    if len(raw) > max_bytes:
        raise RejectedInput("too_large", f"payload is {len(raw)} bytes, the limit is {max_bytes}")
    if not raw.strip():
        raise RejectedInput("empty", "the payload is empty")
    binary = _BINARY_BYTES.search(raw)
    if binary is not None:
        raise RejectedInput(
            "binary", f"control byte 0x{raw[binary.start()]:02x} at byte {binary.start()}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedInput("bad_utf8", f"not valid UTF-8 at byte {exc.start}") from None
    try:
        data = json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise RejectedInput(
            "not_json", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise RejectedInput("not_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RejectedInput("not_object", f"expected a JSON object, got {_json_type(data)}")
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _required_str(data: dict[str, Any], key: str) -> str:
    if key not in data:
        raise RejectedInput("missing_field", f"{key} is required", key)
    value = data[key]
    if value is None:
        raise RejectedInput("missing_field", f"{key} is required (got null)", key)
    if not isinstance(value, str):
        raise RejectedInput("wrong_type", f"{key} must be a string, got {_json_type(value)}", key)
    return value


def _required_text(data: dict[str, Any], key: str, max_chars: int | None) -> str:
    text = clean_text(_required_str(data, key))
    if not text:
        raise RejectedInput("empty", f"{key} is empty", key)
    return _within(text, key, max_chars)


def _optional_text(data: dict[str, Any], key: str, max_chars: int) -> str | None:
    """An optional label: absent, null and blank all mean "not given"."""
    if data.get(key) is None:
        return None
    text = clean_text(_required_str(data, key))
    return _within(text, key, max_chars) if text else None


def _within(text: str, key: str, max_chars: int | None) -> str:
    if max_chars is not None and len(text) > max_chars:
        raise RejectedInput(
            "too_long", f"{key} has {len(text)} characters, the limit is {max_chars}", key
        )
    return text


def _optional_timestamp(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RejectedInput(
            "wrong_type", f"{key} must be a number (seconds), got {_json_type(value)}", key
        )
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if seconds > _MILLISECONDS_ABOVE:
        seconds /= 1000.0
    if not math.isfinite(seconds) or seconds < 0 or seconds > _MILLISECONDS_ABOVE:
        raise RejectedInput("bad_value", f"{key} is not a time in seconds since 1970", key)
    return seconds


def clean_text(value: str) -> str:
    """One line of visible text: controls to spaces, invisibles dropped, whitespace collapsed."""
    kept = []
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" or char in "\u2028\u2029":
            kept.append(" ")
        elif category not in ("Cf", "Cs"):
            kept.append(char)
    return " ".join("".join(kept).split())


def _reject_control_characters(value: str, key: str, *, allowed: str) -> None:
    for index, char in enumerate(value):
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cs"):
            raise RejectedInput(
                "binary", f"{key} contains control character U+{ord(char):04X} at {index}", key
            )


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value, so details speak the bridge author's language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def event_payload(event: Event, *, channel: str, now: float) -> dict[str, Any] | None:
    """The events-topic message for an on-air event, or None for events that stay inside."""
    body = _event_body(event)
    if body is None:
        return None
    return {**body, "channel": channel, "ts": now}


def _event_body(event: Event) -> dict[str, Any] | None:
    match event:
        case LineAired(line=line):
            return {
                "type": "speaking",
                "text": line.text,
                "source": line.priority.name.lower(),
                "segment": line.segment,
                "question_id": line.question_id,
                "stream_time": event.stream_time,
                "aired_at": event.aired_at,
            }
        case SegmentStarted():
            return {"type": "segment", "id": event.segment_id, "title": event.title}
        case QuestionAccepted():
            return {"type": "accepted", "question_id": event.question_id, "waiting": event.waiting}
        case QuestionMerged():
            return {"type": "merged", "question_id": event.question_id, "into": event.into}
        case QuestionRejected(question_id=None):
            return {
                "type": "rejected",
                "input": "question",
                "reason": event.reason,
                "detail": event.detail,
            }
        case QuestionRejected():
            return {
                "type": "rejected",
                "input": "question",
                "question_id": event.question_id,
                "user": event.user,
                "reason": event.reason,
                "detail": event.detail,
            }
        case QuestionExpired():
            return {"type": "expired", "question_id": event.question_id}
        case QuestionReviewed():  # the operator's name stays in the store's records
            return {
                "type": "reviewed",
                "question_id": event.question_id,
                "verdict": event.verdict,
                "reason": event.reason,
            }
        case ControlApplied(text=None):
            return {"type": "control", "cmd": event.cmd}
        case ControlApplied():
            return {"type": "control", "cmd": event.cmd, "text": event.text}
        case ControlRefused():
            return {
                "type": "rejected",
                "input": "control",
                "reason": event.reason,
                "detail": event.detail,
            }
        case ScheduleLoaded():
            return {"type": "schedule_loaded", "name": event.name}
        case ScheduleRefused():
            return {"type": "schedule_rejected", "errors": list(event.errors)}
    return None


def answer_payload(event: AnswerAired) -> dict[str, Any]:
    """The answers-topic message: the masked question, what was said, and who else asked it."""
    waiting = event.waiting
    return {
        "question_id": waiting.question.id,
        "question": waiting.masked_text,
        "answer": event.answer,
        "source": event.source,
        "aired_at": event.aired_at,
        "merged": [question.id for question in waiting.merged],
    }


OFFLINE_STATUS: dict[str, Any] = {"state": "offline"}  # the status topic's last will
# What `anchor doctor` publishes on the control topic to learn whether the broker lets it: a
# command no engine knows, so a broker that lets it through changes nothing on air.
PROBE_COMMAND: dict[str, Any] = {"cmd": "anchor-doctor-probe", "by": "anchor doctor"}


def encode(payload: dict[str, Any]) -> bytes:
    """JSON in UTF-8 as it goes on the wire (Chinese stays readable in any MQTT client)."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def online_status(status: dict[str, Any]) -> dict[str, Any]:
    return {**status, "state": "online"}


def status_payload(
    *,
    channel: str,
    schedule: str,
    segment: str | None,
    paused: bool,
    stream_time: float,
    questions_waiting: int,
    since: float,
    obs: dict[str, Any] | None,
    health: dict[str, Any],
) -> dict[str, Any]:
    """The retained status-topic message while the channel is on air."""
    return {
        "state": "online",
        "channel": channel,
        "schedule": schedule,
        "segment": segment,
        "paused": paused,
        "stream_time": round(stream_time, 3),
        "questions_waiting": questions_waiting,
        "since": since,
        "obs": obs,
        "health": health,
    }
