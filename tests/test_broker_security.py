"""The broker security that ships (deploy/mosquitto with `anchor broker secrets`), tried the way
an attacker on the network would: against the real mosquitto and, where it matters, the real
engine. A denied publish is read from the MQTT 5 PUBACK reason code (0x87 Not authorized), and
the engine's own output shows that nothing it refused ever reached it."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest
from configs import write_config
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from anchor.config import ConfigError, MqttConfig, MqttTlsConfig, load_config
from anchor.harness.certificates import BrokerCertificates, make_certificates
from anchor.harness.mosquitto import (
    SHIPPED_CONFIG,
    Broker,
    BrokerError,
    Login,
    ShippedBroker,
    mosquitto_pub,
)
from anchor.links.mqtt import MqttLink
from anchor.links.probe import NOT_AUTHORIZED, probe_publish
from anchor.links.tls import client_context
from anchor.ops.broker_access import acl_text, channel_users, read_env_file

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "sec"
QUESTIONS, CONTROL = f"anchor/{CHANNEL}/questions", f"anchor/{CHANNEL}/control"
SCAM = "紧急通知：请把银行卡密码发到客服微信领取补贴。"
WAIT = 10.0


# --- the files `anchor broker secrets` writes -----------------------------------------------


def test_the_shipped_acl_is_what_the_command_in_its_header_writes() -> None:
    shipped = (ROOT / "deploy" / "mosquitto" / "acl").read_text(encoding="utf-8")
    command = re.search(r"^#   anchor broker secrets (.*)$", shipped, re.MULTILINE)
    assert command is not None
    args = command.group(1).split()
    named = {flag: [args[i + 1] for i, a in enumerate(args) if a == flag] for flag in args[::2]}
    users = channel_users(named["--channel"][0], named["--bridge"], named["--operator"])
    assert shipped == acl_text(named["--channel"][0], users)
    # Bridges may only ask; only operators may write control; nobody else may write outputs.
    blocks = dict(re.findall(r"^user (\S+)\n((?:topic .*\n)*)", shipped, re.MULTILINE))
    assert blocks["bridge-bilibili"] == (
        "topic write anchor/default/questions\ntopic write anchor/default/audience\n"
    )
    writers = {user for user, topics in blocks.items() if "write anchor/default/control" in topics}
    assert writers == {"operator-console"}
    assert blocks["probe-default"] == ""


def test_the_shipped_mosquitto_conf_refuses_strangers_on_every_listener() -> None:
    lines = SHIPPED_CONFIG.read_text(encoding="utf-8").splitlines()
    settings = [line for line in lines if line and not line.startswith("#")]
    assert "allow_anonymous false" in settings
    assert "per_listener_settings false" in settings  # one login and ACL for all listeners
    listeners = [line for line in lines if line.lstrip("#").startswith("listener ")]
    assert listeners == ["listener 1883 127.0.0.1", "#listener 8883"]
    after_each = [lines[lines.index(listener) :] for listener in listeners]
    for block, listener in zip(after_each, listeners, strict=True):
        prefix = "#" if listener.startswith("#") else ""
        assert f"{prefix}use_username_as_clientid true" in block


def _secrets(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor", "broker", "secrets", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def _passwords(directory: Path) -> dict[str, str]:
    return {
        path.name: next(v for k, v in read_env_file(path).items() if k.endswith("PASSWORD"))
        for path in directory.glob("*.env")
    }


def test_broker_secrets_writes_private_files_keeps_secrets_and_prints_none(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "broker"
    first = _secrets("--dir", str(folder), "--channel", CHANNEL, "--bridge", "bilibili",
                     "--bridge", "douyin", "--operator", "console")  # fmt: skip
    assert first.returncode == 0, first.stderr
    files = {path.name for path in folder.iterdir()}
    assert files == {"passwd", "acl", "engine.env", "bridge-bilibili.env", "bridge-douyin.env",
                     "operator-console.env", "probe.env"}  # fmt: skip
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in files - {"acl"}:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    passwords = _passwords(folder)
    assert len(set(passwords.values())) == 5 and all(len(pw) >= 40 for pw in passwords.values())
    for secret in passwords.values():
        assert secret not in first.stdout + first.stderr
        assert secret not in (folder / "passwd").read_text()  # hashed, never in clear
    hashed = dict(line.split(":", 1) for line in (folder / "passwd").read_text().splitlines())
    assert set(hashed) == {"anchor-sec", "bridge-bilibili", "bridge-douyin", "operator-console",
                           "probe-sec"}  # fmt: skip
    assert all(value.startswith("$7$") for value in hashed.values())  # PBKDF2-SHA512
    assert read_env_file(folder / "bridge-douyin.env")["ANCHOR_MQTT_USERNAME"] == "bridge-douyin"
    assert "mqtt.username: anchor-sec" in (folder / "engine.env").read_text()

    again = _secrets("--dir", str(folder), "--channel", CHANNEL, "--bridge", "bilibili",
                     "--operator", "console")  # fmt: skip
    assert again.returncode == 0, again.stderr
    kept = _passwords(folder)
    assert kept == {k: v for k, v in passwords.items() if k != "bridge-douyin.env"}
    assert "bridge-douyin.env: deleted" in again.stdout
    assert "bridge-douyin" not in (folder / "passwd").read_text()

    rotated = _secrets("--dir", str(folder), "--channel", CHANNEL, "--bridge", "bilibili",
                       "--operator", "console", "--rotate")  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    current = _passwords(folder)
    assert not set(current.values()) & set(kept.values())

    bad = _secrets("--dir", str(folder), "--channel", CHANNEL, "--bridge", "bili bili")
    assert bad.returncode == 1 and "not a valid bridge name" in bad.stderr
    assert _passwords(folder) == current  # a refused run changes nothing


# --- the shipped configuration on a real mosquitto -------------------------------------------


async def _probe(broker: ShippedBroker, topic: str, login: Login | None = None, **kw: object):
    return await asyncio.to_thread(
        probe_publish, broker.host, kw.pop("port", broker.port),
        topic=topic, payload=json.dumps({"cmd": "say", "text": SCAM}).encode(),
        username=None if login is None else login.username,
        password=None if login is None else login.password, **kw,
    )  # fmt: skip


async def test_strangers_and_wrong_passwords_are_refused(shipped_mosquitto: ShippedBroker) -> None:
    broker = shipped_mosquitto
    anonymous = await _probe(broker, CONTROL)
    assert (anonymous.connect_code, anonymous.connect_reason) == (NOT_AUTHORIZED, "Not authorized")
    wrong = await _probe(broker, CONTROL, Login(broker.engine.username, "guessed"))
    assert wrong.connect_code == NOT_AUTHORIZED
    unknown = await _probe(broker, CONTROL, Login("bridge-nobody", broker.bridge().password))
    assert unknown.connect_code == NOT_AUTHORIZED
    with pytest.raises(BrokerError, match="not authorised"):  # MQTT 3.1.1: CONNACK 5
        await mosquitto_pub(broker, QUESTIONS, '{"id": "x", "user": "u", "text": "t"}')


async def test_only_operators_may_publish_control_and_only_the_engine_its_outputs(
    shipped_mosquitto: ShippedBroker,
) -> None:
    broker = shipped_mosquitto
    for login in (broker.bridge(), broker.engine, broker.probe):
        refused = await _probe(broker, CONTROL, login)
        assert refused.connected and refused.publish_code == NOT_AUTHORIZED, (login, refused)
    for topic in ("answers", "events", "status"):  # a bridge cannot pose as the engine
        refused = await _probe(broker, f"anchor/{CHANNEL}/{topic}", broker.bridge())
        assert refused.publish_code == NOT_AUTHORIZED, topic
    refused = await _probe(broker, "anchor/other-channel/control", broker.operator())
    assert refused.publish_code == NOT_AUTHORIZED  # an operator of this channel only
    allowed = await _probe(broker, CONTROL, broker.operator())
    assert allowed.published, allowed
    asked = await _probe(broker, QUESTIONS, broker.bridge())
    assert asked.published, asked


async def test_a_bridge_cannot_read_other_viewers_questions(
    shipped_mosquitto: ShippedBroker,
) -> None:
    broker = shipped_mosquitto
    async with aiomqtt.Client(**broker.client_options(broker.bridge("other"))) as snoop:
        await snoop.subscribe(QUESTIONS, qos=1)
        await snoop.subscribe("#", qos=1)
        await mosquitto_pub(broker, QUESTIONS, '{"id": "p", "user": "u", "text": "私人问题"}',
                            login=broker.bridge())  # fmt: skip
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await anext(aiter(snoop.messages))


# --- the real engine behind the shipped broker ------------------------------------------------


def _engine_config(tmp_path: Path, broker: ShippedBroker) -> Path:
    mqtt = (
        f"mqtt: {{host: {broker.host}, port: {broker.port}, username: {broker.engine.username},"
        " max_reconnect_seconds: 2}\n"
    )
    return write_config(tmp_path, extra=f"channel: {CHANNEL}\n" + mqtt)


async def _start_engine(
    config: Path, broker: ShippedBroker, out: Path, *args: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anchor", "run", "--config", str(config), "--out", str(out), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANCHOR_MQTT_PASSWORD": broker.engine.password},
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _console(broker: ShippedBroker) -> AsyncIterator[list[dict]]:
    """An operator's console collecting the events topic (and the status, tagged)."""
    collected: list[dict] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with aiomqtt.Client(**broker.client_options(broker.operator())) as client:
            await client.subscribe(f"anchor/{CHANNEL}/events", qos=1)
            await client.subscribe(f"anchor/{CHANNEL}/status", qos=1)
            ready.set()
            async for message in client.messages:
                payload = json.loads(message.payload)
                if message.topic.value.endswith("/status"):
                    payload = {"status": payload}
                collected.append(payload)

    task = asyncio.create_task(listen())
    try:
        async with asyncio.timeout(WAIT):
            await ready.wait()
        yield collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _seen(events: list[dict], predicate, limit_s: float = 60) -> dict:
    async with asyncio.timeout(limit_s):
        while True:
            for event in events:
                if predicate(event):
                    return event
            await asyncio.sleep(0.05)


def _online(event: dict) -> bool:
    return event.get("status", {}).get("state") == "online"


async def _stop(engine: asyncio.subprocess.Process) -> str:
    if engine.returncode is None:
        engine.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(engine.communicate(), 60)
    return stderr.decode()


@pytest.mark.slow
async def test_a_bridge_cannot_make_the_engine_say_pause_or_load_a_schedule(
    tmp_path: Path, shipped_mosquitto: ShippedBroker
) -> None:
    broker = shipped_mosquitto
    config = _engine_config(tmp_path, broker)
    async with _console(broker) as events:
        engine = await _start_engine(config, broker, tmp_path / "live.ts", "--duration", "60s")
        try:
            await _seen(events, lambda e: e.get("type") == "speaking")
            attacks = [
                {"cmd": "say", "text": SCAM},
                {"cmd": "pause"},
                {"cmd": "load_schedule", "yaml": "name: x\nsegments:\n  - id: a\n    title: A\n"
                 f"    points: [{SCAM}]\n"},
            ]  # fmt: skip
            for attack in attacks:
                result = await asyncio.to_thread(
                    probe_publish, broker.host, broker.port, topic=CONTROL,
                    payload=json.dumps(attack, ensure_ascii=False).encode(),
                    username=broker.bridge().username, password=broker.bridge().password,
                )  # fmt: skip
                assert (result.publish_code, result.publish_reason) == (0x87, "Not authorized")
            # Control messages are handled in order, so once the operator's line airs, anything
            # the broker had let through before it would have been handled already.
            await mosquitto_pub(broker, CONTROL, json.dumps({"cmd": "say", "text": "插播通知。"}),
                                login=broker.operator("cli"))  # fmt: skip
            await _seen(
                events, lambda e: e.get("source") == "operator" and "插播" in e.get("text", "")
            )
            await asyncio.sleep(1.0)
        finally:
            log = await _stop(engine)
    assert engine.returncode == 0, log[-3000:]
    assert SCAM not in json.dumps(events, ensure_ascii=False) and "银行卡" not in log
    applied = [(e["cmd"], e.get("text")) for e in events if e.get("type") == "control"]
    assert applied == [("say", "插播通知。")]
    assert not [e for e in events if str(e.get("type", "")).startswith("schedule")]
    assert not [e for e in events if e.get("type") == "rejected"]  # never even reached it
    assert not [e for e in events if e.get("status", {}).get("paused")]


async def _steal(broker: ShippedBroker, *, clean_start: bool) -> list[bytes]:
    """Connect as a bridge that claims the engine's client id; what it receives in 1.5 s."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    received: list[bytes] = []
    async with aiomqtt.Client(
        **broker.client_options(broker.bridge()), identifier=f"anchor-{CHANNEL}",
        protocol=aiomqtt.ProtocolVersion.V5, clean_start=clean_start, properties=properties,
    ) as thief:  # fmt: skip
        await thief.subscribe(QUESTIONS, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):
                async for message in thief.messages:
                    received.append(bytes(message.payload))
    return received


def _exported(config: Path) -> dict[str, dict]:
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "log", "export", "--config", str(config)],
        capture_output=True, text=True, check=True, encoding="utf-8-sig",
    )  # fmt: skip
    return {row["id"]: row for row in csv.DictReader(io.StringIO(run.stdout))}


@pytest.mark.slow
async def test_nobody_can_take_over_the_engine_session_while_it_is_stopped(
    tmp_path: Path, shipped_mosquitto: ShippedBroker
) -> None:
    broker = shipped_mosquitto
    config = _engine_config(tmp_path, broker)
    async with _console(broker) as events:
        first = await _start_engine(config, broker, tmp_path / "first.ts")
        try:
            await _seen(events, _online)
        finally:
            log = await _stop(first)  # a clean stop: the session stays, subscribed
    assert first.returncode == 0, log[-3000:]

    for n, text in enumerate(["工伤认定要多久内申请", "怎么加入工会"]):
        question = {"id": f"t{n}", "user": f"viewer{n}", "text": text}
        await mosquitto_pub(broker, QUESTIONS, json.dumps(question, ensure_ascii=False),
                            login=broker.bridge())  # fmt: skip
    assert await _steal(broker, clean_start=False) == []  # a session of its own, empty
    assert await _steal(broker, clean_start=True) == []  # and it cannot wipe the engine's
    impostor = await _probe(
        broker, CONTROL, Login(broker.engine.username, broker.bridge().password)
    )
    assert impostor.connect_code == NOT_AUTHORIZED

    second = await _start_engine(config, broker, tmp_path / "second.ts", "--fast",
                                 "--duration", "60s")  # fmt: skip
    _, stderr = await asyncio.wait_for(second.communicate(), 180)
    assert second.returncode == 0, stderr.decode()[-3000:]
    rows = _exported(config)
    assert {rows[q]["status"] for q in ("t0", "t1")} == {"answered"}, rows


@pytest.mark.parametrize("use_username_as_clientid", ["true", "false"])
async def test_a_bridge_claiming_the_engine_id_loses_questions_only_without_the_setting(
    tmp_path: Path, use_username_as_clientid: str
) -> None:
    """Why the shipped configuration has the line: the same attack on a copy without it.

    Without it the bridge resumes the engine's session. The ACL still keeps the questions
    from the bridge, but they are dropped on the way to it, so the engine never gets them."""
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        SHIPPED_CONFIG.read_text(encoding="utf-8").replace(
            "\nuse_username_as_clientid true",
            f"\nuse_username_as_clientid {use_username_as_clientid}",
        ),
        encoding="utf-8",
    )
    broker = ShippedBroker(tmp_path / "broker", channel=CHANNEL, shipped=config)
    broker.start()
    try:
        got: list[bytes] = []

        async def take(payload: bytes) -> None:
            got.append(payload)

        await _run_link_once(broker, take)  # the engine's persistent session
        await mosquitto_pub(broker, QUESTIONS, b'{"id": "s1"}', login=broker.bridge())
        assert await _steal(broker, clean_start=False) == []
        await _run_link_once(broker, take)
    finally:
        broker.kill()
    assert got == ([b'{"id": "s1"}'] if use_username_as_clientid == "true" else [])


async def _run_link_once(broker: ShippedBroker, on_question, seconds: float = 1.0) -> None:
    link = MqttLink(
        MqttConfig(host=broker.host, port=broker.port, username=broker.engine.username),
        CHANNEL, password=broker.engine.password, status=dict,
        on_question=on_question, on_control=on_question,
    )  # fmt: skip
    task = asyncio.create_task(link.run())
    await asyncio.sleep(seconds)
    await link.close()
    assert task.done()


# --- MQTT over TLS ---------------------------------------------------------------------------


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[ShippedBroker, BrokerCertificates]]:
    """The shipped configuration with its TLS listener turned on, certificates from openssl."""
    certificates = make_certificates(tmp_path / "pki")
    broker = ShippedBroker(tmp_path / "broker", channel=CHANNEL, certificates=certificates)
    try:
        broker.start()
        yield broker, certificates
    finally:
        broker.kill()


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def _tls_link(broker: ShippedBroker, tls: MqttTlsConfig, questions: list[bytes]) -> MqttLink:
    async def take(payload: bytes) -> None:
        questions.append(payload)

    config = MqttConfig(
        host=broker.host, port=broker.tls_port, username=broker.engine.username, tls=tls,
        max_reconnect_seconds=1, keepalive_seconds=5,
    )  # fmt: skip
    return MqttLink(config, CHANNEL, password=broker.engine.password, status=dict,
                    on_question=take, on_control=take)  # fmt: skip


async def test_a_question_round_trips_over_tls(
    tls_broker: tuple[ShippedBroker, BrokerCertificates], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="anchor.links.mqtt")
    broker, certificates = tls_broker
    questions: list[bytes] = []
    link = _tls_link(broker, MqttTlsConfig(ca_file=certificates.ca_file), questions)
    task = asyncio.create_task(link.run())
    operator = broker.client_options(broker.operator())
    operator["port"] = broker.tls_port
    tls = client_context(MqttTlsConfig(ca_file=certificates.ca_file))
    try:
        await _until(lambda: link.connected)
        async with aiomqtt.Client(**operator, tls_context=tls) as console:
            await console.subscribe(f"anchor/{CHANNEL}/answers", qos=1)
            question = {"id": "tls-1", "user": "远程", "text": "加班费怎么算"}
            await mosquitto_pub(broker, QUESTIONS, json.dumps(question, ensure_ascii=False),
                                login=broker.bridge(), cafile=certificates.ca_file)  # fmt: skip
            await _until(lambda: bool(questions))
            received = json.loads(questions[0])
            await link.publish_answer({"question_id": received["id"], "answer": "按规定支付。"})
            async with asyncio.timeout(WAIT):
                answer = await anext(aiter(console.messages))
    finally:
        await link.close()
    assert task.done()
    assert received == question
    assert json.loads(answer.payload) == {"question_id": "tls-1", "answer": "按规定支付。"}
    assert f"(TLS) as {broker.engine.username}" in caplog.text  # client id = its user name


async def test_a_client_without_the_ca_is_refused(
    tls_broker: tuple[ShippedBroker, BrokerCertificates], caplog: pytest.LogCaptureFixture
) -> None:
    broker, _ = tls_broker
    for tls in (MqttTlsConfig(), MqttTlsConfig(insecure=True)):  # system CAs only
        caplog.clear()
        link = _tls_link(broker, tls, [])
        task = asyncio.create_task(link.run())
        await asyncio.sleep(1.5)
        assert not link.connected
        await link.close()
        assert task.done()
        assert "certificate verify failed" in caplog.text
    result = await _probe(broker, CONTROL, broker.operator(), port=broker.tls_port,
                          tls=MqttTlsConfig())  # fmt: skip
    assert result.connect_code is None and "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    with pytest.raises(BrokerError):  # plain MQTT to the TLS port
        await _plain_to_tls_port(broker)


async def _plain_to_tls_port(broker: ShippedBroker) -> None:
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", broker.host, "-p", str(broker.tls_port), "-t", QUESTIONS,
        "-q", "1", "-m", "{}", "-u", broker.bridge().username, "-P", broker.bridge().password,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), WAIT)
    if process.returncode != 0:
        raise BrokerError(stderr.decode())


def test_tls_paths_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here, only that it exists")
    config = tmp_path / "config.yaml"
    config.write_text("mqtt: {host: broker.example, port: 8883, tls: {ca_file: ca.pem}}\n")
    assert load_config(config).mqtt.tls == MqttTlsConfig(ca_file=tmp_path / "ca.pem")
    config.write_text("mqtt: {host: h, tls: {ca_file: missing.pem, cert_file: ca.pem}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert f"mqtt.tls.ca_file: {tmp_path / 'missing.pem'} is not a file" in str(caught.value)
    config.write_text("mqtt: {host: h, tls: {cert_file: ca.pem}}\n")
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        load_config(config)


# --- anchor doctor ---------------------------------------------------------------------------


def _doctor(broker: Broker, tmp_path: Path, env: dict[str, str] | None = None) -> str:
    config = tmp_path / "doctor.yaml"
    config.write_text(f"channel: {CHANNEL}\nmqtt: {{host: {broker.host}, port: {broker.port}}}\n")
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "doctor", "--config", str(config)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return run.stdout


def _probe_env(broker: ShippedBroker) -> dict[str, str]:
    return read_env_file(broker.secrets_dir / "probe.env")


def test_doctor_warns_about_an_open_broker(mosquitto: Broker, tmp_path: Path) -> None:
    out = _doctor(mosquitto, tmp_path)
    assert (
        f"[WARNING] MQTT anonymous: accepted, and may publish {CONTROL} (PUBACK 0x10 No "
        "matching subscribers): anyone who reaches" in out
    )
    assert "refused by the engine as unknown_command" in out


def test_doctor_passes_the_shipped_broker(shipped_mosquitto: ShippedBroker, tmp_path: Path) -> None:
    out = _doctor(shipped_mosquitto, tmp_path, _probe_env(shipped_mosquitto))
    assert "[ok     ] MQTT anonymous: refused (CONNACK 0x87 Not authorized)" in out
    assert (
        f"[ok     ] MQTT control ACL: probe-{CHANNEL} may not publish {CONTROL} "
        "(PUBACK 0x87 Not authorized)" in out
    )


def test_doctor_warns_when_any_user_may_publish_control(tmp_path: Path) -> None:
    broker = ShippedBroker(tmp_path / "broker", channel=CHANNEL)
    (broker.secrets_dir / "acl").write_text(f"user probe-{CHANNEL}\ntopic readwrite anchor/#\n")
    broker.start()
    try:
        out = _doctor(broker, tmp_path, _probe_env(broker))
    finally:
        broker.kill()
    assert "[ok     ] MQTT anonymous: refused" in out
    assert (
        f"[WARNING] MQTT control ACL: probe-{CHANNEL}, a user with no rights, may publish "
        f"{CONTROL} (PUBACK 0x10 No matching subscribers): a bridge could change what airs" in out
    )


# --- least privilege -------------------------------------------------------------------------

RUN_AS = """
import os, sys
os.geteuid = lambda: int(sys.argv[1])
from anchor.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("uid", [0, 1000])
def test_anchor_run_as_root_warns_once(tmp_path: Path, uid: int) -> None:
    config = write_config(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", RUN_AS, str(uid), "run", "--config", str(config), "--fast",
         "--duration", "1s", "--out", str(tmp_path / "x.ts")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("running as root") == (1 if uid == 0 else 0)
