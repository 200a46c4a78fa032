"""Operator signals: /metrics and /healthz of a running channel, the watchdog, the log file."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from configs import write_config

from anchor.config import load_config
from anchor.console.app import signals_app
from anchor.console.server import WebServer
from anchor.daemon import Channel, RunOptions
from anchor.media.output import OutputTarget
from anchor.ops.logs import setup_logging
from anchor.ops.metrics import Registry
from anchor.ops.watchdog import LoopHeartbeat, Watchdog
from anchor.show.schedule import load_schedule

QUESTION = "住院了互助金怎么报？"


def _parse(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value}, checking every line is well formed."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE ")) or not line, line
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    return samples


async def _until(condition, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def test_a_running_channel_serves_metrics_and_health(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, extra="health: {listen: '127.0.0.1:0'}\n"))
    options = RunOptions(
        output=OutputTarget.parse(str(tmp_path / "show.ts")),
        fast=True,
        duration_s=120,
        questions=(QUESTION,),
    )
    channel = Channel(config, load_schedule(config.schedule), options)
    show = asyncio.create_task(channel.run())
    try:
        await _until(lambda: _true(_signals(channel) is not None or show.done()), "server up")
        assert not show.done(), show.exception()
        base = f"http://127.0.0.1:{_signals(channel).port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def scrape() -> dict[str, float]:
                response = await client.get("/metrics")
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
                return _parse(response.text)

            first = await scrape()
            assert "anchor_speech_queue_depth" in first
            assert first['anchor_questions_received_total{outcome="accepted"}'] == 1

            async def more_frames() -> bool:
                return (await scrape())["anchor_frames_encoded_total"] > first[
                    "anchor_frames_encoded_total"
                ]

            await _until(more_frames, "frames counter increases")

            async def answered() -> bool:
                return (await scrape()).get('anchor_questions{status="answered"}') == 1

            await _until(answered, "the question is recorded as answered")
            latest = await scrape()
            assert latest['anchor_questions{status="pending"}'] == 0
            assert latest["anchor_answer_latency_seconds_count"] == 1
            assert latest["anchor_renders_total"] > 0

            health = await client.get("/healthz")
            assert health.status_code == 200
            verdict = health.json()
            assert verdict["status"] == "ok"
            assert verdict["checks"]["render"] == "ok"
            assert verdict["checks"]["loop"] == "ok"
            assert verdict["checks"]["broker"] == "off"
            assert verdict["checks"]["voice"] == "ok"
            assert any(name.startswith("anchor_voice_up{") for name in latest)
            assert channel.telemetry.status()["health"]["status"] == "ok"

            assert (await client.get("/nothing")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    finally:
        channel.request_stop()
        await asyncio.wait_for(show, 60)


async def _true(value: bool) -> bool:
    return value


def _signals(channel: Channel) -> WebServer | None:
    """The signals' own server (health.listen), once the channel has started it."""
    return None if channel.console is None else channel.console.signals


async def test_bad_requests_get_errors_and_the_server_keeps_serving() -> None:
    registry = Registry()
    registry.counter("anchor_things_total", "Things.").inc(3)
    app = signals_app(registry.exposition, lambda: {"status": "stalled"})
    server = WebServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        for raw in (b"NONSENSE\r\n\r\n", b"GET /" + b"x" * 40000 + b" HTTP/1.1\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(raw)
            await writer.drain()
            status_line = await reader.readline()
            assert status_line.split()[1] in (b"400", b"431"), status_line
            writer.close()
            await writer.wait_closed()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert _parse((await client.get("/metrics")).text)["anchor_things_total"] == 3
            stalled = await client.get("/healthz")
            assert stalled.status_code == 503
            assert stalled.json()["status"] == "stalled"
    finally:
        await server.aclose()


def test_a_stopped_heartbeat_is_reported_once_then_its_recovery(caplog) -> None:
    now = [0.0]
    frames = [100]
    watchdog = Watchdog(5.0, clock=lambda: now[0])
    watchdog.watch("render", lambda: frames[0], what="render", unit="frame")
    caplog.set_level(logging.INFO, logger="anchor.ops.watchdog")
    for _ in range(20):  # 1 s of ticks, frames moving
        now[0] += 0.05
        frames[0] += 1
        watchdog.check()
    assert watchdog.state()["render"]["ok"]
    for _ in range(8):  # frames stop for 8 s
        now[0] += 1.0
        watchdog.check()
    assert watchdog.stalled == ["render"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage().startswith("render stalled for ")
    assert errors[0].getMessage().endswith(" s at frame 120")
    frames[0] += 1
    now[0] += 0.25
    watchdog.check()
    assert watchdog.state()["render"]["ok"]
    assert any("render recovered after" in r.getMessage() for r in caplog.records)


async def test_the_loop_watchdog_catches_a_blocked_event_loop(caplog) -> None:
    caplog.set_level(logging.INFO, logger="anchor.ops.watchdog")
    heartbeat = LoopHeartbeat(interval_s=0.05)
    watchdog = Watchdog(0.3, check_every_s=0.02)
    watchdog.watch("loop", lambda: heartbeat.beats, what="event loop")
    beating = asyncio.create_task(heartbeat.run())
    watchdog.start()
    try:
        await asyncio.sleep(0.2)
        time.sleep(0.8)  # noqa: ASYNC251 - the deliberate block this test is about
        blocked_state = watchdog.state()
        await asyncio.sleep(0.3)
    finally:
        watchdog.stop()
        beating.cancel()
    stalls = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert stalls and stalls[0].startswith("event loop stalled for ")
    assert not blocked_state["loop"]["ok"]
    assert watchdog.state()["loop"]["ok"], "the loop beats again once unblocked"
    assert heartbeat.max_lag_s > 0.3


def test_json_log_lines_rotate_at_the_bound(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "anchor.log"
    setup_logging("INFO", file=log_file, file_format="json", max_mb=0.002, backups=2, console=False)
    try:
        logger = logging.getLogger("anchor.test")
        for index in range(200):
            logger.info("line %d 工会", index, extra={"segment": "mutual-aid"})
    finally:
        setup_logging("WARNING", console=False)  # closes the file handler
    files = sorted(log_file.parent.iterdir())
    assert [f.name for f in files] == ["anchor.log", "anchor.log.1", "anchor.log.2"]
    for path in files:
        assert path.stat().st_size <= 0.002 * 1024 * 1024 + 200
    last = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert last[-1]["message"] == "line 199 工会"
    assert last[-1]["level"] == "INFO"
    assert last[-1]["logger"] == "anchor.test"
    assert last[-1]["segment"] == "mutual-aid"
    assert last[-1]["ts"].endswith("+00:00")


class _Peer:
    def __init__(self, connected: bool, stats: dict | None = None) -> None:
        self.connected = connected
        self.stats = stats or {}


async def test_a_lost_peer_degrades_health_and_shows_in_metrics() -> None:
    from anchor.config import HealthConfig
    from anchor.ops.telemetry import ChannelTelemetry, Watched

    telemetry = ChannelTelemetry(HealthConfig(listen=None))
    obs = _Peer(False, {"activeFps": 29.97, "outputSkippedFrames": 12, "streaming": True})
    telemetry.attach(Watched(obs=obs, link=_Peer(True)))  # type: ignore[arg-type]
    verdict = telemetry.health()
    assert verdict["status"] == "degraded"
    assert verdict["checks"]["obs"] == "degraded"
    assert verdict["checks"]["broker"] == "ok"
    samples = _parse(await telemetry.registry.exposition())
    assert samples["anchor_obs_connected"] == 0
    assert samples['anchor_obs_stat{stat="outputSkippedFrames"}'] == 12
    assert samples["anchor_broker_connected"] == 1
    obs.connected = True
    assert telemetry.health()["status"] == "ok"
