"""A full disk under the store degrades the channel and never takes it off air.

A live engine keeps its store on a small tmpfs. The disk fills up mid-show while viewers keep
asking: the picture and the schedule go on, `/healthz` and the status topic say the store is
degraded, the questions are not acknowledged (they wait at the broker). Space comes back: the
engine picks the questions up by itself, without a restart, and none is lost. The stream has
no gap longer than a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiomqtt
import httpx
import pytest
from configs import write_config

from anchor.harness.mosquitto import ShippedBroker, mosquitto_pub
from anchor.soak.stream import analyse

CHANNEL = "disk"
DURATION_S = 60
FPS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fill(folder: Path) -> Path:
    """Write until the file system refuses (ENOSPC); the file that holds the space."""
    filler = folder / "filler"
    # Unbuffered: a buffered file would write its leftover bytes again on close, outside the
    # suppress, and fail or not depending on the exact free space.
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    return filler


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "anchor-test", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def _watch(
    broker: ShippedBroker, events: list[dict], statuses: list[dict], ready: asyncio.Event
):
    async with aiomqtt.Client(**broker.client_options(broker.operator("dashboard"))) as client:
        await client.subscribe(f"anchor/{CHANNEL}/events", qos=1)
        await client.subscribe(f"anchor/{CHANNEL}/status", qos=1)
        ready.set()
        async for message in client.messages:
            payload = json.loads(message.payload)
            (statuses if str(message.topic).endswith("/status") else events).append(payload)


async def _until(condition, what: str, limit_s: float) -> None:
    for _ in range(int(limit_s * 10)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"never happened: {what}")


@pytest.mark.slow
async def test_a_full_disk_degrades_the_store_and_recovers_without_a_restart(
    tmp_path: Path, small_disk: Path, shipped_mosquitto: ShippedBroker
) -> None:
    mosquitto = shipped_mosquitto
    bridge = mosquitto.bridge("chat")
    port = _free_port()
    config = write_config(
        tmp_path,
        extra=(
            f"channel: {CHANNEL}\nhealth: {{listen: '127.0.0.1:{port}'}}\n"
            "speech: {cache_max_mb: 0}\n"
            f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port},"
            f" username: {mosquitto.engine.username}, max_reconnect_seconds: 2}}\n"
        ),
    )
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            str(tmp_path / "anchor.db"), str(small_disk / "anchor.db")
        ),
        encoding="utf-8",
    )
    events: list[dict] = []
    statuses: list[dict] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(_watch(mosquitto, events, statuses, ready))
    await ready.wait()
    out = tmp_path / "live.ts"
    engine = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anchor", "run", "--config", str(config),
        "--duration", f"{DURATION_S}s", "--out", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANCHOR_MQTT_PASSWORD": mosquitto.engine.password},
    )  # fmt: skip
    questions = f"anchor/{CHANNEL}/questions"
    asked = ["怎么加入工会？", "工伤认定要多久？", "互助保障怎么理赔？", "法律援助去哪里申请？"]

    async def ask(n: int) -> None:
        question = {"id": f"q{n}", "user": f"viewer{n}", "text": asked[n]}
        await mosquitto_pub(
            mosquitto, questions, json.dumps(question, ensure_ascii=False), login=bridge
        )

    async def health() -> dict:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).json()

    async def store_check_is(state: str) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (await health())["checks"]["store"] == state
        return False

    def accepted(question_id: str) -> bool:
        return any(
            e.get("question_id") == question_id and e.get("type") == "accepted" for e in events
        )

    async def is_accepted(question_id: str) -> bool:
        return accepted(question_id)

    try:

        async def speaking() -> bool:
            assert engine.returncode is None, "the engine stopped"
            return any(e.get("type") == "speaking" for e in events)

        await _until(speaking, "the show is on air", 60)
        await ask(0)
        await _until(lambda: is_accepted("q0"), "a question is taken while the disk has room", 10)

        filler = await asyncio.to_thread(_fill, small_disk)
        for n in (1, 2, 3):
            await ask(n)
        await _until(lambda: store_check_is("degraded"), "/healthz says the store is degraded", 15)
        await asyncio.sleep(3)
        assert not any(accepted(f"q{n}") for n in (1, 2, 3)), "nothing is taken that is not stored"

        async def status_degraded() -> bool:
            return any(
                s.get("health", {}).get("checks", {}).get("store") == "degraded" for s in statuses
            )

        await _until(status_degraded, "the status topic says the store is degraded", 20)

        filler.unlink()
        for n in (1, 2, 3):
            await _until(lambda n=n: is_accepted(f"q{n}"), f"q{n} is taken once space is back", 30)
        await _until(lambda: store_check_is("ok"), "/healthz says the store is ok again", 15)
        _, stderr = await asyncio.wait_for(engine.communicate(), DURATION_S + 60)
    finally:
        if engine.returncode is None:
            engine.kill()
            (tmp_path / "engine.log").write_bytes(await engine.stderr.read())  # type: ignore[union-attr]
        watcher.cancel()
    log = stderr.decode("utf-8", errors="replace")
    assert engine.returncode == 0, log[-3000:]
    with sqlite3.connect(small_disk / "anchor.db") as db:
        stored = dict(db.execute("SELECT id, status FROM questions").fetchall())
    assert set(stored) == {"q0", "q1", "q2", "q3"}, "every acknowledged question is in the store"

    report = await asyncio.to_thread(analyse, out)
    assert report.packets["video"] == DURATION_S * FPS, "every frame of the show is in the file"
    assert report.largest_video_step_s <= 1.0 / FPS + 1e-3, "no gap longer than one frame"
    assert report.discontinuities == 0
