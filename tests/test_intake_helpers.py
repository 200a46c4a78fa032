"""The capture-helper intake over real HTTP and WebSocket on loopback.

Payloads are the constructed samples in tests/data/helpers/, shaped as DouyinBarrageGrab and
wxlivespy produce them (see the sources cited there and in anchor/bridges/helpers.py). The
client mode is tested against a local WebSocket server that pushes like DouyinBarrageGrab and
drops the connection twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from anchor.bridges.chat import ChatEvent
from anchor.bridges.intake import (
    MAX_BODY_BYTES,
    BarrageGrabClient,
    HelperSource,
    Intake,
    IntakeConfigError,
)

DATA = Path(__file__).parent / "data" / "helpers"
SECRET = "s3cret-for-tests-only-0123456789"
ENV = {"DY_SECRET": SECRET, "WX_SECRET": SECRET, "PLAIN_SECRET": SECRET}
SOURCES = [
    HelperSource("douyin", "douyin_barrage_grab", "douyin", "DY_SECRET"),
    HelperSource("wx", "wxlivespy", "wechat_channels", "WX_SECRET"),
    HelperSource("mine", "plain", "douyin", "PLAIN_SECRET"),
    HelperSource("slow", "plain", "douyin", "PLAIN_SECRET", rate=0.5, burst=3),
]
AUTH = {"X-Anchor-Secret": SECRET}
VIEWER_WORDS = ["夜班的小王", "快递员老李", "夜班工伤", "互助保障", "环卫班长张姐", "高温补贴"]


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What our side logged (the test's own clients log what they send)."""
    ours = ("anchor", "uvicorn", "starlette")
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(ours))


def douyin_messages() -> list[dict[str, Any]]:
    return json.loads((DATA / "douyin_barrage_grab.json").read_text("utf-8"))["messages"]


def wx_forward() -> dict[str, Any]:
    return json.loads((DATA / "wxlivespy.json").read_text("utf-8"))["forward"]


DOUYIN_EXPECTED = [
    ChatEvent("douyin", "enter", "7412000000000000001", "夜班的小王", "3701234567890123"),
    ChatEvent(
        "douyin",
        "comment",
        "7412000000000000002",
        "夜班的小王",
        "3701234567890123",
        text="请问夜班工伤怎么认定？",
    ),
    ChatEvent("douyin", "like", "7412000000000000003", "夜班的小王", "3701234567890123", count=15),
    ChatEvent(
        "douyin",
        "gift",
        "7412000000000000005",
        "快递员老李",
        "3709876543210987",
        count=3,
        gift="小心心",
    ),
    ChatEvent("douyin", "follow", "7412000000000000006", "快递员老李", "3709876543210987"),
    ChatEvent(
        "douyin",
        "comment",
        "7412000000000000007",
        "快递员老李",
        "3709876543210987",
        text="互助保障住院怎么申请理赔？",
    ),
]


@pytest.fixture
def received() -> list[ChatEvent]:
    return []


@pytest.fixture
async def intake(received: list[ChatEvent]) -> AsyncIterator[Intake]:
    async def sink(event: ChatEvent) -> None:
        received.append(event)

    server = Intake(SOURCES, sink, environ=ENV)
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


@pytest.fixture
async def http(intake: Intake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{intake.port}", timeout=5) as client:
        yield client


def ws_url(intake: Intake, source: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{intake.port}/intake/{source}/ws{query}"


# -- DouyinBarrageGrab -----------------------------------------------------------------------


async def test_douyin_sequence_over_http(http, received, intake, caplog):
    caplog.set_level(logging.DEBUG)
    answer = await http.post("/intake/douyin", json=douyin_messages(), headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "accepted": 6, "skipped": 1}  # room stats skipped
    assert received == DOUYIN_EXPECTED
    assert intake.counts("douyin") == {"accepted": 6, "skipped": 1}
    assert not any(word in server_log(caplog) for word in VIEWER_WORDS)


async def test_douyin_sequence_over_websocket_push(intake, received):
    async with websockets.connect(ws_url(intake, "douyin"), additional_headers=AUTH) as ws:
        for message in douyin_messages():
            await ws.send(json.dumps(message, ensure_ascii=False))
    for _ in range(100):
        if len(received) == len(DOUYIN_EXPECTED):
            break
        await asyncio.sleep(0.02)
    assert received == DOUYIN_EXPECTED


async def test_client_mode_survives_two_dropped_connections(received, caplog):
    """The helper pushes two messages, drops; pushes two, drops abruptly; then the rest."""
    caplog.set_level(logging.DEBUG)
    messages = [json.dumps(m, ensure_ascii=False) for m in douyin_messages()]
    batches = [messages[:2], messages[2:4], messages[4:]]
    connections = 0
    done = asyncio.Event()

    async def helper(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        batch = batches[min(connections, 3) - 1]
        for text in batch:
            await connection.send(text)
        if connections == 1:
            await connection.close(1001, "going away")
        elif connections == 2:
            await asyncio.sleep(0.05)
            connection.transport.abort()  # no closing handshake at all
        else:
            done.set()
            await connection.wait_closed()

    all_in = asyncio.Event()
    wanted = {e.key for e in DOUYIN_EXPECTED}

    async def sink(event: ChatEvent) -> None:
        received.append(event)
        if wanted <= {e.key for e in received}:
            all_in.set()

    async with serve(helper, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        source = HelperSource("douyin", "douyin_barrage_grab", "douyin")
        client = BarrageGrabClient(
            f"ws://127.0.0.1:{port}", source, sink, min_backoff=0.02, max_backoff=0.1
        )
        task = asyncio.create_task(client.run(), name="barrage-grab-test")
        try:
            async with asyncio.timeout(5):
                await done.wait()
                await all_in.wait()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert connections == 3
    assert {e.key for e in received} == {e.key for e in DOUYIN_EXPECTED}
    comments = {e.key for e in received if e.kind == "comment"}
    assert comments == {"douyin:7412000000000000002", "douyin:7412000000000000007"}
    assert client.counts["connections"] == 3
    assert not any(word in server_log(caplog) for word in VIEWER_WORDS)


async def test_client_mode_is_cancellable_while_the_helper_is_down(received):
    async def sink(event: ChatEvent) -> None:
        received.append(event)

    source = HelperSource("douyin", "douyin_barrage_grab", "douyin")
    client = BarrageGrabClient("ws://127.0.0.1:9", source, sink, min_backoff=0.01)
    task = asyncio.create_task(client.run(), name="barrage-grab-down")
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert received == []


def test_backoff_doubles_from_one_second_to_a_thirty_second_cap():
    source = HelperSource("douyin", "douyin_barrage_grab", "douyin")

    async def sink(event: ChatEvent) -> None: ...

    client = BarrageGrabClient("ws://127.0.0.1:8888", source, sink)
    ceilings = [1, 2, 4, 8, 16, 30, 30]
    for failures, ceiling in enumerate(ceilings, start=1):
        delay = client._backoff(failures)
        assert ceiling / 2 <= delay <= ceiling


# -- wxlivespy -------------------------------------------------------------------------------

WX_EXPECTED = [
    ChatEvent(
        "wechat_channels",
        "enter",
        "finderlive_usermsg_enter_6B1F0C2A-0000-4000-8000-000000000101_o9hHnConstructedZhangJie",
        "环卫班长张姐",
        "o9hHnConstructedZhangJie",
        ts=1706862000.123,
    ),
    ChatEvent(
        "wechat_channels",
        "comment",
        "finderlive_usermsg_comment_6B1F0C2A-0000-4000-8000-000000000102_o9hHnConstructedZhangJie",
        "环卫班长张姐",
        "o9hHnConstructedZhangJie",
        text="高温补贴今年什么时候发？",
        ts=1706862000.123,
    ),
]


async def test_wxlivespy_forward_mapped(http, received):
    answer = await http.post("/intake/wx", json=wx_forward(), headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "accepted": 4, "skipped": 2}  # combogift, levelup
    assert received[:2] == WX_EXPECTED
    like, gift = received[2:]
    assert (like.kind, like.count, like.user_id) == ("like", 1, "o9hHnConstructedZhangJie")
    assert (gift.kind, gift.count, gift.gift) == ("gift", 2, "")
    assert gift.msg_id.endswith("_b2afac411cfad2d6f5fe69e1c2ec3901")


async def test_wxlivespy_gzipped_forward_with_secret_in_the_url(http, received):
    """wxlivespy can only be given a URL, and gzips when `gzip_forward_data` is on."""
    body = gzip.compress(json.dumps(wx_forward(), ensure_ascii=False).encode("utf-8"))
    answer = await http.post(
        f"/intake/wx?secret={SECRET}",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200
    assert received[:2] == WX_EXPECTED


async def test_wxlivespy_event_without_msg_id_keyed_by_live_session_and_seq(http, received):
    forward = wx_forward()
    forward["events"] = [dict(forward["events"][1], msg_id=None)]
    assert (await http.post("/intake/wx", json=forward, headers=AUTH)).status_code == 200
    assert received[0].msg_id == "2042584726460027800:102"


# -- our plain shape -------------------------------------------------------------------------


async def test_plain_events(http, received):
    items = [
        {"id": "p-1", "user": "小李", "text": "工会会费怎么交？"},
        {"id": 2, "user": "小赵", "kind": "gift", "gift": "花", "count": 3, "ts": 1_778_000_000},
    ]
    answer = await http.post("/intake/mine", json=items, headers=AUTH)
    assert answer.status_code == 200
    assert received == [
        ChatEvent("douyin", "comment", "p-1", "小李", text="工会会费怎么交？"),
        ChatEvent("douyin", "gift", "2", "小赵", count=3, gift="花", ts=1_778_000_000.0),
    ]


# -- refusals --------------------------------------------------------------------------------


async def test_missing_or_wrong_secret_is_401_and_nothing_reaches_the_sink(http, intake, received):
    one = douyin_messages()[1]
    attempts = [
        await http.post("/intake/douyin", json=one),
        await http.post("/intake/douyin", json=one, headers={"X-Anchor-Secret": "wrong"}),
        await http.post("/intake/douyin?secret=wrong", json=one),
        await http.post("/intake/douyin", json=one, headers={"X-Anchor-Secret": SECRET + "x"}),
    ]
    assert [a.status_code for a in attempts] == [401, 401, 401, 401]
    for headers in ({}, {"X-Anchor-Secret": "wrong"}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(intake, "douyin"), additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
    assert received == []
    assert intake.counts("douyin") == {"unauthorized": 6}


async def test_unknown_source_is_404(http):
    assert (await http.post("/intake/nope", json={}, headers=AUTH)).status_code == 404


async def test_no_secret_configured_refuses_to_start():
    async def sink(event: ChatEvent) -> None: ...

    for environ in ({}, {"DY_SECRET": "short"}):
        with pytest.raises(IntakeConfigError, match="DY_SECRET"):
            await Intake(SOURCES[:1], sink, environ=environ).start()
    unnamed = HelperSource("douyin", "douyin_barrage_grab", "douyin")
    with pytest.raises(IntakeConfigError, match="secret"):
        await Intake([unnamed], sink, environ=ENV).start()


async def test_rate_limit_is_429_over_http_and_1008_over_websocket(http, intake, received):
    item = {"id": "r-1", "user": "u", "text": "问题"}
    codes = [
        (await http.post("/intake/slow", json=item, headers=AUTH)).status_code for _ in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    assert intake.counts("slow")["rate_limited"] == 2

    await asyncio.sleep(2.1)  # 0.5/s refills one token
    async with websockets.connect(ws_url(intake, "slow"), additional_headers=AUTH) as ws:
        for _ in range(3):
            await ws.send(json.dumps(item))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_oversized_is_413(http, intake, received):
    big = [{"id": f"b-{i}", "user": "u", "text": "x" * 400} for i in range(200)]
    assert len(json.dumps(big)) > MAX_BODY_BYTES
    assert (await http.post("/intake/mine", json=big, headers=AUTH)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 8192

    chunked = await http.post("/intake/mine", content=chunks(), headers=AUTH)
    assert chunked.status_code == 413

    bomb = gzip.compress(b"[" + b" " * (4 * MAX_BODY_BYTES) + b"]")
    unzipped = await http.post(
        "/intake/mine", content=bomb, headers={**AUTH, "Content-Encoding": "gzip"}
    )
    assert unzipped.status_code == 413

    many = [{"id": f"m-{i}", "user": "u", "text": "问"} for i in range(201)]
    assert (await http.post("/intake/mine", json=many, headers=AUTH)).status_code == 413

    async with websockets.connect(ws_url(intake, "mine"), additional_headers=AUTH) as ws:
        await ws.send(json.dumps({"id": "w", "user": "u", "text": "x" * (MAX_BODY_BYTES + 1)}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert received == []
    assert intake.counts("mine")["too_large"] == 5


async def test_malformed_is_400_naming_the_field_without_the_payload(
    http, intake, received, caplog
):
    caplog.set_level(logging.DEBUG)
    secret_words = "夜班的小王 住在幸福路12号"
    broken_json = ('{"id": "x", "user": "' + secret_words + '", "text": ').encode()
    answer = await http.post("/intake/mine", content=broken_json, headers=AUTH)
    assert answer.status_code == 400
    assert "幸福路" not in answer.text and "夜班" not in answer.text

    pack = douyin_messages()[1]
    data = json.loads(pack["Data"])
    data["User"]["Nickname"] = ["夜班的小王", "幸福路12号"]
    pack["Data"] = json.dumps(data, ensure_ascii=False)
    answer = await http.post("/intake/douyin", json=[douyin_messages()[0], pack], headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"] == "[1].Data.User.Nickname: expected a string"

    answer = await http.post(
        "/intake/douyin", json={"Type": 1, "Data": "{not json " + secret_words}, headers=AUTH
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "Data: not valid JSON"

    answer = await http.post(
        "/intake/wx", json={"events": {"nickname": secret_words}}, headers=AUTH
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "events: expected a list")

    async with websockets.connect(ws_url(intake, "mine"), additional_headers=AUTH) as ws:
        await ws.send('{"id": 1, "user": "' + secret_words)
        reply = json.loads(await ws.recv())
        assert reply == {"ok": False, "error": "message: not valid JSON"}
        await ws.send(json.dumps({"id": "k", "user": "u", "text": "问", "kind": "shout"}))
        assert "kind" in json.loads(await ws.recv())["error"]

    assert received == []  # a bad item spoils its whole payload, mapped before delivery
    assert "幸福路" not in server_log(caplog) and "夜班" not in server_log(caplog)
    assert "refused payload" in server_log(caplog)
    assert intake.counts("mine")["malformed"] == 3


async def test_websocket_connections_per_source_are_capped(intake):
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(4):
            await stack.enter_async_context(
                websockets.connect(ws_url(intake, "mine"), additional_headers=AUTH)
            )
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(intake, "mine"), additional_headers=AUTH):
                pass
        assert refused.value.response.status_code == 503
