"""Stand-ins for network peers: real servers on loopback, used by the tests and by the soak.

`OpenAiStub` speaks the OpenAI streaming chat protocol. Each request gets the next scripted
`Reply` (the last one repeats): an answer streamed in deltas as server-sent events, a slow or
stalled stream, or an HTTP error with a JSON body. The server records every request and
notices when the client hangs up mid-answer, so tests can check what was sent and that an
abandoned answer closes its connection. Setting ``hanging`` makes every new request stall
after the headers, as a wedged server does (the soak's LLM endpoint hangs on cue).

`TtsStandIn` is a union's own TTS server: it answers each sentence with real speech as WAV,
and setting ``failing`` makes it answer HTTP 500, as a server whose model crashed does.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import wave
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np

from anchor.speech.base import SpeechError, Voice


@dataclass
class Reply:
    """How the server answers one request.

    ``deltas`` are sent as content chunks after a role-only chunk (as real servers do).
    ``first_delay``: silence before the first content chunk; ``gap``: between the
    following ones. ``stall_after``: after that
    many deltas, send nothing more and keep the connection open. ``hold``: after
    ``hold_after`` deltas, wait for this event before sending the rest. ``status`` other
    than 200 sends ``error`` as the JSON body. ``events`` are raw SSE data payloads sent
    after the deltas. ``grounded``: answer like a well-behaved model, with the answer of the
    first knowledge-base entry in the prompt (``A: ...``), one sentence per delta; ``deltas``
    when the prompt holds none.
    """

    deltas: Sequence[str] = ()
    grounded: bool = False
    status: int = 200
    error: Any = None
    first_delay: float = 0.0
    gap: float = 0.0
    stall_after: int | None = None
    hold: asyncio.Event | None = None
    hold_after: int = 1
    events: Sequence[str] = ()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
}


class _LoopbackServer:
    """A server on a free loopback port while the ``async with`` block runs.

    Each connection is handled by `_handle`; on exit the listener closes and connections still
    open are cancelled, so a stalled client or a hanging answer never outlives the block.
    """

    def __init__(self) -> None:
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class OpenAiStub(_LoopbackServer):
    """The server, running while the ``async with`` block runs; ``base_url`` ends in /v1."""

    def __init__(self, *replies: Reply) -> None:
        super().__init__()
        self.replies = replies or (Reply(),)
        self.requests: list[Request] = []
        self.hangups = 0
        self.hanging = False
        self._hung_up = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def client_hung_up(self) -> None:
        """Return once a client has closed its connection before the answer ended."""
        async with asyncio.timeout(5):
            await self._hung_up.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            reply = self.replies[min(len(self.requests), len(self.replies) - 1)]
            self.requests.append(request)
            if self.hanging:
                reply = Reply(deltas=reply.deltas or ("",), stall_after=0)
            elif reply.grounded:
                reply = replace(reply, deltas=_entry_answer(request.body) or reply.deltas)
            if reply.status != 200:
                await _send_error(writer, reply)
            elif not await self._stream(reader, writer, reply):
                self.hangups += 1
                self._hung_up.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.hangups += 1
            self._hung_up.set()

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply
    ) -> bool:
        """Send the scripted answer; False when the client hung up before the end."""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        await _event(writer, _chunk({"role": "assistant", "content": ""}))
        if reply.first_delay and not await _quiet(reader, asyncio.sleep(reply.first_delay)):
            return False
        for index, delta in enumerate(reply.deltas):
            if reply.stall_after is not None and index >= reply.stall_after:
                return await _quiet(reader, asyncio.Event().wait())
            if index and reply.gap and not await _quiet(reader, asyncio.sleep(reply.gap)):
                return False
            hold = reply.hold if index == reply.hold_after else None
            if hold is not None and not await _quiet(reader, hold.wait()):
                return False
            await _event(writer, _chunk({"content": delta}))
        for data in reply.events:
            await _event(writer, data)
        await _event(writer, _chunk({}, finish="stop"))
        await _event(writer, "[DONE]")
        return True


def _entry_answer(body: dict[str, Any]) -> tuple[str, ...]:
    """The first entry's answer in an answerer's prompt, cut after each sentence."""
    for message in body.get("messages") or []:
        content = str(message.get("content", "")) if isinstance(message, dict) else ""
        found = re.search(r"^A: (.+)$", content, re.MULTILINE)
        if found:
            return tuple(part for part in re.split(r"(?<=[。！？])", found.group(1)) if part)
    return ()


class TtsStandIn(_LoopbackServer):
    """A TTS server on loopback, running while the ``async with`` block runs.

    It takes ``POST /tts`` with a JSON body ``{"text": ..., "language": ...}`` (what a voice
    profile's ``json:`` template sends) and answers 16-bit mono WAV spoken by `voice`, so
    what airs from it is speech with real levels, not a test tone. By default that is the
    offline espeak-ng voice pitched lower, so a listener can tell it from the fallback. The
    stand-in owns the voice and closes it. ``failing`` turns every answer into a 500 with a
    FastAPI-style ``{"detail": ...}`` body; ``served`` and ``refused`` count the answers.
    """

    path = "/tts"
    failure = "TTS model crashed: CUDA error: out of memory"

    def __init__(self, voice: Voice | None = None) -> None:
        super().__init__()
        self._voice = voice
        self.failing = False
        self.served = 0
        self.refused = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def __aenter__(self) -> Self:
        if self._voice is None:
            from anchor.speech.espeak_voice import EspeakVoice

            self._voice = EspeakVoice({"zh": "cmn-latn-pinyin", "en": "en-us"}, pitch=35)
        return await super().__aenter__()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._voice is not None
        await super().__aexit__(*exc_info)
        await self._voice.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            status, content_type, body = await self._answer(request)
            if status == 200:
                self.served += 1
            else:
                self.refused += 1
            await _respond(writer, status, content_type, body)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that hung up or sent garbage gets nothing more

    async def _answer(self, request: Request) -> tuple[int, str, bytes]:
        assert self._voice is not None
        fields = request.body if isinstance(request.body, dict) else {}
        text = fields.get("text")
        if request.method != "POST" or request.path.split("?")[0] != self.path:
            return _detail(404, f"no route {request.method} {request.path}")
        if not isinstance(text, str) or not text.strip():
            return _detail(400, "text is required")
        if self.failing:
            return _detail(500, self.failure)
        try:
            audio = await self._voice.synthesize(text, str(fields.get("language") or "zh"))
        except SpeechError as exc:
            return _detail(500, str(exc))
        return 200, "audio/wav", await asyncio.to_thread(encode_wav, audio.pcm, audio.sample_rate)


def _detail(status: int, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"detail": message}).encode()


def encode_wav(pcm: np.ndarray, rate: int) -> bytes:
    """16-bit mono WAV, what most TTS servers answer with."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, json.loads(body) if body else {})


async def _send_error(writer: asyncio.StreamWriter, reply: Reply) -> None:
    body = json.dumps(reply.error, ensure_ascii=False).encode()
    await _respond(writer, reply.status, "application/json", body)


async def _respond(
    writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes
) -> None:
    reason = _REASONS.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


def _chunk(delta: dict[str, str], finish: str | None = None) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "stub",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        },
        ensure_ascii=False,
    )


async def _event(writer: asyncio.StreamWriter, data: str) -> None:
    writer.write(f"data: {data}\n\n".encode())
    await writer.drain()


async def _quiet(reader: asyncio.StreamReader, pause: Any) -> bool:
    """Wait for ``pause`` while watching the connection; False if the client hangs up first."""
    hangup = asyncio.ensure_future(reader.read(1))
    waiting = asyncio.ensure_future(pause)
    try:
        done, _ = await asyncio.wait({hangup, waiting}, return_when=asyncio.FIRST_COMPLETED)
        return waiting in done
    finally:
        for future in (hangup, waiting):
            future.cancel()
        await asyncio.gather(hangup, waiting, return_exceptions=True)
