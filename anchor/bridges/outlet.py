"""The bridge's side of the broker: what is in the spool goes out, in order, and leaves the
spool only when the broker has it.

Why it is built this way:

- *Nothing accepted is lost.* Messages are read from the spool oldest first and published
  (questions QoS 1); a message is deleted only after its PUBACK. A connection that breaks
  mid-batch leaves the unacknowledged ones in the spool, and the next connection sends them
  again (at least once: the engine keys questions by id).
- *The broker's "no" is heard.* The client speaks MQTT 5, so a publish the ACL denies is
  answered with PUBACK 0x87 instead of being dropped silently. Such a message can never be
  delivered, so it leaves the spool (a message stuck at the head would block every one
  behind it) and is counted and logged, with the topic, as a broker configuration problem.
- *It never gives up.* ``run()`` reconnects for ever with capped exponential back-off and
  jitter (1 s, 2 s, 4 s … up to ``mqtt.max_reconnect_seconds``, 30 s by default).
- *Nothing private is logged*: neither payloads (viewers' words and names) nor the password.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from anchor.bridges.config import BridgeMqttConfig
from anchor.bridges.spool import Spool, Spooled
from anchor.links.tls import client_context

log = logging.getLogger(__name__)

BATCH = 50  # messages published before their acknowledgements are collected
PUBLISH_TIMEOUT = 10.0  # a PUBACK slower than this ends the connection
CONNECT_TIMEOUT = 10.0
FAILED = 0x80  # MQTT 5 reason codes from here up are refusals


class _BrokerClient(aiomqtt.Client):
    """An aiomqtt client whose publish returns the broker's MQTT 5 reason code.

    aiomqtt 2.x drops the PUBACK's reason code; this is the one place that reaches into its
    pending-publish bookkeeping (``_pending_call``) to keep it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._codes: dict[int, int] = {}

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        self._codes[mid] = int(getattr(reason_code, "value", reason_code or 0))
        super()._on_publish(client, userdata, mid, reason_code, properties)

    async def publish_coded(self, topic: str, payload: bytes, qos: int) -> int:
        """Publish and wait (up to PUBLISH_TIMEOUT) for the broker's PUBACK (QoS 1) or the
        socket (QoS 0); the broker's reason code."""
        info = self._client.publish(topic, payload, qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        if not info.is_published():
            confirmation = asyncio.Event()
            with self._pending_call(info.mid, confirmation, self._pending_publishes):
                await self._wait_for(confirmation.wait(), timeout=PUBLISH_TIMEOUT)
        return self._codes.pop(info.mid, 0)


class Outlet:
    """Sends the spool's messages to the broker as the bridge's user, for ever."""

    def __init__(
        self,
        config: BridgeMqttConfig,
        spool: Spool,
        *,
        password: str | None,
        client_id: str,
    ) -> None:
        self._config = config
        self._spool = spool
        self._password = password
        self._client_id = client_id
        self._wakeup = asyncio.Event()
        self._rng = random.Random()
        self.connected = False
        self.published = 0
        self.refused: Counter[str] = Counter()  # topic -> messages the broker would not take

    @property
    def address(self) -> str:
        tls = " (TLS)" if self._config.tls is not None else ""
        return f"{self._config.host}:{self._config.port}{tls}"

    def wake(self) -> None:
        """New messages are in the spool."""
        self._wakeup.set()

    async def run(self) -> None:
        """Stay connected and keep the spool empty; returns only by cancellation."""
        failures = 0
        last_problem: str | None = None
        while True:
            started = time.monotonic()
            problem = await self._connection()
            lasted = time.monotonic() - started
            failures = 1 if lasted >= self._config.max_reconnect_seconds else failures + 1
            if problem != last_problem:
                log.warning(
                    "MQTT %s: %s; %d messages wait in the spool; retrying with back-off up to %g s",
                    self.address,
                    problem,
                    self._spool.pending,
                    self._config.max_reconnect_seconds,
                )
                last_problem = problem
            await asyncio.sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        ceiling = min(self._config.max_reconnect_seconds, 2.0 ** (failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    async def _connection(self) -> str:
        """One connection, from CONNECT to whatever ended it (described for the log)."""
        try:
            client = self._new_client()
        except OSError as exc:  # ssl.SSLError too: a CA, certificate or key file is unusable
            return f"TLS set-up failed: {exc}"
        try:
            async with client:
                self.connected = True
                log.info(
                    "MQTT connected to %s as %s; %d messages in the spool",
                    self.address,
                    self._client_id,
                    self._spool.pending,
                )
                try:
                    await self._drain(client)
                finally:
                    self.connected = False
        except aiomqtt.MqttError as exc:
            _stay_cancelled()
            return str(exc) or type(exc).__name__
        return "connection ended"

    def _new_client(self) -> _BrokerClient:
        tls = self._config.tls
        return _BrokerClient(
            self._config.host,
            self._config.port,
            username=self._config.username,
            password=self._password if self._config.username is not None else None,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            keepalive=self._config.keepalive_seconds,
            timeout=CONNECT_TIMEOUT,
            tls_context=None if tls is None else client_context(tls),
            tls_insecure=None if tls is None else tls.insecure,
        )

    async def _drain(self, client: _BrokerClient) -> None:
        """Send until the connection is lost (the only way this returns is by raising)."""
        lost = asyncio.create_task(_until_lost(client), name="bridge-mqtt-watch")
        sender = asyncio.create_task(self._send(client), name="bridge-mqtt-send")
        try:
            done, _ = await asyncio.wait({lost, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (lost, sender):
                task.cancel()
            await asyncio.gather(lost, sender, return_exceptions=True)
        for task in done:
            task.result()
        raise aiomqtt.MqttError("connection ended")

    async def _send(self, client: _BrokerClient) -> None:
        """Publish what the spool holds, oldest first; then wait for more."""
        while True:
            self._wakeup.clear()
            batch = await self._spool.peek(BATCH)
            if not batch:
                await self._wakeup.wait()
                continue
            await self._publish(client, batch)

    async def _publish(self, client: _BrokerClient, batch: list[Spooled]) -> None:
        """Publish a batch in order (tasks start in creation order, so message ids and the
        wire keep the spool's order); remove every message the broker answered, even when
        the connection is lost or the bridge stops half-way through the batch."""
        answered: list[int] = []

        async def publish(message: Spooled) -> None:
            code = await client.publish_coded(message.topic, message.payload, message.qos)
            answered.append(message.seq)
            if code >= FAILED:
                self._refused(message.topic, code)
            else:
                self.published += 1

        tasks = [asyncio.create_task(publish(message)) for message in batch]
        try:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            await self._spool.remove(answered)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if isinstance(failure, aiomqtt.MqttError):
            raise failure
        if failure is not None:
            raise aiomqtt.MqttError(f"publish failed: {failure!r}") from failure

    def _refused(self, topic: str, code: int) -> None:
        self.refused[topic] += 1
        if self.refused[topic] == 1:
            log.error(
                "the broker refused a message on %s (reason 0x%02x) for user %s; check its "
                "ACL (anchor broker secrets --bridge NAME grants questions and audience). "
                "Refused messages are dropped and counted",
                topic,
                code,
                self._config.username,
            )


async def _until_lost(client: _BrokerClient) -> None:
    """Returns (by raising MqttError) when the connection is lost. The bridge subscribes to
    nothing, so the message iterator only ever ends that way."""
    async for _message in client.messages:
        pass
    raise aiomqtt.MqttError("connection ended")


def _stay_cancelled() -> None:
    """Re-raise a pending cancellation that an error while disconnecting would hide."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
