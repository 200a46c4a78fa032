"""The channel's link to the MQTT broker: questions and control in; answers, events, status out.

Topics (``<channel>`` is ``config.channel``), payloads JSON in UTF-8:

- ``anchor/<channel>/questions`` in, QoS 1: handed raw to ``on_question``
- ``anchor/<channel>/control`` in, QoS 1: handed raw to ``on_control``
- ``anchor/<channel>/audience`` in (bridges' entering, likes, follows, gifts): handed raw to
  ``on_audience`` when one is bound; acknowledged whatever becomes of it
- ``anchor/<channel>/answers`` out, QoS 1: the record of what was aired
- ``anchor/<channel>/events`` out, QoS 0: a live feed; a stale "now speaking" has no value
  after a reconnect, so events are never queued or retried
- ``anchor/<channel>/status`` out, QoS 1, retained; the last will sets ``{"state": "offline"}``

Why it is built this way:

- *Nothing accepted is lost.* The link speaks MQTT 5 with a stable client id, ``clean_start``
  off and a long session expiry, so the broker keeps the subscription and queues questions
  while the engine is down or restarting. Each question is acknowledged (PUBACK) only after
  ``on_question`` has returned, and the question handler stores it in SQLite before
  returning. If the handler raises, the message is not acknowledged and the link reconnects
  after a back-off, and the broker sends the message again.
- *The show never waits for the broker.* Publishing while disconnected drops the message
  (answers are in SQLite anyway) after at most a short timeout, and never raises. ``run()``
  reconnects for ever with capped exponential back-off and jitter.
- *Bounded memory under a flood.* The broker sends at most ``RECEIVE_MAXIMUM`` unacknowledged
  QoS 1 messages (MQTT 5 Receive Maximum); everything beyond waits in the broker (whose own
  ``max_queued_messages`` limits it). QoS 0 messages have no such window, so at most
  ``QOS0_BACKLOG`` of them wait here and the rest are dropped. Outgoing QoS 1 messages
  awaiting the broker's acknowledgement are capped at ``OUTGOING_BACKLOG``.
- *Nothing private is logged.* Payloads may hold viewers' personal data before moderation and
  are never logged; neither is the password.
- *The broker decides who is who.* The client id defaults to ``mqtt.username``: the shipped
  broker configuration (deploy/mosquitto) sets ``use_username_as_clientid``, so the engine's
  persistent session belongs to the engine's user and no other client can take it over.
  ``mqtt.tls`` switches to MQTT over TLS, the way remote brokers should be reached.

The incoming callbacks are awaited one at a time in the message loop, so they must be quick
(store and hand over; never answer inline).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from anchor.config import MqttConfig
from anchor.links.payloads import OFFLINE_STATUS, encode, online_status
from anchor.links.tls import client_context

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 20  # unacknowledged QoS 1 messages the broker may send us at once
QOS0_BACKLOG = 100  # QoS 0 messages allowed to wait for the handler
OUTGOING_BACKLOG = 100  # our QoS 1 messages allowed to wait for the broker's PUBACK
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600  # a weekend off the air keeps its queued questions
PUBLISH_TIMEOUT = 2.0  # the longest a caller waits for a publish to be acknowledged
CONNECT_TIMEOUT = 10.0  # TCP connect plus CONNACK
OFFLINE_TIMEOUT = 2.0  # a clean shutdown: the "offline" status ...
DISCONNECT_TIMEOUT = 1.0  # ... then DISCONNECT


Handler = Callable[[bytes], Awaitable[object]]


class _Inbox(asyncio.Queue[aiomqtt.Message]):
    """Received messages waiting for their handler, bounded by QoS.

    QoS 1 messages need no bound here: the broker stops at ``RECEIVE_MAXIMUM`` of them until
    we acknowledge, and acknowledgement happens only after handling. A QoS 0 sender has no
    such window, so its messages beyond ``QOS0_BACKLOG`` are dropped (it asked for
    at-most-once delivery).
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.dropped = 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if item.qos == 0 and self.qsize() >= QOS0_BACKLOG:
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "more than %d QoS 0 messages are waiting; dropping the excess "
                    "(publish questions with QoS 1 to have them queued by the broker)",
                    QOS0_BACKLOG,
                )
            return
        super().put_nowait(item)


class _AckingClient(aiomqtt.Client):
    """An aiomqtt client whose incoming QoS 1/2 messages are acknowledged by us, not on receipt.

    aiomqtt 2.x has no public switch for this; paho-mqtt (2.x) has ``manual_ack_set`` and
    ``ack(mid, qos)`` on the client that aiomqtt wraps, so this is the one place that reaches
    into aiomqtt's ``_client``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client.manual_ack_set(True)

    def ack(self, message: aiomqtt.Message) -> None:
        """Send PUBACK (or PUBCOMP) for ``message``; harmless for QoS 0 or a dead connection."""
        if message.qos == 0:
            return
        rc = self._client.ack(message.mid, message.qos)
        if rc != 0:
            log.debug(
                "could not acknowledge message %d (rc %d); the broker will resend it",
                message.mid,
                rc,
            )


class _End(enum.Enum):
    """Why a connection ended."""

    CONNECT_FAILED = "connect failed"
    LOST = "connection lost"
    HANDLER_FAILED = "question handler failed"


@dataclass(frozen=True, slots=True)
class _Ended:
    reason: _End
    problem: str
    uptime: float  # seconds connected (0 when the connection never came up)


class MqttLink:
    """Carries one channel's questions and control messages in and its answers out."""

    def __init__(
        self,
        config: MqttConfig,
        channel: str,
        *,
        password: str | None,
        status: Callable[[], dict[str, Any]],
        on_question: Handler | None = None,
        on_control: Handler | None = None,
    ) -> None:
        """``on_question`` gets each raw question payload and must have stored it when it
        returns; ``on_control`` gets each raw control payload. Both may instead be given
        later with ``bind()``, for callers that build the link before its consumers."""
        if not config.host:
            raise ValueError("MqttLink needs mqtt.host; without a broker, do not start the link")
        self._config = config
        self._password = password
        self._on_question = on_question
        self._on_control = on_control
        self._status = status
        self._client_id = config.client_id or config.username or f"anchor-{channel}"
        _explain_identity(config, self._client_id)
        base = f"anchor/{channel}"
        self.questions_topic = f"{base}/questions"
        self.control_topic = f"{base}/control"
        self.answers_topic = f"{base}/answers"
        self.events_topic = f"{base}/events"
        self.status_topic = f"{base}/status"
        self.audience_topic = f"{base}/audience"
        self._on_audience: Handler | None = None
        self._client: _AckingClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._handler_failures = 0

    def bind(
        self, *, on_question: Handler, on_control: Handler, on_audience: Handler | None = None
    ) -> None:
        """Set the handlers (before ``run()``); without ``on_audience`` the audience topic is
        not subscribed."""
        self._on_question = on_question
        self._on_control = on_control
        self._on_audience = on_audience

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def backlog(self) -> int:
        """Messages received and waiting for their handler (0 when disconnected)."""
        client = self._client
        return len(client.messages) if client is not None else 0

    @property
    def _address(self) -> str:
        tls = " (TLS)" if self._config.tls is not None else ""
        return f"{self._config.host}:{self._config.port}{tls}"

    async def run(self) -> None:
        """Stay connected for ever; returns only by cancellation (then goes offline cleanly).

        Each change of state is logged once: connected, and each new reason for being
        disconnected. Retries with an unchanged reason are logged at DEBUG only.
        """
        if self._on_question is None or self._on_control is None:
            raise RuntimeError("MqttLink.run() needs on_question and on_control (see bind())")
        self._task = asyncio.current_task()
        failures = 0
        last_problem: str | None = None
        while True:
            ended = await self._connection()
            if (
                ended.reason is _End.CONNECT_FAILED
                or ended.uptime < self._config.max_reconnect_seconds
            ):
                failures += 1
            else:
                failures = 1
            if ended.reason is not _End.CONNECT_FAILED:
                last_problem = None
            if ended.problem != last_problem:
                log.warning(
                    "MQTT %s (%s): %s; retrying with back-off up to %g s",
                    ended.reason.value,
                    self._address,
                    ended.problem,
                    self._config.max_reconnect_seconds,
                )
                last_problem = ended.problem
            delay = self._backoff(failures)
            log.debug("MQTT retry %d in %.2f s", failures, delay)
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Go offline cleanly: stop ``run()`` (which publishes "offline", then disconnects).

        Cancelling the ``run()`` task does the same; after that, this is a no-op.
        """
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=OFFLINE_TIMEOUT + DISCONNECT_TIMEOUT + 1)

    def _backoff(self, failures: int) -> float:
        """1, 2, 4 … seconds up to the configured cap, each spread over its upper half.

        The jitter keeps several engines (or a restarted broker's clients) from reconnecting
        in lock-step.
        """
        ceiling = min(self._config.max_reconnect_seconds, 2.0 ** (failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    async def _connection(self) -> _Ended:
        """One connection, from CONNECT to whatever ended it."""
        try:
            client = self._new_client()
        except OSError as exc:  # ssl.SSLError too: a CA, certificate or key file is unusable
            return _Ended(_End.CONNECT_FAILED, f"TLS set-up failed: {exc}", 0.0)
        connected_at: float | None = None

        def ended(reason: _End, problem: str) -> _Ended:
            uptime = 0.0 if connected_at is None else time.monotonic() - connected_at
            return _Ended(reason, problem, uptime)

        try:
            async with client:
                connected_at = time.monotonic()
                log.info("MQTT connected to %s as %s", self._address, self._client_id)
                self._client = client
                try:
                    await self._subscribe(client)
                    await self.publish_status()
                    return ended(*await self._dispatch(client))
                except asyncio.CancelledError:
                    await self._go_offline(client)
                    raise
                finally:
                    self._client = None
        except Exception as exc:
            _stay_cancelled()
            if not isinstance(exc, aiomqtt.MqttError):
                log.debug("unexpected MQTT client error", exc_info=True)
            reason = _End.CONNECT_FAILED if connected_at is None else _End.LOST
            return ended(reason, str(exc) or type(exc).__name__)

    def _new_client(self) -> _AckingClient:
        """A fresh client per connection, so an acknowledgement can only reach the session
        that delivered its message (message ids are reused across connections)."""
        connect_properties = Properties(PacketTypes.CONNECT)
        connect_properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        connect_properties.ReceiveMaximum = RECEIVE_MAXIMUM
        if self._password is not None and self._config.username is None:
            log.warning("an MQTT password is set but mqtt.username is not; connecting without")
        tls = self._config.tls
        return _AckingClient(
            self._config.host,
            self._config.port,
            username=self._config.username,
            password=self._password if self._config.username is not None else None,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=connect_properties,
            will=aiomqtt.Will(self.status_topic, encode(OFFLINE_STATUS), qos=1, retain=True),
            keepalive=self._config.keepalive_seconds,
            timeout=CONNECT_TIMEOUT,
            queue_type=_Inbox,
            max_queued_outgoing_messages=OUTGOING_BACKLOG,
            tls_context=None if tls is None else client_context(tls),
        )

    async def _subscribe(self, client: _AckingClient) -> None:
        # Retained messages on input topics are never acted on: a retained "skip" or question
        # would otherwise fire again on every new session.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        topics = [self.questions_topic, self.control_topic]
        if self._on_audience is not None:
            topics.append(self.audience_topic)
        granted = await client.subscribe([(topic, options) for topic in topics])
        for topic, code in zip(topics, granted, strict=False):
            if getattr(code, "is_failure", False):
                log.error(
                    "MQTT broker refused the subscription to %s: [code:%s] %s",
                    topic,
                    getattr(code, "value", "?"),
                    code,
                )

    async def _dispatch(self, client: _AckingClient) -> tuple[_End, str]:
        """Hand each message to its handler, then acknowledge it.

        A failed question handler ends the connection without acknowledging: the broker keeps
        the question and sends it again on the next connection. A control command is
        acknowledged even if its handler failed, because replaying a stale "skip" or "say"
        minutes later would be worse than losing it.
        """
        on_question, on_control = self._on_question, self._on_control
        assert on_question is not None and on_control is not None  # checked by run()
        async for message in client.messages:
            topic = message.topic.value
            if topic == self.questions_topic:
                if not await self._handle(on_question, message, "question"):
                    return _End.HANDLER_FAILED, "a question could not be handed over"
            elif topic == self.control_topic:
                await self._handle(on_control, message, "control message")
            elif topic == self.audience_topic and self._on_audience is not None:
                await self._handle(self._on_audience, message, "audience event")
            client.ack(message)
        return _End.LOST, "message stream ended"

    async def _handle(self, handler: Handler, message: aiomqtt.Message, what: str) -> bool:
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        try:
            await handler(bytes(payload))
        except Exception as exc:
            # The same failure (a full disk) repeats on every redelivery: the first is logged
            # in full, the rest in one line each.
            self._handler_failures += 1
            if self._handler_failures == 1:
                log.exception(
                    "MQTT %s handler failed (message %d, %d bytes)", what, message.mid, len(payload)
                )
            else:
                log.warning("MQTT %s handler failed again: %s", what, exc)
            return False
        self._handler_failures = 0
        return True

    async def _go_offline(self, client: _AckingClient) -> None:
        """On a clean shutdown say "offline" ourselves: a normal DISCONNECT cancels the will."""
        try:
            async with asyncio.timeout(OFFLINE_TIMEOUT):
                await client.publish(self.status_topic, encode(OFFLINE_STATUS), qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.debug("could not publish offline status: %s", exc)
        client.timeout = DISCONNECT_TIMEOUT  # how long leaving the context waits for it
        log.info("MQTT disconnecting from %s", self._address)

    async def publish_answer(self, payload: dict[str, Any]) -> None:
        """The aired answer, QoS 1; dropped (it is in the store) if the broker is away."""
        await self._publish(self.answers_topic, payload, qos=1)

    async def publish_event(self, payload: dict[str, Any]) -> None:
        """A live event, QoS 0 (see the module docstring); dropped if the broker is away."""
        await self._publish(self.events_topic, payload, qos=0)

    async def publish_status(self) -> None:
        """The retained status: what ``status()`` says, marked online."""
        try:
            current = dict(self._status())
        except Exception:
            log.exception("status callback failed; publishing the state alone")
            current = {}
        await self._publish(self.status_topic, online_status(current), qos=1, retain=True)

    async def keep_status(self, every_s: float) -> None:
        """Refresh the retained status now and then (it is also published on each connect)."""
        while True:
            await asyncio.sleep(every_s)
            await self.publish_status()

    async def _publish(
        self, topic: str, payload: dict[str, Any], *, qos: int, retain: bool = False
    ) -> None:
        client = self._client
        if client is None:
            log.debug("MQTT not connected; dropped a message for %s", topic)
            return
        try:
            data = encode(payload)
        except (TypeError, ValueError) as exc:
            log.error("cannot publish to %s: payload is not JSON: %s", topic, exc)
            return
        try:
            await client.publish(topic, data, qos=qos, retain=retain, timeout=PUBLISH_TIMEOUT)
        except aiomqtt.MqttError as exc:
            log.debug("MQTT publish to %s dropped: %s", topic, exc)


def _explain_identity(config: MqttConfig, client_id: str) -> None:
    """Say once, at start, what the broker will make of the identity we bring."""
    if config.client_id and config.username and config.client_id != config.username:
        log.info(
            "mqtt.client_id %s differs from mqtt.username %s: a broker that uses the username "
            "as the client id (use_username_as_clientid, as deploy/mosquitto does) ignores it",
            client_id,
            config.username,
        )
    if config.tls is not None and config.tls.insecure:
        log.warning(
            "mqtt.tls.insecure: the broker certificate's host name is not checked, so another "
            "server holding any certificate from that CA could pose as the broker"
        )
    if config.tls is None and config.username and not _is_local(config.host or ""):
        log.warning(
            "the MQTT password goes to %s unencrypted; set mqtt.tls for a broker on another "
            "machine",
            config.host,
        )


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stay_cancelled() -> None:
    """Re-raise a pending cancellation that an error while disconnecting would hide."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
