"""One short MQTT 5 connection that publishes a single QoS 1 message and reports what the broker
said: the CONNACK reason code, then the PUBACK reason code.

This is how `anchor doctor` finds out whether a broker lets strangers in or lets the wrong
user drive the show: MQTT 5 brokers answer a publish the ACL denies with PUBACK 0x87 (Not
authorized) instead of dropping it silently as MQTT 3.1.1 must. Blocking (paho's own network
thread, bounded by ``timeout``); async callers run it in a thread.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from anchor.config import MqttTlsConfig
from anchor.links.tls import client_context

NOT_AUTHORIZED = 0x87
BAD_USERNAME_OR_PASSWORD = 0x86


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What happened. ``error`` is set when no MQTT answer came (network, TLS, timeout)."""

    connect_code: int | None = None
    connect_reason: str = ""
    publish_code: int | None = None
    publish_reason: str = ""
    error: str | None = None

    @property
    def connected(self) -> bool:
        return self.connect_code == 0

    @property
    def published(self) -> bool:
        """The broker took the message (0 Success or 0x10 No matching subscribers)."""
        return self.publish_code is not None and self.publish_code < 0x80


def probe_publish(
    host: str,
    port: int,
    *,
    topic: str,
    payload: bytes,
    username: str | None = None,
    password: str | None = None,
    tls: MqttTlsConfig | None = None,
    timeout: float = 5.0,
) -> ProbeResult:
    """Connect (clean start, no session left behind), publish once with QoS 1, disconnect.

    The client id is random: with ``use_username_as_clientid`` the broker replaces it by the
    username anyway, so a probe never takes over the engine's session.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"anchor-probe-{secrets.token_hex(4)}",
        protocol=paho.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)
    connected, published = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def on_connect(_c: paho.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        seen["connect"] = reason
        connected.set()

    def on_publish(_c: paho.Client, _u: object, _m: int, reason: Any, _p: object) -> None:
        seen["publish"] = reason
        published.set()

    def on_disconnect(_c: paho.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        seen.setdefault("disconnect", reason)
        connected.set()  # a refusal may end the connection before on_connect says why
        published.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    try:
        if tls is not None:
            client.tls_set_context(client_context(tls))
        client.connect(host, port, keepalive=10, clean_start=True, properties=properties)
    except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake or set-up
        return ProbeResult(error=f"{type(exc).__name__}: {exc}")
    client.loop_start()
    try:
        if not connected.wait(timeout):
            return ProbeResult(error=f"no CONNACK within {timeout:g} s")
        if "connect" not in seen:
            return ProbeResult(error=f"connection closed: {seen.get('disconnect')}")
        code, reason = _code(seen["connect"])
        if code != 0:
            return ProbeResult(connect_code=code, connect_reason=reason)
        client.publish(topic, payload, qos=1)
        if not published.wait(timeout) or "publish" not in seen:
            return ProbeResult(
                connect_code=0,
                connect_reason=reason,
                error=f"no PUBACK within {timeout:g} s ({seen.get('disconnect', 'no answer')})",
            )
        publish_code, publish_reason = _code(seen["publish"])
        return ProbeResult(0, reason, publish_code, publish_reason)
    finally:
        client.disconnect()
        client.loop_stop()


def _code(reason: Any) -> tuple[int, str]:
    """A paho ReasonCode as (value, the broker's name for it)."""
    return int(getattr(reason, "value", reason)), str(reason)
