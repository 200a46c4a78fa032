"""A streaming client for an OpenAI-compatible chat API (Ollama, vLLM, llama.cpp server).

On air, a slow answer is worse than a plain one: the host cannot stand silent while a model
thinks. So the client enforces two deadlines of its own, measured from the request: the
first piece of text must arrive within ``first_token_seconds`` and the whole answer within
``total_seconds``. They hold even when the server accepts the connection and then stalls
mid-stream, because every read waits under the deadline rather than under a per-read
socket timeout that a trickling server keeps resetting.

Every failure is an ``LlmError`` that keeps what the server said (its HTTP status and its
``{"error": {"message": ...}}`` text, verbatim), so an operator reading the log sees the
model server's own words. The API key is sent as a bearer token and never logged or shown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, TypeVar, cast

import httpx

from anchor.config import LlmConfig, secret_from_env

_ERROR_BODY_LIMIT = 64 * 1024
_T = TypeVar("_T")


class LlmError(Exception):
    """The model server could not give an answer; ``status`` is its HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


class LlmTimeout(LlmError):
    """The server was too slow: no first text in time, or the answer took too long."""


class LlmClient:
    """Chat completions from one model, streamed as text deltas.

    One client keeps one connection pool; close it with ``aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        *,
        first_token_seconds: float,
        total_seconds: float,
        max_tokens: int,
        temperature: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._first_token_seconds = first_token_seconds
        self._total_seconds = total_seconds
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # The timeout is a backstop only: the deadlines in stream_chat keep the show moving.
        # Proxy settings from the environment are ignored: prompts go to the configured
        # server and nowhere else.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(total_seconds, connect=min(first_token_seconds, 10.0)),
            trust_env=False,
        )

    @classmethod
    def from_config(cls, config: LlmConfig) -> LlmClient:
        """A client as configured, its API key read from the environment variable named there."""
        return cls(
            config.base_url,
            config.model,
            secret_from_env(config.api_key_env),
            first_token_seconds=config.first_token_seconds,
            total_seconds=config.total_seconds,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
        )

    def __repr__(self) -> str:
        return f"LlmClient({self.base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def stream_chat(self, messages: Sequence[Mapping[str, str]]) -> AsyncGenerator[str, None]:
        """The answer's text as the server writes it, one delta at a time.

        Raise LlmTimeout when no text arrives within ``first_token_seconds`` or the answer is
        not finished within ``total_seconds``; LlmError for anything else the server or the
        network did. Iterate it inside ``contextlib.aclosing`` (or run it to the end) so an
        abandoned answer closes its connection at once.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        finish_by = started + self._total_seconds
        first_by = min(started + self._first_token_seconds, finish_by)
        request = self._client.build_request(
            "POST",
            f"{self.base_url}/chat/completions",
            json=self._payload(messages),
            headers=self._headers,
        )
        first_text = f"no text within {self._first_token_seconds:g} s"
        whole = f"the answer was not complete within {self._total_seconds:g} s"
        response = await self._before(first_by, self._client.send(request, stream=True), first_text)
        try:
            if response.status_code != 200:
                raise await self._refusal(response, finish_by, whole)
            spoke = False
            # httpx declares AsyncIterator, but aiter_lines is an async generator (has aclose).
            lines_gen = cast(AsyncGenerator[str, None], response.aiter_lines())
            async with aclosing(lines_gen) as lines:
                while True:
                    try:
                        if spoke:
                            line = await self._before(finish_by, anext(lines), whole)
                        else:
                            line = await self._before(first_by, anext(lines), first_text)
                    except StopAsyncIteration:
                        return
                    delta = _delta(line)
                    if delta is None:
                        return
                    if delta:
                        spoke = True
                        yield delta
        finally:
            await response.aclose()

    def _payload(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [dict(message) for message in messages],
            "stream": True,
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }

    async def _before(self, deadline: float, step: Awaitable[_T], late: str) -> _T:
        """Await one step of the exchange under ``deadline``, translating every failure."""
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except (TimeoutError, httpx.TimeoutException):
            raise LlmTimeout(f"{self.base_url} was too slow: {late}") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise LlmError(f"cannot talk to {self.base_url}: {reason}") from None

    async def _refusal(self, response: httpx.Response, deadline: float, late: str) -> LlmError:
        """The error for a non-200 reply; its status is kept even if the body never comes."""
        try:
            return await self._before(deadline, _http_error(response), late)
        except LlmError as exc:
            reason = response.reason_phrase or "request failed"
            return LlmError(f"{reason} ({exc.message})", status=response.status_code)


async def _http_error(response: httpx.Response) -> LlmError:
    """The server's own message for a failed request, read from a bounded body."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    text = body[:_ERROR_BODY_LIMIT].decode("utf-8", errors="replace")
    message = _error_message(text) or text.strip() or response.reason_phrase or "no message"
    return LlmError(message, status=response.status_code)


def _error_message(text: str) -> str | None:
    """``{"error": {"message": m}}`` (OpenAI, vLLM), ``{"error": m}`` (Ollama), or None."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str):
        return message
    if isinstance(error, str):
        return error
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str):
        return detail
    return None


def _delta(line: str) -> str | None:
    """The text in one server-sent-events line; "" for lines without text, None at the end.

    Servers that hit a problem mid-answer send ``data: {"error": ...}``; that becomes an
    LlmError carrying their message.
    """
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError:
        raise LlmError(f"the server sent something that is not JSON: {data[:200]!r}") from None
    if not isinstance(chunk, dict):
        return ""
    message = _error_message(data)
    if message is not None:
        raise LlmError(message)
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""
