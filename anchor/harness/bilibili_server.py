"""Bilibili's live-chat services on loopback, for tests: the open platform and the web route.

One `BilibiliServer` answers the open platform's HTTP API (start, heartbeat, end: the
signature checked exactly as Bilibili documents it, 4002 when it does not match, 7007 for a
wrong 身份码, 7003 for a game whose heartbeat lapsed or that was ended), the web API's
``getDanmuInfo``, and one websocket chat server for both (the open platform's opaque auth
body or the web's ``{"uid","roomid","key",...}``; op 8 with -101 for anything else). The chat
server answers heartbeats (op 3), closes a socket that stops sending them, and pushes what the
test scripts (`send_comment`, `send_gift`, `send_like`, `send_enter`, `end_game`) as op 5
packets, cycling through protocol versions 0, 2 (zlib) and 3 (brotli), several packets to a
frame when they queue up. `drop_connections` aborts every socket mid-stream.

The framing here is written separately from `anchor.bridges.bilibili.packets`, so a
misreading of the protocol shared by both sides is less likely to pass unnoticed.

A test knob with no counterpart at Bilibili: `replay` re-sends the last N messages to every
socket that authenticates, so an abrupt drop loses nothing and duplicates must be removed by
key. Messages pushed while no socket of a protocol is connected wait for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import secrets
import struct
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import brotli
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

_HEADER = struct.Struct(">IHHII")
_SIGNED = (
    "x-bili-accesskeyid",
    "x-bili-content-md5",
    "x-bili-signature-method",
    "x-bili-signature-nonce",
    "x-bili-signature-version",
    "x-bili-timestamp",
)
OPEN, WEB = "open", "web"


def _packet(op: int, body: bytes, version: int = 1) -> bytes:
    return _HEADER.pack(16 + len(body), 16, version, op, 0) + body


def _packets(frame: bytes) -> list[tuple[int, bytes]]:
    """(op, body) of each uncompressed packet in a client's frame."""
    out, offset = [], 0
    while offset + 16 <= len(frame):
        length, header, _version, op, _sequence = _HEADER.unpack_from(frame, offset)
        if length < header or offset + length > len(frame):
            break
        out.append((op, frame[offset + header : offset + length]))
        offset += length
    return out


@dataclass
class _Game:
    game_id: str
    auth_body: str
    last_beat: float
    over: bool = False


@dataclass
class _Event:
    """One thing a viewer did, rendered per protocol when it is sent."""

    kind: str
    fields: dict[str, Any]
    protocols: tuple[str, ...] = (OPEN, WEB)


@dataclass
class _Socket:
    connection: ServerConnection
    protocol: str
    game_id: str
    queue: asyncio.Queue[_Event] = field(default_factory=asyncio.Queue)


@dataclass
class BilibiliServer:
    """The services' state and the test's controls; see `bilibili_server()` to run it."""

    app_id: int = 1001
    access_key_id: str = "test-access-key-id"
    access_key_secret: str = "test-access-key-secret"
    code: str = "TESTCODE42"  # the streamer's 身份码
    room_id: int = 4242
    game_timeout_s: float = 60.0  # a game without a heartbeat for this long is gone (7003)
    socket_timeout_s: float = 70.0  # a socket without a heartbeat for this long is closed
    versions: tuple[int, ...] = (0, 2, 3)  # protocol versions of message frames, in turn
    max_batch: int = 4  # packets in one frame, at most
    replay: int = 0  # test knob: messages re-sent to each newly authenticated socket
    # counters
    starts: int = 0
    start_requests: int = 0
    game_heartbeats: int = 0
    ends: int = 0
    signature_failures: int = 0
    danmu_infos: int = 0
    connections: int = 0
    auths: dict[str, int] = field(default_factory=lambda: {OPEN: 0, WEB: 0})
    auth_failures: int = 0
    socket_heartbeats: int = 0
    silent_closes: int = 0
    drops: int = 0
    messages_sent: int = 0
    frames_sent: dict[int, int] = field(default_factory=dict)
    # addresses, set when running
    api_base: str = ""
    ws_url: str = ""
    ws_port: int = 0
    # internals
    _games: dict[str, _Game] = field(default_factory=dict)
    _tokens: set[str] = field(default_factory=set)
    _nonces: set[str] = field(default_factory=set)
    _sockets: list[_Socket] = field(default_factory=list)
    _open_connections: set[ServerConnection] = field(default_factory=set)
    _http_handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    _history: list[_Event] = field(default_factory=list)
    _delivered: dict[str, int] = field(default_factory=lambda: {OPEN: 0, WEB: 0})
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _frames: itertools.count[int] = field(default_factory=itertools.count)

    # --- what a test scripts ------------------------------------------------------------------

    def send_comment(self, text: str, uname: str = "viewer", viewer: int = 1) -> str:
        """A comment from viewer number ``viewer``; returns its open-platform msg_id."""
        return self._push("comment", {"msg": text, "uname": uname, "viewer": viewer})

    def send_gift(self, gift: str, count: int = 1, uname: str = "viewer", viewer: int = 1) -> str:
        return self._push("gift", {"gift": gift, "num": count, "uname": uname, "viewer": viewer})

    def send_like(self, count: int = 1, uname: str = "viewer", viewer: int = 1) -> str:
        return self._push("like", {"count": count, "uname": uname, "viewer": viewer})

    def send_enter(self, uname: str = "viewer", viewer: int = 1) -> str:
        return self._push("enter", {"uname": uname, "viewer": viewer})

    def send_raw(self, message: dict[str, Any], protocol: str = OPEN) -> None:
        """Any JSON message, as is, to the sockets of one protocol (malformed ones too)."""
        self._deliver(_Event("raw", {"message": message}, (protocol,)))

    def drop_connections(self) -> None:
        """Abort every chat socket at the TCP level: no close frame, nothing flushed."""
        for connection in list(self._open_connections):
            self.drops += 1
            connection.transport.abort()

    def end_game(self) -> None:
        """Push INTERACTION_END to the game's sockets; the game is over (heartbeats get 7003)."""
        for game in self._games.values():
            if not game.over:
                game.over = True
                data = {"game_id": game.game_id, "timestamp": int(time.time())}
                end = {"cmd": "LIVE_OPEN_PLATFORM_INTERACTION_END", "data": data}
                for socket in self._sockets:
                    if socket.game_id == game.game_id:
                        socket.queue.put_nowait(_Event("raw", {"message": end}, (OPEN,)))

    def lapse_game(self) -> None:
        """The game silently expires, as if its heartbeats had stopped: the next one gets 7003."""
        for game in self._games.values():
            game.over = True

    def live_sockets(self, protocol: str | None = None) -> int:
        return sum(1 for s in self._sockets if protocol is None or s.protocol == protocol)

    def active_games(self) -> int:
        return sum(1 for game in self._games.values() if not self._gone(game))

    # --- messages -----------------------------------------------------------------------------

    def _push(self, kind: str, fields: dict[str, Any]) -> str:
        msg_id = f"{secrets.token_hex(4)}-{next(self._ids)}"
        fields = {**fields, "msg_id": msg_id, "ts": time.time()}
        event = _Event(kind, fields)
        self._history.append(event)
        del self._history[:-10_000]
        self._deliver(event)
        return msg_id

    def _deliver(self, event: _Event) -> None:
        for protocol in event.protocols:
            live = [s for s in self._sockets if s.protocol == protocol]
            for socket in live:
                socket.queue.put_nowait(event)
            if live and event.kind != "raw":
                self._delivered[protocol] = len(self._history)

    def _render(self, event: _Event, protocol: str) -> dict[str, Any]:
        f = event.fields
        if event.kind == "raw":
            message: dict[str, Any] = f["message"]
            return message
        ts = int(f["ts"])
        open_id = f"open-{f['viewer']:04d}"
        masked = f["uname"][:1] + "***"
        if protocol == OPEN:
            base = {"uname": f["uname"], "open_id": open_id, "timestamp": ts}
            base["room_id"] = self.room_id
            if event.kind == "comment":
                data = {**base, "msg_id": f["msg_id"], "msg": f["msg"], "dm_type": 0}
                return {"cmd": "LIVE_OPEN_PLATFORM_DM", "data": data}
            if event.kind == "gift":
                data = {**base, "msg_id": f["msg_id"], "gift_name": f["gift"]}
                data |= {"gift_num": f["num"], "paid": True}
                return {"cmd": "LIVE_OPEN_PLATFORM_SEND_GIFT", "data": data}
            if event.kind == "like":
                data = {**base, "like_count": f["count"]}
                return {"cmd": "LIVE_OPEN_PLATFORM_LIKE", "data": data}
            return {"cmd": "LIVE_OPEN_PLATFORM_LIVE_ROOM_ENTER", "data": base}
        if event.kind == "comment":
            meta = [0, 1, 25, 16777215, int(f["ts"] * 1000), 0, 0, "", 0, 0, 0, "", 0, "{}"]
            viewer = [0, masked, 0, 0, 0, 10000, 1, ""]
            return {"cmd": "DANMU_MSG:4:0:2:2:2:0", "info": [meta, f["msg"], viewer, [], []]}
        if event.kind == "gift":
            data = {"giftName": f["gift"], "num": f["num"], "uname": masked, "uid": 0}
            data |= {"timestamp": ts, "tid": f["msg_id"]}
            return {"cmd": "SEND_GIFT", "data": data}
        if event.kind == "like":
            data = {"uname": masked, "uid": 0, "like_text": "为主播点赞了"}
            return {"cmd": "LIKE_INFO_V3_CLICK", "data": data}
        data = {"msg_type": 1, "uname": masked, "uid": 0, "timestamp": ts}
        return {"cmd": "INTERACT_WORD", "data": data}

    def _frame(self, bodies: list[bytes]) -> bytes:
        version = self.versions[next(self._frames) % len(self.versions)]
        self.frames_sent[version] = self.frames_sent.get(version, 0) + 1
        inner = b"".join(_packet(5, body, 0) for body in bodies)
        if version == 0:
            return inner
        squeezed = zlib.compress(inner) if version == 2 else brotli.compress(inner)
        return _packet(5, squeezed, version)

    # --- HTTP ---------------------------------------------------------------------------------

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        parts = urlsplit(target)
        if method == "GET" and parts.path == "/xlive/web-room/v1/index/getDanmuInfo":
            return self._danmu_info({k: v[0] for k, v in parse_qs(parts.query).items()})
        if method != "POST" or not parts.path.startswith("/v2/app/"):
            return _reply(-404, "no such API")
        problem = self._signature_problem(headers, body)
        if problem is not None:
            self.signature_failures += 1
            return _reply(*problem)
        try:
            request = json.loads(body)
        except ValueError:
            return _reply(4000, "body is not JSON")
        if parts.path == "/v2/app/start":
            return self._start(request)
        game = self._games.get(str(request.get("game_id", "")))
        if parts.path == "/v2/app/heartbeat":
            self.game_heartbeats += 1
            if game is None or self._gone(game):
                return _reply(7003, "game heartbeat expired or game closed")
            game.last_beat = time.monotonic()
            return _reply(0, "0", {})
        if parts.path == "/v2/app/end":
            if request.get("app_id") != self.app_id:
                return _reply(4001, "invalid app")
            if game is None or self._gone(game):
                return _reply(7003, "game closed")
            game.over = True
            self.ends += 1
            return _reply(0, "0", {})
        return _reply(-404, "no such API")

    def _signature_problem(self, headers: dict[str, str], body: bytes) -> tuple[int, str] | None:
        if any(name not in headers for name in _SIGNED) or "authorization" not in headers:
            return 4002, "signature headers missing"
        if headers["x-bili-accesskeyid"] != self.access_key_id:
            return 4002, "signature mismatch (access key id)"
        if headers["x-bili-content-md5"] != hashlib.md5(body).hexdigest():
            return 4002, "content md5 mismatch"
        if (headers["x-bili-signature-method"], headers["x-bili-signature-version"]) != (
            "HMAC-SHA256",
            "1.0",
        ):
            return 4002, "unsupported signature method or version"
        lines = "\n".join(f"{name}:{headers[name]}" for name in sorted(_SIGNED))
        expected = hmac.new(self.access_key_secret.encode(), lines.encode(), "sha256").hexdigest()
        if not hmac.compare_digest(expected, headers["authorization"]):
            return 4002, "signature mismatch"
        if (
            not headers["x-bili-timestamp"].isdigit()
            or abs(int(headers["x-bili-timestamp"]) - time.time()) > 600
        ):
            return 4003, "request expired"
        if headers["x-bili-signature-nonce"] in self._nonces:
            return 4004, "repeated request"
        self._nonces.add(headers["x-bili-signature-nonce"])
        return None

    def _start(self, request: dict[str, Any]) -> dict[str, Any]:
        self.start_requests += 1
        if request.get("app_id") != self.app_id:
            return _reply(4001, "invalid app")
        if request.get("code") != self.code:
            return _reply(7007, "identity code error")
        for game in self._games.values():
            game.over = True  # one game per room: a new start replaces the old
        game_id = secrets.token_hex(8)
        key = secrets.token_hex(16)
        auth_body = json.dumps({"roomid": self.room_id, "key": key, "game_id": game_id})
        self._games[game_id] = _Game(game_id, auth_body, time.monotonic())
        self.starts += 1
        return _reply(
            0,
            "0",
            {
                "game_info": {"game_id": game_id},
                "websocket_info": {"auth_body": auth_body, "wss_link": [self.ws_url]},
                "anchor_info": {"room_id": self.room_id, "uname": "streamer", "open_id": "x"},
            },
        )

    def _danmu_info(self, query: dict[str, str]) -> dict[str, Any]:
        self.danmu_infos += 1
        if query.get("id") != str(self.room_id):
            return _reply(1, "room not found")
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        host = {"host": "127.0.0.1", "port": self.ws_port, "wss_port": self.ws_port}
        host["ws_port"] = self.ws_port
        return _reply(0, "0", {"token": token, "host_list": [host]})

    def _gone(self, game: _Game) -> bool:
        return game.over or time.monotonic() - game.last_beat > self.game_timeout_s

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._http_handlers.add(handler)
        try:
            await self._serve_http(reader, writer)
        except asyncio.CancelledError:
            pass  # the server is shutting down; asyncio.streams would report it as an error
        finally:
            writer.close()
            if handler is not None:
                self._http_handlers.discard(handler)

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while request_line := await reader.readline():
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                payload = json.dumps(self._answer(method, target, headers, body)).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()

    # --- chat socket --------------------------------------------------------------------------

    def _protocol_of(self, auth: bytes) -> tuple[str, str] | None:
        """(protocol, game id) for a valid auth body, else None."""
        text = auth.decode("utf-8", "replace")
        for game in self._games.values():
            if text == game.auth_body and not self._gone(game):
                return OPEN, game.game_id
        try:
            body = json.loads(text)
        except ValueError:
            return None
        if (
            isinstance(body, dict)
            and body.get("roomid") == self.room_id
            and body.get("uid") == 0
            and body.get("key") in self._tokens
            and body.get("protover") in (2, 3)
        ):
            return WEB, ""
        return None

    async def _socket(self, connection: ServerConnection) -> None:
        self.connections += 1
        self._open_connections.add(connection)
        socket: _Socket | None = None
        writer: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(10):
                first = await connection.recv()
            first = first.encode() if isinstance(first, str) else first
            auth = [body for op, body in _packets(first) if op == 7]
            found = self._protocol_of(auth[0]) if auth else None
            if found is None:
                self.auth_failures += 1
                await connection.send(_packet(8, b'{"code":-101}'))
                await connection.close()
                return
            await connection.send(_packet(8, b'{"code":0}'))
            protocol, game_id = found
            self.auths[protocol] += 1
            socket = _Socket(connection, protocol, game_id)
            start = max(0, self._delivered[protocol] - self.replay)
            for event in self._history[start:]:
                socket.queue.put_nowait(event)
            self._delivered[protocol] = len(self._history)
            self._sockets.append(socket)
            writer = asyncio.create_task(self._write(socket), name="bilibili-server-writer")
            await self._read(connection)
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            self._open_connections.discard(connection)
            if socket is not None:
                self._sockets.remove(socket)
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await writer

    async def _read(self, connection: ServerConnection) -> None:
        """Answer heartbeats; close the socket when they stop for `socket_timeout_s`."""
        deadline = time.monotonic() + self.socket_timeout_s
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    frame = await connection.recv()
            except TimeoutError:
                self.silent_closes += 1
                await connection.close(1000, "heartbeat timeout")
                return
            if isinstance(frame, str):
                continue
            for op, _body in _packets(frame):
                if op == 2:
                    self.socket_heartbeats += 1
                    deadline = time.monotonic() + self.socket_timeout_s
                    await connection.send(_packet(3, struct.pack(">I", 1000 + self.connections)))

    async def _write(self, socket: _Socket) -> None:
        while True:
            batch = [await socket.queue.get()]
            while len(batch) < self.max_batch and not socket.queue.empty():
                batch.append(socket.queue.get_nowait())
            bodies = [
                json.dumps(self._render(e, socket.protocol), ensure_ascii=False).encode()
                for e in batch
            ]
            await socket.connection.send(self._frame(bodies))
            self.messages_sent += len(bodies)


def _reply(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": secrets.token_hex(6), "data": data}


@contextlib.asynccontextmanager
async def bilibili_server(**settings: Any) -> AsyncIterator[BilibiliServer]:
    """A `BilibiliServer` on free loopback ports while the block runs.

    ``server.api_base`` serves both the open platform and ``getDanmuInfo`` (plain HTTP);
    ``server.ws_url`` is the chat socket (plain ws), also given out by both.
    """
    server = BilibiliServer(**settings)
    http = await asyncio.start_server(server._http, "127.0.0.1", 0)
    server.api_base = f"http://127.0.0.1:{http.sockets[0].getsockname()[1]}"
    try:
        async with serve(server._socket, "127.0.0.1", 0, ping_interval=None) as chat:
            server.ws_port = chat.sockets[0].getsockname()[1]
            server.ws_url = f"ws://127.0.0.1:{server.ws_port}/sub"
            yield server
            chat.close(close_connections=True)
    finally:
        http.close()
        handlers = set(server._http_handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await http.wait_closed()
