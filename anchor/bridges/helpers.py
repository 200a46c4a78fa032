"""What local capture helpers push, mapped to `ChatEvent`.

Douyin and WeChat Channels give no usable comment API, so unions run a capture helper on
the streaming PC that pushes JSON. Each helper's format has one mapper here, chosen by name
(`MAPPERS`); a payload is untrusted: every field is type-checked and bounded, and an error
names the field, never its value (viewers' names and words must not reach logs or answers).
Helper messages that are not a viewer's action (room statistics, level-ups, "stream ended")
are skipped and counted, not errors.

The formats were read from the helpers' own sources (cited per mapper); the fixtures in
tests/data/helpers/ are constructed from those sources, not captured from a live room.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from anchor.bridges.chat import KINDS, MAX_NAME_CHARS, MAX_TEXT_CHARS, ChatEvent, Kind, clip

HelperFormat = Literal["douyin_barrage_grab", "wxlivespy", "plain"]
MAX_ID_CHARS = 256
MAX_COUNT = 1_000_000


class PayloadError(ValueError):
    """A payload that cannot be mapped; the message names the field, not the value."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where or 'body'}: {problem}")
        self.where = where or "body"


class TooManyEvents(ValueError):
    """More events in one payload than the intake takes at once."""


@dataclass(slots=True)
class Mapped:
    events: list[ChatEvent] = field(default_factory=list)
    skipped: int = 0


Mapper = Callable[[Any, str, int], Mapped]


def map_payload(fmt: str, platform: str, payload: Any, *, max_events: int) -> Mapped:
    """Map one decoded JSON payload of helper format `fmt` to the events it carries."""
    try:
        mapper = MAPPERS[fmt]
    except KeyError:
        raise ValueError(f"unknown helper format {fmt!r}; known: {', '.join(MAPPERS)}") from None
    return mapper(payload, platform, max_events)


# -- DouyinBarrageGrab ---------------------------------------------------------------------

# PackMsgType in BarrageGrab/Modles/JsonEntity/BarrageMessages.cs (HaoDong108/DouyinBarrageGrab):
# 1 弹幕 chat, 2 点赞 like, 3 进房 enter, 4 关注 follow, 5 礼物 gift; 6 统计 room stats,
# 7 粉丝团 fan club, 8 分享 share, 9 下播 stream ended are not viewers' chat and are skipped.
_DOUYIN_KINDS: dict[int, Kind] = {1: "comment", 2: "like", 3: "enter", 4: "follow", 5: "gift"}


def map_douyin_barrage_grab(payload: Any, platform: str, max_events: int) -> Mapped:
    """DouyinBarrageGrab's push: `{"Type": int, "ProcessName": str, "Data": "<json>"}`, or a
    list of them.

    Sources (HaoDong108/DouyinBarrageGrab, the maintained line of WorldObservationLog's tool):
    - `BarrageMsgPack` in BarrageGrab/Modles/JsonEntity/BarrageMessages.cs: `Type` (the enum,
      serialised by Newtonsoft as its number), `ProcessName`, and `Data`, the message object
      serialised again as a JSON *string* (`enty.ToJson()` in BarrageGrab/WsBarrageServer.cs).
    - `Msg` (same file): `MsgId` (long, Douyin's `common.msgId`), `User` (`MsgUser`: `Id` the
      "real id" long, `Nickname`, `SecUid`, ...), `Content`, `RoomId`, `WebRoomId`, `Onwer`
      (sic). No timestamp is pushed, so `ts` stays 0.
    - Chat (1): `Content` is the comment. Like (2, `LikeMsg`): `Count` this message's likes,
      `Total` the room's total. Enter (3, `MemberMessage`) and follow (4, a plain `Msg`, sent
      only for `SocialMessage.Action == 1`): their `Content` is a sentence the helper writes
      with the viewer's nickname in it, so it is not carried. Gift (5, `GiftMsg`): `GiftName`,
      `GiftCount` the increment the helper computed from Douyin's combo counter
      (`RepeatCount` is the running combo total, used only when `GiftCount` is absent).
    Forks that put an object instead of a string in `Data` are accepted too.
    """
    packs, prefix = _as_list(payload, max_events)
    mapped = Mapped()
    for index, raw in enumerate(packs):
        where = prefix(index)
        pack = _object(raw, where)
        code = pack.get("Type")
        if not isinstance(code, int) or isinstance(code, bool):
            raise PayloadError(f"{where}Type", "expected an integer message type")
        kind = _DOUYIN_KINDS.get(code)
        if kind is None:
            mapped.skipped += 1
            continue
        raw_data = pack.get("Data")
        data = _object(_nested_json(raw_data, f"{where}Data"), f"{where}Data")
        user = data.get("User")
        user_obj = _object(user, f"{where}Data.User") if user is not None else {}
        msg_id = _ident(data, "MsgId", f"{where}Data.MsgId")
        if not msg_id or msg_id == "0":
            msg_id = _derived_id(raw_data)
        user_id = _ident(user_obj, "Id", f"{where}Data.User.Id")
        count = 1
        gift = ""
        if kind == "like":
            count = _count(data, "Count", f"{where}Data.Count") or 1
        elif kind == "gift":
            gift = _text(data, "GiftName", f"{where}Data.GiftName", MAX_NAME_CHARS)
            count = (
                _count(data, "GiftCount", f"{where}Data.GiftCount")
                or _count(data, "RepeatCount", f"{where}Data.RepeatCount")
                or 1
            )
        mapped.events.append(
            ChatEvent(
                platform=platform,
                kind=kind,
                msg_id=msg_id,
                user=_text(user_obj, "Nickname", f"{where}Data.User.Nickname", MAX_NAME_CHARS),
                user_id="" if user_id == "0" else user_id,
                text=_text(data, "Content", f"{where}Data.Content", MAX_TEXT_CHARS)
                if kind == "comment"
                else "",
                count=count,
                gift=gift,
            )
        )
    return mapped


# -- wxlivespy ------------------------------------------------------------------------------

# `decoded_type` values from src/main/WXDataDecoder.ts (fire4nt/wxlivespy). "combogift"
# (msgType 20013, `combo_product_count`) looks like a summary of a combo whose single gifts
# also arrive as "gift" (20009): its meaning is not documented, so it is skipped rather than
# counted twice. "levelup" (fan level) and "unknown" are not chat.
_WX_KINDS: dict[str, Kind] = {
    "comment": "comment",
    "enter": "enter",
    "like": "like",
    "gift": "gift",
}


def map_wxlivespy(payload: Any, platform: str, max_events: int) -> Mapped:
    """wxlivespy's forward: `{"events": [LiveMessage...], "host_info": {...}, "live_info":
    {...}}` (`DecodedData`), POSTed as JSON to the configured `forward_url`, gzipped when
    `gzip_forward_data` is on (src/main/EventForwarder.ts); a bare event or list is taken too.

    Sources (fire4nt/wxlivespy at 2024.0202): src/CustomTypes.ts (`DecodedData`, `LiveMessage`
    with its Chinese field notes), src/main/WXDataDecoder.ts (how each field is filled),
    src/main/service.ts (`decodeOpenIDInEvents`, what is forwarded). Per event:
    - `msg_id`: WeChat's `clientMsgId`, our de-duplication key. The helper says events may be
      sent again and the receiver must de-duplicate (by `seq`, "from 1, increasing" per live
      session); when `msg_id` is missing we fall back to `live_info.live_id` + `seq`.
    - `decoded_openid`: the viewer's openid, stable across one host's sessions (README,
      2024-02-02); `sec_openid` changes per session and is used only when the former is absent.
    - `nickname`; `content` the comment (for gifts `content` comes from the gift payload and
      its meaning is unclear, so it is not used).
    - `gift_num` (`reward_product_count`) for gifts; the gift is only an opaque
      `sec_gift_id` (`reward_product_id`), no name, so `gift` stays "" rather than put an id on
      air. Likes carry no per-viewer count (README: exact per-user likes are not available).
    - `msg_time` is documented as a unix timestamp but is set with JS `new Date().getTime()`,
      i.e. milliseconds when the helper saw the message; it is converted to seconds.
    Note: the envelope has `live_info` and `host_info`, not `room_info`.
    """
    live_id = ""
    if isinstance(payload, dict) and "events" in payload:
        live = payload.get("live_info")
        if isinstance(live, dict):
            live_id = _ident(live, "live_id", "live_info.live_id")
        events_raw = payload["events"]
        if not isinstance(events_raw, list):
            raise PayloadError("events", "expected a list")
        events, prefix = _as_list(events_raw, max_events, name="events")
    else:
        events, prefix = _as_list(payload, max_events)
    mapped = Mapped()
    for index, raw in enumerate(events):
        where = prefix(index)
        event = _object(raw, where)
        decoded = event.get("decoded_type")
        if not isinstance(decoded, str):
            raise PayloadError(f"{where}decoded_type", "expected a string")
        kind = _WX_KINDS.get(decoded)
        if kind is None:
            mapped.skipped += 1
            continue
        msg_id = _ident(event, "msg_id", f"{where}msg_id")
        if not msg_id:
            seq = _ident(event, "seq", f"{where}seq")
            msg_id = f"{live_id}:{seq}" if seq else _derived_id(raw)
        user_id = _ident(event, "decoded_openid", f"{where}decoded_openid") or _ident(
            event, "sec_openid", f"{where}sec_openid"
        )
        mapped.events.append(
            ChatEvent(
                platform=platform,
                kind=kind,
                msg_id=msg_id,
                user=_text(event, "nickname", f"{where}nickname", MAX_NAME_CHARS),
                user_id=user_id,
                text=_text(event, "content", f"{where}content", MAX_TEXT_CHARS)
                if kind == "comment"
                else "",
                count=(_count(event, "gift_num", f"{where}gift_num") or 1) if kind == "gift" else 1,
                ts=_millis_to_seconds(event.get("msg_time"), f"{where}msg_time"),
            )
        )
    return mapped


# -- our own plain shape -------------------------------------------------------------------


def map_plain(payload: Any, platform: str, max_events: int) -> Mapped:
    """Our own shape, for helpers we script ourselves: `{"id", "user", "text", "kind"?,
    "user_id"?, "count"?, "gift"?, "ts"?}` (the MQTT question's fields plus `ChatEvent`'s), or
    a list of them. `kind` defaults to "comment"; the platform is the source's, never the
    payload's."""
    items, prefix = _as_list(payload, max_events)
    mapped = Mapped()
    for index, raw in enumerate(items):
        where = prefix(index)
        item = _object(raw, where)
        kind = item.get("kind", "comment")
        if kind not in KINDS:
            raise PayloadError(f"{where}kind", f"expected one of {', '.join(KINDS)}")
        msg_id = _ident(item, "id", f"{where}id")
        if not msg_id:
            raise PayloadError(f"{where}id", "required")
        if not isinstance(item.get("user"), str):
            raise PayloadError(f"{where}user", "expected a string")
        ts = item.get("ts", 0.0)
        if not isinstance(ts, int | float) or isinstance(ts, bool) or ts < 0:
            raise PayloadError(f"{where}ts", "expected seconds since the epoch")
        text = _text(item, "text", f"{where}text", MAX_TEXT_CHARS)
        if kind == "comment" and not text.strip():
            raise PayloadError(f"{where}text", "required for a comment")
        mapped.events.append(
            ChatEvent(
                platform=platform,
                kind=kind,
                msg_id=msg_id,
                user=_text(item, "user", f"{where}user", MAX_NAME_CHARS),
                user_id=_ident(item, "user_id", f"{where}user_id"),
                text=text if kind == "comment" else "",
                count=_count(item, "count", f"{where}count") or 1,
                gift=_text(item, "gift", f"{where}gift", MAX_NAME_CHARS),
                ts=float(ts),
            )
        )
    return mapped


MAPPERS: Mapping[str, Mapper] = {
    "douyin_barrage_grab": map_douyin_barrage_grab,
    "wxlivespy": map_wxlivespy,
    "plain": map_plain,
}


# -- field checks --------------------------------------------------------------------------


def _as_list(
    payload: Any, max_events: int, *, name: str = ""
) -> tuple[list[Any], Callable[[int], str]]:
    """One event or a list of them; the prefix names an item's place for error messages."""
    if isinstance(payload, list):
        if len(payload) > max_events:
            raise TooManyEvents(f"more than {max_events} events in one payload")
        return payload, lambda index: f"{name}[{index}]."
    return [payload], lambda index: f"{name}." if name else ""


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(where.rstrip("."), "expected an object")
    return value


def _nested_json(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise PayloadError(where, "expected a JSON string or an object")
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise PayloadError(where, "not valid JSON") from None


def _text(obj: Mapping[str, Any], key: str, where: str, limit: int) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(where, "expected a string")
    return clip(value, limit)


def _ident(obj: Mapping[str, Any], key: str, where: str) -> str:
    """An id given as a string or an integer (Douyin's are 64-bit numbers); "" if absent."""
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(where, "expected a string or an integer id")
    text = str(value)
    if len(text) > MAX_ID_CHARS:
        raise PayloadError(where, f"longer than {MAX_ID_CHARS} characters")
    return text


def _count(obj: Mapping[str, Any], key: str, where: str) -> int:
    """A positive count, capped; 0 when absent or not positive (the caller picks a default)."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(where, "expected a number")
    return max(0, min(int(value), MAX_COUNT))


def _millis_to_seconds(value: Any, where: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PayloadError(where, "expected a unix time")
    # Milliseconds (JS Date.getTime()) unless it already looks like seconds.
    return float(value) / 1000.0 if value > 100_000_000_000 else float(value)


def _derived_id(raw: Any) -> str:
    """A stable id for a message that came without one: a redelivered copy gets the same."""
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, ensure_ascii=False)
    return "h-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
