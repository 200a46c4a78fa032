"""Channels on several machines: a city broker bridged to the federation's central broker with
the shipped deploy/mosquitto/bridge.conf.example, a real engine on each broker.

Channel "zhongshan" (the one the example routes) runs against the city broker, channel
"jiangmen" against the central one. Questions for both are published centrally, as the
federation's chat intake does, and zhongshan's also locally; each engine answers its own and
only its own, and zhongshan's answers and status reach the central broker over the bridge.
The city broker then restarts while questions keep arriving centrally: the bridge's persistent
session on the central broker holds them, and they reach the engine once both are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest
from configs import write_config

from anchor.harness.broker_bridge import BridgedBrokers
from anchor.harness.certificates import CertificateError
from anchor.harness.mosquitto import Broker, BrokerError, Login, mosquitto_pub

CITY, CENTRAL = "zhongshan", "jiangmen"  # the channel on the city broker, on the central one
ENGINE_START_S = 60.0
ANSWER_S = 120.0
STOP_S = 60.0
pytestmark = pytest.mark.slow

# (id, viewer, text): distinct questions from the shipped FAQ, distinct viewers (no merging,
# no per-viewer limit).
BEFORE = {
    CITY: [("z1", "阿明", "住院了互助金怎么报？"), ("z2", "小李", "老板一直拖着不发工资怎么办")],
    CENTRAL: [("j1", "阿芳", "工伤认定要多久内申请"), ("j2", "老周", "互助保障怎么申请")],
}
CITY_LOCAL = ("z3", "小王", "外卖骑手能加入工会吗？")  # from a chat bridge on the city machine
DURING_RESTART = {
    CITY: [("z4", "阿强", "入会要交多少会费"), ("z5", "小陈", "没签劳动合同能要双倍工资吗")],
    CENTRAL: [("j3", "阿梅", "欠薪了去哪投诉")],
}


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[BridgedBrokers]:
    try:
        brokers = BridgedBrokers(tmp_path / "brokers")
        brokers.start()
    except (BrokerError, CertificateError) as exc:
        pytest.fail(f"{exc}. Install 'mosquitto', 'mosquitto-clients' and 'openssl'.")
    try:
        yield brokers
    finally:
        brokers.kill()


class CentralWatch:
    """A console on the central broker: every answer, status and bridge state seen there."""

    def __init__(self, brokers: BridgedBrokers) -> None:
        self.brokers = brokers
        self.messages: list[tuple[str, bytes]] = []
        self.ready = asyncio.Event()
        self._changed = asyncio.Event()

    async def run(self) -> None:
        async with aiomqtt.Client(**self.brokers.central.client_options()) as client:
            for topic in ("anchor/+/answers", "anchor/+/status", self.brokers.link_state_topic):
                await client.subscribe(topic, qos=1)
            self.ready.set()
            async for message in client.messages:
                self.messages.append((str(message.topic), bytes(message.payload)))
                self._changed.set()

    async def until(self, what: str, done: Callable[[], bool], within_s: float) -> None:
        try:
            async with asyncio.timeout(within_s):
                while not done():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} on the central broker within {within_s:g} s") from None

    def answers(self, channel: str) -> list[str]:
        topic = f"anchor/{channel}/answers"
        return [json.loads(p)["question_id"] for t, p in self.messages if t == topic]

    def answer_payloads(self, channel: str) -> dict[str, list[bytes]]:
        """Every answers-topic message per question id, as it arrived (copies included)."""
        topic = f"anchor/{channel}/answers"
        sent: dict[str, list[bytes]] = {}
        for t, p in self.messages:
            if t == topic:
                sent.setdefault(json.loads(p)["question_id"], []).append(p)
        return sent

    def states(self, channel: str) -> list[str]:
        topic = f"anchor/{channel}/status"
        return [json.loads(p)["state"] for t, p in self.messages if t == topic]

    def link(self) -> list[bytes]:
        return [p for t, p in self.messages if t == self.brokers.link_state_topic]


def _config(tmp_path: Path, channel: str, broker: Broker, login: Login | None) -> Path:
    folder = tmp_path / channel
    folder.mkdir()
    user = f", username: {login.username}" if login else ""
    mqtt = f"mqtt: {{host: {broker.host}, port: {broker.port}{user}, max_reconnect_seconds: 2}}\n"
    return write_config(folder, width=160, height=90, extra=f"channel: {channel}\n{mqtt}")


async def _start_engine(config: Path, login: Login | None) -> asyncio.subprocess.Process:
    """A real engine, rendering as fast as it can for far longer than the test needs; the test
    stops it with Ctrl-C once it has seen what it waits for."""
    env = {**os.environ, "ANCHOR_MQTT_PASSWORD": login.password if login else ""}
    with (config.parent / "engine.log").open("wb") as log:  # a file: a pipe could fill up
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anchor", "run", "--config", str(config),
            "--out", str(config.parent / "show.ts"), "--fast", "--duration", "4h",
            stdout=asyncio.subprocess.DEVNULL, stderr=log, env=env, start_new_session=True,
        )  # fmt: skip


async def _stop_engine(engine: asyncio.subprocess.Process, config: Path) -> str:
    """Ctrl-C to the engine's process group; its exit status and log tail on failure."""
    _signal_group(engine, signal.SIGINT)
    try:
        await asyncio.wait_for(engine.wait(), STOP_S)
    except TimeoutError:
        _signal_group(engine, signal.SIGKILL)
        await engine.wait()
        raise AssertionError(f"the engine did not stop within {STOP_S:g} s") from None
    log = (config.parent / "engine.log").read_text(encoding="utf-8", errors="replace")
    assert engine.returncode == 0, log[-3000:]
    return log


def _signal_group(engine: asyncio.subprocess.Process, how: signal.Signals) -> None:
    if engine.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(engine.pid, how)


async def _ask(
    broker: Broker, channel: str, question: tuple[str, str, str], login: Login | None = None
) -> None:
    qid, user, text = question
    payload = json.dumps({"id": qid, "user": user, "text": text}, ensure_ascii=False)
    await mosquitto_pub(broker, f"anchor/{channel}/questions", payload, login=login)


async def _exported(config: Path) -> dict[str, dict[str, str]]:
    """The channel's as-run log of questions, as `anchor log export` writes it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anchor", "log", "export", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    rows = csv.DictReader(io.StringIO(stdout.decode("utf-8-sig")))
    return {row["id"]: row for row in rows}


def _ids(questions: list[tuple[str, str, str]]) -> set[str]:
    return {qid for qid, _, _ in questions}


async def test_bridged_channels_answer_only_their_own_questions_through_a_city_restart(
    tmp_path: Path, federation: BridgedBrokers
) -> None:
    central, city = federation.central, federation.city
    assert federation.city_channel == CITY
    watch = CentralWatch(federation)
    watcher = asyncio.create_task(watch.run(), name="central-watch")
    engines: dict[str, asyncio.subprocess.Process] = {}
    configs = {
        CITY: _config(tmp_path, CITY, city, city.engine),
        CENTRAL: _config(tmp_path, CENTRAL, central, None),
    }
    city_ids = _ids(BEFORE[CITY] + DURING_RESTART[CITY]) | {CITY_LOCAL[0]}
    central_ids = _ids(BEFORE[CENTRAL] + DURING_RESTART[CENTRAL])
    try:
        await asyncio.wait_for(watch.ready.wait(), 10)
        await watch.until("bridge link", lambda: b"1" in watch.link(), 30)
        engines[CITY] = await _start_engine(configs[CITY], city.engine)
        engines[CENTRAL] = await _start_engine(configs[CENTRAL], None)
        # The city engine's status reaches the central broker over the bridge.
        await watch.until(
            "engines online",
            lambda: all("online" in watch.states(ch) for ch in (CITY, CENTRAL)),
            ENGINE_START_S,
        )

        for channel in (CITY, CENTRAL):
            for question in BEFORE[channel]:
                await _ask(central, channel, question)
        await _ask(city, CITY, CITY_LOCAL, login=city.bridge("chat"))
        first = _ids(BEFORE[CITY] + BEFORE[CENTRAL]) | {CITY_LOCAL[0]}
        await watch.until(
            "answers before the restart",
            lambda: first <= set(watch.answers(CITY)) | set(watch.answers(CENTRAL)),
            ANSWER_S,
        )

        # The city machine's broker goes down; the federation keeps asking.
        link_messages = len(watch.link())
        city.stop()
        for channel in (CITY, CENTRAL):
            for question in DURING_RESTART[channel]:
                await _ask(central, channel, question)
        await asyncio.sleep(2.0)
        city.start()
        await watch.until(
            "bridge link after the restart", lambda: b"1" in watch.link()[link_messages:], 60
        )
        await watch.until(
            "answers after the restart",
            lambda: (
                set(watch.answers(CITY)) == city_ids and set(watch.answers(CENTRAL)) == central_ids
            ),
            ANSWER_S,
        )
        await asyncio.sleep(1.0)  # room for a duplicate answer to show up
        logs = {ch: await _stop_engine(engine, configs[ch]) for ch, engine in engines.items()}
        await watch.until(
            "the city engine's offline status", lambda: watch.states(CITY)[-1:] == ["offline"], 10
        )
    finally:
        for engine in engines.values():
            if engine.returncode is None:
                _signal_group(engine, signal.SIGKILL)
                await engine.wait()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

    # Each channel's answers, on its own topic, for its own questions only, each aired once.
    # The bridge is QoS 1, at least once: an answer in flight when the city broker stopped may
    # be sent again when it returns. Such a copy is the same message, byte for byte; a second
    # airing would carry its own `aired_at`.
    for channel, expected in ((CITY, city_ids), (CENTRAL, central_ids)):
        assert set(watch.answers(channel)) == expected, watch.answers(channel)
        copies = watch.answer_payloads(channel)
        assert all(len(set(sent)) == 1 for sent in copies.values()), copies
    # Neither engine ever received the other's questions: its log has exactly its own.
    for channel, expected in ((CITY, city_ids), (CENTRAL, central_ids)):
        rows = await _exported(configs[channel])
        assert set(rows) == expected, (channel, sorted(rows))
        assert {row["status"] for row in rows.values()} == {"answered"}, (channel, rows)
        assert "Traceback" not in logs[channel], logs[channel][-3000:]
