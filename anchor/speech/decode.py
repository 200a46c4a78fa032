"""Encoded audio from a TTS service (MP3, WAV, raw 16-bit PCM) as mono float32 samples.

Network voices answer with bytes in whatever container their service uses; the rest of the
engine only handles mono float32 at a known rate, so every backend decodes through here.
Decoding is blocking work: callers run these functions off the event loop.
"""

from __future__ import annotations

import io

import av
import numpy as np

from anchor.speech.base import SpeechError


def decode_audio(data: bytes, container: str | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 PCM and its rate from an encoded file held in memory (PyAV/FFmpeg).

    `container` names the format ("mp3", "wav") for streams that cannot be probed reliably.
    """
    if not data:
        raise SpeechError("the voice service sent no audio")
    chunks: list[np.ndarray] = []
    rate = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format=container) as source:
            if not source.streams.audio:
                raise SpeechError("the voice service's answer holds no audio stream")
            stream = source.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in source.decode(stream):
                for converted in mono.resample(frame):
                    chunks.append(converted.to_ndarray().reshape(-1))
            for converted in mono.resample(None):
                chunks.append(converted.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        raise SpeechError(f"undecodable audio from the voice service: {exc}") from exc
    if not chunks or rate <= 0:
        raise SpeechError("the voice service's audio decoded to no samples")
    pcm = np.concatenate(chunks).astype(np.float32, copy=False)
    return np.ascontiguousarray(np.clip(pcm, -1.0, 1.0)), int(rate)


def decode_pcm16(data: bytes) -> np.ndarray:
    """Raw little-endian signed 16-bit mono samples as float32 in [-1, 1]."""
    usable = len(data) - len(data) % 2
    samples = np.frombuffer(data[:usable], dtype="<i2")
    return samples.astype(np.float32) / 32768.0
