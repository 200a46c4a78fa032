"""A voice served over HTTP: a union's own TTS server (CosyVoice, GPT-SoVITS, a cloud API).

Such servers differ only in how they want the text (JSON body, form or query fields, under
their own field names) and in what they send back (a WAV or MP3 file, or raw 16-bit
samples), so the profile describes the request as a template and names the answer's format;
no code per server. Every sentence is bounded by one overall timeout, and a non-2xx answer is
a SpeechError carrying the server's status and the start of its body, so the operator reads
the server's own complaint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np

from anchor.config import secret_from_env
from anchor.messages import SpeechAudio
from anchor.speech.base import SpeechError, Voice, voice_for_language
from anchor.speech.decode import decode_audio, decode_pcm16

_BODY_EXCERPT = 200
_PLACEHOLDERS = ("{text}", "{voice}", "{language}")


class HttpVoice(Voice):
    """Speaks by asking an HTTP TTS server, one request per sentence.

    `request` is the profile's `http` block (url, method, json/query/form templates,
    headers, format, sample_rate); `token` is sent as a bearer token when given.
    """

    name = "http"

    def __init__(
        self,
        request: Any,
        voices: Mapping[str, str],
        *,
        default_language: str | None = None,
        timeout_seconds: float = 10.0,
        token: str | None = None,
    ) -> None:
        if not voices:
            raise ValueError("HttpVoice needs at least one language -> voice id entry")
        self._request = request
        self._voices = {language.lower(): voice_id for language, voice_id in voices.items()}
        self._default_language = default_language.lower() if default_language else None
        self._timeout = timeout_seconds
        headers = dict(request.headers)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_seconds), follow_redirects=True
        )
        self._closed = False

    @classmethod
    def from_profile(cls, profile: Any) -> HttpVoice:
        """Build from a voice profile; the token is read now from `http.token_env`."""
        request = profile.http
        token = secret_from_env(request.token_env) if request.token_env else None
        return cls(
            request,
            dict(profile.voices),
            default_language=profile.default_language,
            timeout_seconds=profile.timeout_seconds,
            token=token,
        )

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        if self._closed:
            raise SpeechError("the http voice is closed")
        if not text.strip():
            return SpeechAudio(np.zeros(0, dtype=np.float32), self._request.sample_rate or 16000)
        values = {"{text}": text, "{voice}": self._voice_for(language), "{language}": language}
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._send(values)
        except TimeoutError:
            raise SpeechError(
                f"{self._request.url} gave no complete answer within {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise SpeechError(f"{self._request.url}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            excerpt = response.text[:_BODY_EXCERPT]
            raise SpeechError(f"{self._request.url} answered {response.status_code}: {excerpt}")
        return await asyncio.to_thread(self._decode, response.content)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    async def _send(self, values: Mapping[str, str]) -> httpx.Response:
        request = self._request
        return await self._client.request(
            request.method,
            request.url,
            params=_fill(request.query, values) if request.query is not None else None,
            json=_fill(request.json_body, values) if request.json_body is not None else None,
            data=_fill(request.form, values) if request.form is not None else None,
        )

    def _decode(self, body: bytes) -> SpeechAudio:
        audio_format = self._request.format
        if audio_format == "pcm16":
            return SpeechAudio(decode_pcm16(body), int(self._request.sample_rate))
        pcm, rate = decode_audio(body, "wav" if audio_format == "wav" else "mp3")
        return SpeechAudio(pcm, rate)

    def _voice_for(self, language: str) -> str:
        return voice_for_language(self._voices, language, self._default_language, "http")


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    """`template` with the placeholders in its strings replaced, at any depth.

    Plain replacement rather than str.format, so braces a server wants literally (a JSON
    string inside a field) pass through untouched.
    """
    if isinstance(template, str):
        for placeholder in _PLACEHOLDERS:
            template = template.replace(placeholder, values[placeholder])
        return template
    if isinstance(template, Mapping):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [_fill(value, values) for value in template]
    return template
