"""Synthesized sentences kept on disk, so a line said again costs no synthesis.

A 24-hour show repeats itself: idle fillers, greetings, the hotline number, every loop of a
segment. A neural voice's round trip (and its server's patience) is spent once per distinct
sentence; after that the audio comes from disk, also when the service is down.

One entry is one `.npz` file named by the sha256 of everything that changes the sound
(engine, voice id, rate, pitch, volume, language, text, and a format version bumped whenever
the stored layout changes). It holds the float32 samples, the rate, and the word timings and
mouth cues as JSON. Writes go to a temporary file renamed into place, so a crash never leaves
half an entry; an entry that cannot be read anyway is deleted and counts as a miss. The
total size is bounded: the least recently used entries go first (an entry's file time is
touched on use, so the order survives a restart). All disk work runs off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from anchor.messages import MouthCue, MouthShape, SpeechAudio, WordTiming
from anchor.speech.base import Voice

log = logging.getLogger(__name__)

# Raised whenever what a cached sentence sounds like changes for the same text: 2 is the text
# normaliser that reads numbers, dates and hotlines as words and respells polyphones.
FORMAT_VERSION = 2
_SUFFIX = ".npz"


class SynthesisCache:
    """A directory of synthesized sentences, at most `max_bytes` in total.

    Safe to share between voices and threads: the index of entries (key -> size, oldest use
    first) is guarded by a lock, and is built by scanning the directory on first use.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.bytes = 0
        self._index: OrderedDict[str, int] | None = None
        self._lock = threading.Lock()

    async def get(self, key: str) -> SpeechAudio | None:
        """The stored audio for `key`, or None (absent or unreadable)."""
        audio = await asyncio.to_thread(self._get, key)
        with self._lock:
            if audio is None:
                self.misses += 1
            else:
                self.hits += 1
        return audio

    async def put(self, key: str, audio: SpeechAudio) -> None:
        """Store `audio` under `key`, evicting the least recently used entries if needed."""
        await asyncio.to_thread(self._put, key, audio)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "bytes": self.bytes,
                "entries": len(self._index or ()),
            }

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{_SUFFIX}"

    def _entries(self) -> OrderedDict[str, int]:
        """The index, built from the directory (oldest use first) when first needed."""
        if self._index is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            found = []
            for path in self.directory.glob(f"*{_SUFFIX}"):
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found.append((stat.st_mtime, path.stem, stat.st_size))
            found.sort()
            self._index = OrderedDict((key, size) for _, key, size in found)
            self.bytes = sum(self._index.values())
        return self._index

    def _get(self, key: str) -> SpeechAudio | None:
        path = self._path(key)
        with self._lock:
            if key not in self._entries():
                return None
        try:
            audio = _read_entry(path)
            os.utime(path)
        except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("dropping unreadable speech cache entry %s: %s", path.name, exc)
            with self._lock:
                self._forget(key)
            path.unlink(missing_ok=True)
            return None
        with self._lock:
            if key in self._entries():
                self._entries().move_to_end(key)
        return audio

    def _put(self, key: str, audio: SpeechAudio) -> None:
        with self._lock:
            self._entries()
        path = self._path(key)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                _write_entry(file, audio)
            size = Path(temporary).stat().st_size
            if size > self.max_bytes:
                return
            Path(temporary).replace(path)
        finally:
            Path(temporary).unlink(missing_ok=True)
        with self._lock:
            self._forget(key)
            self._entries()[key] = size
            self.bytes += size
            victims = self._make_room()
        for victim in victims:
            self._path(victim).unlink(missing_ok=True)

    def _make_room(self) -> list[str]:
        """Drop the least recently used entries from the index until within the bound."""
        index = self._entries()
        victims = []
        while self.bytes > self.max_bytes and index:
            key, size = index.popitem(last=False)
            self.bytes -= size
            self.evictions += 1
            victims.append(key)
        return victims

    def _forget(self, key: str) -> None:
        size = self._entries().pop(key, None)
        if size is not None:
            self.bytes -= size


class CachedVoice(Voice):
    """One concrete voice with a synthesis cache in front of it.

    It wraps exactly one backend, so audio made by a fallback voice is never stored under
    another voice's key. `profile` supplies what goes into the key: `engine`, `voice_for
    (language)`, `rate`, `pitch`, `volume`.
    """

    def __init__(self, voice: Voice, cache: SynthesisCache, profile: Any) -> None:
        self._voice = voice
        self._cache = cache
        self._profile = profile
        self.name = voice.name
        # Whether the last sentence came from disk: a voice chain must not take a hit as proof
        # that a voice which was failing works again.
        self.last_from_cache = False

    @property
    def voice(self) -> Voice:
        return self._voice

    async def synthesize(self, text: str, language: str) -> SpeechAudio:
        key = synthesis_key(self._profile, text, language)
        cached = await self._cache.get(key)
        self.last_from_cache = cached is not None
        if cached is not None:
            return cached
        audio = await self._voice.synthesize(text, language)
        if len(audio.pcm):
            await self._cache.put(key, audio)
        return audio

    async def aclose(self) -> None:
        await self._voice.aclose()


def synthesis_key(profile: Any, text: str, language: str) -> str:
    """The sha256 (hex) of everything that changes how `text` sounds in `language`.

    The server URL of an http voice and the relay of an edge-tts voice count too: the same
    voice id on another server is likely another voice.
    """
    identity = [
        FORMAT_VERSION,
        profile.engine,
        profile.voice_for(language),
        profile.rate,
        profile.pitch,
        profile.volume,
        language,
        text,
        getattr(getattr(profile, "http", None), "url", None),  # another server, another voice
        getattr(profile, "endpoint", None),
        _model_identity(getattr(profile, "model_dir", None)),
    ]
    encoded = json.dumps(identity, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _model_identity(model_dir: Path | None) -> list[Any] | None:
    """A model folder and its model files as they are now: two profiles of one engine with
    other models are other voices, and a model installed again over the old one (`anchor
    voice install --force`) must not replay the old one's sentences."""
    if model_dir is None:
        return None
    folder = Path(model_dir)
    try:
        files = sorted(
            (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
            for entry in folder.iterdir()
            if entry.suffix == ".onnx" and entry.is_file()
        )
    except OSError:
        files = []
    return [str(folder.resolve()), files]


def _write_entry(file: Any, audio: SpeechAudio) -> None:
    meta = {
        "sample_rate": audio.sample_rate,
        "timings": [[t.text, t.start, t.end] for t in audio.timings],
        "cues": [[c.start, int(c.shape)] for c in audio.cues],
    }
    encoded = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8)
    np.savez(file, pcm=np.asarray(audio.pcm, dtype=np.float32), meta=encoded)


def _read_entry(path: Path) -> SpeechAudio:
    with np.load(path, allow_pickle=False) as entry:
        pcm = np.array(entry["pcm"], dtype=np.float32)
        meta = json.loads(entry["meta"].tobytes().decode("utf-8"))
    if pcm.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {pcm.shape}")
    return SpeechAudio(
        pcm,
        int(meta["sample_rate"]),
        timings=tuple(WordTiming(str(t), float(s), float(e)) for t, s, e in meta["timings"]),
        cues=tuple(MouthCue(float(s), MouthShape(int(shape))) for s, shape in meta["cues"]),
    )
