"""Serving the console (and, when asked, the signals on a port of their own) with uvicorn.

uvicorn runs inside the channel's event loop as one more task; it must not take the
process's signals (the daemon's Ctrl-C handling finishes the sentence on air), so signal
capture is switched off. The socket is bound here, so a port already taken is an OSError at
start that the daemon logs while the show goes on, and port 0 gives a free port to report.
Requests are bounded by uvicorn too: header size, concurrent connections, keep-alive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
KEEP_ALIVE_S = 5
STOP_TIMEOUT_S = 3.0
WS_MAX_BYTES = 64 * 1024  # a WebSocket message larger than this closes the connection


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        trusted_proxies: tuple[str, ...] = (),
        ws_max_size: int = WS_MAX_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_S,
            h11_max_incomplete_event_size=16 * 1024,
            ws_max_size=ws_max_size,
            server_header=False,
            date_header=False,
        )
        self._server = _QuietServer(self._config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        """Bind (raises OSError when the port is taken), then serve in the background."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web-server")
        # uvicorn says it is ready only by a flag; its start-up takes a few milliseconds.
        while not self._server.started and not self._task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()

    async def aclose(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.shield(self._task)
        except (TimeoutError, Exception):
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._socket is not None:
            self._socket.close()
        self._task = None
