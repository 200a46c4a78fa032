"""The operator's side: questions from the command line, `anchor ask`, the control topic (on a
broker with the shipped configuration: only an operator's user may publish control)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest
from configs import write_config

from anchor.harness.mosquitto import ShippedBroker, mosquitto_pub

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "ops"


@pytest.fixture
def mosquitto(shipped_mosquitto: ShippedBroker) -> ShippedBroker:
    """The shipped broker configuration: the engine, operators and bridges log in as themselves."""
    return shipped_mosquitto


def _config(tmp_path: Path, broker: ShippedBroker | None = None) -> Path:
    mqtt = ""
    if broker is not None:
        mqtt = (
            f"mqtt: {{host: {broker.host}, port: {broker.port},"
            f" username: {broker.engine.username}}}\n"
        )
    return write_config(tmp_path, extra=f"channel: {CHANNEL}\n" + mqtt)


def _anchor(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anchor", *args], capture_output=True, timeout=180, **kwargs
    )


def test_ask_answers_offline_with_the_contract_keys() -> None:
    run = _anchor("ask", "--json", "外卖骑手可以加入工会吗")
    assert run.returncode == 0, run.stderr.decode()
    answer = json.loads(run.stdout)
    assert set(answer) == {"id", "answer", "score", "source"}
    assert answer["source"] == "kb" and answer["id"] and 0.35 <= answer["score"] <= 1
    assert "工会" in answer["answer"]

    unknown = json.loads(_anchor("ask", "--json", "推荐一部好看的电影").stdout)
    assert unknown["source"] == "fallback" and unknown["id"] is None
    assert "12351" in unknown["answer"]


def test_ask_with_a_broken_knowledge_base_names_the_line(tmp_path: Path) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text("entries:\n  - id: a\n    question: 问\n", encoding="utf-8")
    run = _anchor("ask", "--kb", str(kb), "问")
    assert run.returncode == 2
    assert f"{kb}:2: entries.0.answer: required key is missing" in run.stderr.decode()


@pytest.mark.slow
def test_questions_from_the_command_line_and_the_console(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "run", "--config", str(config), "--fast",
         "--duration", "60s", "--out", str(tmp_path / "x.ts"), "--console",
         "--question", "工伤认定要多久内申请"],
        input="我的手机是13900001111，怎么加入工会\n".encode(), capture_output=True, timeout=180,
    )  # fmt: skip
    log = run.stderr.decode()
    assert run.returncode == 0, log[-3000:]
    assert "有朋友问：工伤认定要多久内申请" in log
    assert "有朋友问：我的手机是[手机号]，怎么加入工会" in log
    assert "13900001111" not in log.split("question from the console")[0].split("] ")[-1]
    export = _anchor("log", "export", "--config", str(config))
    rows = list(csv.DictReader(io.StringIO(export.stdout.decode("utf-8-sig"))))
    assert len(rows) == 2 and {row["status"] for row in rows} == {"answered"}


async def _events(broker: ShippedBroker, into: list[dict], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(**broker.client_options(broker.operator("console"))) as client:
        await client.subscribe(f"anchor/{CHANNEL}/events", qos=1)
        ready.set()
        async for message in client.messages:
            into.append(json.loads(message.payload))


async def _until(events: list[dict], predicate, limit_s: float = 30) -> dict:
    async with asyncio.timeout(limit_s):
        while True:
            for event in events:
                if predicate(event):
                    return event
            await asyncio.sleep(0.05)  # polling a list filled by another task


@pytest.mark.slow
async def test_the_control_topic_and_a_flood_of_junk(tmp_path: Path, mosquitto) -> None:
    out = tmp_path / "live.ts"
    events: list[dict] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_events(mosquitto, events, ready))
    await ready.wait()
    engine = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anchor", "run", "--config", str(_config(tmp_path, mosquitto)),
        "--duration", "25s", "--out", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANCHOR_MQTT_PASSWORD": mosquitto.engine.password},
    )  # fmt: skip
    control = f"anchor/{CHANNEL}/control"
    operator = mosquitto.operator("cli")
    try:
        await _until(events, lambda e: e.get("type") == "speaking")
        await mosquitto_pub(
            mosquitto,
            control,
            json.dumps({"cmd": "say", "text": "现在插播一条通知。"}),
            login=operator,
        )
        await _until(
            events, lambda e: e.get("source") == "operator" and "插播" in e.get("text", "")
        )

        broken = "name: x\nsegments:\n  - id: a\n    title: A\n    points: []\n"
        await mosquitto_pub(
            mosquitto,
            control,
            json.dumps({"cmd": "load_schedule", "yaml": broken}),
            login=operator,
        )
        refused = await _until(events, lambda e: e.get("type") == "schedule_rejected")
        assert any(":5:" in error and "points" in error for error in refused["errors"])

        good = (
            "name: 新节目\nsegments:\n  - id: news\n    title: 新闻\n"
            "    points: [这是新节目的第一句。]\n"
        )
        await mosquitto_pub(
            mosquitto, control, json.dumps({"cmd": "load_schedule", "yaml": good}), login=operator
        )
        await _until(events, lambda e: e.get("type") == "schedule_loaded")
        await _until(events, lambda e: e.get("text") == "这是新节目的第一句。")

        junk = [b"not json", b"\x00\x01\x02", json.dumps({"id": 1}).encode(), b"[]", b"x" * 20000]
        bridge = mosquitto.client_options(mosquitto.bridge("chat"))
        async with aiomqtt.Client(**bridge) as flooder:
            for payload in junk * 200:
                await flooder.publish(f"anchor/{CHANNEL}/questions", payload, qos=1)
        await mosquitto_pub(mosquitto, control, json.dumps({"cmd": "dance"}), login=operator)
        await _until(events, lambda e: e.get("reason") == "unknown_command")
        _, stderr = await asyncio.wait_for(engine.communicate(), 120)
    finally:
        if engine.returncode is None:
            engine.kill()
        listener.cancel()
    assert engine.returncode == 0, stderr.decode()[-3000:]
    reasons = {e.get("reason") for e in events if e.get("type") == "rejected"}
    assert {"not_json", "binary", "wrong_type", "not_object", "too_large"} <= reasons
    # The picture never stopped: every frame of the 25 s is in the file.
    probe = await asyncio.to_thread(
        subprocess.run,
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(probe.stdout.split()[0]) == 25 * 30


def test_doctor_names_an_unreachable_broker_and_llm(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "config.yaml"
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "offline.yaml").write_text((ROOT / "voices" / "offline.yaml").read_text("utf-8"))
    (voices / "server.yaml").write_text(
        "engine: http\nvoices: {zh: a}\nfallback: offline\n"
        f"http: {{url: 'http://127.0.0.1:{port}/tts', json: {{text: '{{text}}'}}}}\n",
        encoding="utf-8",
    )
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {port}}}\n"
        f"llm: {{enabled: true, base_url: 'http://127.0.0.1:{port}/v1'}}\n"
        "voice: server\n",
        encoding="utf-8",
    )
    run = _anchor("doctor", "--config", str(config))
    out = run.stdout.decode()
    assert run.returncode == 1
    assert f"[MISSING] MQTT broker: 127.0.0.1:{port} not reachable" in out
    assert "[MISSING] LLM:" in out and "llm.base_url" in out
    assert f"[MISSING] voice server: http://127.0.0.1:{port}/tts not reachable" in out
    assert "[ok     ] voice offline (fallback): espeak-ng" in out
    assert f"[ok     ] voice on air: offline (not server: http://127.0.0.1:{port}/tts" in out
    assert "[ok     ] espeak-ng" in out


@pytest.mark.slow
async def test_the_engine_answers_through_a_local_llm_and_falls_back_when_it_fails(
    tmp_path: Path,
) -> None:
    from anchor.harness.standins import OpenAiStub, Reply

    good = Reply(
        deltas=["可以的，", "新就业形态劳动者都能入会。", "欢迎向当地工会申请。"], gap=0.05
    )
    failing = Reply(status=500, error={"error": {"message": "model is loading"}})
    async with OpenAiStub(good, failing) as server:
        config = _config(tmp_path)
        with config.open("a", encoding="utf-8") as file:
            file.write(
                f"llm: {{enabled: true, base_url: '{server.base_url}', model: qwen-test,"
                " first_token_seconds: 2, total_seconds: 5}\n"
            )
        engine = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anchor", "run", "--config", str(config), "--fast",
            "--duration", "60s", "--out", str(tmp_path / "x.ts"),
            "--question", "外卖骑手能加入工会吗", "--question", "工伤认定申请时限是多久",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(engine.communicate(), 180)
    log = stderr.decode()
    assert engine.returncode == 0, log[-3000:]
    assert "新就业形态劳动者都能入会。" in log, "the model's sentences were aired"
    assert "model is loading" in log, "the server's own error message is kept"
    export = await asyncio.to_thread(_anchor, "log", "export", "--config", str(config))
    rows = list(csv.DictReader(io.StringIO(export.stdout.decode("utf-8-sig"))))
    sources = sorted(row["source"] for row in rows)
    assert sources == ["kb", "llm"], rows
    assert server.requests[0].body["model"] == "qwen-test"
    grounding = json.dumps(server.requests[0].body["messages"], ensure_ascii=False)
    assert "外卖骑手" in grounding and "入会" in grounding
