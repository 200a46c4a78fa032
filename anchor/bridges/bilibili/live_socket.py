"""One connection to a Bilibili chat server, and the timings and back-off both clients share.

A connection authenticates (op 7, answered by op 8), sends a heartbeat (op 2) every
`Timings.heartbeat_s`, and hands every message (op 5) to its handler in order. It never
returns normally: it ends by raising `ConnectionLost` (closed, refused, silent for
`Timings.receive_timeout_s`, a frame we will not decode), `AuthRejected`, or whatever the
handler raised. The callers decide whether to reconnect; they keep one `Backoff` between
attempts so a flapping server is not hammered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from anchor.bridges.bilibili.errors import AuthRejected, ConnectionLost, PacketError
from anchor.bridges.bilibili.packets import MAX_PACKET_BYTES, Op, Packet, Version, decode, encode

log = logging.getLogger(__name__)

MessageHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Timings:
    """Every interval and timeout of the clients; the defaults are Bilibili's, tests shrink them."""

    heartbeat_s: float = 30.0  # websocket heartbeat (the server drops a socket silent ~60-70 s)
    receive_timeout_s: float = 70.0  # nothing received for this long: reconnect
    connect_timeout_s: float = 10.0  # opening the socket and the auth reply
    backoff_first_s: float = 1.0
    backoff_max_s: float = 30.0
    game_heartbeat_s: float = 20.0  # open platform: keep the game alive
    cooldown_s: float = 10.0  # open platform 7001: start called again too soon
    http_timeout_s: float = 10.0
    end_timeout_s: float = 5.0  # ending the game on stop, at most this long


class Backoff:
    """Capped exponential delays (first, 2×first … cap), each drawn from its upper half.

    `healthy()` marks a connection that worked; if it stayed up for at least the cap, the next
    failure starts again from the first delay. The jitter keeps several bridges from
    reconnecting in lock-step.
    """

    def __init__(self, first_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self._first, self._cap = first_s, cap_s
        self._rng = rng or random.Random()
        self._failures = 0
        self._healthy_since: float | None = None

    def healthy(self) -> None:
        self._healthy_since = time.monotonic()

    def next_delay(self) -> float:
        since = self._healthy_since
        if since is not None and time.monotonic() - since >= self._cap:
            self._failures = 0
        self._healthy_since = None
        self._failures += 1
        ceiling = min(self._cap, self._first * 2.0 ** (self._failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)


async def run_socket(
    url: str,
    auth_body: bytes,
    on_message: MessageHandler,
    timings: Timings,
    *,
    on_authenticated: Callable[[], None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> NoReturn:
    """Connect, authenticate, then heartbeat and deliver messages until the connection ends."""
    try:
        async with connect(
            url,
            open_timeout=timings.connect_timeout_s,
            close_timeout=1.0,
            ping_interval=None,  # Bilibili's own heartbeats and the receive timeout do this job
            max_size=MAX_PACKET_BYTES,
            additional_headers=dict(headers or {}),
        ) as socket:
            await _authenticate(socket, auth_body, timings)
            if on_authenticated is not None:
                on_authenticated()
            beats = asyncio.create_task(_heartbeats(socket, timings), name="bilibili-heartbeat")
            try:
                await _receive(socket, on_message, timings)
            finally:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
    except TimeoutError as exc:
        raise ConnectionLost(f"no answer within the timeout ({url})") from exc
    except (OSError, WebSocketException) as exc:
        raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
    except PacketError as exc:
        raise ConnectionLost(f"undecodable frame: {exc}") from exc
    raise ConnectionLost("closed")  # _receive only ends by raising; this satisfies NoReturn


async def _authenticate(socket: ClientConnection, auth_body: bytes, timings: Timings) -> None:
    await socket.send(encode(Op.AUTH, auth_body, version=Version.PLAIN))
    async with asyncio.timeout(timings.connect_timeout_s):
        while True:
            for packet in decode(_binary(await socket.recv())):
                if packet.op == Op.AUTH_REPLY:
                    code = _auth_code(packet)
                    if code != 0:
                        raise AuthRejected(code)
                    return


def _auth_code(packet: Packet) -> int:
    try:
        reply = json.loads(packet.body)
        code = reply["code"] if isinstance(reply, dict) else -1
        return code if isinstance(code, int) else -1
    except (ValueError, KeyError):
        return -1


async def _heartbeats(socket: ClientConnection, timings: Timings) -> None:
    """Beat at absolute deadlines so a slow send does not stretch the interval."""
    started = time.monotonic()
    beat = 0
    with contextlib.suppress(WebSocketException, OSError):
        while True:
            await socket.send(encode(Op.HEARTBEAT, b"", version=Version.PLAIN))
            beat += 1
            await asyncio.sleep(max(0.0, started + beat * timings.heartbeat_s - time.monotonic()))


async def _receive(socket: ClientConnection, on_message: MessageHandler, timings: Timings) -> None:
    while True:
        try:
            async with asyncio.timeout(timings.receive_timeout_s):
                frame = await socket.recv()
        except TimeoutError as exc:
            raise ConnectionLost(f"nothing received for {timings.receive_timeout_s:g} s") from exc
        for packet in decode(_binary(frame)):
            if packet.op == Op.MESSAGE:
                message = _message(packet.body)
                if message is not None:
                    await on_message(message)
            elif packet.op == Op.HEARTBEAT_REPLY and len(packet.body) >= 4:
                log.debug("Bilibili popularity %d", int.from_bytes(packet.body[:4], "big"))


def _binary(frame: str | bytes) -> bytes:
    return frame if isinstance(frame, bytes) else b""


def _message(body: bytes) -> Mapping[str, Any] | None:
    try:
        message = json.loads(body)
    except ValueError:
        log.warning("Bilibili message that is not JSON skipped (%d bytes)", len(body))
        return None
    return message if isinstance(message, dict) else None
