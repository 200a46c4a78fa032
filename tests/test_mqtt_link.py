"""The MQTT link against a real mosquitto running the shipped, secured configuration
(deploy/mosquitto, with users from `anchor broker secrets`): what a chat bridge, an operator
console and a status dashboard on the other side of the broker observe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from anchor.config import MqttConfig
from anchor.harness.mosquitto import Login, ShippedBroker, mosquitto_pub
from anchor.links.mqtt import RECEIVE_MAXIMUM, MqttLink

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "union"
QUESTION = {"id": "q-1", "user": "阿强", "text": "工伤认定需要多长时间？", "platform": "douyin"}
WAIT = 10.0  # a guard against hanging, never a measure of speed


@pytest.fixture
def mosquitto(shipped_mosquitto: ShippedBroker) -> ShippedBroker:
    """Every test here runs against the shipped configuration: the engine logs in as its own
    user, questions come from a bridge's user, control and dashboards from an operator's."""
    return shipped_mosquitto


async def ask(broker: ShippedBroker, payload: str | bytes | list[str]) -> None:
    """A question published the way a chat bridge does: mosquitto_pub, as the bridge's user."""
    await mosquitto_pub(broker, f"anchor/{CHANNEL}/questions", payload, login=broker.bridge())


class Inbox:
    """What a handler was given, in order; a handler can be told to fail or to hold."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.failures_left = 0
        self.release = asyncio.Event()
        self.release.set()
        self._arrived = asyncio.Condition()

    async def __call__(self, payload: bytes) -> None:
        await self.release.wait()
        if self.failures_left:
            self.failures_left -= 1
            async with self._arrived:
                self.payloads.append(payload)
                self._arrived.notify_all()
            raise RuntimeError("the store is not available")
        async with self._arrived:
            self.payloads.append(payload)
            self._arrived.notify_all()

    async def wait_for(self, count: int) -> list[bytes]:
        async with asyncio.timeout(WAIT), self._arrived:
            await self._arrived.wait_for(lambda: len(self.payloads) >= count)
        return self.payloads

    def decoded(self) -> list[dict]:
        return [json.loads(payload) for payload in self.payloads]


def mqtt_config(broker: ShippedBroker, **overrides: object) -> MqttConfig:
    return MqttConfig(
        host=broker.host, port=broker.port, username=broker.engine.username,
        max_reconnect_seconds=1, keepalive_seconds=5, **overrides,
    )  # fmt: skip


def make_link(
    broker: ShippedBroker,
    questions: Inbox | None = None,
    control: Inbox | None = None,
    status: Callable[[], dict] = dict,
    **overrides: object,
) -> MqttLink:
    return MqttLink(
        mqtt_config(broker, **overrides),
        CHANNEL,
        password=broker.engine.password,
        on_question=questions or Inbox(),
        on_control=control or Inbox(),
        status=status,
    )


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll a state the link exposes only as a property (connected, backlog)."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"gave up waiting: {what}")


@contextlib.asynccontextmanager
async def running(link: MqttLink) -> AsyncIterator[MqttLink]:
    """The link's run() as the daemon runs it: a task, connected, cancelled at the end."""
    task = asyncio.create_task(link.run(), name="mqtt-link")
    try:
        await until(lambda: link.connected or task.done(), "the link to connect")
        if task.done():
            task.result()
        yield link
    finally:
        task.cancel()
        async with asyncio.timeout(WAIT):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert task.cancelled()  # run() ends only by cancellation, and does end


@contextlib.asynccontextmanager
async def subscriber(
    broker: ShippedBroker, *topics: str, login: Login | None = None
) -> AsyncIterator[aiomqtt.Client]:
    """An operator's console (or ``login``) watching ``topics``."""
    options = broker.client_options(login or broker.operator())
    async with aiomqtt.Client(**options, timeout=WAIT) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        yield client


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(WAIT):
        return await anext(aiter(client.messages))


async def retained_status(broker: ShippedBroker) -> dict:
    """What a dashboard that connects now sees on the status topic."""
    async with subscriber(broker, f"anchor/{CHANNEL}/status") as client:
        message = await next_message(client)
    assert message.retain
    return json.loads(message.payload)


async def test_question_reaches_handler_byte_for_byte(
    mosquitto: ShippedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    questions = Inbox()
    payload = json.dumps(QUESTION, ensure_ascii=False).encode("utf-8")
    link = make_link(mosquitto, questions)
    async with running(link):
        await ask(mosquitto, payload)
        received = await questions.wait_for(1)

    assert received == [payload]
    assert json.loads(received[0])["text"] == "工伤认定需要多长时间？"
    assert mosquitto.engine.password not in caplog.text
    assert "工伤认定" not in caplog.text  # viewers' words are never logged


async def test_control_reaches_its_own_handler(mosquitto: ShippedBroker) -> None:
    questions, control = Inbox(), Inbox()
    async with running(make_link(mosquitto, questions, control)):
        await mosquitto_pub(
            mosquitto,
            f"anchor/{CHANNEL}/control",
            '{"cmd": "say", "text": "大家好"}',
            login=mosquitto.operator("cli"),
        )
        await control.wait_for(1)

    assert control.decoded() == [{"cmd": "say", "text": "大家好"}]
    assert questions.payloads == []


async def test_answers_and_events_reach_a_subscriber_as_utf8_json(
    mosquitto: ShippedBroker,
) -> None:
    answer = {
        "question_id": "q-1",
        "question": "工伤认定需要多长时间？",
        "answer": "一般在受理之日起六十日内作出认定。",
        "source": "kb",
        "aired_at": 1_700_000_000.5,
    }
    event = {"type": "speaking", "text": "欢迎来到职工服务直播间"}
    async with (
        running(make_link(mosquitto)) as link,
        subscriber(mosquitto, f"anchor/{CHANNEL}/answers", f"anchor/{CHANNEL}/events") as sub,
    ):
        await link.publish_answer(answer)
        got_answer = await next_message(sub)
        await link.publish_event(event)
        got_event = await next_message(sub)

    assert got_answer.topic.value == f"anchor/{CHANNEL}/answers"
    assert got_answer.qos == 1
    assert json.loads(got_answer.payload) == answer
    assert "一般在受理之日起".encode() in got_answer.payload  # not \\u escapes
    assert got_event.topic.value == f"anchor/{CHANNEL}/events"
    assert json.loads(got_event.payload) == event


async def test_status_is_retained_online_then_offline_on_clean_shutdown(
    mosquitto: ShippedBroker,
) -> None:
    async with running(make_link(mosquitto, status=lambda: {"pending": 2, "segment": "工伤"})):
        online = await retained_status(mosquitto)
    offline = await retained_status(mosquitto)

    assert online == {"state": "online", "pending": 2, "segment": "工伤"}
    assert offline == {"state": "offline"}


KILLABLE_ENGINE = """
import asyncio, os, sys
from anchor.config import MqttConfig
from anchor.links.mqtt import MqttLink

async def ignore(payload):
    pass

config = MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), username=sys.argv[3],
                    keepalive_seconds=5)
link = MqttLink(config, sys.argv[2], password=os.environ["ANCHOR_MQTT_PASSWORD"],
                on_question=ignore, on_control=ignore, status=lambda: {"pid": 1})
asyncio.run(link.run())
"""


async def test_last_will_marks_offline_when_the_engine_dies(mosquitto: ShippedBroker) -> None:
    engine = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLABLE_ENGINE, str(mosquitto.port), CHANNEL,
        mosquitto.engine.username, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "ANCHOR_MQTT_PASSWORD": mosquitto.engine.password},
    )  # fmt: skip
    try:
        async with subscriber(mosquitto, f"anchor/{CHANNEL}/status") as sub:
            first = await next_message(sub)
            assert json.loads(first.payload) == {"pid": 1, "state": "online"}
            engine.kill()  # SIGKILL: no DISCONNECT, no offline message of its own
            await engine.wait()
            will = await next_message(sub)
    finally:
        if engine.returncode is None:
            engine.kill()
            await engine.wait()

    assert json.loads(will.payload) == {"state": "offline"}
    assert await retained_status(mosquitto) == {"state": "offline"}


async def test_reconnects_by_itself_after_a_broker_restart(mosquitto: ShippedBroker) -> None:
    questions = Inbox()
    async with running(make_link(mosquitto, questions)) as link:
        mosquitto.stop()
        await until(lambda: not link.connected, "the link to notice the broker is gone")
        mosquitto.start()
        await until(lambda: link.connected, "the link to reconnect")
        await ask(mosquitto, b'{"id": "after"}')
        await questions.wait_for(1)

    assert questions.decoded() == [{"id": "after"}]
    assert (await retained_status(mosquitto))["state"] == "offline"


async def test_questions_sent_while_the_engine_is_down_arrive_when_it_is_back(
    mosquitto: ShippedBroker,
) -> None:
    async with running(make_link(mosquitto)):
        pass  # the first connection creates the persistent session
    await ask(mosquitto, b'{"id": "while-down"}')
    mosquitto.stop()  # the broker restarts too: the session and its queue are on disk
    mosquitto.start()
    await ask(mosquitto, b'{"id": "after-broker-restart"}')

    questions = Inbox()
    async with running(make_link(mosquitto, questions)):
        await questions.wait_for(2)

    assert questions.decoded() == [{"id": "while-down"}, {"id": "after-broker-restart"}]


async def test_a_question_whose_handler_fails_is_not_acked_and_comes_again(
    mosquitto: ShippedBroker,
) -> None:
    questions = Inbox()
    questions.failures_left = 1
    async with running(make_link(mosquitto, questions)) as link:
        await ask(mosquitto, b'{"id": "stored-late"}')
        await questions.wait_for(2)  # the failed delivery, then the broker's redelivery
        assert questions.decoded() == [{"id": "stored-late"}, {"id": "stored-late"}]

        # Once handled, it was acknowledged: a new connection brings only new questions.
        # (A QoS 1 round trip on the same connection first, so the broker has read the
        # acknowledgement before it is stopped.)
        await until(lambda: link.connected, "the link to be connected")
        await link.publish_status()
        mosquitto.stop()
        mosquitto.start()
        await until(lambda: link.connected, "the link to reconnect")
        await ask(mosquitto, b'{"id": "next"}')
        await questions.wait_for(3)

    assert questions.decoded()[2:] == [{"id": "next"}]


async def test_a_flood_waits_in_the_broker_not_in_the_engine(mosquitto: ShippedBroker) -> None:
    flood = [json.dumps({"id": f"q{n}", "user": "u", "text": "加班费怎么算"}) for n in range(2000)]
    questions = Inbox()
    questions.release.clear()  # the handler is busy: nothing is acknowledged meanwhile
    async with running(make_link(mosquitto, questions)) as link:
        await ask(mosquitto, flood)
        await until(lambda: link.backlog >= RECEIVE_MAXIMUM - 1, "the engine's window to fill")
        await asyncio.sleep(0.3)  # room for more to arrive, if anything let them
        held_in_engine = link.backlog
        questions.release.set()
        await questions.wait_for(len(flood))

    assert held_in_engine <= RECEIVE_MAXIMUM
    assert sorted(json.loads(p)["id"] for p in questions.payloads) == sorted(
        json.loads(line)["id"] for line in flood
    )


async def test_publishing_without_a_broker_neither_blocks_nor_raises(
    mosquitto: ShippedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anchor.links.mqtt")
    mosquitto.stop()
    link = make_link(mosquitto)
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(WAIT):
            await link.publish_answer({"question_id": "q-1", "answer": "……"})
            await link.publish_event({"type": "speaking"})
            await link.publish_status()
        await until(lambda: caplog.text.count("MQTT retry") >= 2, "two reconnect attempts")
        assert not task.done()
        assert not link.connected
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1  # one line for the outage, not one per retry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_handlers_bound_later_and_close_goes_offline(mosquitto: ShippedBroker) -> None:
    questions = Inbox()
    link = MqttLink(
        mqtt_config(mosquitto), CHANNEL, password=mosquitto.engine.password, status=dict
    )
    with pytest.raises(RuntimeError, match="bind"):
        await link.run()  # no handlers: refusing beats acknowledging questions nobody stored
    link.bind(on_question=questions, on_control=Inbox())
    task = asyncio.create_task(link.run())
    await until(lambda: link.connected, "the link to connect")
    await ask(mosquitto, b'{"id": "bound"}')
    await questions.wait_for(1)
    await link.close()

    assert task.cancelled()
    assert await retained_status(mosquitto) == {"state": "offline"}
    await link.close()  # a second close is harmless
