"""The Bilibili chat clients against a protocol-faithful server on loopback.

The server (`anchor.harness.bilibili_server`) checks signatures and auth bodies the way
Bilibili documents them and frames its messages independently of our packet module; the
tests assert on what reaches the sink and on what the server saw (starts, ends, heartbeats).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable

import brotli
import pytest

from anchor.bridges.bilibili import OpenPlatformClient, SettingError, Timings, WebRoomClient
from anchor.bridges.bilibili.errors import PacketError
from anchor.bridges.bilibili.packets import MAX_PACKET_BYTES, Op, Version, decode, encode
from anchor.bridges.bilibili.signing import sign
from anchor.bridges.chat import ChatEvent
from anchor.harness.bilibili_server import BilibiliServer, bilibili_server

FAST = Timings(
    heartbeat_s=0.1,
    receive_timeout_s=2.0,
    connect_timeout_s=2.0,
    backoff_first_s=0.02,
    backoff_max_s=0.2,
    game_heartbeat_s=0.1,
    cooldown_s=0.1,
    http_timeout_s=2.0,
    end_timeout_s=1.0,
)


def raw_packet(op: int, body: bytes, version: int) -> bytes:
    """A packet built by hand from the documented header, not by our encoder."""
    return struct.pack(">IHHII", 16 + len(body), 16, version, op, 1) + body


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Collected:
    """A sink that keeps every event, duplicates included."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []

    async def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)

    def unique(self) -> dict[str, ChatEvent]:
        return {event.key: event for event in self.events}

    def texts(self) -> set[str]:
        return {e.text for e in self.events if e.kind == "comment"}


def open_client(server: BilibiliServer, sink: Collected, **overrides: object) -> OpenPlatformClient:
    settings: dict[str, object] = {
        "code": server.code,
        "app_id": server.app_id,
        "access_key_id": server.access_key_id,
        "access_key_secret": server.access_key_secret,
        "sink": sink,
        "api_base": server.api_base,
        "timings": FAST,
    }
    settings.update(overrides)
    return OpenPlatformClient(**settings)  # type: ignore[arg-type]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# --- packets and signing ----------------------------------------------------------------------


def test_packet_round_trip_and_multi_packet_frames() -> None:
    frame = encode(Op.MESSAGE, b'{"cmd":"X"}', version=Version.JSON, sequence=7)
    assert frame[:16] == struct.pack(">IHHII", 27, 16, 0, 5, 7)
    [packet] = decode(frame)
    assert (packet.op, packet.body, packet.version, packet.sequence) == (5, b'{"cmd":"X"}', 0, 7)

    bodies = [b'{"cmd":"A"}', b'{"cmd":"B","data":{}}', '{"cmd":"弹幕"}'.encode()]
    inner = b"".join(raw_packet(5, body, 0) for body in bodies)
    for version, squeeze in ((2, zlib.compress), (3, brotli.compress)):
        frame = raw_packet(5, squeeze(inner), version) + raw_packet(3, b"\x00\x00\x01\x00", 1)
        packets = decode(frame)
        assert [p.body for p in packets[:3]] == bodies
        assert (packets[3].op, packets[3].body) == (3, b"\x00\x00\x01\x00")
    assert [p.body for p in decode(inner)] == bodies  # version 0: several packets in one frame


def test_oversized_and_broken_packets_are_refused() -> None:
    with pytest.raises(PacketError):
        decode(struct.pack(">IHHII", MAX_PACKET_BYTES + 1, 16, 0, 5, 1) + b"x" * 64)
    with pytest.raises(PacketError):
        encode(Op.MESSAGE, b"x" * MAX_PACKET_BYTES)
    bomb = zlib.compress(raw_packet(5, b"0" * (9 << 20), 0))  # ~9 KiB that inflates to 9 MiB
    with pytest.raises(PacketError, match="over"):
        decode(raw_packet(5, bomb, 2))
    with pytest.raises(PacketError, match="over"):
        decode(raw_packet(5, brotli.compress(b"\x00" * (9 << 20)), 3))
    with pytest.raises(PacketError, match="truncated"):
        decode(raw_packet(5, b"{}", 0)[:-1])
    with pytest.raises(PacketError):
        decode(raw_packet(5, b"not zlib", 2))


def test_signature_matches_the_documented_string_to_sign() -> None:
    body = b'{"code":"ABC123","app_id":42}'
    md5 = hashlib.md5(body).hexdigest()
    to_sign = (
        "x-bili-accesskeyid:my-key-id\n"
        f"x-bili-content-md5:{md5}\n"
        "x-bili-signature-method:HMAC-SHA256\n"
        "x-bili-signature-nonce:fixed-nonce-1\n"
        "x-bili-signature-version:1.0\n"
        "x-bili-timestamp:1700000000"
    )
    expected = hmac.new(b"my-secret", to_sign.encode(), hashlib.sha256).hexdigest()
    headers = sign(body, "my-key-id", "my-secret", nonce="fixed-nonce-1", timestamp=1700000000)
    assert headers["Authorization"] == expected
    assert headers["x-bili-content-md5"] == md5
    assert headers["x-bili-timestamp"] == "1700000000"
    assert headers["Content-Type"] == headers["Accept"] == "application/json"


# --- the open-platform client ------------------------------------------------------------------


async def test_comments_survive_abrupt_disconnects(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sink = Collected()
    async with bilibili_server(replay=40, socket_timeout_s=1.0) as server:
        client = open_client(server, sink)
        task = asyncio.create_task(client.run())
        await wait_until(lambda: server.live_sockets() == 1)
        sent = []
        for batch in range(10):
            for n in range(10):
                text = f"观众问题-{batch * 10 + n}"
                server.send_comment(text, uname=f"工友{n}", viewer=n)
                sent.append(text)
                await asyncio.sleep(0.003)
            if batch in (1, 3, 5, 7, 8):
                await wait_until(lambda: server.live_sockets() == 1)
                server.drop_connections()
            await asyncio.sleep(0.02)
        await wait_until(lambda: sink.texts() >= set(sent), within=15)
        await asyncio.sleep(0.4)  # several WS and game heartbeats on the last connection
        assert server.drops == 5 and server.auths["open"] >= 6
        assert server.socket_heartbeats > 0 and server.game_heartbeats > 0
        assert server.silent_closes == 0  # heartbeats kept every socket alive
        assert server.starts == 1  # a dropped socket reconnects within the same game
        assert set(server.frames_sent) == {0, 2, 3}
        await stop(task)
        assert server.ends == 1
    unique = [e for e in sink.unique().values() if e.kind == "comment"]
    assert Counter(e.text for e in unique) == Counter(sent)  # each exactly once after de-dup
    assert len(sink.events) >= len(sent)  # the replays did deliver duplicates
    first = next(e for e in unique if e.text == "观众问题-0")
    assert (first.platform, first.user, first.user_id) == ("bilibili", "工友0", "open-0000")
    assert first.ts > 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "观众问题" not in logged and "工友" not in logged


async def test_wrong_auth_code_is_fatal_and_names_the_setting() -> None:
    async with bilibili_server() as server:
        client = open_client(server, Collected(), code="WRONG", setting_prefix="bridge.bilibili.")
        started = time.monotonic()
        with pytest.raises(SettingError) as caught:
            await asyncio.wait_for(client.run(), timeout=5)
        assert time.monotonic() - started < 1.0
        assert caught.value.setting == "bridge.bilibili.code" and caught.value.code == 7007
        assert "bridge.bilibili.code" in str(caught.value)
        assert server.start_requests == 1 and server.connections == 0

        client = open_client(server, Collected(), access_key_secret="not-the-secret")
        with pytest.raises(SettingError) as caught:
            await asyncio.wait_for(client.run(), timeout=5)
        assert caught.value.setting == "bilibili.access_key_secret" and caught.value.code == 4002
        assert server.signature_failures == 1 and server.start_requests == 1


async def test_lapsed_or_ended_game_starts_a_new_one() -> None:
    sink = Collected()
    async with bilibili_server(replay=10) as server:
        task = asyncio.create_task(open_client(server, sink).run())
        await wait_until(lambda: server.live_sockets() == 1)
        server.send_comment("before")
        await wait_until(lambda: "before" in sink.texts())

        server.lapse_game()  # the next game heartbeat answers 7003
        await wait_until(lambda: server.starts == 2 and server.live_sockets() == 1)
        server.send_comment("after lapse")
        await wait_until(lambda: "after lapse" in sink.texts())

        server.end_game()  # INTERACTION_END on the socket
        await wait_until(lambda: server.starts == 3 and server.live_sockets() == 1)
        server.send_comment("after end")
        await wait_until(lambda: "after end" in sink.texts())
        assert server.active_games() == 1
        await stop(task)
        assert server.active_games() == 0


async def test_gifts_likes_enters_and_malformed_messages(caplog: pytest.LogCaptureFixture) -> None:
    sink = Collected()
    async with bilibili_server() as server:
        task = asyncio.create_task(open_client(server, sink).run())
        await wait_until(lambda: server.live_sockets() == 1)
        gift_id = server.send_gift("小心心", count=3, uname="张师傅", viewer=7)
        server.send_like(count=12, uname="李阿姨", viewer=8)
        server.send_enter(uname="王工", viewer=9)
        server.send_raw({"cmd": "LIVE_OPEN_PLATFORM_DM", "data": {"msg": "SECRET-TEXT"}})
        server.send_raw({"cmd": "LIVE_OPEN_PLATFORM_DM", "data": "nonsense"})
        server.send_raw({"cmd": "SOMETHING_NEW", "data": {}})
        server.send_comment("still flowing")
        await wait_until(lambda: "still flowing" in sink.texts())
        await stop(task)
    by_kind = {e.kind: e for e in sink.events}
    assert set(by_kind) == {"gift", "like", "enter", "comment"}
    gift = by_kind["gift"]
    assert (gift.msg_id, gift.gift, gift.count, gift.user) == (gift_id, "小心心", 3, "张师傅")
    like = by_kind["like"]
    assert (like.count, like.user, like.user_id) == (12, "李阿姨", "open-0008")
    assert like.msg_id  # derived: the platform gives likes no id
    assert (by_kind["enter"].user, by_kind["enter"].user_id) == ("王工", "open-0009")
    assert len(sink.events) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("malformed Bilibili LIVE_OPEN_PLATFORM_DM" in w for w in warnings) == 2
    assert not any("SECRET-TEXT" in r.getMessage() for r in caplog.records)


async def test_cancelling_run_ends_the_game_and_closes_sockets() -> None:
    async with bilibili_server() as server:
        task = asyncio.create_task(open_client(server, Collected()).run())
        await wait_until(lambda: server.live_sockets() == 1 and server.game_heartbeats > 0)
        started = time.monotonic()
        await stop(task)
        assert time.monotonic() - started < 1.5
        assert server.ends == 1 and server.active_games() == 0
        await wait_until(lambda: server.live_sockets() == 0, within=2)


# --- the web fallback ---------------------------------------------------------------------------


async def test_web_fallback_receives_comments_and_reconnects() -> None:
    sink = Collected()
    async with bilibili_server(replay=10) as server:
        client = WebRoomClient(
            room_id=server.room_id,
            sink=sink,
            api_base=server.api_base,
            socket_scheme="ws",
            timings=FAST,
        )
        task = asyncio.create_task(client.run())
        await wait_until(lambda: server.live_sockets("web") == 1)
        server.send_comment("网页弹幕一", uname="赵师傅", viewer=3)
        server.send_gift("辣条", count=2, uname="钱师傅")
        server.send_enter(uname="孙师傅")
        server.send_like(uname="李师傅")
        await wait_until(lambda: len(sink.unique()) == 4)
        server.drop_connections()
        server.send_comment("网页弹幕二")
        await wait_until(lambda: "网页弹幕二" in sink.texts())
        assert server.auths["web"] == 2 and server.danmu_infos == 2
        assert server.auths["open"] == 0 and server.auth_failures == 0
        await stop(task)
    comment = next(e for e in sink.events if e.text == "网页弹幕一")
    assert comment.user == "赵***"  # anonymous readers see masked names
    assert comment.msg_id.startswith("dm-") and comment.ts > 0
    kinds = {e.kind for e in sink.unique().values()}
    assert kinds == {"comment", "gift", "enter", "like"}
    gift = next(e for e in sink.events if e.kind == "gift")
    assert (gift.gift, gift.count) == ("辣条", 2)


async def test_web_auth_with_a_bad_token_is_refused_by_the_server() -> None:
    """The harness itself: a web auth body with an unknown key gets op 8 code -101."""
    from websockets.asyncio.client import connect

    async with bilibili_server() as server:
        body = b'{"uid":0,"roomid":4242,"protover":3,"platform":"web","type":2,"key":"forged"}'
        async with connect(server.ws_url) as socket:
            await socket.send(raw_packet(7, body, 1))
            reply = decode(await socket.recv())  # type: ignore[arg-type]
        assert (reply[0].op, reply[0].body) == (8, b'{"code":-101}')
        assert server.auth_failures == 1
