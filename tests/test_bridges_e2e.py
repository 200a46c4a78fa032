"""`anchor bridge run` end to end: the Bilibili open platform (a protocol-faithful local server)
→ the bridge process → the shipped mosquitto, logged in as the bridge's own user."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from anchor.harness.bilibili_server import bilibili_server
from anchor.harness.mosquitto import ShippedBroker
from anchor.links.payloads import parse_audience

pytestmark = pytest.mark.slow

QUESTIONS = 100
NOISE = ["主播好", "666", "😀😀😀", "哈哈哈哈", "？？？", "来了来了", "hello"]


async def _collect(
    broker: ShippedBroker, into: dict[str, list[dict]], ready: asyncio.Event
) -> None:
    """What the engine would read (one connection: the broker allows one per user)."""
    async with aiomqtt.Client(**broker.client_options(broker.engine)) as client:
        for topic in into:
            await client.subscribe(f"anchor/default/{topic}", qos=1)
        ready.set()
        async for message in client.messages:
            topic = message.topic.value.rsplit("/", 1)[1]
            into[topic].append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]


async def _until(check, what: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.1)


async def test_questions_from_bilibili_reach_the_topic_exactly_once(
    tmp_path: Path, shipped_mosquitto: ShippedBroker
) -> None:
    broker = shipped_mosquitto
    login = broker.bridge("chat")
    questions: list[dict] = []
    audience: list[dict] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(
        _collect(broker, {"questions": questions, "audience": audience}, ready)
    )
    await asyncio.wait_for(ready.wait(), 10)
    async with bilibili_server(replay=3) as server:
        config = tmp_path / "bridge.yaml"
        config.write_text(
            "name: chat\n"
            "channel: default\n"
            f"platform: {{kind: bilibili_open, app_id: {server.app_id}, "
            f"api_base: '{server.api_base}'}}\n"
            f"mqtt: {{host: {broker.host}, port: {broker.port}, username: {login.username}}}\n"
            f"spool: {{path: {tmp_path / 'chat.spool'}}}\n"
            "questions: {per_viewer_per_minute: 600}\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "ANCHOR_MQTT_PASSWORD": login.password,
            "BILIBILI_ACCESS_KEY_ID": server.access_key_id,
            "BILIBILI_ACCESS_KEY_SECRET": server.access_key_secret,
            "BILIBILI_AUTH_CODE": server.code,
        }
        bridge = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anchor", "bridge", "run", "--config", str(config),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await _until(lambda: server.auths["open"] >= 1, "the bridge authenticated", 30)
            for number in range(QUESTIONS):
                text = f"第{number}个问题：工伤认定需要哪些材料？"
                server.send_comment(text, uname=f"工友{number}", viewer=number)
                if number % 10 == 0:
                    server.send_comment(NOISE[number // 10 % len(NOISE)], viewer=1000 + number)
                if number % 20 == 10:  # five abrupt disconnects along the way
                    authed = server.auths["open"]
                    await asyncio.sleep(0.3)
                    server.drop_connections()
                    await _until(lambda a=authed: server.auths["open"] > a, "reconnected", 30)
                await asyncio.sleep(0.02)
            server.send_gift("小心心", 2, uname="送礼的人", viewer=7)
            server.send_like(5, uname="点赞的人", viewer=8)
            await _until(lambda: len(questions) >= QUESTIONS, "every question on the topic", 90)
            await _until(lambda: len(audience) >= 2, "the gift and the like", 30)
            await asyncio.sleep(2)  # anything sent twice would have arrived by now
        finally:
            if bridge.returncode is None:
                bridge.send_signal(signal.SIGINT)
            _, stderr = await asyncio.wait_for(bridge.communicate(), 30)
        assert bridge.returncode == 0, stderr.decode()[-2000:]
        assert server.drops == 5 and server.ends >= 1
    listener.cancel()
    ids = [question["id"] for question in questions]
    assert len(ids) == len(set(ids)) == QUESTIONS, f"{len(ids)} published, {len(set(ids))} unique"
    texts = {question["text"] for question in questions}
    assert texts == {f"第{n}个问题：工伤认定需要哪些材料？" for n in range(QUESTIONS)}
    assert all(q["platform"] == "bilibili" and q["id"].startswith("bilibili:") for q in questions)
    events = [parse_audience(json.dumps(item).encode()) for item in audience]
    assert {(e.kind, e.count) for e in events} >= {("gift", 2), ("like", 5)}
    assert b"\xe5\xb7\xa5\xe5\x8f\x8b" not in stderr, "a viewer's name reached the bridge's log"


async def test_a_wrong_identity_code_stops_the_bridge_with_the_setting_named(
    tmp_path: Path, shipped_mosquitto: ShippedBroker
) -> None:
    login = shipped_mosquitto.bridge("chat")
    async with bilibili_server() as server:
        config = tmp_path / "bridge.yaml"
        config.write_text(
            f"name: chat\nplatform: {{kind: bilibili_open, app_id: {server.app_id},"
            f" api_base: '{server.api_base}'}}\n"
            f"mqtt: {{host: 127.0.0.1, port: {shipped_mosquitto.port}}}\n"
            f"spool: {{path: {tmp_path / 'chat.spool'}}}\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "ANCHOR_MQTT_PASSWORD": login.password,
            "BILIBILI_ACCESS_KEY_ID": server.access_key_id,
            "BILIBILI_ACCESS_KEY_SECRET": server.access_key_secret,
            "BILIBILI_AUTH_CODE": "WRONGCODE",
        }
        bridge = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anchor", "bridge", "run", "--config", str(config),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(bridge.communicate(), 30)
        assert bridge.returncode == 2
        assert b"platform.code" in stderr and server.start_requests == 1
        missing = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anchor", "bridge", "run", "--config", str(config),
            env={k: v for k, v in env.items() if k != "BILIBILI_AUTH_CODE"},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(missing.communicate(), 30)
        assert missing.returncode == 2 and b"BILIBILI_AUTH_CODE" in stderr


def test_the_shipped_bridge_examples_are_valid() -> None:
    import subprocess

    root = Path(__file__).resolve().parent.parent
    for example in sorted((root / "bridges").glob("*.yaml")):
        checked = subprocess.run(
            [sys.executable, "-m", "anchor", "bridge", "check", "--config", str(example)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stderr
    broken = root / "bridges" / "bilibili.yaml"
    text = broken.read_text(encoding="utf-8").replace("app_id: 1000000000000", "app_id: -1")
    bad = Path(os.environ.get("TMPDIR", "/tmp")) / f"anchor-bad-bridge-{os.getpid()}.yaml"
    bad.write_text(text, encoding="utf-8")
    try:
        checked = subprocess.run(
            [sys.executable, "-m", "anchor", "bridge", "check", "--config", str(bad)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        bad.unlink()
    assert checked.returncode == 2 and "app_id" in checked.stderr and ":13:" in checked.stderr
