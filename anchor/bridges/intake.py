"""A local intake for chat capture helpers (Douyin, WeChat Channels): JSON in, `ChatEvent` out.

Helpers that push (wxlivespy POSTs to a URL; scripts of our own may hold a WebSocket) reach
`Intake`, a small Starlette application served by `WebServer` on loopback:

    POST /intake/{source}        one event, a list, or the helper's own envelope
    WS   /intake/{source}/ws     each text message one such payload

DouyinBarrageGrab instead *serves* a WebSocket (ws://127.0.0.1:8888 by default), so
`BarrageGrabClient` connects to it and reads, reconnecting with capped backoff.

Everything that arrives is untrusted. A source is named in the path and must present its
shared secret (header `X-Anchor-Secret`, or `?secret=` for helpers that can only be given a
URL, like wxlivespy's `forward_url`); without one configured the intake refuses to start.
Each source has a token bucket; bodies, messages, events per payload and WebSocket
connections are capped; an error names the field and never echoes the payload; logs carry
sources, counts and reasons, never a viewer's name or words.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from anchor.bridges.chat import Sink
from anchor.bridges.helpers import MAPPERS, Mapped, PayloadError, TooManyEvents, map_payload
from anchor.console.server import WebServer

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_EVENTS = 200
MAX_WS_MESSAGE_BYTES = 64 * 1024
MAX_WS_PER_SOURCE = 4
MIN_SECRET_CHARS = 16
SECRET_HEADER = "x-anchor-secret"

# WebSocket close codes (RFC 6455): policy violation, unsupported data, message too big.
WS_POLICY = 1008
WS_UNSUPPORTED = 1003
WS_TOO_BIG = 1009


class IntakeConfigError(ValueError):
    """The intake's configuration cannot work (no secret, unknown format, duplicate name)."""


@dataclass(frozen=True, slots=True)
class HelperSource:
    """One capture helper feeding one platform account.

    `secret_env` names the environment variable holding the shared secret (read at start,
    never logged); `rate` and `burst` size the source's token bucket (requests or messages
    per second)."""

    name: str
    format: str
    platform: str
    secret_env: str = ""
    rate: float = 20.0
    burst: int = 100


class TokenBucket:
    """`rate` tokens a second up to `burst`; `take()` spends one if there is one."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass(slots=True)
class _Feed:
    source: HelperSource
    secret: bytes
    bucket: TokenBucket
    counts: Counter[str]
    sockets: int = 0


class Intake:
    """The HTTP/WebSocket intake; `start()` binds (port 0 picks a free one), `aclose()` stops."""

    def __init__(
        self,
        sources: Sequence[HelperSource],
        sink: Sink,
        *,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._sink = sink
        self._host, self._port = listen
        self._environ = os.environ if environ is None else environ
        self._sources = list(sources)
        self._feeds: dict[str, _Feed] = {}
        self._server: WebServer | None = None
        self.app = Starlette(
            routes=[
                Route("/intake/{source}", self._post, methods=["POST"]),
                WebSocketRoute("/intake/{source}/ws", self._socket),
            ]
        )

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else self._port

    def counts(self, source: str) -> dict[str, int]:
        """What happened at a source: accepted, skipped, unauthorized, rate_limited,
        too_large, malformed, sink_failed, refused_connections."""
        feed = self._feeds.get(source)
        return dict(feed.counts) if feed is not None else {}

    async def start(self) -> None:
        """Check every source (raises IntakeConfigError naming it), then bind and serve."""
        self._feeds = {source.name: self._feed(source) for source in self._sources}
        if len(self._feeds) != len(self._sources):
            raise IntakeConfigError("helper sources must have distinct names")
        if not _is_loopback(self._host):
            log.warning(
                "helper intake listens on %s, not loopback: keep it off the internet", self._host
            )
        # uvicorn's own WebSocket cap sits above ours, so an oversized message reaches the
        # intake's check (closed 1009 and counted) while uvicorn still bounds the buffering.
        server = WebServer(self.app, self._host, self._port, ws_max_size=2 * MAX_WS_MESSAGE_BYTES)
        await server.start()
        self._server = server
        log.info("helper intake on %s for %s", server.url, ", ".join(self._feeds))

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.aclose()
            self._server = None

    def _feed(self, source: HelperSource) -> _Feed:
        if source.format not in MAPPERS:
            raise IntakeConfigError(
                f"helper source {source.name!r}: unknown format {source.format!r} "
                f"(known: {', '.join(MAPPERS)})"
            )
        if not source.secret_env:
            raise IntakeConfigError(
                f"helper source {source.name!r}: no secret_env configured; the intake "
                "does not start without a shared secret"
            )
        secret = self._environ.get(source.secret_env, "")
        if len(secret) < MIN_SECRET_CHARS:
            raise IntakeConfigError(
                f"helper source {source.name!r}: environment variable {source.secret_env} "
                f"is unset or shorter than {MIN_SECRET_CHARS} characters; the intake does not "
                "start without a shared secret"
            )
        if source.rate <= 0 or source.burst < 1:
            raise IntakeConfigError(f"helper source {source.name!r}: rate and burst must be > 0")
        return _Feed(source, secret.encode(), TokenBucket(source.rate, source.burst), Counter())

    # -- shared checks ---------------------------------------------------------------------

    def _authorized(
        self, feed: _Feed, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        given = headers.get(SECRET_HEADER) or query.get("secret") or ""
        if hmac.compare_digest(given.encode(), feed.secret):
            return True
        feed.counts["unauthorized"] += 1
        log.warning("helper source %s: missing or wrong secret", feed.source.name)
        return False

    async def _deliver(self, feed: _Feed, payload: Any) -> Mapped:
        """Map and hand over; raises PayloadError / TooManyEvents before anything is sent."""
        source = feed.source
        mapped = map_payload(source.format, source.platform, payload, max_events=MAX_EVENTS)
        feed.counts["skipped"] += mapped.skipped
        for event in mapped.events:
            await self._sink(event)
            feed.counts["accepted"] += 1
        return mapped

    # -- HTTP ------------------------------------------------------------------------------

    async def _post(self, request: Request) -> Response:
        feed = self._feeds.get(request.path_params["source"])
        if feed is None:
            return _error(404, "unknown source")
        if not self._authorized(feed, request.headers, request.query_params):
            return _error(401, "missing or wrong secret")
        if not feed.bucket.take():
            feed.counts["rate_limited"] += 1
            return _error(429, "too many requests", headers={"Retry-After": "1"})
        body = await _read_body(request)
        if isinstance(body, Response):
            feed.counts["too_large" if body.status_code == 413 else "malformed"] += 1
            return body
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            feed.counts["malformed"] += 1
            return _error(400, "body: not valid JSON (UTF-8)")
        try:
            mapped = await self._deliver(feed, payload)
        except TooManyEvents as exc:
            feed.counts["too_large"] += 1
            return _error(413, str(exc))
        except PayloadError as exc:
            feed.counts["malformed"] += 1
            log.info("helper source %s: refused payload (%s)", feed.source.name, exc.where)
            return _error(400, str(exc))
        except Exception as exc:
            feed.counts["sink_failed"] += 1
            log.error(
                "helper source %s: the bridge refused an event (%s)",
                feed.source.name,
                type(exc).__name__,
            )
            return _error(503, "the bridge cannot take events now; retry later")
        return JSONResponse({"ok": True, "accepted": len(mapped.events), "skipped": mapped.skipped})

    # -- WebSocket -------------------------------------------------------------------------

    async def _socket(self, websocket: WebSocket) -> None:
        feed = self._feeds.get(websocket.path_params["source"])
        if feed is None:
            await _deny(websocket, 404, "unknown source")
            return
        if not self._authorized(feed, websocket.headers, websocket.query_params):
            await _deny(websocket, 401, "missing or wrong secret")
            return
        if feed.sockets >= MAX_WS_PER_SOURCE:
            feed.counts["refused_connections"] += 1
            await _deny(websocket, 503, "too many connections for this source")
            return
        feed.sockets += 1
        try:
            await websocket.accept()
            await self._read_socket(feed, websocket)
        except WebSocketDisconnect:
            pass
        finally:
            feed.sockets -= 1

    async def _read_socket(self, feed: _Feed, websocket: WebSocket) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                feed.counts["malformed"] += 1
                await websocket.close(WS_UNSUPPORTED, "text messages only")
                return
            if len(text) > MAX_WS_MESSAGE_BYTES or len(text.encode()) > MAX_WS_MESSAGE_BYTES:
                feed.counts["too_large"] += 1
                await websocket.close(WS_TOO_BIG, "message too large")
                return
            if not feed.bucket.take():
                feed.counts["rate_limited"] += 1
                await websocket.close(WS_POLICY, "rate limit")
                return
            problem = await self._socket_payload(feed, text)
            if problem is not None:
                await websocket.send_json({"ok": False, "error": problem})

    async def _socket_payload(self, feed: _Feed, text: str) -> str | None:
        """Deliver one message; the short error to answer, or None."""
        try:
            await self._deliver(feed, json.loads(text))
        except (TooManyEvents, PayloadError) as exc:
            feed.counts["too_large" if isinstance(exc, TooManyEvents) else "malformed"] += 1
            return str(exc)
        except (ValueError, RecursionError):
            feed.counts["malformed"] += 1
            return "message: not valid JSON"
        return None


class BarrageGrabClient:
    """Reads DouyinBarrageGrab's WebSocket push and hands each viewer event to `sink`.

    The helper serves `ws://<pc>:8888` (`wsListenPort`, BarrageGrab/App.config) to anyone
    without authentication and obeys JSON commands sent to it, including one that shuts it
    down (BarrageGrab/Modles/JsonEntity/Command.cs, README "远程控制程序"), so this client never
    sends anything. It reconnects with capped, jittered exponential backoff; `run()` ends
    only when cancelled. The sink is awaited before the next message is read, so a slow
    bridge slows the socket instead of filling memory.
    """

    def __init__(
        self,
        url: str,
        source: HelperSource,
        sink: Sink,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 30.0,
        open_timeout: float = 10.0,
    ) -> None:
        if source.format != "douyin_barrage_grab":
            raise IntakeConfigError(
                f"helper source {source.name!r}: the WebSocket client reads only the "
                "douyin_barrage_grab format"
            )
        self.url = url
        self.source = source
        self._sink = sink
        self._min = min_backoff
        self._max = max_backoff
        self._open_timeout = open_timeout
        self._rng = random.Random()
        self.counts: Counter[str] = Counter()
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise IntakeConfigError(f"helper source {source.name!r}: {url!r} is not a ws:// URL")
        host = parts.hostname
        if not _is_loopback(host):
            log.warning(
                "DouyinBarrageGrab at %s is not on this machine: its push is unauthenticated "
                "and unencrypted, keep it on a trusted network",
                host,
            )

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    max_size=MAX_WS_MESSAGE_BYTES,
                    max_queue=16,
                    open_timeout=self._open_timeout,
                ) as connection:
                    failures = 0
                    self.counts["connections"] += 1
                    log.info("connected to DouyinBarrageGrab for %s", self.source.name)
                    async for message in connection:
                        await self._handle(message)
                reason = "closed by the helper"
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                reason = type(exc).__name__
            failures += 1
            delay = self._backoff(failures)
            log.warning(
                "DouyinBarrageGrab for %s: %s; reconnecting in %.1f s",
                self.source.name,
                reason,
                delay,
            )
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        """min, 2·min, 4·min … up to max, each spread over its upper half."""
        ceiling = min(self._max, self._min * 2.0 ** (failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    async def _handle(self, message: str | bytes) -> None:
        try:
            payload = json.loads(message)
            mapped = map_payload(
                self.source.format, self.source.platform, payload, max_events=MAX_EVENTS
            )
        except (PayloadError, TooManyEvents) as exc:
            self.counts["malformed"] += 1
            log.info("DouyinBarrageGrab for %s: skipped a message (%s)", self.source.name, exc)
            return
        except (ValueError, RecursionError):
            self.counts["malformed"] += 1
            log.info(
                "DouyinBarrageGrab for %s: skipped a message that is not JSON", self.source.name
            )
            return
        self.counts["skipped"] += mapped.skipped
        for event in mapped.events:
            await self._sink(event)
            self.counts["accepted"] += 1


# -- small pieces ------------------------------------------------------------------------


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"ok": False, "error": message}, status_code=status, headers=headers)


async def _deny(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse a handshake with an HTTP status when the server can, else close with 1008."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(_error(status, message))
    else:
        await websocket.close(WS_POLICY, message)


async def _read_body(request: Request) -> bytes | Response:
    """The body, at most MAX_BODY_BYTES on the wire and after gzip (wxlivespy's
    `gzip_forward_data`), or the refusal to send."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        return _error(415, "content-encoding: only gzip or none")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding == "identity":
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        return _error(400, "body: not valid gzip")
    if len(plain) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes once unzipped")
    if not inflater.eof:
        return _error(400, "body: truncated gzip")
    return plain


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False
