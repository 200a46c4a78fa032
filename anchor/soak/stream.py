"""What a player would find in a long MPEG-TS recording: continuity, gaps and the PTS wrap.

MPEG-TS carries 33-bit timestamps in 1/90000 s, so they wrap every 2^33 ticks (about 26.5 h).
FFmpeg's mpegts muxer writes each timestamp modulo 2^33 (PTS and PCR alike), which is what the
standard asks for, and leaves the wrap to the reader. Its demuxer only corrects a wrap that
happens within a minute of where it started reading: a file read from the beginning shows a
jump back of 2^33 ticks at the wrap. So this analysis takes every timestamp back to its 33 bits
and unwraps it itself, packet by packet, without decoding; only the frames on either side of a
wrap are decoded, to show that a decoder goes on across it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

PTS_BITS = 33
PTS_MODULUS = 1 << PTS_BITS
TS_CLOCK = 90_000
MAX_EVENTS = 50  # discontinuities listed one by one; the count covers them all


@dataclass(slots=True)
class Discontinuity:
    stream: str
    kind: str  # "gap" (a step longer than expected), "jump" (shorter), "reversal"
    at_s: float  # stream time (unwrapped PTS) of the packet after the step
    step_s: float


@dataclass(slots=True)
class StreamTrack:
    """Running figures for one elementary stream, unwrapped as packets arrive."""

    kind: str
    expected_step: int | None = None  # ticks between consecutive packets, learnt from the first
    packets: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    last_duration: int = 0
    largest_step: int = 0
    wraps: int = 0
    _raw: int | None = None

    def unwrap(self, pts: int) -> int:
        """The packet's PTS in ticks since the counter's origin, however often it wrapped."""
        raw = pts % PTS_MODULUS  # undo whatever wrap correction the demuxer applied
        if self._raw is not None and raw < self._raw - PTS_MODULUS // 2:
            self.wraps += 1
        self._raw = raw
        return raw + self.wraps * PTS_MODULUS


@dataclass(slots=True)
class WrapCheck:
    """The frames just before and just after a wrap, decoded."""

    at_s: float
    frame_before_pts_s: float | None = None
    frame_after_pts_s: float | None = None
    decoded: int = 0
    luma_before: float | None = None
    luma_after: float | None = None


@dataclass(slots=True)
class StreamReport:
    path: str
    bytes: int
    packets: dict[str, int] = field(default_factory=dict)
    first_pts_s: dict[str, float] = field(default_factory=dict)
    last_pts_s: dict[str, float] = field(default_factory=dict)
    largest_video_step_s: float = 0.0
    video_frame_s: float = 0.0
    discontinuities: int = 0
    events: list[Discontinuity] = field(default_factory=list)
    av_end_difference_s: float = 0.0
    wraps: dict[str, int] = field(default_factory=dict)
    wrap_checks: list[WrapCheck] = field(default_factory=list)
    demuxer_jumps: int = 0  # steps of about 2^33 ticks as FFmpeg's demuxer reported them

    @property
    def duration_s(self) -> float:
        last, first = self.last_pts_s.get("video"), self.first_pts_s.get("video")
        if last is None or first is None:
            return 0.0
        return last - first + self.video_frame_s

    @property
    def continuous(self) -> bool:
        """No gap, jump or reversal in any stream, and the video steps one frame at a time."""
        one_frame = abs(self.largest_video_step_s - self.video_frame_s) < 1e-6
        return self.discontinuities == 0 and one_frame

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_s"] = self.duration_s
        data["continuous"] = self.continuous
        return data


def analyse(path: Path) -> StreamReport:
    """Demux `path` packet by packet (memory stays flat however long the file is)."""
    report = StreamReport(path=str(path), bytes=Path(path).stat().st_size)
    tracks: dict[int, StreamTrack] = {}
    # The video packets of the last two groups of pictures, to decode the frames around a wrap
    # (which may fall right on a keyframe).
    previous_gop: list[av.Packet] = []
    gop: list[av.Packet] = []
    decode_after_wrap = 0
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        if video is not None and (rate := video.average_rate or video.guessed_rate):
            report.video_frame_s = 1 / float(rate)
        for stream in container.streams:
            if stream.type in ("video", "audio"):
                tracks[stream.index] = StreamTrack(stream.type, _expected_step(stream))
        seen_raw: dict[int, int] = {}
        for packet in container.demux():
            track = tracks.get(packet.stream.index)
            if track is None or packet.pts is None:
                continue
            previous = seen_raw.get(packet.stream.index)
            if previous is not None and abs(packet.pts - previous) > PTS_MODULUS // 2:
                report.demuxer_jumps += 1
            seen_raw[packet.stream.index] = packet.pts
            wraps_before = track.wraps
            pts = track.unwrap(packet.pts)
            _step(report, track, pts, packet.duration or 0)
            if track.kind != "video":
                continue
            if packet.is_keyframe:
                previous_gop, gop = gop, []
            gop.append(packet)
            if track.wraps != wraps_before:
                report.wrap_checks.append(WrapCheck(at_s=pts / TS_CLOCK))
                decode_after_wrap = 2
            elif decode_after_wrap:
                decode_after_wrap -= 1
                if not decode_after_wrap and video is not None:
                    packets = [*previous_gop, *gop]
                    _decode_around_wrap(video, packets, report.wrap_checks[-1], tracks[video.index])
    for track in tracks.values():
        if track.first_pts is None or track.last_pts is None:
            continue
        report.packets[track.kind] = track.packets
        report.first_pts_s[track.kind] = track.first_pts / TS_CLOCK
        report.last_pts_s[track.kind] = track.last_pts / TS_CLOCK
        report.wraps[track.kind] = track.wraps
    ends = [
        (t.last_pts + t.last_duration) / TS_CLOCK for t in tracks.values() if t.last_pts is not None
    ]
    if len(ends) == 2:
        report.av_end_difference_s = abs(ends[0] - ends[1])
    return report


def _expected_step(stream: av.stream.Stream) -> int | None:
    if isinstance(stream, av.video.stream.VideoStream) and stream.average_rate:
        return round(TS_CLOCK / float(stream.average_rate))
    if isinstance(stream, av.audio.stream.AudioStream) and stream.codec_context.sample_rate:
        frame = stream.codec_context.frame_size or 1024
        return round(frame * TS_CLOCK / stream.codec_context.sample_rate)
    return None


def _step(report: StreamReport, track: StreamTrack, pts: int, duration: int) -> None:
    track.packets += 1
    if track.last_pts is None:
        track.first_pts = track.last_pts = pts
        track.last_duration = duration or (track.expected_step or 0)
        return
    step = pts - track.last_pts
    track.last_pts = pts
    track.last_duration = duration or (track.expected_step or 0)
    if track.kind == "video":
        track.largest_step = max(track.largest_step, step)
        report.largest_video_step_s = track.largest_step / TS_CLOCK
    if track.expected_step is None or step == track.expected_step:
        return
    if step <= 0:
        kind = "reversal"
    elif step > track.expected_step:
        kind = "gap"
    else:
        kind = "jump"
    report.discontinuities += 1
    if len(report.events) < MAX_EVENTS:
        report.events.append(Discontinuity(track.kind, kind, pts / TS_CLOCK, step / TS_CLOCK))


def _decode_around_wrap(
    stream: av.video.stream.VideoStream, gop: list[av.Packet], check: WrapCheck, track: StreamTrack
) -> None:
    """Decode the group of pictures that spans the wrap with a fresh decoder: the frames on
    both sides must come out, with pictures (not grey concealment)."""
    decoder = av.CodecContext.create(stream.codec_context.name, "r")
    if not isinstance(decoder, av.VideoCodecContext):
        return
    frames = []
    for packet in gop:
        frames.extend(decoder.decode(packet))
    frames.extend(decoder.decode(None))
    check.decoded = len(frames)
    wrap_tick = check.at_s * TS_CLOCK
    timed = [(_unwrapped(f.pts, track), f) for f in frames if f.pts is not None]
    before = [(pts, frame) for pts, frame in timed if pts < wrap_tick]
    after = [(pts, frame) for pts, frame in timed if pts >= wrap_tick]
    if before:
        pts, frame = before[-1]
        check.frame_before_pts_s = pts / TS_CLOCK
        check.luma_before = float(np.mean(frame.to_ndarray(format="gray")))
    if after:
        pts, frame = after[0]
        check.frame_after_pts_s = pts / TS_CLOCK
        check.luma_after = float(np.mean(frame.to_ndarray(format="gray")))


def _unwrapped(pts: int, track: StreamTrack) -> int:
    """A PTS near the latest wrap: before it if its 33 bits are high, after it if low."""
    raw = pts % PTS_MODULUS
    wraps = track.wraps - 1 if raw > PTS_MODULUS // 2 else track.wraps
    return raw + wraps * PTS_MODULUS
