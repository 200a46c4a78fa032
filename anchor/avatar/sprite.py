"""The `kind: sprite` pack reader: drawn PNG layers, a mouth at rising openness, eyelids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anchor.avatar.layout import placed_box, read_layouts, single_layout
from anchor.avatar.manifest import ManifestFields, boxes_overlap, kind_of, read_layer, read_png
from anchor.avatar.pack import AvatarPack, Layout, Motion, SpriteSet
from anchor.messages import MouthShape


def load_sprite_pack(directory: Path, fields: ManifestFields) -> AvatarPack:
    canvas = fields.canvas()
    body = read_layer(directory, fields, "body", canvas, "RGBA")
    foreground = None
    if fields.raw("foreground", None) is not None:
        foreground = read_layer(directory, fields, "foreground", canvas, "RGBA")
    mouth = _sprite_set(directory, fields, "mouth", canvas, minimum=2)
    shapes = _mouth_shapes(directory, fields, mouth)
    eyes = _sprite_set(directory, fields, "eyes", canvas, minimum=1)
    if boxes_overlap(mouth.box, eyes.box):
        raise fields.error("eyes.box", f"box {list(eyes.box)} overlaps mouth.box")
    ax, ay = fields.point("anchor", canvas)
    # Defaults from an instance: on a slots dataclass, Motion.breath is the slot, not 2.5.
    layouts, background = _layouts(directory, fields, canvas, (mouth.box, eyes.box))
    default = Motion()
    motion = Motion(
        breath=fields.number("motion.breath", default.breath),
        sway=fields.number("motion.sway", default.sway),
    )
    return AvatarPack(
        directory=directory,
        name=fields.text("name", directory.name),
        kind="sprite",
        size=canvas,
        background=background,
        body=body,
        foreground=foreground,
        mouth=mouth,
        eyes=eyes,
        anchor=(float(ax), float(ay)),
        motion=motion,
        layouts=layouts,
        shapes=shapes,
    )


def _layouts(
    directory: Path,
    fields: ManifestFields,
    canvas: tuple[int, int],
    face: tuple[tuple[int, int, int, int], ...],
) -> tuple[tuple[Layout, ...], np.ndarray]:
    """The pack's layouts, and the backdrop of its own canvas (what face previews draw on).

    Without `layouts`, the canvas is the one layout: `background` and `caption` are read from
    the top level, as packs did before layouts existed. With `layouts`, those belong to each
    layout and may not appear at the top level too."""
    if fields.raw("layouts", None) is None:
        background = read_layer(directory, fields, "background", canvas, "RGBA")
        if np.any(background[..., 3] != 255):
            raise fields.error("background", f"{fields.text('background')} must be fully opaque")
        caption = fields.box("caption", canvas)
        for name, region in zip(("mouth.box", "eyes.box"), face, strict=True):
            if boxes_overlap(region, caption):
                raise fields.error("caption", f"box {list(caption)} overlaps {name} {list(region)}")
        rgb = background[..., :3].copy()
        return (single_layout(rgb, caption),), rgb
    for key in ("background", "caption"):
        if fields.raw(key, None) is not None:
            raise fields.error(key, "belongs to each layout when the pack has `layouts`")
    layouts = read_layouts(directory, fields, canvas)
    for layout in layouts:
        for name, region in zip(("mouth.box", "eyes.box"), face, strict=True):
            if boxes_overlap(placed_box(layout, region), layout.caption):
                raise fields.error(
                    f"layouts.{layout.name}.caption",
                    f"box {list(layout.caption)} overlaps {name} as the layout places the host",
                )
    for layout in layouts:
        if layout.size == canvas and layout.host_scale == 1.0 and layout.host_at == (0.0, 0.0):
            return layouts, layout.background
    return layouts, np.full((canvas[1], canvas[0], 3), 128, dtype=np.uint8)


def _sprite_set(
    directory: Path, fields: ManifestFields, key: str, canvas: tuple[int, int], *, minimum: int
) -> SpriteSet:
    box = fields.box(f"{key}.box", canvas)
    names = fields.file_list(f"{key}.frames")
    if len(names) < minimum:
        raise fields.error(f"{key}.frames", f"expected at least {minimum} images, got {len(names)}")
    frames = tuple(
        read_png(directory, fields, f"{key}.frames[{i}]", name, (box[2], box[3]), "RGBA")
        for i, name in enumerate(names)
    )
    return SpriteSet(box=box, frames=frames)


_SHAPE_KEYS = {"wide": MouthShape.WIDE, "round": MouthShape.ROUND}


def _mouth_shapes(
    directory: Path, fields: ManifestFields, mouth: SpriteSet
) -> dict[MouthShape, SpriteSet]:
    """The optional `mouth_shapes: {wide: {frames: [...]}, round: {frames: [...]}}`.

    They are drawn in the mouth's box at the mouth's openness levels, so they take no box and
    must have as many frames as `mouth`.
    """
    given = fields.raw("mouth_shapes", None)
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise fields.error("mouth_shapes", f"expected a mapping of shapes, got {kind_of(given)}")
    shapes: dict[MouthShape, SpriteSet] = {}
    for name, entry in given.items():
        key = f"mouth_shapes.{name}"
        if name not in _SHAPE_KEYS:
            raise fields.error(key, f"unknown shape (supported: {', '.join(_SHAPE_KEYS)})")
        if not isinstance(entry, dict) or set(entry) != {"frames"}:
            raise fields.error(key, f"expected {{frames: [...]}}, got {entry!r}")
        names = fields.file_list(f"{key}.frames")
        if len(names) != len(mouth.frames):
            raise fields.error(
                f"{key}.frames",
                f"expected {len(mouth.frames)} images (as many as mouth.frames), got {len(names)}",
            )
        size = (mouth.box[2], mouth.box[3])
        frames = tuple(
            read_png(directory, fields, f"{key}.frames[{i}]", file, size, "RGBA")
            for i, file in enumerate(names)
        )
        shapes[_SHAPE_KEYS[name]] = SpriteSet(box=mouth.box, frames=frames)
    return shapes
