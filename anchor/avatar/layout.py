"""Layouts: reading them from a manifest, and picking the one for a stream's size.

A pack's `layouts` key maps a name (by convention the aspect ratio, "16:9", "9:16", "1:1") to
a canvas of that shape and what goes on it:

    layouts:
      "9:16":
        size: [720, 1280]
        background: wall_9x16.png            # opaque, the layout's size
        host: {scale: 1.2, at: [-168, 170]}  # the host's canvas placed on this one
        title: {image: title.png, box: [80, 176, 560, 160]}
        decorations: [{image: window.png, box: [380, 300, 320, 248]}]
        caption: [36, 664, 564, 120]
        cards: [48, 300, 504, 340]

A pack without `layouts` has one: its own canvas, background and caption box. Photo packs
get theirs from the photo (see `photo_layouts`). `choose_layout` picks the layout whose aspect
ratio matches the stream within `ASPECT_TOLERANCE`; anything else is refused with the sizes
that would work, because a crop of another aspect cuts the title and the host in half.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from anchor.avatar.manifest import ManifestFields, kind_of, read_png
from anchor.avatar.pack import AvatarError, Box, Layout, Placed

ASPECT_TOLERANCE = 0.02
COMMON_SIZES = (
    (1280, 720),
    (1920, 1080),
    (854, 480),
    (720, 1280),
    (1080, 1920),
    (1080, 1080),
    (720, 720),
    (1080, 1350),
)
_LAYOUT_KEYS = {"size", "background", "host", "title", "decorations", "caption", "cards"}


def read_layouts(
    directory: Path, fields: ManifestFields, host_canvas: tuple[int, int]
) -> tuple[Layout, ...]:
    """The `layouts` mapping of a sprite manifest, every image read and every box checked."""
    given = fields.raw("layouts")
    if not isinstance(given, dict) or not given:
        raise fields.error("layouts", f"expected a mapping of layouts, got {kind_of(given)}")
    layouts = []
    for name, spec in given.items():
        key = f"layouts.{name}"
        if not isinstance(spec, dict):
            raise fields.error(key, f"expected a mapping, got {kind_of(spec)}")
        unknown = sorted(set(spec) - _LAYOUT_KEYS)
        if unknown:
            raise fields.error(
                f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_LAYOUT_KEYS))})"
            )
        layouts.append(_read_layout(directory, fields, str(name), host_canvas))
    _refuse_twins(fields, layouts)
    return tuple(layouts)


def declared_sizes(fields: ManifestFields, kind: str) -> list[tuple[str, tuple[int, int]]]:
    """(name, canvas size) of each layout, from the manifest alone (no image is read)."""
    canvas = fields.canvas()
    if kind == "photo":
        return photo_canvases(canvas)
    given = fields.raw("layouts", None)
    if given is None:
        return [(layout_name(*canvas), canvas)]
    if not isinstance(given, dict) or not given:
        raise fields.error("layouts", f"expected a mapping of layouts, got {kind_of(given)}")
    sizes = []
    for name in given:
        width, height = fields.numbers(f"layouts.{name}.size", 2, integer=True)
        sizes.append((str(name), (width, height)))
    return sizes


def choose_layout(layouts: Sequence[Layout], width: int, height: int, where: str) -> Layout:
    """The layout for a width x height stream; `AvatarError` naming the sizes that work."""
    aspect = width / height
    best = min(layouts, key=lambda layout: abs(layout.aspect / aspect - 1.0))
    if abs(best.aspect / aspect - 1.0) <= ASPECT_TOLERANCE:
        return best
    raise AvatarError(
        f"{where}: {width}x{height} ({layout_name(width, height)}) has no layout; "
        f"sizes that work: {describe_sizes([(layout.name, layout.size) for layout in layouts])}"
    )


def fits(size: tuple[int, int], width: int, height: int) -> bool:
    return abs((size[0] / size[1]) / (width / height) - 1.0) <= ASPECT_TOLERANCE


def describe_sizes(layouts: Sequence[tuple[str, tuple[int, int]]]) -> str:
    """ "16:9 (1280x720, 1920x1080); 9:16 (720x1280, 1080x1920)" for an error message."""
    parts = []
    for name, size in layouts:
        examples = [f"{w}x{h}" for w, h in COMMON_SIZES if fits(size, w, h)]
        parts.append(f"{name} ({', '.join(examples or [f'{size[0]}x{size[1]}'])})")
    return "; ".join(parts)


def layout_name(width: int, height: int) -> str:
    """The aspect ratio in lowest terms ("16:9"), or to two decimals when the terms are big."""
    a, b = width, height
    while b:
        a, b = b, a % b
    w, h = width // a, height // a
    return f"{w}:{h}" if max(w, h) <= 32 else f"{width / height:.2f}:1"


def placed_box(layout: Layout, box: Box) -> Box:
    """A box of the host's canvas (the mouth, the eyes) on the layout's canvas, rounded out."""
    x, y, w, h = box
    s, (ax, ay) = layout.host_scale, layout.host_at
    left, top = math.floor(ax + x * s), math.floor(ay + y * s)
    return left, top, math.ceil(ax + (x + w) * s) - left, math.ceil(ay + (y + h) * s) - top


def single_layout(background: np.ndarray, caption: Box) -> Layout:
    """The one layout of a pack that declares none: its own canvas as it is."""
    height, width = background.shape[:2]
    return Layout(layout_name(width, height), (width, height), background, caption)


def photo_canvases(canvas: tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
    """A photo pack's canvas, plus portrait (9:16) and square cuts of the same height."""
    width, height = canvas
    sizes = [(layout_name(width, height), canvas)]
    for name, size in (("9:16", (_even(height * 9 / 16), height)), ("1:1", (height, height))):
        if size[0] < width and not any(fits(s, *size) for _, s in sizes):
            sizes.append((name, size))
    return sizes


def photo_layouts(photo: np.ndarray, caption: Box, mouth: Box, eyes: Box) -> tuple[Layout, ...]:
    """Layouts for a framed photo: as framed, and cut narrower around the face.

    A square cut keeps the photo's scale and centres the face. In portrait the platform's app
    covers the top and the bottom third, so the photo is scaled until the face (eyes to chin)
    fits between the header and a caption above the comment list; what the photo no longer
    covers is the photo again, blurred and darkened, mostly under the app's comments."""
    height, width = photo.shape[:2]
    mx, my, mw, mh = mouth
    face_x = mx + mw / 2
    layouts = [single_layout(photo, caption)]
    for name, size in photo_canvases((width, height))[1:]:
        cw, ch = size
        if ch > cw:
            scale = min(1.0, 0.37 * ch / max(1, my + mh - eyes[1]))
            top = 0.16 * ch - eyes[1] * scale
            backdrop = _blurred_cover(photo, size)
            mouth_bottom = top + (my + mh) * scale
            box = (
                _even(0.06 * cw),
                _even(mouth_bottom + 0.02 * ch),
                _even(0.76 * cw),
                _even(0.09 * ch),
            )
        else:
            scale, top = 1.0, 0.0
            x, y, w, h = caption
            box = (_even(0.06 * cw), y, _even(0.88 * cw), h)
        left = float(min(0, max(cw - width * scale, round(cw / 2 - face_x * scale))))
        if ch <= cw:
            backdrop = photo[:, -round(left) :][:, :cw]
        layouts.append(
            Layout(
                name,
                size,
                np.ascontiguousarray(backdrop),
                box,
                host_scale=scale,
                host_at=(left, top),
            )
        )
    return tuple(layouts)


def _blurred_cover(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    cw, ch = size
    height, width = photo.shape[:2]
    scale = max(cw / width, ch / height)
    resized = cv2.resize(photo, (round(width * scale) + 1, round(height * scale) + 1))
    y0 = (resized.shape[0] - ch) // 2
    x0 = (resized.shape[1] - cw) // 2
    cut = resized[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32)
    blurred = cv2.GaussianBlur(cut, (0, 0), max(4.0, ch / 40))
    return np.clip(blurred * 0.55, 0, 255).astype(np.uint8)


def _read_layout(
    directory: Path, fields: ManifestFields, name: str, host_canvas: tuple[int, int]
) -> Layout:
    key = f"layouts.{name}"
    size = _size(fields, f"{key}.size")
    background = read_png(
        directory, fields, f"{key}.background", fields.text(f"{key}.background"), size, "RGBA"
    )
    if np.any(background[..., 3] != 255):
        raise fields.error(f"{key}.background", "must be fully opaque")
    scale = fields.number(f"{key}.host.scale", 1.0)
    if scale <= 0:
        raise fields.error(f"{key}.host.scale", f"expected a positive number, got {scale}")
    at = (0.0, 0.0)
    if fields.raw(f"{key}.host.at", None) is not None:
        ax, ay = fields.numbers(f"{key}.host.at", 2, integer=False)
        at = (float(ax), float(ay))
    left, top = at
    right, bottom = left + host_canvas[0] * scale, top + host_canvas[1] * scale
    if right <= 0 or bottom <= 0 or left >= size[0] or top >= size[1]:
        raise fields.error(f"{key}.host", "places the host outside the layout's canvas")
    title = None
    if fields.raw(f"{key}.title", None) is not None:
        title = _placed(directory, fields, f"{key}.title", size)
    decorations = fields.raw(f"{key}.decorations", [])
    if not isinstance(decorations, list):
        raise fields.error(f"{key}.decorations", f"expected a list, got {kind_of(decorations)}")
    placed = tuple(
        _placed(directory, fields, f"{key}.decorations.{i}", size) for i in range(len(decorations))
    )
    cards = None
    if fields.raw(f"{key}.cards", None) is not None:
        cards = fields.box(f"{key}.cards", size)
    return Layout(
        name=name,
        size=size,
        background=background[..., :3].copy(),
        caption=fields.box(f"{key}.caption", size),
        host_scale=scale,
        host_at=at,
        title=title,
        decorations=placed,
        cards=cards,
    )


def _placed(directory: Path, fields: ManifestFields, key: str, canvas: tuple[int, int]) -> Placed:
    image_name = fields.text(f"{key}.image")
    path = (directory / image_name).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise fields.error(f"{key}.image", f"{image_name!r} points outside the pack directory")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGBA"))
    except FileNotFoundError:
        raise fields.error(f"{key}.image", f"{path}: no such file") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise fields.error(f"{key}.image", f"{path}: cannot read image: {exc}") from exc
    return Placed(pixels, fields.box(f"{key}.box", canvas))


def _size(fields: ManifestFields, key: str) -> tuple[int, int]:
    width, height = fields.numbers(key, 2, integer=True)
    if width < 16 or height < 16:
        raise fields.error(
            key, f"expected a width and height of at least 16, got {[width, height]}"
        )
    return width, height


def _refuse_twins(fields: ManifestFields, layouts: list[Layout]) -> None:
    for i, first in enumerate(layouts):
        for second in layouts[i + 1 :]:
            if fits(first.size, *second.size):
                raise fields.error(
                    f"layouts.{second.name}.size",
                    f"same aspect ratio as layouts.{first.name}: one layout per aspect ratio",
                )


def _even(value: float) -> int:
    return max(2, int(round(value)) // 2 * 2)
