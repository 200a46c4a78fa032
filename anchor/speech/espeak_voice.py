"""The offline voice, straight from libespeak-ng, with its phoneme timing.

pyttsx3 speaks through the same library but keeps its events to itself and goes through a
WAV file; calling libespeak-ng directly (ctypes) gives the PCM in memory and, with
`espeakINITIALIZE_PHONEME_EVENTS`, the name and audio position of every phoneme. Those become
the mouth's lip shapes (`anchor.speech.visemes`), and the word events become word timings.

The library is one process-wide engine with one synthesis callback and no locking, it cannot
be restarted after `espeak_Terminate` (1.51 hangs), and pyttsx3's espeak driver hangs when it
starts after the library was initialised in the same process. So the engine lives in a child
process of its own: the voice's one worker thread sends it a sentence and waits (bounded) for
the samples and events, and a child that dies or hangs is killed and started afresh on the
next sentence, while the daemon keeps its own process clean.

The child is in the daemon's process group, so a Ctrl-C in a terminal reaches it too. The
daemon owns shutdown (the sentence on air finishes, then the voice closes and stops the
child), so the child ignores SIGINT: it is started with SIGINT blocked and ignores it before
anything else runs, as CPython's own multiprocessing resource tracker does.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from anchor.messages import SpeechAudio, WordTiming
from anchor.speech.base import SpeechError
from anchor.speech.engine_child import ignore_interrupts
from anchor.speech.engine_process import interrupts_blocked
from anchor.speech.visemes import cues_from_phonemes
from anchor.speech.worker_voice import WorkerVoice

log = logging.getLogger(__name__)

# Values from espeak-ng's speak_lib.h (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
_EE_OK, _EE_NOT_FOUND = 0, 2
_BUFFER_MS = 200
# A sentence of at most max_sentence_seconds synthesizes in well under this; beyond it the
# child is taken to be hung.
_SENTENCE_TIMEOUT_S = 30.0
_START_TIMEOUT_S = 20.0

# What the child sends: ("ready", sample rate), ("ok", a _Take) or ("error", a message).
_Reply = tuple[str, object]


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),  # a phoneme mnemonic, NUL-terminated unless 8 bytes long
    )


class _Event(ctypes.Structure):
    """espeak_EVENT."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # characters from the start of the text, 1-based
        ("length", ctypes.c_int),  # word length in characters (word events)
        ("audio_position", ctypes.c_int),  # ms into the synthesized audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakVoice(WorkerVoice):
    """Speaks with libespeak-ng and reports word timings and lip-shape cues."""

    name = "espeak"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settings = {
            _PARAM_RATE: int(self._rate),
            _PARAM_VOLUME: round(max(0.0, self._volume) * 100),  # 100 is normal loudness
            _PARAM_PITCH: int(self._pitch),
        }
        self._child: _Child | None = None

    def _speak_on_worker(self, text: str, voice: str) -> SpeechAudio:
        if self._child is None or not self._child.alive:
            self._child = _Child.start()
        take = self._child.speak(text, voice, self._settings)
        if take is None:  # the child died or hung: it has been stopped; the next call restarts
            self._child = None
            raise SpeechError("espeak-ng stopped responding; restarting it for the next sentence")
        return take.audio(text)

    def _release_on_worker(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None


class _Child:
    """The engine's process, seen from the voice's worker thread."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self._process = process
        self._conn = conn

    @classmethod
    def start(cls) -> _Child:
        # spawn, not fork: the daemon has threads, and a forked copy of them is unsafe.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs,), name="anchor-espeak", daemon=True)
        with interrupts_blocked():
            process.start()
        theirs.close()
        child = cls(process, ours)
        reply = child._receive(_START_TIMEOUT_S)
        if reply is None or reply[0] != "ready":
            child.stop()
            problem = reply[1] if reply is not None else "it did not start"
            raise SpeechError(str(problem))
        return child

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def speak(self, text: str, voice: str, settings: Mapping[int, int]) -> _Take | None:
        try:
            self._conn.send((text, voice, dict(settings)))
        except (OSError, ValueError):
            self.stop()
            return None
        reply = self._receive(_SENTENCE_TIMEOUT_S)
        if reply is None:
            self.stop()
            return None
        kind, payload = reply
        if kind != "ok" or not isinstance(payload, _Take):
            raise SpeechError(str(payload))
        return payload

    def stop(self) -> None:
        """Ask the child to exit; kill it if it does not."""
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=2.0)
        self._conn.close()

    def _receive(self, timeout: float) -> _Reply | None:
        try:
            if not self._conn.poll(timeout):
                log.error("espeak-ng gave no answer in %.0f s", timeout)
                return None
            reply: _Reply = self._conn.recv()
            return reply
        except (EOFError, OSError):
            return None


def _serve(conn: Connection) -> None:
    """The child process: one engine, one sentence at a time, until told to stop."""
    ignore_interrupts()
    try:
        engine = _Engine.start()
    except SpeechError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", engine.sample_rate))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        text, voice, settings = request
        reply: _Reply
        try:
            reply = ("ok", engine.speak(text, voice, settings))
        except SpeechError as exc:
            reply = ("error", str(exc))
        except Exception as exc:
            reply = ("error", f"espeak-ng failed: {exc}")
        conn.send(reply)


@dataclass(slots=True)
class _Take:
    """What one synthesis produced, collected by the callback."""

    sample_rate: int
    chunks: list[bytes] = field(default_factory=list)
    words: list[tuple[int, int, int]] = field(default_factory=list)  # ms, text index, length
    phonemes: list[tuple[int, str]] = field(default_factory=list)  # ms, mnemonic

    def audio(self, text: str) -> SpeechAudio:
        raw = b"".join(self.chunks)
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        duration = len(pcm) / self.sample_rate
        timings = []
        for i, (ms, index, length) in enumerate(self.words):
            start = min(ms / 1000.0, duration)
            end = self.words[i + 1][0] / 1000.0 if i + 1 < len(self.words) else duration
            word = text[max(0, index - 1) : max(0, index - 1) + length]
            if word.strip():
                timings.append(WordTiming(word, start, max(start, min(end, duration))))
        cues = cues_from_phonemes(
            ((min(ms / 1000.0, duration), name) for ms, name in self.phonemes), duration
        )
        return SpeechAudio(pcm, self.sample_rate, tuple(timings), cues)


class _Engine:
    """libespeak-ng, initialised once, in the child process only."""

    def __init__(self, lib: ctypes.CDLL, sample_rate: int) -> None:
        self._lib = lib
        self._rate = sample_rate
        self._take: _Take | None = None
        self._callback = _SynthCallback(self._on_synth)  # held: libespeak keeps only a pointer
        self._voice: str | None = None

    @property
    def sample_rate(self) -> int:
        return self._rate

    @classmethod
    def start(cls) -> _Engine:
        path = ctypes.util.find_library("espeak-ng")
        if path is None:
            raise SpeechError(
                "libespeak-ng not found (install espeak-ng, e.g. apt install espeak-ng)"
            )
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise SpeechError(f"cannot load {path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        )
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, None, _INITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise SpeechError("espeak-ng could not start (is espeak-ng-data installed?)")
        return cls(lib, rate)

    def speak(self, text: str, voice: str, settings: Mapping[int, int]) -> _Take:
        lib = self._lib
        if voice != self._voice:
            status = lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if status != _EE_OK:
                problem = "unknown voice" if status == _EE_NOT_FOUND else f"error {status}"
                raise SpeechError(f"espeak-ng: {problem} {voice!r}")
            self._voice = voice
        for parameter, value in settings.items():
            lib.espeak_SetParameter(parameter, value, 0)
        lib.espeak_SetSynthCallback(self._callback)
        data = text.encode("utf-8") + b"\0"
        self._take = _Take(self._rate)
        try:
            status = lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != _EE_OK:
                raise SpeechError(f"espeak-ng: synthesis failed with error {status} ({voice!r})")
            return self._take
        finally:
            self._take = None

    def _on_synth(self, wav: Any, count: int, events: Any) -> int:
        """Called by libespeak-ng on this thread, inside espeak_Synth; 0 means carry on."""
        take = self._take
        if take is None:
            return 1
        if wav and count > 0:
            take.chunks.append(ctypes.string_at(wav, count * 2))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                take.phonemes.append((event.audio_position, name))
            elif event.type == _EVENT_WORD:
                take.words.append((event.audio_position, event.text_position, event.length))
            i += 1
        return 0
