"""The contract every voice backend fulfils.

A voice turns one sentence into PCM. Everything else (sentence splitting, resampling to the
stream rate, fallbacks between backends, caching) lives outside the backend, so a new engine
is one small module implementing `synthesize`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType

from anchor.messages import SpeechAudio


class SpeechError(Exception):
    """A voice could not speak a text.

    The message is the backend's own (engine error text, HTTP status and body), so the
    operator sees what the engine said rather than a paraphrase of it.
    """


class Voice(ABC):
    """One speech backend, used by one owner that awaits `synthesize` and finally `aclose`."""

    name: str

    @abstractmethod
    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        """Speak one sentence in `language` ("zh", "en", ...).

        Must never block the event loop; raises SpeechError on failure. Whitespace-only text
        yields zero samples.
        """

    async def aclose(self) -> None:
        """Release threads, files and connections; a closed voice does not speak again."""
        return None

    async def __aenter__(self) -> Voice:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def voice_for_language(
    voices: Mapping[str, str], language: str, default_language: str | None, engine: str
) -> str:
    """The engine's voice id for `language` ("zh-CN" → its "zh" entry), else the default
    language's; SpeechError naming the configured languages when neither has one.

    `voices` keys are lower-case language tags, as every backend stores them."""
    wanted = language.lower()
    for candidate in (wanted, wanted.replace("_", "-").split("-")[0], default_language):
        if candidate and candidate in voices:
            return voices[candidate]
    known = ", ".join(sorted(voices))
    raise SpeechError(f"no {engine} voice for language {language!r} (configured: {known})")
