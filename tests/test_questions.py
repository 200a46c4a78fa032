"""Viewer questions end to end: a real broker with the shipped configuration (deploy/mosquitto,
users from `anchor broker secrets`), the real engine, answers heard in the stream."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt
import av
import numpy as np
import pytest
from configs import write_config

from anchor.answers.knowledge import KnowledgeBase
from anchor.harness.mosquitto import Login, ShippedBroker

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "e2e"
pytestmark = pytest.mark.slow


@pytest.fixture
def mosquitto(shipped_mosquitto: ShippedBroker) -> ShippedBroker:
    """The shipped broker configuration: the engine logs in as its user, questions come from a
    bridge's user, and the answers and events are watched by operators' users."""
    return shipped_mosquitto


def _config(tmp_path: Path, broker, *, schedule: Path | None = None) -> Path:
    mqtt = (
        f"mqtt: {{host: {broker.host}, port: {broker.port}, username: {broker.engine.username},"
        " max_reconnect_seconds: 2}\n"
    )
    return write_config(tmp_path, schedule=schedule, extra=f"channel: {CHANNEL}\n" + mqtt)


async def _start_engine(
    broker: ShippedBroker, config: Path, out: Path, *args: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "anchor",
        "run",
        "--config",
        str(config),
        "--out",
        str(out),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANCHOR_MQTT_PASSWORD": broker.engine.password},
    )


async def _wait_online(broker) -> None:
    async with aiomqtt.Client(**broker.client_options(broker.operator("cli"))) as client:
        await client.subscribe(f"anchor/{CHANNEL}/status", qos=1)
        async with asyncio.timeout(60):
            async for message in client.messages:
                if json.loads(message.payload).get("state") == "online":
                    return


async def _publish_cli(broker, payload: dict) -> None:
    """Publish the way a chat bridge would, with the mosquitto_pub command, as its user."""
    bridge = broker.bridge("chat")
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1",
        "-u", bridge.username, "-P", bridge.password,
        "-t", f"anchor/{CHANNEL}/questions", "-m", json.dumps(payload, ensure_ascii=False),
    )  # fmt: skip
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def _collect(
    broker,
    topic: str,
    into: list[dict],
    ready: asyncio.Event,
    got: asyncio.Event | None = None,
    *,
    login: Login | None = None,
) -> None:
    """An operator's console watching a topic (one user per concurrent connection)."""
    async with aiomqtt.Client(**broker.client_options(login or broker.operator())) as client:
        await client.subscribe(f"anchor/{CHANNEL}/{topic}", qos=1)
        ready.set()
        async for message in client.messages:
            into.append(json.loads(message.payload))
            if got is not None:
                got.set()


def _audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])


def _exported(config: Path) -> list[dict]:
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "log", "export", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        encoding="utf-8-sig",
    )
    return list(csv.DictReader(io.StringIO(run.stdout)))


async def test_questions_are_answered_on_air_and_published(tmp_path: Path, mosquitto) -> None:
    config, out = _config(tmp_path, mosquitto), tmp_path / "show.ts"
    answers, events = [], []
    ready_a, ready_e = asyncio.Event(), asyncio.Event()
    listeners = [
        asyncio.create_task(_collect(mosquitto, "answers", answers, ready_a)),
        asyncio.create_task(
            _collect(mosquitto, "events", events, ready_e, login=mosquitto.operator("dashboard"))
        ),
    ]
    await ready_a.wait()
    await ready_e.wait()
    engine = await _start_engine(mosquitto, config, out, "--fast", "--duration", "90s")
    try:
        await _wait_online(mosquitto)
        await _publish_cli(mosquitto, {"id": "q1", "user": "阿明", "text": "住院了互助金怎么报？"})
        await _publish_cli(
            mosquitto, {"id": "q2", "user": "小李", "text": "老板一直拖着不发工资怎么办"}
        )
        async with aiomqtt.Client(**mosquitto.client_options(mosquitto.bridge("other"))) as client:
            await client.publish(
                f"anchor/{CHANNEL}/questions", qos=1,
                payload=json.dumps({"id": "q3", "user": "Ann 139.1111.2222", "platform": "douyin",
                                    "text": "我的电话13812345678，外卖骑手能加入工会吗？"},
                                   ensure_ascii=False),
            )  # fmt: skip
            await client.publish(f"anchor/{CHANNEL}/questions", qos=1, payload=b"\xff\xfenot json")
        _, stderr = await asyncio.wait_for(engine.communicate(), 180)
    finally:
        if engine.returncode is None:
            engine.kill()
        await asyncio.sleep(0.5)
        for task in listeners:
            task.cancel()
    assert engine.returncode == 0, stderr.decode()[-3000:]

    by_id = {a["question_id"]: a for a in answers}
    assert set(by_id) == {"q1", "q2", "q3"}, answers
    kb = KnowledgeBase.load(ROOT / "knowledge" / "union-faq.yaml")
    for answer in by_id.values():
        assert answer["source"] == "kb" and answer["answer"]
        assert answer["answer"] in {entry.answer for entry in kb.entries}
    assert "13812345678" not in json.dumps(answers, ensure_ascii=False)
    assert "[手机号]" in by_id["q3"]["question"]
    rejected = [e for e in events if e.get("type") == "rejected"]
    assert rejected and rejected[0]["reason"] in {"bad_utf8", "not_json", "binary"}

    # Each answer's speech is in the stream where the engine said it aired.
    audio = _audio(out)
    spoken = [e for e in events if e.get("type") == "speaking" and e.get("question_id")]
    assert {e["question_id"] for e in spoken} == {"q1", "q2", "q3"}
    for event in spoken:
        start = int(event["stream_time"] * 48000)
        window = audio[start : start + 48000]
        assert np.sqrt(np.mean(window**2)) > 0.02, f"no speech where {event['text']!r} aired"
    assert all("13812345678" not in e.get("text", "") for e in events)

    rows = {row["id"]: row for row in _exported(config)}
    assert {rows[q]["status"] for q in ("q1", "q2", "q3")} == {"answered"}

    # Personal data in the text and in the viewer's name reaches no output, the log included.
    assert rows["q3"]["user"] == "Ann [手机号]"
    outputs = json.dumps([answers, events, list(rows.values())], ensure_ascii=False)
    for secret in ("13812345678", "139.1111.2222", "13911112222"):
        assert secret not in outputs and secret not in stderr.decode(errors="replace")


async def test_a_killed_engine_answers_pending_questions_after_restart(
    tmp_path: Path, mosquitto
) -> None:
    config, out = _config(tmp_path, mosquitto), tmp_path / "first.ts"
    answers: list[dict] = []
    ready, got_answer = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(_collect(mosquitto, "answers", answers, ready, got_answer))
    await ready.wait()
    engine = await _start_engine(mosquitto, config, out)  # live: answers take real time
    questions = ["互助保障怎么申请", "工伤认定要多久内申请", "怎么加入工会", "职工服务站在哪里",
                 "欠薪了去哪投诉"]  # fmt: skip
    try:
        await _wait_online(mosquitto)
        for i, text in enumerate(questions):
            await _publish_cli(mosquitto, {"id": f"k{i}", "user": f"viewer{i}", "text": text})
        await asyncio.wait_for(got_answer.wait(), 90)
        engine.send_signal(signal.SIGKILL)
        await engine.wait()
        first_run = {a["question_id"] for a in answers}
        assert len(first_run) < len(questions), "the kill must leave questions pending"

        restarted = await _start_engine(
            mosquitto, config, tmp_path / "second.ts", "--fast", "--duration", "180s"
        )
        _, stderr = await asyncio.wait_for(restarted.communicate(), 240)
        assert restarted.returncode == 0, stderr.decode()[-3000:]
    finally:
        for process in (engine,):
            if process.returncode is None:
                process.kill()
        await asyncio.sleep(0.5)
        listener.cancel()
    rows = {row["id"]: row for row in _exported(config)}
    assert {rows[f"k{i}"]["status"] for i in range(len(questions))} == {"answered"}
    answered_after = {a["question_id"] for a in answers} - first_run
    assert answered_after, "the restarted engine answered what was pending"


async def test_a_broker_restart_loses_no_accepted_question(tmp_path: Path, mosquitto) -> None:
    config, out = _config(tmp_path, mosquitto), tmp_path / "show.ts"
    engine = await _start_engine(mosquitto, config, out, "--duration", "60s")
    try:
        await _wait_online(mosquitto)
        await _publish_cli(mosquitto, {"id": "b1", "user": "a", "text": "工伤了怎么办"})
        await _publish_cli(mosquitto, {"id": "b2", "user": "b", "text": "入会要交多少会费"})
        await asyncio.sleep(1.0)
        mosquitto.stop()
        await asyncio.sleep(3.0)  # the show goes on without the broker
        mosquitto.start()
        await _wait_online(mosquitto)
        await _publish_cli(
            mosquitto, {"id": "b3", "user": "c", "text": "没签劳动合同能要双倍工资吗"}
        )
        _, stderr = await asyncio.wait_for(engine.communicate(), 180)
    finally:
        if engine.returncode is None:
            engine.kill()
    log = stderr.decode()
    assert engine.returncode == 0, log[-3000:]
    rows = {row["id"]: row for row in _exported(config)}
    assert {rows[q]["status"] for q in ("b1", "b2", "b3")} == {"answered"}, rows
    # The stream never stopped: full length, no gap.
    probe = await asyncio.to_thread(
        subprocess.run,
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(probe.stdout.split()[0]) == 60 * 30
