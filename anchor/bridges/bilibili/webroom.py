"""The Bilibili web-protocol chat client: the fallback when no open-platform app is set up.

It reads a room's chat the way the web player does, anonymously: ``getDanmuInfo`` gives a
token and the chat servers, the socket authenticates with ``uid`` 0 and that token, and
Bilibili masks viewers' names (and gives uid 0) to anonymous readers. Comments carry no id, so
`mapping` derives a stable one. Every drop, refusal or failed look-up is retried with capped
back-off, fetching a fresh token each time; nothing here is fatal.

What a real deployment may additionally need: Bilibili now answers ``getDanmuInfo`` only with
a *wbi* signature (``w_rid`` and ``wts`` query parameters computed from the day's mixin key)
and a ``buvid3`` cookie, and may refuse sockets without a browser-like ``User-Agent`` and
``Origin``. ``headers`` and ``socket_headers`` carry cookies and such; the wbi signature is not
implemented here (it changes daily and is not a documented interface), so against the real
site ``api_base`` may have to point at a signing proxy. The open platform has none of this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from anchor.bridges.bilibili.errors import ApiError, AuthRejected, ConnectionLost
from anchor.bridges.bilibili.live_socket import Backoff, Timings, run_socket
from anchor.bridges.bilibili.mapping import web_event
from anchor.bridges.chat import Sink

log = logging.getLogger(__name__)

WEB_API = "https://api.live.bilibili.com"
DANMU_INFO = "/xlive/web-room/v1/index/getDanmuInfo"


class WebRoomClient:
    """Keeps room ``room_id``'s chat flowing into ``sink`` until cancelled.

    ``api_base`` is the web API's origin (tests point it at loopback); ``socket_scheme`` is
    "wss" against Bilibili (the host's ``wss_port``) or "ws" (its ``ws_port``, for tests).
    ``headers`` go with the HTTP look-up, ``socket_headers`` with the websocket handshake.
    """

    platform = "bilibili"

    def __init__(
        self,
        *,
        room_id: int,
        sink: Sink,
        api_base: str = WEB_API,
        socket_scheme: str = "wss",
        headers: Mapping[str, str] | None = None,
        socket_headers: Mapping[str, str] | None = None,
        timings: Timings | None = None,
    ) -> None:
        if socket_scheme not in ("ws", "wss"):
            raise ValueError(f"socket_scheme must be 'ws' or 'wss', not {socket_scheme!r}")
        self._room_id, self._sink = room_id, sink
        self._api_base = api_base.rstrip("/")
        self._scheme = socket_scheme
        self._headers = dict(headers or {})
        self._socket_headers = dict(socket_headers or {})
        self._timings = timings or Timings()
        self._backoff = Backoff(self._timings.backoff_first_s, self._timings.backoff_max_s)
        self._task: asyncio.Task[Any] | None = None
        self.events = 0  # how many events reached the sink

    async def run(self) -> None:
        self._task = asyncio.current_task()
        timeout = httpx.Timeout(self._timings.http_timeout_s)
        async with httpx.AsyncClient(
            base_url=self._api_base, timeout=timeout, headers=self._headers
        ) as http:
            attempt = 0
            while True:
                try:
                    token, servers = await self._danmu_info(http)
                    url = servers[attempt % len(servers)]
                    attempt += 1
                    await run_socket(
                        url,
                        self._auth_body(token),
                        self._on_message,
                        self._timings,
                        on_authenticated=self._authenticated,
                        headers=self._socket_headers,
                    )
                except (ConnectionLost, AuthRejected, ApiError) as exc:
                    problem = str(exc)
                except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
                    problem = f"room look-up failed: {type(exc).__name__}: {exc}"
                delay = self._backoff.next_delay()
                log.warning("Bilibili web chat: %s; retrying in %.2f s", problem, delay)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Cancel ``run()`` and wait for its sockets to close."""
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=self._timings.end_timeout_s + 2.0)

    async def _danmu_info(self, http: httpx.AsyncClient) -> tuple[str, list[str]]:
        """A fresh token and the chat servers' URLs."""
        response = await http.get(DANMU_INFO, params={"id": self._room_id, "type": 0})
        response.raise_for_status()
        reply = response.json()
        code = reply.get("code") if isinstance(reply, dict) else -1
        if code != 0:
            message = str(reply.get("message", "")) if isinstance(reply, dict) else ""
            raise ApiError(code if isinstance(code, int) else -1, message[:200])
        data = reply["data"]
        token = data["token"]
        if not isinstance(token, str):
            raise TypeError("token is not a string")
        port_key = "wss_port" if self._scheme == "wss" else "ws_port"
        servers = [
            f"{self._scheme}://{host['host']}:{int(host[port_key])}/sub"
            for host in data["host_list"]
            if isinstance(host, dict) and isinstance(host.get("host"), str)
        ]
        if not servers:
            raise ValueError("getDanmuInfo answered no chat server")
        return token, servers

    def _auth_body(self, token: str) -> bytes:
        body = {
            "uid": 0,
            "roomid": self._room_id,
            "protover": 3,
            "platform": "web",
            "type": 2,
            "key": token,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _authenticated(self) -> None:
        self._backoff.healthy()
        log.info("Bilibili web chat connected to room %d", self._room_id)

    async def _on_message(self, message: Mapping[str, Any]) -> None:
        event = web_event(message, received_at=time.time())
        if event is not None:
            self.events += 1
            await self._sink(event)
