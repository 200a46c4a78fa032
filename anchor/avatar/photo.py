"""The `kind: photo` pack reader: a rigged face photo becomes an ordinary `AvatarPack`.

`anchor avatar build` (anchor.avatar.rig) wrote the photo, already framed on the canvas, and
`rig.yaml` with the lip and lid contours. Here, once at load, the mouth is warped to every
openness level in each lip shape and the lids to half and fully shut (anchor.avatar.facewarp),
so the renderer draws a photo host exactly as it draws a sprite host. Nothing here needs
mediapipe.

The whole photo is the body: it moves as one with the idle motion, which is kept to about a
pixel so the picture reads as a live camera rather than a sliding cut-out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from anchor.avatar.facewarp import EyeRig, MouthRig, lid_frames, mouth_frames
from anchor.avatar.layout import photo_layouts
from anchor.avatar.manifest import ManifestFields, boxes_overlap, read_layer
from anchor.avatar.pack import AvatarError, AvatarPack, Motion, SpriteSet
from anchor.messages import MouthShape

DEFAULT_LEVELS = 6


def load_photo_pack(directory: Path, fields: ManifestFields) -> AvatarPack:
    """Read photo, rig and layout; precompute the mouth and lid images."""
    canvas = fields.canvas()
    photo = read_layer(directory, fields, "photo", canvas, "RGB")
    rig = _read_rig(directory, fields)
    levels = int(fields.number("mouth_levels", DEFAULT_LEVELS))
    if not 2 <= levels <= 16:
        raise fields.error("mouth_levels", f"expected 2 to 16 levels, got {levels}")
    mouth_rig = _mouth_rig(rig, canvas)
    eye_box = rig.box("eyes.box", canvas)
    eyes = (_eye_rig(rig, "eyes.right", eye_box), _eye_rig(rig, "eyes.left", eye_box))
    tone = rig.numbers("eyes.lid_tone", 3, integer=True)
    if not all(0 <= v <= 255 for v in tone):
        raise rig.error("eyes.lid_tone", f"expected RGB values 0-255, got {list(tone)}")
    if boxes_overlap(mouth_rig.box, eye_box):
        raise rig.error("eyes.box", f"box {list(eye_box)} overlaps mouth.box")
    caption = fields.box("caption", canvas)
    for name, region in (("mouth.box", mouth_rig.box), ("eyes.box", eye_box)):
        if boxes_overlap(region, caption):
            raise fields.error("caption", f"box {list(caption)} overlaps {rig.path.name} {name}")
    ax, ay = fields.point("anchor", canvas)

    shapes = {
        shape: SpriteSet(mouth_rig.box, mouth_frames(photo, mouth_rig, levels, shape))
        for shape in (MouthShape.OPEN, MouthShape.WIDE, MouthShape.ROUND)
    }
    body = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    return AvatarPack(
        directory=directory,
        name=fields.text("name", directory.name),
        kind="photo",
        size=canvas,
        background=photo,
        body=body,
        foreground=None,
        mouth=shapes[MouthShape.OPEN],
        eyes=SpriteSet(eye_box, lid_frames(photo, eye_box, eyes, tone)),
        anchor=(float(ax), float(ay)),
        layouts=photo_layouts(photo, caption, mouth_rig.box, eye_box),
        motion=Motion(
            breath=fields.number("motion.breath", 1.0), sway=fields.number("motion.sway", 0.8)
        ),
        shapes={
            MouthShape.WIDE: shapes[MouthShape.WIDE],
            MouthShape.ROUND: shapes[MouthShape.ROUND],
        },
    )


def _read_rig(directory: Path, fields: ManifestFields) -> ManifestFields:
    name = fields.text("rig")
    path = (directory / name).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise fields.error("rig", f"{name!r} points outside the pack directory")
    if not path.is_file():
        raise fields.error("rig", f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AvatarError(f"{path}: cannot read rig: {exc}") from exc
    if not isinstance(data, dict):
        raise AvatarError(f"{path}: expected a mapping of keys")
    return ManifestFields(path, data)


def _points(
    rig: ManifestFields, key: str, canvas: tuple[int, int], minimum: int = 3, where: str = ""
) -> np.ndarray:
    value: Any = rig.raw(key)
    ok = isinstance(value, list) and len(value) >= minimum
    if ok:
        for point in value:
            if not (
                isinstance(point, list)
                and len(point) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
            ):
                ok = False
                break
    if not ok:
        raise rig.error(key, f"expected a list of at least {minimum} [x, y] points")
    points = np.asarray(value, dtype=np.float64)
    if np.any(points < 0) or np.any(points > np.array(canvas)):
        raise rig.error(key, f"points lie outside {where or f'the {canvas[0]}x{canvas[1]} canvas'}")
    return points


def _mouth_rig(rig: ManifestFields, canvas: tuple[int, int]) -> MouthRig:
    box = rig.box("mouth.box", canvas)
    contours = {
        name: _points(rig, f"mouth.{name}", canvas)
        for name in ("outer_upper", "outer_lower", "inner_upper", "inner_lower")
    }
    if len(contours["inner_upper"]) != len(contours["inner_lower"]):
        raise rig.error("mouth.inner_lower", "expected as many points as mouth.inner_upper")
    cx, cy = rig.numbers("mouth.chin", 2, integer=False)
    chin = (float(cx), float(cy))
    x, y, w, h = box
    for name, points in contours.items():
        if np.any(points[:, 0] < x) or np.any(points[:, 0] > x + w) or np.any(points[:, 1] < y):
            raise rig.error(f"mouth.{name}", f"points lie outside mouth.box {list(box)}")
    if not y < chin[1] < y + h:
        raise rig.error("mouth.chin", f"point {list(chin)} lies outside mouth.box {list(box)}")
    max_gap = rig.number("mouth.max_gap", 0.0)
    if max_gap <= 0:
        raise rig.error("mouth.max_gap", f"expected a positive number, got {max_gap}")
    if chin[1] + 0.8 * max_gap >= y + h - 2:
        raise rig.error("mouth.box", "leaves no room below the chin for the jaw to drop")
    return MouthRig(box=box, max_gap=max_gap, chin=chin, **contours)


def _eye_rig(rig: ManifestFields, key: str, box: tuple[int, int, int, int]) -> EyeRig:
    x, y, w, h = box
    contours = []
    for part in ("upper", "lower"):
        points = _points(rig, f"{key}.{part}", (x + w, y + h), where=f"eyes.box {list(box)}")
        if np.any(points[:, 0] < x) or np.any(points[:, 1] < y):
            raise rig.error(f"{key}.{part}", f"points lie outside eyes.box {list(box)}")
        contours.append(points)
    return EyeRig(upper=contours[0], lower=contours[1])
