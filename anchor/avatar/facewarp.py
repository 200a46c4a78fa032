"""Open the mouth and close the lids of a face photo, by remapping pixels around the rig.

Each image is one `cv2.remap` of the photo through a displacement field built from the lip and
lid contours, plus paint where the photo has nothing to show (the inside of the mouth, the
skin of a shut lid). Every field is zero on the edge of its box, so a sprite meets the
untouched photo without a seam, and zero at openness 0, so the closed mouth is the photo.

The mouth: lips part along the line between the inner lip contours; the upper lip rises a
little, the lower lip and the jaw drop; the chin slides over the neck, which is compressed to
the bottom of the box. WIDE pulls the corners outwards with a flatter opening, ROUND draws
them in around a smaller, rounder opening. The gap shows a generated mouth cavity: dark at the
back, upper teeth under the upper lip, the tongue and lower teeth at the bottom.

The lids: each upper lid is stretched down from above the eye to a closing line, its skin
blended towards the lid tone sampled from the photo, with a dark lash line along its edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from anchor.messages import MouthShape

Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class MouthRig:
    """Lip contours (corner to corner, canvas px), chin point and the widest lip gap."""

    box: Box
    max_gap: float
    outer_upper: np.ndarray
    outer_lower: np.ndarray
    inner_upper: np.ndarray
    inner_lower: np.ndarray
    chin: tuple[float, float]


@dataclass(frozen=True, slots=True)
class EyeRig:
    """Upper and lower lid contours of one eye, corner to corner, canvas px."""

    upper: np.ndarray
    lower: np.ndarray


@dataclass(frozen=True, slots=True)
class _Style:
    spread: float  # horizontal stretch about the mouth centre (+ out, - in)
    width: float  # half-width of the opening, relative to the inner lip corners
    gap: float  # lip gap relative to the rig's max_gap
    power: float  # exponent of the opening's profile: small = flat and wide


_STYLES = {
    MouthShape.OPEN: _Style(spread=0.0, width=1.0, gap=1.0, power=0.7),
    MouthShape.WIDE: _Style(spread=0.16, width=1.05, gap=0.5, power=0.35),
    MouthShape.ROUND: _Style(spread=-0.2, width=0.62, gap=0.8, power=0.5),
}

_CAVITY_EDGE = np.array([96.0, 34.0, 40.0])
_CAVITY_DEEP = np.array([26.0, 6.0, 10.0])
_TONGUE = np.array([150.0, 58.0, 66.0])
_TEETH = np.array([234.0, 228.0, 214.0])


def mouth_frames(
    photo: np.ndarray, rig: MouthRig, levels: int, shape: MouthShape = MouthShape.OPEN
) -> tuple[np.ndarray, ...]:
    """RGBA crops of the mouth box from closed (the photo itself) to fully open, in `shape`."""
    style = _STYLES.get(shape, _STYLES[MouthShape.OPEN])
    return tuple(_open_mouth(photo, rig, i / (levels - 1), style) for i in range(levels))


def _open_mouth(photo: np.ndarray, rig: MouthRig, openness: float, style: _Style) -> np.ndarray:
    bx, by, bw, bh = rig.box
    ys, xs = np.mgrid[by : by + bh, bx : bx + bw].astype(np.float32)
    corners = np.array([rig.outer_upper[0], rig.outer_upper[-1]])
    cx, cy = corners.mean(axis=0)
    mouth_width = float(np.linalg.norm(corners[1] - corners[0]))

    # Horizontal: stretch about the mouth centre, fading to nothing at the box edge.
    spread = style.spread * np.sqrt(openness)
    weight = np.exp(
        -(((xs - cx) / (0.75 * mouth_width)) ** 2) - ((ys - cy) / (0.45 * mouth_width)) ** 2
    )
    weight *= _window(xs, bx, bw) * _window(ys, by, bh)
    source_x = cx + (xs - cx) / (1.0 + spread * weight)

    # Vertical, per column of the (stretched) source: the lip gap and the jaw drop.
    inner_left, inner_right = rig.inner_upper[0][0], rig.inner_upper[-1][0]
    centre = (inner_left + inner_right) / 2.0
    half_width = max(1.0, (inner_right - inner_left) / 2.0 * style.width)
    t = (source_x - centre) / half_width
    profile = np.clip(1.0 - np.abs(t) ** 2, 0.0, 1.0) ** style.power
    full_gap = openness * rig.max_gap * style.gap
    gap = full_gap * profile
    upper = 0.22 * gap
    lower = gap - upper
    drop = 0.8 * full_gap * _taper(source_x, cx, mouth_width, bx, bw)
    split = _lip_line(rig, bx, bw)(source_x)
    chin = rig.chin[1]
    top, bottom = float(by), float(by + bh)

    above = top + (ys - top) * (split - top) / np.maximum(split - upper - top, 1e-3)
    jaw = split + (ys - split - lower) * (chin - split) / np.maximum(
        chin + drop - split - lower, 1e-3
    )
    neck = chin + (ys - chin - drop) * (bottom - chin) / np.maximum(bottom - chin - drop, 1e-3)
    source_y = np.where(ys <= split - upper, above, np.where(ys <= chin + drop, jaw, neck))
    in_gap = (ys > split - upper) & (ys < split + lower)
    source_y = np.where(in_gap, split, source_y)

    warped = cv2.remap(
        photo,
        source_x.astype(np.float32),
        source_y.astype(np.float32),
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    ).astype(np.float32)
    depth = ys - (split - upper)
    cover = np.clip(np.minimum(depth, split + lower - ys) + 0.5, 0.0, 1.0) * (gap > 0.05)
    # A photo that already shows teeth keeps its own, parted with the lips; no drawn ones.
    shown = float(np.median(rig.inner_lower[3:-3, 1] - rig.inner_upper[3:-3, 1]))
    teeth = float(np.clip(1.0 - shown / (0.05 * mouth_width), 0.0, 1.0))
    fill = _cavity(t, depth, gap, mouth_width, teeth)
    out = warped * (1.0 - cover[..., None]) + fill * cover[..., None]
    return _rgba(out)


def _cavity(
    t: np.ndarray, depth: np.ndarray, gap: np.ndarray, mouth_width: float, teeth: float
) -> np.ndarray:
    """The inside of the mouth at each gap pixel: throat, tongue, lower and upper teeth."""
    safe_gap = np.maximum(gap, 1e-3)
    v = np.clip(depth / safe_gap, 0.0, 1.0)
    tt = np.clip(np.abs(t), 0.0, 1.0)
    deep = ((1.0 - tt**2) * np.sin(np.pi * v)) ** 0.7
    colour = _CAVITY_EDGE + (_CAVITY_DEEP - _CAVITY_EDGE) * deep[..., None]

    radius = np.sqrt((t / 0.8) ** 2 + ((v - 1.05) / 0.5) ** 2)
    tongue = np.clip((1.0 - radius) * 4.0, 0.0, 1.0) * np.clip((gap - 5.0) / 10.0, 0.0, 1.0)
    tongue_colour = _TONGUE * (0.7 + 0.3 * np.clip(1.0 - radius, 0, 1))[..., None]
    colour = _mix(colour, tongue_colour, tongue)

    lower_height = np.minimum(0.16 * gap, 0.06 * mouth_width) * np.clip(1.0 - tt**2 / 0.3, 0, 1)
    lower_height *= teeth
    from_bottom = gap - depth
    lower_teeth = np.clip(lower_height - from_bottom + 0.5, 0.0, 1.0) * (lower_height > 0.5)
    colour = _mix(colour, _TEETH * 0.72 * _tooth_shade(t)[..., None], lower_teeth)

    upper_height = np.minimum(0.42 * gap, 0.1 * mouth_width) * np.clip(1.0 - tt**3, 0.0, 1.0)
    upper_height *= teeth
    upper_teeth = np.clip(upper_height - depth + 0.5, 0.0, 1.0) * np.clip((0.82 - tt) / 0.12, 0, 1)
    shade = _tooth_shade(t) * (1.0 - 0.18 * np.clip(depth / np.maximum(upper_height, 1.0), 0, 1))
    return _mix(colour, _TEETH * shade[..., None], upper_teeth)


def _tooth_shade(t: np.ndarray) -> np.ndarray:
    """Teeth darken towards the corners and show faint gaps between them."""
    shade: np.ndarray = 1.0 - 0.45 * np.clip(t, -1, 1) ** 2
    for edge in (0.0, 0.27, 0.5, 0.68):
        shade *= 1.0 - 0.14 * np.exp(-(((np.abs(t) - edge) / 0.025) ** 2))
    return shade


def _lip_line(rig: MouthRig, bx: int, bw: int) -> Callable[[np.ndarray], np.ndarray]:
    """y of the line where the lips part, as a function of x, flat beyond the corners."""
    middle = (rig.inner_upper + rig.inner_lower) / 2.0
    left, right = rig.outer_upper[0], rig.outer_upper[-1]
    points = np.vstack([[bx - 1.0, left[1]], left, middle, right, [bx + bw + 1.0, right[1]]])
    points = points[np.argsort(points[:, 0], kind="stable")]
    return lambda x: np.interp(x, points[:, 0], points[:, 1])


def _taper(x: np.ndarray, cx: float, mouth_width: float, bx: int, bw: int) -> np.ndarray:
    """1 across the chin, easing to 0 at the box's sides: how far each column of jaw drops."""
    flat = 0.5 * mouth_width
    reach = max(flat + 1.0, min(cx - bx, bx + bw - cx))
    s = np.clip((reach - np.abs(x - cx)) / (reach - flat), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _window(v: np.ndarray, start: int, length: int) -> np.ndarray:
    u = 2.0 * (v - start) / max(1, length - 1) - 1.0
    return np.clip(1.0 - u**4, 0.0, 1.0)


def lid_frames(
    photo: np.ndarray, box: Box, eyes: Sequence[EyeRig], tone: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """RGBA crops of the eye box with the lids half shut and shut."""
    shade = np.asarray(tone, float)
    return _close_lids(photo, box, eyes, shade, 0.5), _close_lids(photo, box, eyes, shade, 1.0)


def _close_lids(
    photo: np.ndarray, box: Box, eyes: Sequence[EyeRig], tone: np.ndarray, closing: float
) -> np.ndarray:
    bx, by, bw, bh = box
    ys, xs = np.mgrid[by : by + bh, bx : bx + bw].astype(np.float32)
    source_y = ys.copy()
    lid = np.zeros_like(ys)
    lash = np.zeros_like(ys)
    lid_line = np.zeros_like(ys)
    lid_top = np.zeros_like(ys)
    for eye in eyes:
        upper = eye.upper[np.argsort(eye.upper[:, 0])]
        lower = eye.lower[np.argsort(eye.lower[:, 0])]
        x0, x1 = upper[0, 0], upper[-1, 0]
        inside = (xs > x0) & (xs < x1)
        u = np.interp(xs, upper[:, 0], upper[:, 1])
        low = np.interp(xs, lower[:, 0], lower[:, 1])
        height = float(np.max(lower[:, 1] - np.interp(lower[:, 0], upper[:, 0], upper[:, 1])))
        anchor = max(by + 1.0, float(upper[:, 1].min()) - 1.3 * max(height, 2.0))
        close = u + closing * np.maximum(low - u, 0.0)
        stretched = anchor + (ys - anchor) * (u - anchor) / np.maximum(close - anchor, 1e-3)
        moving = inside & (ys >= anchor) & (ys <= close)
        source_y = np.where(moving, stretched, source_y)
        rising = np.clip((ys - u + 1.0) / 4.0, 0.0, 1.0)
        cover = rising * rising * np.clip(close - ys + 1.0, 0.0, 1.0) * inside
        lid = np.maximum(lid, cover)
        opening = np.clip((close - u) / max(height, 1.0), 0.0, 1.0)
        lash = np.maximum(
            lash, np.exp(-(((ys - close) / 1.1) ** 2)) * inside * (0.4 + 0.6 * opening)
        )
        lid_line = np.where(inside, close, lid_line)
        lid_top = np.where(inside, u, lid_top)
    warped = cv2.remap(
        photo, xs, source_y.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)
    span = np.maximum(lid_line - lid_top, 1.0)
    rounding = np.sin(np.pi * np.clip((ys - lid_top) / span, 0.0, 1.0))
    skin = tone * (0.9 + 0.1 * rounding)[..., None]
    out = _mix(warped, skin, 0.65 * lid)
    out = _mix(out, tone * 0.3, 0.85 * lash)
    return _rgba(out)


def _mix(under: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    mixed: np.ndarray = under * (1.0 - a) + over * a
    return mixed


def _rgba(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(np.rint(rgb), 0, 255)
    out[..., 3] = 255
    return out
