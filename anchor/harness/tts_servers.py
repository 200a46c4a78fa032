"""TTS servers on loopback that answer with a test tone: fast, and switchable into failure.

`edge_stand_in` speaks enough of Edge's read-aloud websocket protocol for the Edge voice;
`http_tts` is a plain HTTP TTS server that answers WAV or raw 16-bit PCM, and fails or stalls
when told to. Unlike `standins.TtsStandIn`, which speaks real sentences with espeak-ng, these
answer every request with a tone as long as the text, so a voice test learns what its client
sent and how it coped without waiting for a synthesizer.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from anchor.harness.standins import encode_wav

TICKS = 10_000_000  # Edge's offsets and durations are in 100 ns ticks
MP3_FRAME = 1152  # samples per MPEG audio frame


def tone(rate: int, seconds: float, freq: float = 220.0, amplitude: float = 0.5) -> np.ndarray:
    """A voiced-sounding test signal: a tone with a syllable-like envelope."""
    t = np.arange(int(rate * seconds)) / rate
    envelope = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 3 * t))
    return (amplitude * envelope * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_mp3(pcm: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as output:
        stream = output.add_stream("libmp3lame", rate=rate, layout="mono")
        for start in range(0, len(pcm), MP3_FRAME):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + MP3_FRAME].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


# --- Edge read-aloud stand-in ---------------------------------------------------------------


@dataclass
class EdgeStandIn:
    """Speaks enough of the Edge protocol: speech.config and ssml in; turn.start, audio
    frames, word boundaries and turn.end out. `stall` accepts the connection and never answers.
    """

    stall: bool = False
    seconds_per_word: float = 0.4
    requests: list[str] = field(default_factory=list)
    url: str = ""

    async def _handle(self, connection: ServerConnection) -> None:
        config = await connection.recv()
        ssml = await connection.recv()
        self.requests.append(f"{config!s}\n{ssml!s}")
        if self.stall:
            await connection.wait_closed()
            return
        text = str(ssml).split("<prosody", 1)[1].split(">", 1)[1].split("</prosody>", 1)[0]
        words = text.split() or [text]
        rate = 24000
        pcm = tone(rate, self.seconds_per_word * len(words))
        await connection.send("X-RequestId:1\r\nPath:turn.start\r\n\r\n{}")
        mp3 = encode_mp3(pcm, rate)
        for start in range(0, len(mp3), 4096):
            header = b"X-RequestId:1\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n"
            frame = len(header).to_bytes(2, "big") + header + mp3[start : start + 4096]
            await connection.send(frame)
        for index, word in enumerate(words):
            metadata = {
                "Metadata": [
                    {
                        "Type": "WordBoundary",
                        "Data": {
                            "Offset": int(index * self.seconds_per_word * TICKS),
                            "Duration": int(self.seconds_per_word * 0.8 * TICKS),
                            "text": {"Text": word},
                        },
                    }
                ]
            }
            await connection.send(
                "X-RequestId:1\r\nContent-Type:application/json\r\nPath:audio.metadata\r\n\r\n"
                + json.dumps(metadata)
            )
        await connection.send("X-RequestId:1\r\nPath:turn.end\r\n\r\n{}")
        with contextlib.suppress(Exception):
            await connection.wait_closed()


@contextlib.asynccontextmanager
async def edge_stand_in(stall: bool = False) -> AsyncIterator[EdgeStandIn]:
    stand_in = EdgeStandIn(stall=stall)
    async with serve(stand_in._handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        stand_in.url = f"ws://127.0.0.1:{port}/edge/v1?TrustedClientToken=test"
        yield stand_in
        server.close(close_connections=True)


# --- HTTP TTS server ------------------------------------------------------------------------


@dataclass
class HttpTts:
    """A TTS server answering every request with a tone as long as the text.

    `mode`: "ok", "fail" (HTTP 500 with a message) or "stall" (answers after `stall_seconds`).
    `format`: "wav" or "pcm16" at `rate`. Every request is recorded (path, query, body).
    """

    mode: str = "ok"
    format: str = "wav"
    rate: int = 16000
    stall_seconds: float = 5.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        request = {
            "method": method,
            "path": parts.path,
            "query": query,
            "body": body.decode("utf-8", "replace"),
            "authorization": headers.get("Authorization"),
        }
        with self._lock:
            self.requests.append(request)
            mode = self.mode
        if mode == "fail":
            return 500, b"synthesis backend exploded: CUDA out of memory"
        if mode == "stall":
            threading.Event().wait(self.stall_seconds)
        text = query.get("text") or body.decode("utf-8", "replace")
        pcm = tone(self.rate, 0.3 + 0.05 * len(text))
        if self.format == "pcm16":
            return 200, (pcm * 32767).astype("<i2").tobytes()
        return 200, encode_wav(pcm, self.rate)


@contextlib.contextmanager
def http_tts(
    *, mode: str = "ok", format: str = "wav", rate: int = 16000, stall_seconds: float = 5.0
) -> Iterator[HttpTts]:
    """The server on a free loopback port (its ``url`` ends in /tts) while the block runs."""
    tts = HttpTts(mode=mode, format=format, rate=rate, stall_seconds=stall_seconds)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = tts.answer(method, self.path, body, dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-tts", daemon=True)
    thread.start()
    tts.url = f"http://127.0.0.1:{server.server_address[1]}/tts"
    try:
        yield tts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
