"""The bridge core (screening, spool, broker outlet) against the real mosquitto.

What is proved is what a viewer and the engine see: which comments arrive as questions, that a
broker outage during a burst loses none and doubles none, that a key is asked once even across
a restart, that a full spool refuses new comments and keeps the old, that what was spooled
before a `kill -9` is sent by the next run, and that the shipped ACL lets a bridge write
questions and audience events and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from anchor.bridges.bridge import Bridge
from anchor.bridges.chat import ChatEvent
from anchor.bridges.config import (
    BridgeConfig,
    BridgeQuestionsConfig,
    IntakeConfig,
    load_bridge_config,
    parse_bridge_config,
)
from anchor.bridges.screening import Screening, ViewerLimit
from anchor.bridges.spool import Outgoing, Spool, SpoolError
from anchor.config import ConfigError
from anchor.harness.mosquitto import Broker, Login, ShippedBroker
from anchor.links.probe import NOT_AUTHORIZED, probe_publish

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = "anchor/default/questions"
AUDIENCE = "anchor/default/audience"
WAIT = 20.0


def bridge_config(tmp_path: Path, port: int, **blocks: Any) -> BridgeConfig:
    data: dict[str, Any] = {
        "name": "chat",
        "channel": "default",
        "platform": {"kind": "bilibili_web", "room_id": 1},
        "mqtt": {"host": "127.0.0.1", "port": port, "max_reconnect_seconds": 2},
        "spool": {"path": str(tmp_path / "chat.spool")},
        "questions": {"per_viewer_per_minute": 60},
    }
    for block, values in blocks.items():
        data[block] = {**data[block], **values} if isinstance(values, dict) else values
    return parse_bridge_config(data, base_dir=tmp_path)


def comment(number: int, text: str | None = None, *, user: str | None = None) -> ChatEvent:
    return ChatEvent(
        platform="bilibili",
        kind="comment",
        msg_id=f"m{number}",
        user=user or f"工友{number}",
        user_id=f"id-{user}" if user else f"u{number}",
        text=text or f"第{number}个问题：工伤认定需要准备哪些材料？",
        ts=1_700_000_000.0 + number,
    )


async def until(condition: Callable[[], bool], within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(bridge: Bridge) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(bridge.run(), name="bridge-under-test")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def watcher(broker: Broker, login: Login | None = None, *, session: str = "watcher") -> Any:
    """A client with a persistent session: what it subscribed to is queued while it is away."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    return aiomqtt.Client(
        **broker.client_options(login),
        identifier=session,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=properties,
    )


async def subscribe(broker: Broker, topics: list[str], login: Login | None = None) -> None:
    async with watcher(broker, login) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)


async def collect(
    broker: Broker, count: int, *, login: Login | None = None, quiet: float = 1.0
) -> list[tuple[str, dict[str, Any]]]:
    """Messages for the watcher's session until ``count`` came, then ``quiet`` s more."""
    received: list[tuple[str, dict[str, Any]]] = []
    async with watcher(broker, login) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT):
                async for message in client.messages:
                    received.append((str(message.topic), json.loads(bytes(message.payload))))
                    if len(received) >= count:
                        break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(quiet):
                async for message in client.messages:
                    received.append((str(message.topic), json.loads(bytes(message.payload))))
    return received


# --- configuration --------------------------------------------------------------------------


def test_config_defaults_follow_the_name_and_errors_name_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "bridge.yaml"
    good.write_text(
        "name: bilibili\nchannel: union\nplatform:\n  kind: intake\n  sources:\n"
        "    - {name: dy, format: plain, platform: douyin, secret_env: DY_SECRET}\n",
        encoding="utf-8",
    )
    config = load_bridge_config(good)
    assert config.mqtt.username == "bridge-bilibili"
    assert config.spool_path == tmp_path / "bridge-bilibili.spool"
    assert config.questions_topic == "anchor/union/questions"
    assert config.audience_topic == "anchor/union/audience"
    assert isinstance(config.platform, IntakeConfig) and config.platform.listen == "127.0.0.1:8090"
    assert config.spool.max_mb == 64 and config.questions.audience
    assert "主播好" in config.questions.greetings

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: Bili Bili\nplatform:\n  kind: bilibili_open\n  app_id: abc\n"
        "questions:\n  ignore: ['(unclosed']\n  per_viewr_per_minute: 3\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_bridge_config(bad)
    errors = caught.value.errors
    assert any(e.startswith(f"{bad}:1: name:") for e in errors), errors
    assert any(e.startswith(f"{bad}:4: platform.bilibili_open.app_id:") for e in errors), errors
    assert any(e.startswith(f"{bad}:6: questions.ignore:") for e in errors), errors
    assert any("did you mean 'per_viewer_per_minute'" in e for e in errors), errors

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: x\nplatform: {kind: tiktok}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown.yaml:2: platform"):
        load_bridge_config(unknown)


# --- screening ------------------------------------------------------------------------------

SCREENED = [
    ("你好", "greeting"),
    ("主播好！", "greeting"),
    ("Hello!!", "greeting"),
    ("大家好～～", "greeting"),
    ("来了", "greeting"),
    ("😀😀😀", "symbols"),
    ("？？？", "symbols"),
    ("...", "symbols"),
    ("   ", "empty"),
    ("666", "digits"),
    ("111", "digits"),
    ("2333", "digits"),
    ("哈哈哈哈", "repeated"),
    ("哈哈哈", "repeated"),
    ("hahaha", "repeated"),
    ("好", "too_short"),
    ("求关注一下主播", "ignored"),
    ("问" * 301, "too_long"),
    ("工伤认定需要准备哪些材料？", None),
    ("职工互助保障怎么申请理赔", None),
    ("How do I apply for a mutual-aid claim?", None),
    ("医保报销比例是多少🤔", None),
    ("你好，请问工会会费怎么交？", None),
]


@pytest.mark.parametrize(("text", "reason"), SCREENED)
def test_which_comments_are_questions(text: str, reason: str | None) -> None:
    screening = Screening(BridgeQuestionsConfig(ignore=("^求关注",)))
    assert screening.reason(comment(1, text)) == reason


def test_each_viewer_has_a_bucket_and_the_table_is_bounded() -> None:
    now = [0.0]
    screening = Screening(BridgeQuestionsConfig(per_viewer_per_minute=3), clock=lambda: now[0])
    asked = [screening.reason(comment(n, user="老王")) for n in range(5)]
    assert asked == [None, None, None, "rate_limited", "rate_limited"]
    assert screening.reason(comment(9, "666", user="老王")) == "digits"  # noise costs nothing
    assert screening.reason(comment(10, user="小李")) is None  # another viewer
    now[0] += 20.0  # a third of a minute: one token back
    assert screening.reason(comment(11, user="老王")) is None
    assert screening.reason(comment(12, user="老王")) == "rate_limited"

    limit = ViewerLimit(1, max_viewers=100, clock=lambda: 0.0)
    for viewer in range(1000):
        assert limit.allow(f"v{viewer}")
    assert len(limit) == 100
    assert not limit.allow("v999") and limit.allow("v0")  # v0 was forgotten, starts afresh


# --- the spool ------------------------------------------------------------------------------


async def test_spool_is_fifo_deduplicates_caps_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    question = [Outgoing(QUESTIONS, b"q" * 100, f"k{n}") for n in range(10)]
    size = question[0].size
    spool = await Spool.open(path, max_bytes=size * 7 + 10)
    try:
        assert await spool.put_many(question[:4] + [question[0]]) == ["spooled"] * 4 + ["duplicate"]
        likes = [Outgoing(AUDIENCE, b"l" * 250, f"like{n}", qos=0) for n in range(3)]
        assert await spool.put_many(likes) == ["spooled", "full", "full"]  # half for best effort
        assert await spool.put_many(question[4:8]) == ["spooled", "full", "full", "full"]
        with pytest.raises(SpoolError, match="in use by another bridge"):
            await Spool.open(path, max_bytes=size * 7 + 10)
        first = await spool.peek(3)
        assert [m.payload[:1] for m in first] == [b"q", b"q", b"q"]
        assert await spool.remove([first[0].seq]) == 1
    finally:
        await spool.aclose()
    again = await Spool.open(path, max_bytes=size * 7 + 10)
    try:
        assert again.pending == 5
        kinds = [m.topic for m in await again.peek(10)]
        assert kinds == [QUESTIONS] * 3 + [AUDIENCE, QUESTIONS]  # in the order accepted
        assert await again.put(question[0]) == "duplicate"  # sent already, still seen
        assert await again.put(question[8]) == "spooled"  # room again after the removal
    finally:
        await again.aclose()


async def test_spool_forgets_old_keys_beyond_its_bound(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path / "s.spool", max_bytes=10_000_000, max_seen=10)
    try:
        for batch in range(12):
            keys = [Outgoing(QUESTIONS, b"x", f"k{batch}-{n}") for n in range(100)]
            await spool.put_many(keys)
        assert spool._seen_count <= 10 + 1000 + 100
        assert await spool.put(Outgoing(QUESTIONS, b"x", "k0-0")) == "spooled"  # forgotten
        assert await spool.put(Outgoing(QUESTIONS, b"x", "k11-99")) == "duplicate"
    finally:
        await spool.aclose()


# --- against the broker ---------------------------------------------------------------------


async def test_a_30_second_outage_during_a_burst_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Broker
) -> None:
    await subscribe(mosquitto, [QUESTIONS, AUDIENCE])
    bridge = Bridge(bridge_config(tmp_path, mosquitto.port))
    async with running(bridge):
        await until(lambda: bridge.connected)
        mosquitto.stop()
        await until(lambda: not bridge.connected)
        started = time.monotonic()
        for number in range(200):
            await bridge.sink(comment(number))
            if number % 10 == 0:  # noise and audience events in between
                await bridge.sink(comment(1000 + number, "666"))
                await bridge.sink(comment(2000 + number, "主播好"))
                await bridge.sink(
                    ChatEvent("bilibili", "like", f"like{number}", f"观众{number}", count=2)
                )
        await until(lambda: bridge.counters.spooled == 220)
        await asyncio.sleep(max(0.0, 30.0 - (time.monotonic() - started)))
        assert bridge.pending == 220 and not bridge.connected
        mosquitto.start()
        await until(lambda: bridge.pending == 0, within=30)
        assert bridge._outlet is not None and bridge._outlet.published == 220
        counters = bridge.counters
        assert counters.questions == 200 and counters.audience == 20
        assert counters.dropped == {"digits": 20, "greeting": 20}
    received = await collect(mosquitto, 200)
    questions = [payload for topic, payload in received if topic == QUESTIONS]
    assert [q["id"] for q in questions] == [f"bilibili:m{n}" for n in range(200)]  # once, in order
    assert questions[7] == {
        "id": "bilibili:m7",
        "user": "工友7",
        "text": "第7个问题：工伤认定需要准备哪些材料？",
        "platform": "bilibili",
        "ts": 1_700_000_007.0,
    }
    # Audience events go out with QoS 0, which the broker does not queue for an absent
    # subscriber (so likes never crowd questions out of the engine's queue): they were kept
    # in the spool through the outage and published after it.
    assert [topic for topic, _ in received].count(AUDIENCE) == 0


async def test_the_same_key_is_published_once_even_after_a_restart(
    tmp_path: Path, mosquitto: Broker
) -> None:
    await subscribe(mosquitto, [QUESTIONS])
    config = bridge_config(tmp_path, mosquitto.port)
    first = Bridge(config)
    async with running(first):
        await first.sink(comment(1))
        await first.sink(comment(1))
        await first.sink(comment(2))
        await until(lambda: first.counters.spooled + first.counters.duplicates == 3)
        await until(lambda: first.pending == 0)
    assert first.counters.duplicates == 1
    second = Bridge(config)
    async with running(second):
        await second.sink(comment(1))
        await second.sink(comment(3))
        await until(lambda: second.counters.spooled + second.counters.duplicates == 2)
        await until(lambda: second.pending == 0)
    assert second.counters.duplicates == 1
    received = await collect(mosquitto, 3)
    assert [payload["id"] for _, payload in received] == [
        "bilibili:m1",
        "bilibili:m2",
        "bilibili:m3",
    ]


async def test_a_full_spool_refuses_new_comments_and_keeps_what_it_took(
    tmp_path: Path, mosquitto: Broker
) -> None:
    await subscribe(mosquitto, [QUESTIONS])
    mosquitto.stop()
    config = bridge_config(tmp_path, mosquitto.port, spool={"max_mb": 0.004})  # about 4 KB
    bridge = Bridge(config)
    async with running(bridge):
        for number in range(50):
            await bridge.sink(comment(number))
        await until(lambda: bridge.counters.spooled + bridge.counters.spool_full == 50)
        kept = bridge.counters.spooled
        assert 0 < kept < 50 and bridge.counters.spool_full == 50 - kept
        mosquitto.start()
        await until(lambda: bridge.pending == 0)
    received = await collect(mosquitto, kept)
    assert [payload["id"] for _, payload in received] == [f"bilibili:m{n}" for n in range(kept)]


SPOOLER = """
import asyncio, json, sys
from anchor.bridges.bridge import Bridge
from anchor.bridges.chat import ChatEvent
from anchor.bridges.config import parse_bridge_config

async def main():
    bridge = Bridge(parse_bridge_config(json.loads(sys.argv[1])))
    task = asyncio.create_task(bridge.run())
    for n in range(20):
        await bridge.sink(ChatEvent("bilibili", "comment", f"k{n}", f"u{n}", text=f"问题{n}是什么"))
    while bridge.counters.spooled < 20:
        await asyncio.sleep(0.01)
    print("spooled", flush=True)
    await asyncio.sleep(3600)
    task.cancel()

asyncio.run(main())
"""


async def test_what_was_spooled_before_kill_9_is_sent_by_the_next_run(
    tmp_path: Path, mosquitto: Broker
) -> None:
    await subscribe(mosquitto, [QUESTIONS])
    mosquitto.stop()
    config = bridge_config(tmp_path, mosquitto.port)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SPOOLER, json.dumps(config.model_dump(mode="json")),
        stdout=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), WAIT)
        assert line.strip() == b"spooled"
    finally:
        process.send_signal(signal.SIGKILL)  # no flush, no close: as after a crash
        await process.wait()
    mosquitto.start()
    bridge = Bridge(config)
    async with running(bridge):
        await until(lambda: bridge.pending == 0 and bridge.connected)
    received = await collect(mosquitto, 20)
    assert [payload["id"] for _, payload in received] == [f"bilibili:k{n}" for n in range(20)]


async def test_the_shipped_acl_lets_a_bridge_ask_and_nothing_else(
    tmp_path: Path, shipped_mosquitto: ShippedBroker
) -> None:
    broker = shipped_mosquitto
    chat = broker.bridge("chat")
    config = bridge_config(tmp_path, broker.port)
    assert config.mqtt.username == chat.username
    bridge = Bridge(config, password=chat.password)
    received: list[tuple[str, str]] = []
    async with (
        aiomqtt.Client(**broker.client_options(broker.engine)) as engine,
        aiomqtt.Client(**broker.client_options(broker.bridge("other"))) as spy,
    ):
        await engine.subscribe(QUESTIONS, qos=1)
        await engine.subscribe(AUDIENCE, qos=1)
        await spy.subscribe("anchor/#", qos=1)  # another bridge may read nothing
        async with running(bridge):
            await bridge.sink(comment(1))
            await bridge.sink(ChatEvent("bilibili", "gift", "g1", "小明", count=3, gift="花"))
            async with asyncio.timeout(WAIT):
                async for message in engine.messages:
                    payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                    received.append((str(message.topic), payload["id"]))
                    if len(received) == 2:
                        break
            assert bridge._outlet is not None and bridge._outlet.published == 2
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for _message in spy.messages:
                    pytest.fail("a bridge read another bridge's messages")
    assert received == [(QUESTIONS, "bilibili:m1"), (AUDIENCE, "bilibili:g1")]
    for topic in ("control", "answers", "events", "status", "questions-other"):
        result = await asyncio.to_thread(
            probe_publish,
            broker.host,
            broker.port,
            topic=f"anchor/default/{topic}",
            payload=b'{"cmd": "say", "text": "x"}',
            username=chat.username,
            password=chat.password,
        )
        assert result.connected and result.publish_code == NOT_AUTHORIZED, (topic, result)

    elsewhere = bridge_config(tmp_path / "elsewhere", broker.port, channel="elsewhere")
    refused = Bridge(elsewhere, password=chat.password)
    async with running(refused):
        await refused.sink(comment(5))
        await until(lambda: refused.counters.spooled == 1 and refused.pending == 0)
        assert refused._outlet is not None
        assert dict(refused._outlet.refused) == {"anchor/elsewhere/questions": 1}
