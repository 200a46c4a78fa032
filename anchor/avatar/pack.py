"""Avatar packs: a folder with `manifest.yaml` and PNG layers, loaded and checked once.

A pack is authored on a fixed design canvas (e.g. 1280x720); the renderer scales it to the
stream size. Everything an operator can get wrong in a pack (a missing file, a sprite of the
wrong size, a box that leaves the canvas, a typo in a key) is reported here, at start-up, as an
`AvatarError` naming the file and the field, instead of surfacing later as a broken frame.

The `kind` key selects how the manifest is read: `sprite` (drawn layers, read here) or `photo`
(a rigged face photo whose mouth is opened by warping, read in anchor.avatar.photo). Both
produce the same `AvatarPack`: the renderer only needs mouth and eyelid images at a few
levels, however they were made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

from anchor.messages import MouthShape

MANIFEST = "manifest.yaml"

Box = tuple[int, int, int, int]


class AvatarError(Exception):
    """An avatar pack (or what the renderer needs to draw it) is unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class SpriteSet:
    """Images that replace one region of the body: the mouth at rising openness, or eyelids.

    Each frame is RGBA uint8 of exactly the box's size, placed at the box's corner.
    """

    box: Box
    frames: tuple[np.ndarray, ...]


@dataclass(frozen=True, slots=True)
class Motion:
    """Idle-motion amplitudes in canvas pixels: rise of the chest, lateral sway of the crown."""

    breath: float = 2.5
    sway: float = 2.0


@dataclass(frozen=True, slots=True)
class AvatarPack:
    """A validated avatar: every image decoded, every box inside the canvas.

    `body` holds the character with mouth closed and eyes open; `mouth.frames` run from
    closed to fully open; `eyes.frames` are the half-closed and the closed lids. `foreground`
    (optional) is drawn over the character and never moves, e.g. a desk hiding the lower body.
    `anchor` is the pivot of the idle sway (the base of the neck). `shapes` holds extra lip
    shapes (WIDE, ROUND) drawn in the mouth box with as many levels as `mouth`; a shape the
    pack lacks is drawn with `mouth` (the OPEN shape), and CLOSED is `mouth.frames[0]`.
    """

    directory: Path
    name: str
    kind: str
    size: tuple[int, int]
    background: np.ndarray
    body: np.ndarray
    foreground: np.ndarray | None
    mouth: SpriteSet
    eyes: SpriteSet
    anchor: tuple[float, float]
    caption: Box
    motion: Motion
    shapes: Mapping[MouthShape, SpriteSet] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path) -> AvatarPack:
        """Read and validate the pack in `directory`; raise `AvatarError` on any defect."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            raise AvatarError(f"{manifest_path}: no such file (an avatar pack needs {MANIFEST})")
        try:
            data = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise AvatarError(f"{manifest_path}: cannot read manifest: {exc}") from exc
        if not isinstance(data, dict):
            raise AvatarError(f"{manifest_path}: expected a mapping of keys, got {_kind_of(data)}")
        fields = _Fields(manifest_path, data)
        kind = fields.text("kind")
        reader = _READERS.get(kind)
        if reader is None:
            raise AvatarError(
                f"{manifest_path}: kind: unknown kind {kind!r} (supported: {', '.join(_READERS)})"
            )
        return reader(directory, fields)


class _Fields:
    """Typed access to manifest keys; every failure names the manifest and the dotted key."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data

    def error(self, key: str, problem: str) -> AvatarError:
        return AvatarError(f"{self.path}: {key}: {problem}")

    def raw(self, key: str, default: Any = ...) -> Any:
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise self.error(key, "missing key")
            node = node[part]
        return node

    def text(self, key: str, default: Any = ...) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def numbers(self, key: str, count: int, *, integer: bool) -> tuple:
        value = self.raw(key)
        wanted = "integers" if integer else "numbers"
        kinds = (int,) if integer else (int, float)
        if (
            not isinstance(value, list)
            or len(value) != count
            or not all(isinstance(v, kinds) and not isinstance(v, bool) for v in value)
        ):
            raise self.error(key, f"expected a list of {count} {wanted}, got {value!r}")
        return tuple(value)

    def canvas(self) -> tuple[int, int]:
        """The design canvas (`size`: width, height in pixels)."""
        width, height = self.numbers("size", 2, integer=True)
        if width <= 0 or height <= 0:
            raise self.error("size", f"expected a positive width and height, got {[width, height]}")
        return width, height

    def point(self, key: str, canvas: tuple[int, int]) -> tuple[float, float]:
        """An [x, y] point that must lie on the canvas."""
        x, y = self.numbers(key, 2, integer=False)
        width, height = canvas
        if not (0 <= x <= width and 0 <= y <= height):
            raise self.error(key, f"point {[x, y]} lies outside the {width}x{height} canvas")
        return x, y

    def number(self, key: str, default: float) -> float:
        value = self.raw(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise self.error(key, f"expected a number >= 0, got {value!r}")
        return float(value)

    def box(self, key: str, canvas: tuple[int, int]) -> Box:
        x, y, w, h = self.numbers(key, 4, integer=True)
        if w <= 0 or h <= 0:
            raise self.error(key, f"box {[x, y, w, h]} has no area")
        if x < 0 or y < 0 or x + w > canvas[0] or y + h > canvas[1]:
            raise self.error(
                key, f"box {[x, y, w, h]} lies outside the {canvas[0]}x{canvas[1]} canvas"
            )
        return x, y, w, h

    def file_list(self, key: str) -> list[str]:
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"expected a non-empty list of file names, got {value!r}")
        for item in value:
            if not isinstance(item, str) or not item:
                raise self.error(key, f"expected file names, got {item!r}")
        return value


def _load_sprite(directory: Path, fields: _Fields) -> AvatarPack:
    canvas = fields.canvas()
    background = _layer(directory, fields, "background", canvas, "RGBA")
    if np.any(background[..., 3] != 255):
        raise fields.error("background", f"{fields.text('background')} must be fully opaque")
    body = _layer(directory, fields, "body", canvas, "RGBA")
    foreground = None
    if fields.raw("foreground", None) is not None:
        foreground = _layer(directory, fields, "foreground", canvas, "RGBA")
    mouth = _sprite_set(directory, fields, "mouth", canvas, minimum=2)
    shapes = _mouth_shapes(directory, fields, mouth)
    eyes = _sprite_set(directory, fields, "eyes", canvas, minimum=1)
    caption = fields.box("caption", canvas)
    for name, region in (("mouth.box", mouth.box), ("eyes.box", eyes.box)):
        if _overlap(region, caption):
            raise fields.error("caption", f"box {list(caption)} overlaps {name} {list(region)}")
    if _overlap(mouth.box, eyes.box):
        raise fields.error("eyes.box", f"box {list(eyes.box)} overlaps mouth.box")
    ax, ay = fields.point("anchor", canvas)
    motion = Motion(
        breath=fields.number("motion.breath", Motion.breath),
        sway=fields.number("motion.sway", Motion.sway),
    )
    return AvatarPack(
        directory=directory,
        name=fields.text("name", directory.name),
        kind="sprite",
        size=canvas,
        background=background[..., :3].copy(),
        body=body,
        foreground=foreground,
        mouth=mouth,
        eyes=eyes,
        anchor=(float(ax), float(ay)),
        caption=caption,
        motion=motion,
        shapes=shapes,
    )


def _load_photo(directory: Path, fields: _Fields) -> AvatarPack:
    from anchor.avatar.photo import load_photo_pack  # builds on this module, so imported late

    return load_photo_pack(directory, fields)


_READERS: dict[str, Callable[[Path, _Fields], AvatarPack]] = {
    "sprite": _load_sprite,
    "photo": _load_photo,
}


def _sprite_set(
    directory: Path, fields: _Fields, key: str, canvas: tuple[int, int], *, minimum: int
) -> SpriteSet:
    box = fields.box(f"{key}.box", canvas)
    names = fields.file_list(f"{key}.frames")
    if len(names) < minimum:
        raise fields.error(f"{key}.frames", f"expected at least {minimum} images, got {len(names)}")
    frames = tuple(
        _read_png(directory, fields, f"{key}.frames[{i}]", name, (box[2], box[3]), "RGBA")
        for i, name in enumerate(names)
    )
    return SpriteSet(box=box, frames=frames)


_SHAPE_KEYS = {"wide": MouthShape.WIDE, "round": MouthShape.ROUND}


def _mouth_shapes(
    directory: Path, fields: _Fields, mouth: SpriteSet
) -> dict[MouthShape, SpriteSet]:
    """The optional `mouth_shapes: {wide: {frames: [...]}, round: {frames: [...]}}`.

    They are drawn in the mouth's box at the mouth's openness levels, so they take no box and
    must have as many frames as `mouth`.
    """
    given = fields.raw("mouth_shapes", None)
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise fields.error("mouth_shapes", f"expected a mapping of shapes, got {_kind_of(given)}")
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
            _read_png(directory, fields, f"{key}.frames[{i}]", file, size, "RGBA")
            for i, file in enumerate(names)
        )
        shapes[_SHAPE_KEYS[name]] = SpriteSet(box=mouth.box, frames=frames)
    return shapes


def _layer(
    directory: Path, fields: _Fields, key: str, size: tuple[int, int], mode: str
) -> np.ndarray:
    return _read_png(directory, fields, key, fields.text(key), size, mode)


def _read_png(
    directory: Path, fields: _Fields, key: str, name: str, size: tuple[int, int], mode: str
) -> np.ndarray:
    """Decode one image as `mode`, insisting on `size`; the pack may not reach outside itself."""
    path = (directory / name).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise fields.error(key, f"{name!r} points outside the pack directory")
    if not path.is_file():
        raise fields.error(key, f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            actual = image.size
            pixels = np.asarray(image.convert(mode))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise fields.error(key, f"{path}: cannot read image: {exc}") from exc
    if actual != size:
        raise fields.error(
            key, f"{path}: size {actual[0]}x{actual[1]}, expected {size[0]}x{size[1]}"
        )
    return pixels


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _kind_of(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
