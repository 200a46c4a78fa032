"""The control topic cannot read files, exhaust memory or stall the questions.

A live engine takes the attacks a broker client tried on the control topic: files outside
the schedules folder (by path, by '..', by a symbolic link), a device, a FIFO, a schedule far
over the size cap, and a YAML alias bomb. Each is refused within 2 s, with no line of any
file it pointed at in any message or log, the engine's memory stays flat, and viewers'
questions keep being taken meanwhile. Every command is in the audit trail.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import aiomqtt
import psutil
import pytest
from configs import write_config

from anchor.harness.mosquitto import ShippedBroker, mosquitto_pub

CHANNEL = "safety"
PASSWD_LINE = "root:x:0:0"
PHONE = "139" + "1234" + "5678"  # an operator's name with a phone number in it
REFUSED_WITHIN_S = 2.0
MEMORY_GROWTH_MB = 50
ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
GOOD = "name: 夜间节目\nsegments:\n  - id: night\n    title: 夜间\n    points: [夜间节目开始了。]\n"


def _library(folder: Path) -> None:
    folder.mkdir()
    (folder / "night.yaml").write_text(GOOD, encoding="utf-8")
    (folder / "escape.yaml").symlink_to("/etc/passwd")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.yaml")
    points = "\n".join(f"      - 这是第{n}句，凑够一兆字节的节目单。" for n in range(25_000))
    (folder / "huge.yaml").write_text(
        f"name: 巨大\nsegments:\n  - id: big\n    title: 大\n    points:\n{points}\n",
        encoding="utf-8",
    )
    assert (folder / "huge.yaml").stat().st_size > 1024 * 1024


ATTACKS: list[tuple[str, dict[str, str]]] = [
    ("a path", {"path": "/etc/passwd"}),
    ("an absolute name", {"name": "/etc/passwd"}),
    ("a name with ..", {"name": "../x"}),
    ("a link out of the folder", {"name": "escape"}),
    ("a device", {"name": "zero"}),
    ("a FIFO", {"name": "pipe"}),
    ("a 1 MB schedule", {"name": "huge"}),
    ("an alias bomb", {"yaml": ALIAS_BOMB}),
]


async def _listen(broker: ShippedBroker, into: list[dict], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(**broker.client_options(broker.operator("dashboard"))) as client:
        await client.subscribe(f"anchor/{CHANNEL}/events", qos=1)
        ready.set()
        async for message in client.messages:
            into.append(json.loads(message.payload))


async def _next(events: list[dict], start: int, kinds: set[str], limit_s: float) -> dict:
    async with asyncio.timeout(limit_s):
        while True:
            for event in events[start:]:
                if event.get("type") in kinds and (
                    event.get("type") != "rejected" or event.get("input") == "control"
                ):
                    return event
            await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_control_attacks_are_refused_quickly_and_questions_keep_flowing(
    tmp_path: Path, shipped_mosquitto: ShippedBroker
) -> None:
    mosquitto = shipped_mosquitto
    operator, bridge = mosquitto.operator("cli"), mosquitto.bridge("chat")
    library = tmp_path / "schedules"
    _library(library)
    config = write_config(
        tmp_path,
        extra=(
            f"channel: {CHANNEL}\nschedules_dir: {library}\nhealth: {{listen: null}}\n"
            f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port},"
            f" username: {mosquitto.engine.username}}}\n"
        ),
    )
    events: list[dict] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_listen(mosquitto, events, ready))
    await ready.wait()
    engine = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anchor", "run", "--config", str(config), "--duration", "40s",
        "--out", str(tmp_path / "live.ts"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANCHOR_MQTT_PASSWORD": mosquitto.engine.password},
    )  # fmt: skip
    control, questions = f"anchor/{CHANNEL}/control", f"anchor/{CHANNEL}/questions"
    try:
        await _next(events, 0, {"speaking"}, 60)
        process = psutil.Process(engine.pid)
        baseline = process.memory_info().rss
        peak = baseline
        for n, (what, fields) in enumerate(ATTACKS):
            start, sent = len(events), time.monotonic()
            payload = json.dumps({"cmd": "load_schedule", "by": "测试", **fields})
            await mosquitto_pub(mosquitto, control, payload, login=operator)
            # A viewer asks at the same moment: the question is taken while the command runs.
            question = {"id": f"q{n}", "user": f"viewer{n}", "text": f"第{n}个问题：怎么加入工会？"}
            await mosquitto_pub(
                mosquitto, questions, json.dumps(question, ensure_ascii=False), login=bridge
            )
            answer = await _next(events, start, {"rejected", "schedule_rejected"}, 10)
            took = time.monotonic() - sent
            assert took < REFUSED_WITHIN_S, f"{what}: refused after {took:.2f} s"
            assert answer.get("type") in ("rejected", "schedule_rejected"), what
            accepted = await _next(events, start, {"accepted", "merged"}, REFUSED_WITHIN_S)
            assert accepted.get("question_id") == f"q{n}", what
            peak = max(peak, process.memory_info().rss)
        night = json.dumps({"cmd": "load_schedule", "name": "night", "by": f"王芳{PHONE}"})
        await mosquitto_pub(mosquitto, control, night, login=operator)
        assert (await _next(events, 0, {"schedule_loaded"}, 10))["name"] == "夜间节目"
        _, stderr = await asyncio.wait_for(engine.communicate(), 120)
    finally:
        if engine.returncode is None:
            engine.kill()
        listener.cancel()
    log = stderr.decode("utf-8", errors="replace")
    assert engine.returncode == 0, log[-3000:]
    growth_mb = (peak - baseline) / 1024 / 1024
    assert growth_mb < MEMORY_GROWTH_MB, f"memory grew {growth_mb:.0f} MB"
    messages = json.dumps(events, ensure_ascii=False)
    for leaked in (PASSWD_LINE, "lol", "凑够一兆字节", PHONE):
        assert leaked not in messages and leaked not in log
    with sqlite3.connect(tmp_path / "anchor.db") as db:
        audit = db.execute("SELECT by, via, cmd, result FROM audit ORDER BY at").fetchall()
    assert len(audit) == len(ATTACKS) + 1
    assert all(row[:3] == ("测试", "mqtt", "load_schedule") for row in audit[:-1])
    assert all(row[3].startswith("refused") for row in audit[:-1])
    assert audit[-1][2:] == ("load_schedule", "applied")
    assert audit[-1][0] == "王芳[手机号]", "the record keeps the sender's name masked"
    assert PHONE.encode() not in (tmp_path / "anchor.db").read_bytes()
