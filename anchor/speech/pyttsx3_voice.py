"""The offline voice: pyttsx3 over espeak-ng (Linux), SAPI5 (Windows) or NSSS (macOS).

It is the voice that always works, with no network and no model files, so it is the default
and the last fallback. pyttsx3 engines block and are not thread-safe, so every pyttsx3 call
runs on one worker thread this voice owns; the event loop only awaits results. Audio comes
out through pyttsx3's public `save_to_file` into a private temporary directory and is read
back into memory straight away, so no caller ever sees a file. The text is normalized for
espeak-ng here as well (idempotent, so a caller that already did it loses nothing); the
engine's leading and trailing silence is left for the caller to trim.

espeak-ng is a process-wide library (one synthesis callback for the whole process), so a
process should hold one live Pyttsx3Voice; it speaks every configured language itself.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import sys
import tempfile
import threading
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from anchor.messages import SpeechAudio
from anchor.speech.base import SpeechError
from anchor.speech.worker_voice import WorkerVoice

log = logging.getLogger(__name__)

_ESPEAK_RATE = 22050
EMPTY_RETRIES = 2
_FINISH_TIMEOUT = 30.0
_SAVED_NOTICE = "Audio saved to "


class Pyttsx3Voice(WorkerVoice):
    """Speaks with the platform's built-in engine through pyttsx3 (espeak-ng on Linux, SAPI5 on
    Windows). `pitch` applies only where the engine supports it, i.e. espeak-ng."""

    name = "pyttsx3"
    silence_rate = _ESPEAK_RATE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker: _EngineWorker | None = None

    def _speak_on_worker(self, text: str, voice_id: str) -> SpeechAudio:
        if self._worker is None:
            self._worker = _EngineWorker()
        try:
            for attempt in range(EMPTY_RETRIES + 1):
                pcm, rate = self._worker.speak(
                    text, voice_id, rate=self._rate, volume=self._volume, pitch=self._pitch
                )
                if len(pcm) or not text.strip():
                    break
                # pyttsx3's espeak-ng driver now and then writes the WAV before any sample
                # reached it: say it again rather than air a silent sentence.
                log.warning("pyttsx3 wrote no audio for a sentence (try %d)", attempt + 1)
            else:
                raise SpeechError(f"pyttsx3 wrote an empty WAV for voice {voice_id!r}")
        except SpeechError:
            raise
        except Exception as exc:
            self._worker.release()
            self._worker = None
            raise SpeechError(f"pyttsx3 failed: {exc}") from exc
        return SpeechAudio(pcm, rate)

    def _release_on_worker(self) -> None:
        if self._worker is not None:
            self._worker.release()
            self._worker = None


class _EngineWorker:
    """The pyttsx3 engine and its scratch directory; lives and dies on the worker thread."""

    def __init__(self) -> None:
        try:
            import pyttsx3
        except ImportError as exc:
            raise SpeechError(f"{exc} (install it with: pip install pyttsx3)") from exc
        try:
            self._engine = pyttsx3.init()
        except Exception as exc:
            raise SpeechError(
                f"could not start pyttsx3: {exc} (on Linux install espeak-ng)"
            ) from exc
        self._errors: list[BaseException] = []
        self._started = False
        self._finished = threading.Event()
        self._subscriptions = [
            self._engine.connect("error", self._on_error),
            self._engine.connect("started-utterance", self._on_started),
            self._engine.connect("finished-utterance", self._on_finished),
        ]
        # pyttsx3 drives espeak-ng on every platform but Windows (SAPI5) and macOS (NSSS); only
        # espeak-ng writes the file from a thread of its own, after runAndWait has returned.
        self._writes_later = sys.platform not in ("win32", "darwin")
        self._scratch = Path(tempfile.mkdtemp(prefix="anchor-tts-"))
        self._numbers = itertools.count()
        self._pitch_supported = self._probe_pitch()

    def speak(
        self, text: str, voice_id: str, *, rate: int, volume: float, pitch: int
    ) -> tuple[np.ndarray, int]:
        """Synthesize `text` and return mono float32 PCM with its sample rate."""
        path = self._scratch / f"{next(self._numbers)}.wav"
        self._errors.clear()
        self._started = False
        self._finished.clear()
        self._engine.setProperty("voice", voice_id)
        self._engine.setProperty("rate", rate)
        self._engine.setProperty("volume", volume)
        if self._pitch_supported:
            self._engine.setProperty("pitch", pitch)
        self._engine.save_to_file(text, str(path))
        try:
            with self._notices_muted():
                self._engine.runAndWait()
                self._wait_until_finished()
            if self._errors:
                raise SpeechError(f"{self._errors[0]} (voice {voice_id!r})")
            if not path.exists():
                raise SpeechError(f"pyttsx3 wrote no audio for voice {voice_id!r}")
            return _read_wav(path)
        finally:
            path.unlink(missing_ok=True)

    def release(self) -> None:
        """Drop the engine so pyttsx3 can free it (and a broken one is not handed back)."""
        for subscription in self._subscriptions:
            self._engine.disconnect(subscription)
        self._engine = None
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _wait_until_finished(self) -> None:
        """Wait for the end of an utterance that is still being synthesized.

        espeak-ng synthesizes on its own thread, and pyttsx3's `runAndWait` can return before
        the WAV is written, even before espeak-ng has said it started; "finished-utterance" is
        the engine's own signal that the file is complete, so with espeak-ng it is always
        awaited. Engines that write files synchronously (SAPI5) may never start an utterance.
        """
        must_wait = self._writes_later or self._started
        if must_wait and not self._finished.wait(_FINISH_TIMEOUT):
            self._engine.stop()
            raise SpeechError(f"pyttsx3 did not finish speaking within {_FINISH_TIMEOUT:.0f} s")

    def _on_started(self, **_: Any) -> None:
        self._started = True

    def _on_finished(self, **_: Any) -> None:
        self._finished.set()

    def _on_error(self, name: str | None = None, exception: BaseException | None = None) -> None:
        self._errors.append(exception or RuntimeError(f"pyttsx3 reported an error ({name})"))

    def _probe_pitch(self) -> bool:
        """Whether the engine takes a pitch; SAPI5 and NSSS answer None (and print a notice)."""
        try:
            with self._notices_muted():
                supported = self._engine.getProperty("pitch") is not None
        except (KeyError, ValueError, RuntimeError):
            supported = False
        if not supported:
            log.info("this pyttsx3 engine has no pitch control; the profile's pitch is ignored")
        return supported

    @contextmanager
    def _notices_muted(self) -> Iterator[None]:
        """Keep pyttsx3's progress prints off stdout while it works, and nothing else.

        The driver prints from this thread ("Pitch adjustment not supported ...") and, for
        espeak-ng, from espeak's own thread ("Audio saved to <file>"), so the filter drops
        this thread's writes and the saved-file notices about this voice's scratch files.
        """
        original = sys.stdout
        if original is None:
            yield
            return
        notice = f"{_SAVED_NOTICE}{self._scratch}"
        muted = _NoticeFilter(original, threading.get_ident(), notice)
        sys.stdout = muted
        try:
            yield
        finally:
            if sys.stdout is muted:
                sys.stdout = original


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SpeechError(f"unreadable audio from pyttsx3: {exc}") from exc
    if width == 1:
        pcm = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = np.dtype(f"<i{width}")
        pcm = np.frombuffer(raw, dtype=dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise SpeechError(f"unsupported WAV sample width from pyttsx3: {width} bytes")
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(pcm, dtype=np.float32), rate


class _NoticeFilter:
    """A stdout stand-in that drops one thread's writes and lines starting with a notice.

    `print` writes its text and its line end separately, so the line end that follows a
    dropped notice is dropped too. Everything else reaches the real stdout unchanged.
    """

    def __init__(self, target: TextIO, quiet_thread: int, notice: str) -> None:
        self._target = target
        self._quiet_thread = quiet_thread
        self._notice = notice
        self._line_end_pending: set[int] = set()

    def write(self, text: str) -> int:
        thread = threading.get_ident()
        if thread == self._quiet_thread:
            return len(text)
        if text.startswith(self._notice):
            self._line_end_pending.add(thread)
            return len(text)
        if thread in self._line_end_pending:
            self._line_end_pending.discard(thread)
            if text == "\n":
                return len(text)
        return self._target.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)
