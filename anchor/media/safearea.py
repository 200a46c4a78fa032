"""Where a platform's app draws over the picture, and keeping our text out of there.

A portrait live room on Douyin, WeChat Channels or Kuaishou is covered by the app itself: the
room header and viewer count along the top, the comment list, gift banners and the input bar
over the bottom third, a column of buttons on the right. A caption or title drawn there is
unreadable. A `SafeArea` is the set of covered rectangles, as fractions of the frame so one
preset serves every size; `fit` moves (and if it must, shrinks) a box until it clears them.

The presets are measured by eye from each app's live room as of late 2026; apps change, so
the operator can add rectangles in the config (`video.covered`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]
Fractions = tuple[float, float, float, float]  # x0, y0, x1, y1, each 0..1 of the frame

PRESETS: dict[str, tuple[Fractions, ...]] = {
    "none": (),
    # Room header; comment list, gift banners and input bar; the like/share/gift buttons.
    "douyin": ((0.0, 0.0, 1.0, 0.12), (0.0, 0.64, 1.0, 1.0), (0.85, 0.40, 1.0, 0.64)),
    "wechat_channels": ((0.0, 0.0, 1.0, 0.10), (0.0, 0.66, 1.0, 1.0), (0.86, 0.45, 1.0, 0.66)),
    "kuaishou": ((0.0, 0.0, 1.0, 0.13), (0.0, 0.62, 1.0, 1.0), (0.85, 0.40, 1.0, 0.62)),
    "bilibili_portrait": ((0.0, 0.0, 1.0, 0.10), (0.0, 0.70, 1.0, 1.0), (0.86, 0.50, 1.0, 0.70)),
    # The landscape web player keeps its controls off the picture until hovered; the bottom
    # strip is where they appear.
    "bilibili": ((0.0, 0.92, 1.0, 1.0),),
}
PORTRAIT_PRESETS = ("douyin", "wechat_channels", "kuaishou", "bilibili_portrait")

_STEP = 0.01  # search grid: 1 % of the frame
_MIN_SCALE = 0.5


class SafeAreaError(ValueError):
    """A box cannot be placed clear of the covered areas, even at half its size."""


@dataclass(frozen=True, slots=True)
class SafeArea:
    """The covered rectangles of one platform (fractions of the frame), plus the operator's."""

    name: str
    covered: tuple[Fractions, ...] = ()

    @classmethod
    def preset(cls, name: str, extra: Iterable[Sequence[float]] = ()) -> SafeArea:
        if name not in PRESETS:
            raise ValueError(f"unknown safe-area preset {name!r} (known: {', '.join(PRESETS)})")
        added = tuple(_fractions(rect) for rect in extra)
        return cls(name, PRESETS[name] + added)

    def rects(self, width: int, height: int) -> list[Box]:
        """The covered rectangles in pixels of a width x height frame (x, y, w, h)."""
        out = []
        for x0, y0, x1, y1 in self.covered:
            left, top = math.floor(x0 * width), math.floor(y0 * height)
            right, bottom = math.ceil(x1 * width), math.ceil(y1 * height)
            out.append((left, top, right - left, bottom - top))
        return out

    def clears(self, box: Box, width: int, height: int) -> bool:
        """Whether `box` lies inside the frame and touches no covered rectangle."""
        x, y, w, h = box
        if x < 0 or y < 0 or x + w > width or y + h > height:
            return False
        return not any(_overlap(box, rect) for rect in self.rects(width, height))

    def mask(self, width: int, height: int) -> np.ndarray:
        """A bool (height, width) array, True where the app covers the picture."""
        covered = np.zeros((height, width), dtype=bool)
        for x, y, w, h in self.rects(width, height):
            covered[max(0, y) : y + h, max(0, x) : x + w] = True
        return covered

    def fit(self, box: Box, width: int, height: int, avoid: Sequence[Box] = ()) -> Box:
        """`box` itself if it is clear, else the nearest clear box of the same proportions.

        `avoid` are more areas to keep clear of (the host's face, for a caption).

        Larger beats nearer: the box keeps as much of its size as it can (down to half), and
        among clear places of that size the one whose centre moved least wins. Positions are
        tried on a grid of 1 % of the frame, so this runs once at set-up, not per frame."""
        if self.clears(box, width, height) and not any(_overlap(box, a) for a in avoid):
            return box
        x, y, w, h = box
        cx, cy = x + w / 2, y + h / 2
        rects = self.rects(width, height) + list(avoid)
        scale = 1.0
        while scale >= _MIN_SCALE - 1e-9:
            bw, bh = _even(w * scale), _even(h * scale)
            found = _nearest_clear(cx, cy, bw, bh, width, height, rects)
            if found is not None:
                return found
            scale -= 0.05
        raise SafeAreaError(
            f"a {w}x{h} box cannot be placed clear of the {self.name} covered areas "
            f"in a {width}x{height} frame"
        )


def _nearest_clear(
    cx: float, cy: float, bw: int, bh: int, width: int, height: int, rects: list[Box]
) -> Box | None:
    step_x, step_y = max(2, _even(width * _STEP)), max(2, _even(height * _STEP))
    xs = np.arange(0, width - bw + 1, step_x)
    ys = np.arange(0, height - bh + 1, step_y)
    if xs.size == 0 or ys.size == 0:
        return None
    gx, gy = np.meshgrid(xs, ys)
    clear = np.ones(gx.shape, dtype=bool)
    for rx, ry, rw, rh in rects:
        clear &= ~((gx < rx + rw) & (rx < gx + bw) & (gy < ry + rh) & (ry < gy + bh))
    if not clear.any():
        return None
    distance = (gx + bw / 2 - cx) ** 2 + (gy + bh / 2 - cy) ** 2
    distance[~clear] = np.inf
    row, col = np.unravel_index(int(np.argmin(distance)), distance.shape)
    return int(gx[row, col]), int(gy[row, col]), bw, bh


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _fractions(rect: Sequence[float]) -> Fractions:
    if len(rect) != 4:
        raise ValueError(f"a covered rectangle is [x0, y0, x1, y1], got {list(rect)}")
    x0, y0, x1, y1 = (float(v) for v in rect)
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError(
            f"a covered rectangle is [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and "
            f"0 <= y0 < y1 <= 1 (fractions of the frame), got {list(rect)}"
        )
    return x0, y0, x1, y1
