"""H.264 + AAC into one container, with timestamps taken from the media clock only.

The encoder is blocking code: it belongs to the media thread and is never called from the event
loop. Video frame n gets pts n (time base 1/fps); audio is cut into AAC-sized frames whose pts is
the index of their first sample (time base 1/rate). Nothing here reads a clock, so timestamps
are exact however fast or slow the machine runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from anchor.clock import MediaClock
from anchor.output import OutputTarget

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
    preset: str = "veryfast"
    keyframe_seconds: float = 2.0
    audio_bitrate_kbps: int = 128
    threads: int = 0  # 0: let x264 choose


class StreamEncoder:
    """Owns the container and both encoders for one output."""

    def __init__(self, target: OutputTarget, clock: MediaClock, settings: EncoderSettings) -> None:
        self._target = target
        self._clock = clock
        self._settings = settings
        self._container: av.container.OutputContainer | None = None
        self._video = None
        self._audio = None
        self._pending = np.zeros(AAC_FRAME, dtype=np.float32)
        self._pending_count = 0
        self._audio_pts = 0
        self.frames_written = 0
        self.samples_written = 0

    def open(self) -> None:
        s = self._settings
        if self._target.is_file:
            Path(self._target.url).parent.mkdir(parents=True, exist_ok=True)
        options = {} if self._target.is_file else {"flush_packets": "1"}
        try:
            container = av.open(
                self._target.url, "w", format=self._target.container, container_options=options
            )
        except av.FFmpegError as exc:
            raise EncoderError(f"cannot open {self._target.url}: {exc}") from exc
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
        }
        audio = container.add_stream("aac", rate=self._clock.sample_rate, layout="mono")
        audio.bit_rate = s.audio_bitrate_kbps * 1000
        audio.codec_context.time_base = Fraction(1, self._clock.sample_rate)
        self._container, self._video, self._audio = container, video, audio

    def write(self, frame_index: int, picture: np.ndarray, samples: np.ndarray) -> None:
        """Encode frame `frame_index` (a yuv420p array) and the audio samples that belong to it."""
        if self._container is None:
            raise EncoderError("encoder is not open")
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = frame_index
        frame.colorspace = BT709
        frame.color_range = LIMITED_RANGE
        frame.time_base = self._video.codec_context.time_base
        try:
            self._mux(self._video.encode(frame))
            self._push_audio(samples)
        except av.FFmpegError as exc:
            raise EncoderError(f"writing to {self._target.url} failed: {exc}") from exc
        self.frames_written += 1

    def close(self) -> None:
        """Flush both encoders and finish the container so players read it to the end."""
        container = self._container
        if container is None:
            return
        try:
            if self._pending_count:
                self._pending[self._pending_count :] = 0.0
                self._encode_audio_frame(self._pending)
                self._pending_count = 0
            self._mux(self._video.encode(None))
            self._mux(self._audio.encode(None))
        except av.FFmpegError as exc:
            log.warning("flushing %s failed: %s", self._target.url, exc)
        finally:
            self._container = None
            container.close()

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
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = self._clock.sample_rate
        frame.pts = self._audio_pts
        frame.time_base = self._audio.codec_context.time_base
        self._audio_pts += AAC_FRAME
        self._mux(self._audio.encode(frame))

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)
