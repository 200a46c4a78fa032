"""The one clock of the stream.

The audio sample counter is the master. Video frame n starts at sample floor(n * rate / fps)
and its timestamp is n in a 1/fps time base; audio timestamps are sample indices in a 1/rate
time base. Both are integers derived from the same counter, so sound and picture cannot drift
apart however long the stream runs, and neither ever looks at wall time.

`first_frame` is where the counter starts: 0 for a fresh channel. A later start gives the same
timestamps a channel that had been on air that long would write, which is how a short run is
made to cross the 33-bit MPEG-TS timestamp wrap (about 26.5 h).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class MediaClock:
    sample_rate: int
    fps: int
    first_frame: int = 0

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.fps <= 0:
            raise ValueError("sample_rate and fps must be positive")
        if self.first_frame < 0:
            raise ValueError("first_frame must not be negative")

    @property
    def video_time_base(self) -> Fraction:
        return Fraction(1, self.fps)

    @property
    def audio_time_base(self) -> Fraction:
        return Fraction(1, self.sample_rate)

    def frame_start_sample(self, frame_index: int) -> int:
        """The first audio sample that belongs to video frame `frame_index`."""
        return frame_index * self.sample_rate // self.fps

    def samples_in_frame(self, frame_index: int) -> int:
        """How many samples frame `frame_index` carries (constant when fps divides the rate)."""
        return self.frame_start_sample(frame_index + 1) - self.frame_start_sample(frame_index)

    def frame_time(self, frame_index: int) -> float:
        """Stream time of a frame in seconds (for display and scheduling, never for timestamps)."""
        return frame_index / self.fps

    def frames_for(self, seconds: float) -> int:
        """How many frames cover `seconds` of stream time."""
        return round(seconds * self.fps)
