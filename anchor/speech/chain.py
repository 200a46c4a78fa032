"""A chain of voices: the best one that works speaks each sentence.

The host must never go silent because a neural voice's server is down, and must not wait on
a dead server for every sentence either. So within one sentence the chain tries its voices in
order; a voice that fails is marked down and skipped for `retry_after` seconds (doubling, up
to `max_retry_after`, while it keeps failing), then probed again with the next real sentence.
The operator hears about an outage once when it starts and once when it ends, not once per
sentence. A voice marked down is still tried as a last resort when every other voice fails,
so a sentence is lost only when no voice at all can say it.

Two failures are not outages. `NotForThisVoice` (a Mandarin-only voice given English) passes
the sentence on and leaves the voice as it was. `VoiceRestarting` (the engine's process died
mid-sentence and a fresh one is on its way) passes the sentence on at once, and rests the
voice only if it happens again on the next sentence it is given: one crash costs one
sentence, a voice that keeps crashing is benched as any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anchor.messages import SpeechAudio
from anchor.speech.base import SpeechError, Voice

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_S = 60.0
DEFAULT_MAX_RETRY_AFTER_S = 900.0


class NotForThisVoice(SpeechError):
    """The voice cannot say this text (its language or script), which is no fault of its."""


class VoiceRestarting(SpeechError):
    """The voice's engine stopped mid-sentence and is being restarted for the next one."""


@dataclass(slots=True)
class VoiceHealth:
    """What the chain knows about one of its voices; read by metrics and status."""

    name: str
    successes: int = 0
    failures: int = 0
    up: bool = True
    last_error: str | None = None
    retry_at: float = 0.0  # monotonic time of the next probe while down
    backoff: float = 0.0  # current wait between probes while down
    restarting: bool = False  # its last attempt ended in a restart (VoiceRestarting)

    @property
    def state(self) -> str:
        return "up" if self.up else "down"


class VoiceChain(Voice):
    """Tries `voices` in order for each sentence; see the module docstring for the rules.

    `clock` is a monotonic clock in seconds (injectable so tests can move time).
    """

    def __init__(
        self,
        voices: Sequence[Voice],
        *,
        retry_after: float = DEFAULT_RETRY_AFTER_S,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not voices:
            raise ValueError("a voice chain needs at least one voice")
        self._voices = list(voices)
        self._retry_after = retry_after
        self._max_retry_after = max(max_retry_after, retry_after)
        self._clock = clock
        self.health = [VoiceHealth(voice.name) for voice in self._voices]
        self.fallbacks = 0  # sentences spoken by a voice other than the first
        self.name = " > ".join(voice.name for voice in self._voices)

    @property
    def voices(self) -> tuple[Voice, ...]:
        return tuple(self._voices)

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        errors: list[str] = []
        newly_down: list[int] = []
        for index in self._order():
            voice, health = self._voices[index], self.health[index]
            try:
                audio = await voice.synthesize(text, language)
            except NotForThisVoice as exc:
                errors.append(f"{voice.name}: {exc}")
                continue
            except VoiceRestarting as exc:
                errors.append(f"{voice.name}: {exc}")
                if health.up and not health.restarting:
                    health.failures += 1
                    health.last_error = str(exc)
                    health.restarting = True
                    log.warning("voice %s: %s; the next voice says this sentence", voice.name, exc)
                elif self._mark_down(health, str(exc)):
                    newly_down.append(index)
                continue
            except (SpeechError, TimeoutError) as exc:
                message = str(exc) or type(exc).__name__
                errors.append(f"{voice.name}: {message}")
                if self._mark_down(health, message):
                    newly_down.append(index)
                continue
            if health.up or not getattr(voice, "last_from_cache", False):
                self._mark_up(health)  # audio from the cache proves nothing about a down voice
            for failed in newly_down:
                log.warning(
                    "voice %s failed (%s), using %s",
                    self.health[failed].name,
                    self.health[failed].last_error,
                    voice.name,
                )
            if index != 0:
                self.fallbacks += 1
            return audio
        for failed in newly_down:
            health = self.health[failed]
            log.warning("voice %s failed (%s), no voice left", health.name, health.last_error)
        raise SpeechError("every voice failed: " + "; ".join(errors))

    async def aclose(self) -> None:
        for voice in reversed(self._voices):
            await voice.aclose()

    def _order(self) -> list[int]:
        """Voices that are up or due a probe, in chain order; then the resting ones."""
        now = self._clock()
        ready = [i for i, health in enumerate(self.health) if health.up or now >= health.retry_at]
        resting = [i for i in range(len(self._voices)) if i not in ready]
        return ready + resting

    def _mark_down(self, health: VoiceHealth, message: str) -> bool:
        """Record a failure; True when it starts an outage (the voice was up)."""
        health.failures += 1
        health.last_error = message
        health.restarting = False
        started = health.up
        if started:
            health.up = False
            health.backoff = self._retry_after
        else:
            health.backoff = min(health.backoff * 2, self._max_retry_after)
        health.retry_at = self._clock() + health.backoff
        return started

    def _mark_up(self, health: VoiceHealth) -> None:
        health.successes += 1
        health.restarting = False
        if not health.up:
            log.info("voice %s is back", health.name)
        health.up = True
        health.backoff = 0.0
        health.retry_at = 0.0
        health.last_error = None
