"""H.264 + AAC into one container, with timestamps taken from the media clock only.

The encoder is blocking code: it belongs to the media thread and is never called from the event
loop. Video frame n gets pts n (time base 1/fps); audio is cut into AAC-sized frames whose pts is
the index of their first sample (time base 1/rate). Nothing here reads a clock, so timestamps
are exact however fast or slow the machine runs.

A reader that joins a running stream (OBS opening its Media Source) can show nothing before a
keyframe, and OBS's player keeps whatever it buffered while it waited as a lasting delay; so
`request_keyframe` makes the next frame an IDR frame, and the reader starts on it at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from anchor.media.clock import MediaClock
from anchor.media.output import OutputTarget
from anchor.media.transport import SrtBridge, needs_bridge
from anchor.redact import redact_url

log = logging.getLogger(__name__)

AAC_FRAME = 1024
BT709 = 1  # AVCOL_SPC_BT709 / AVCOL_PRI_BT709 / AVCOL_TRC_BT709
LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


class EncoderError(RuntimeError):
    """The stream could not be opened or written; keeps FFmpeg's own message."""


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    width: int
    height: int
    video_bitrate_kbps: int = 2500
    preset: str = "superfast"
    keyframe_seconds: float = 2.0
    audio_bitrate_kbps: int = 128
    threads: int = 0  # 0: let x264 choose
    audio: bool = True  # False: picture only (no AAC stream; samples given to write are ignored)

    @classmethod
    def from_config(cls, video: Any, audio: Any, *, with_audio: bool = True) -> EncoderSettings:
        """From config.yaml's `video` and `audio` blocks (VideoConfig, AudioConfig)."""
        return cls(
            width=video.width,
            height=video.height,
            video_bitrate_kbps=video.bitrate_kbps,
            preset=video.preset,
            keyframe_seconds=video.keyframe_seconds,
            audio_bitrate_kbps=audio.bitrate_kbps,
            audio=with_audio,
        )


class StreamEncoder:
    """Owns the container and both encoders for one output."""

    def __init__(self, target: OutputTarget, clock: MediaClock, settings: EncoderSettings) -> None:
        self._target = target
        self._clock = clock
        self._settings = settings
        self._container: av.container.OutputContainer | None = None
        self._video: av.VideoStream | None = None
        self._audio: av.AudioStream | None = None
        self._pending = np.zeros(AAC_FRAME, dtype=np.float32)
        self._pending_count = 0
        self._audio_pts: int | None = None
        self._bridge: SrtBridge | None = None
        self._keyframe_wanted = False
        self.frames_written = 0
        self.samples_written = 0

    def open(self) -> None:
        """Open the destination and write the header, so a refused connection shows here."""
        s = self._settings
        target = self._target
        if target.is_file:
            Path(target.url).parent.mkdir(parents=True, exist_ok=True)
        destination: str | SrtBridge = target.url
        options = {} if target.is_file else {"flush_packets": "1", "rw_timeout": "5000000"}
        try:
            if needs_bridge(target):
                self._bridge = SrtBridge(target.url)
                # Each packet to the bridge as it is muxed, not when 32 KB have gathered.
                destination, options = self._bridge, {"flush_packets": "1"}
            container = av.open(
                destination, "w", format=target.container, container_options=options
            )
        except (av.FFmpegError, OSError) as exc:
            self._close_bridge()
            raise EncoderError(f"cannot open {self._safe(exc)}") from exc
        fps = self._clock.fps
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = s.width, s.height
        video.pix_fmt = "yuv420p"
        video.bit_rate = s.video_bitrate_kbps * 1000
        video.codec_context.time_base = Fraction(1, fps)
        video.codec_context.gop_size = max(1, round(fps * s.keyframe_seconds))
        video.codec_context.thread_count = s.threads
        # The renderer draws BT.709 limited range; say so, or players guess (often BT.601).
        video.codec_context.colorspace = BT709
        video.codec_context.color_primaries = BT709
        video.codec_context.color_trc = BT709
        video.codec_context.color_range = LIMITED_RANGE
        video.options = {
            "preset": s.preset,
            "tune": "zerolatency",
            "maxrate": f"{s.video_bitrate_kbps}k",
            "bufsize": f"{s.video_bitrate_kbps * 2}k",
            "sc_threshold": "0",
            "forced-idr": "1",  # a requested keyframe is an IDR frame a new reader can start on
        }
        audio: av.AudioStream | None = None
        if s.audio:
            audio = container.add_stream("aac", rate=self._clock.sample_rate, layout="mono")
            audio.bit_rate = s.audio_bitrate_kbps * 1000
            audio.codec_context.time_base = Fraction(1, self._clock.sample_rate)
        self._container, self._video, self._audio = container, video, audio
        try:
            container.start_encoding()
        except (av.FFmpegError, OSError) as exc:
            self._abandon()
            raise EncoderError(f"cannot open {self._safe(exc)}") from exc

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None:
        """Encode frame `frame_index` (a yuv420p array) and the audio samples that belong to it."""
        video = self._video
        if self._container is None or video is None:
            raise EncoderError("encoder is not open")
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = frame_index
        frame.colorspace = BT709
        frame.color_range = LIMITED_RANGE
        frame.time_base = video.codec_context.time_base
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            frame.pict_type = av.video.frame.PictureType.I
        if self._audio_pts is None:
            # Audio timestamps start where this frame starts on the one clock, even when the
            # output was (re)opened mid-stream.
            self._audio_pts = self._clock.frame_start_sample(frame_index)
        try:
            self._mux(video.encode(frame))
            if self._audio is not None:
                self._push_audio(samples)
        except (av.FFmpegError, OSError) as exc:
            raise EncoderError(f"writing failed: {self._safe(exc)}") from exc
        self.frames_written += 1

    def request_keyframe(self) -> None:
        """Make the next frame written a keyframe (IDR, with the stream's parameter sets).

        Safe to call from any thread: it only sets a flag the media thread reads."""
        self._keyframe_wanted = True

    def close(self) -> None:
        """Flush both encoders and finish the container so players read it to the end."""
        container, video = self._container, self._video
        if container is None or video is None:
            return
        try:
            if self._pending_count:
                self._pending[self._pending_count :] = 0.0
                self._encode_audio_frame(self._pending)
                self._pending_count = 0
            self._mux(video.encode(None))
            if self._audio is not None:
                self._mux(self._audio.encode(None))
        except (av.FFmpegError, OSError) as exc:
            log.warning("flushing failed: %s", self._safe(exc))
        finally:
            self._abandon()

    def _safe(self, exc: BaseException) -> str:
        """The peer's own error text, naming the destination without its secrets."""
        url, safe = self._target.url, redact_url(self._target.url)
        text = str(exc).replace(f": '{url}'", "").replace(url, safe)
        return f"{safe}: {text}"

    def _abandon(self) -> None:
        """Let go of the container (and bridge) without flushing: the peer is gone."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                container.close()
        self._close_bridge()

    def _close_bridge(self) -> None:
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            bridge.close()

    @property
    def last_video_pts(self) -> Fraction:
        """Stream time of the last frame written, in seconds."""
        return Fraction(self.frames_written - 1, self._clock.fps)

    def _push_audio(self, samples: np.ndarray) -> None:
        self.samples_written += len(samples)
        offset = 0
        while offset < len(samples):
            take = min(AAC_FRAME - self._pending_count, len(samples) - offset)
            self._pending[self._pending_count : self._pending_count + take] = samples[
                offset : offset + take
            ]
            self._pending_count += take
            offset += take
            if self._pending_count == AAC_FRAME:
                self._encode_audio_frame(self._pending)
                self._pending_count = 0

    def _encode_audio_frame(self, block: np.ndarray) -> None:
        audio = self._audio
        assert self._audio_pts is not None and audio is not None
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = self._clock.sample_rate
        frame.pts = self._audio_pts
        frame.time_base = audio.codec_context.time_base
        self._audio_pts += AAC_FRAME
        self._mux(audio.encode(frame))

    def _mux(self, packets: list[av.Packet[Any]]) -> None:
        container = self._container
        assert container is not None
        for packet in packets:
            container.mux(packet)


class ReconnectingEncoder:
    """A network output that survives its peer: while it is away frames are dropped, the
    stream's clock runs on, and the connection is retried with capped exponential backoff.
    Same interface as StreamEncoder, so the playout does not know the difference."""

    def __init__(
        self,
        make: Callable[[], StreamEncoder],
        *,
        label: str,
        first_retry_s: float = 1.0,
        max_retry_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make = make
        self._label = label
        self._first_retry = first_retry_s
        self._max_retry = max_retry_s
        self._monotonic = monotonic
        self._encoder: StreamEncoder | None = None
        self._retry_in = first_retry_s
        self._next_attempt = 0.0
        self.frames_dropped = 0
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._encoder is not None

    def open(self) -> None:
        self._attempt()

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None:
        if self._encoder is None and self._monotonic() >= self._next_attempt:
            self._attempt()
        if self._encoder is None:
            self.frames_dropped += 1
            return
        try:
            self._encoder.write(frame_index, picture, samples)
        except EncoderError as exc:
            log.warning("%s; reconnecting", exc)
            self._encoder._abandon()
            self._encoder = None
            self._schedule_retry()
            self.frames_dropped += 1

    def request_keyframe(self) -> None:
        """Passed on to the connected encoder; a new connection starts on a keyframe anyway."""
        encoder = self._encoder
        if encoder is not None:
            encoder.request_keyframe()

    def close(self) -> None:
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            encoder.close()

    def _attempt(self) -> None:
        encoder = self._make()
        try:
            encoder.open()
        except EncoderError as exc:
            log.warning("%s; retrying in %.0f s", exc, self._retry_in)
            self._schedule_retry()
            return
        log.info("connected to %s", self._label)
        self._encoder = encoder
        self.connects += 1
        self._retry_in = self._first_retry

    def _schedule_retry(self) -> None:
        self._next_attempt = self._monotonic() + self._retry_in
        self._retry_in = min(self._retry_in * 2, self._max_retry)
