"""Bilibili's chat messages (open platform and web protocol) as `ChatEvent`s.

The payloads are untrusted and their shapes drift, so every field is read defensively: a
message that lacks what its kind needs is logged by its command name only (never its text or
the viewer's name) and skipped. Where Bilibili gives no message id, a stable one is derived
from what the message does carry, so the same message seen twice (a replay after a reconnect)
gets the same key and the bridge's de-duplication drops the copy.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from anchor.bridges.chat import MAX_NAME_CHARS, MAX_TEXT_CHARS, ChatEvent, clip

log = logging.getLogger(__name__)

PLATFORM = "bilibili"
GAME_OVER = "LIVE_OPEN_PLATFORM_INTERACTION_END"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def command(message: Mapping[str, Any]) -> str:
    """The message's command without its ``:suffix``, safe to log (letters, digits, _)."""
    cmd = message.get("cmd")
    if not isinstance(cmd, str):
        return "?"
    return _UNSAFE.sub("", cmd.split(":", 1)[0])[:48] or "?"


def open_platform_event(message: Mapping[str, Any], *, received_at: float) -> ChatEvent | None:
    """An open-platform message (``LIVE_OPEN_PLATFORM_*``) as an event, or None."""
    return _mapped(_OPEN, message, received_at)


def web_event(message: Mapping[str, Any], *, received_at: float) -> ChatEvent | None:
    """A web-protocol message (``DANMU_MSG`` and friends) as an event, or None."""
    return _mapped(_WEB, message, received_at)


Mapper = Callable[[Mapping[str, Any], float], ChatEvent | None]


def _mapped(
    table: dict[str, Mapper], message: Mapping[str, Any], received_at: float
) -> ChatEvent | None:
    cmd = command(message)
    mapper = table.get(cmd)
    if mapper is None:
        log.debug("Bilibili %s message ignored", cmd)
        return None
    try:
        return mapper(message, received_at)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        log.warning("malformed Bilibili %s message skipped", cmd)
        return None


# --- field readers: strict about type, so a malformed message fails loudly into the skip ---


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return clip(value, limit)


def _name(value: Any) -> str:
    return _text(value, MAX_NAME_CHARS)


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError("not an id")
    return clip(str(value), MAX_NAME_CHARS)


def _number(value: Any, default: float = 0.0) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _count(value: Any) -> int:
    count = int(_number(value, 1))
    if count < 0:
        raise ValueError("negative count")
    return count


def _derived(kind: str, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]
    return f"{kind}-{digest}"


# --- open platform ------------------------------------------------------------------------


def _data(message: Mapping[str, Any]) -> Mapping[str, Any]:
    data = message["data"]
    if not isinstance(data, Mapping):
        raise TypeError("data is not an object")
    return data


def _open_comment(message: Mapping[str, Any], received_at: float) -> ChatEvent | None:
    data = _data(message)
    if data.get("dm_type", 0) == 1:  # an emoji sticker: nothing for the host to answer
        return None
    return ChatEvent(
        platform=PLATFORM,
        kind="comment",
        msg_id=_id(data["msg_id"]),
        user=_name(data["uname"]),
        user_id=_id(data.get("open_id", "")),
        text=_text(data["msg"], MAX_TEXT_CHARS),
        ts=_number(data.get("timestamp")),
    )


def _open_gift(message: Mapping[str, Any], received_at: float) -> ChatEvent:
    data = _data(message)
    return ChatEvent(
        platform=PLATFORM,
        kind="gift",
        msg_id=_id(data["msg_id"]),
        user=_name(data["uname"]),
        user_id=_id(data.get("open_id", "")),
        count=_count(data.get("gift_num")),
        gift=_name(data["gift_name"]),
        ts=_number(data.get("timestamp")),
    )


def _open_like(message: Mapping[str, Any], received_at: float) -> ChatEvent:
    data = _data(message)
    open_id = _id(data.get("open_id", ""))
    ts = _number(data.get("timestamp"), received_at)
    count = _count(data.get("like_count"))
    msg_id = data.get("msg_id") or _derived("like", open_id, ts, count)
    return ChatEvent(
        platform=PLATFORM,
        kind="like",
        msg_id=_id(msg_id),
        user=_name(data["uname"]),
        user_id=open_id,
        count=count,
        ts=ts,
    )


def _open_enter(message: Mapping[str, Any], received_at: float) -> ChatEvent:
    data = _data(message)
    open_id = _id(data["open_id"])
    ts = _number(data.get("timestamp"), received_at)
    msg_id = data.get("msg_id") or _derived("enter", open_id, ts)
    return ChatEvent(
        platform=PLATFORM,
        kind="enter",
        msg_id=_id(msg_id),
        user=_name(data["uname"]),
        user_id=open_id,
        ts=ts,
    )


_OPEN: dict[str, Mapper] = {
    "LIVE_OPEN_PLATFORM_DM": _open_comment,
    "LIVE_OPEN_PLATFORM_SEND_GIFT": _open_gift,
    "LIVE_OPEN_PLATFORM_LIKE": _open_like,
    "LIVE_OPEN_PLATFORM_LIVE_ROOM_ENTER": _open_enter,
}


# --- web protocol (anonymous: Bilibili masks the names it sends) --------------------------


def _web_comment(message: Mapping[str, Any], received_at: float) -> ChatEvent | None:
    info = message["info"]
    meta, text, viewer = info[0], _text(info[1], MAX_TEXT_CHARS), info[2]
    if len(meta) > 12 and meta[12] == 1:  # an emoji sticker
        return None
    ts_ms = _number(meta[4])
    uid = _id(viewer[0])
    return ChatEvent(
        platform=PLATFORM,
        kind="comment",
        msg_id=_derived("dm", int(ts_ms), uid, text),
        user=_name(viewer[1]),
        user_id=uid,
        text=text,
        ts=ts_ms / 1000.0,
    )


def _web_gift(message: Mapping[str, Any], received_at: float) -> ChatEvent:
    data = _data(message)
    uid, gift = _id(data.get("uid", "")), _name(data["giftName"])
    ts, count = _number(data.get("timestamp"), received_at), _count(data.get("num"))
    msg_id = data.get("tid") or _derived("gift", uid, ts, gift, count)
    return ChatEvent(
        platform=PLATFORM,
        kind="gift",
        msg_id=_id(msg_id),
        user=_name(data["uname"]),
        user_id=uid,
        count=count,
        gift=gift,
        ts=ts,
    )


def _web_interact(message: Mapping[str, Any], received_at: float) -> ChatEvent | None:
    data = _data(message)
    kinds = {1: "enter", 2: "follow"}
    kind = kinds.get(data["msg_type"])
    if kind is None:  # shares, special follows: nothing a bridge carries
        return None
    uid, ts = _id(data.get("uid", "")), _number(data.get("timestamp"), received_at)
    return ChatEvent(
        platform=PLATFORM,
        kind="enter" if kind == "enter" else "follow",
        msg_id=_derived(kind, uid, ts),
        user=_name(data["uname"]),
        user_id=uid,
        ts=ts,
    )


def _web_like(message: Mapping[str, Any], received_at: float) -> ChatEvent:
    data = _data(message)
    uid = _id(data.get("uid", ""))
    ts = _number(data.get("timestamp"), float(int(received_at)))
    return ChatEvent(
        platform=PLATFORM,
        kind="like",
        msg_id=_derived("like", uid, ts),
        user=_name(data["uname"]),
        user_id=uid,
        ts=ts,
    )


_WEB: dict[str, Mapper] = {
    "DANMU_MSG": _web_comment,
    "SEND_GIFT": _web_gift,
    "INTERACT_WORD": _web_interact,
    "LIKE_INFO_V3_CLICK": _web_like,
}
