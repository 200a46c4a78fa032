"""`/metrics` and `/healthz` over plain HTTP, for Prometheus and for a monitoring probe.

A deliberately small server: GET only, one request per connection, request head bounded in
size and time, a bounded number of connections at once. It answers what a monitor asks and
nothing else, and no request, however malformed, can disturb the show: every error becomes a
4xx/5xx answer or a closed connection, never an exception in the daemon.

`/healthz` answers 200 while the channel is on air (``ok`` or ``degraded``: a peer such as OBS
or the broker is away, the picture still flows) and 503 when it is ``stalled`` (the picture or
the event loop has stopped), so a probe can restart or page on the status code alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from anchor.ops.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 16

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

MetricsPage = Callable[[], Awaitable[str]]
HealthVerdict = Callable[[], dict[str, Any]]


def health_status(checks: dict[str, str]) -> str:
    """The overall verdict from per-part checks (each ok, degraded, stalled or off)."""
    if "stalled" in checks.values():
        return "stalled"
    if "degraded" in checks.values():
        return "degraded"
    return "ok"


class HealthServer:
    """Serves the two pages on `host:port`; `port` holds the bound port once started."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        metrics: MetricsPage,
        health: HealthVerdict,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.host = host
        self.port = port
        self._metrics = metrics
        self._health = health
        self._slots = asyncio.Semaphore(max_connections)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._slots.locked():
                await self._answer(writer, 503, "text/plain", b"busy\n")
                return
            async with self._slots:
                status, content_type, body = await self._respond(reader)
                await self._answer(writer, status, content_type, body)
        except (ConnectionError, TimeoutError):
            pass
        except Exception:
            log.exception("health request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return 431, "text/plain", b"request head too large\n"
        except asyncio.IncompleteReadError:
            return 400, "text/plain", b"incomplete request\n"
        if len(head) > MAX_HEAD_BYTES:
            return 431, "text/plain", b"request head too large\n"
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, "text/plain", b"bad request line\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if target not in ("/metrics", "/healthz"):
            return 404, "text/plain", b"not found: try /metrics or /healthz\n"
        if method != "GET":
            return 405, "text/plain", b"only GET\n"
        try:
            if target == "/metrics":
                return 200, CONTENT_TYPE, (await self._metrics()).encode("utf-8")
            verdict = self._health()
        except Exception:
            log.exception("could not build %s", target)
            return 500, "text/plain", b"internal error\n"
        status = 503 if verdict.get("status") == "stalled" else 200
        body = json.dumps(verdict, ensure_ascii=False).encode("utf-8")
        return status, "application/json", body

    async def _answer(
        self, writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()
