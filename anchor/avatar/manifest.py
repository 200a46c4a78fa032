"""Reading an avatar manifest: typed fields and images, every failure naming file and key.

Both pack readers (sprite.py, photo.py) use these, so an operator gets the same kind of message
whatever kind of pack is wrong: `manifest.yaml: mouth.box: box [..] lies outside the canvas`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from PIL import Image, UnidentifiedImageError

from anchor.avatar.pack import AvatarError, Box


class ManifestFields:
    """Typed access to manifest keys; every failure names the manifest and the dotted key."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data

    def error(self, key: str, problem: str) -> AvatarError:
        return AvatarError(f"{self.path}: {key}: {problem}")

    def raw(self, key: str, default: Any = ...) -> Any:
        node: Any = self._data
        for part in key.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
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

    @overload
    def numbers(self, key: str, count: int, *, integer: Literal[True]) -> tuple[int, ...]: ...
    @overload
    def numbers(self, key: str, count: int, *, integer: Literal[False]) -> tuple[float, ...]: ...
    def numbers(self, key: str, count: int, *, integer: bool) -> tuple[float, ...]:
        """``count`` numbers (ints only when ``integer``; never bools)."""
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


def read_layer(
    directory: Path, fields: ManifestFields, key: str, size: tuple[int, int], mode: str
) -> np.ndarray:
    return read_png(directory, fields, key, fields.text(key), size, mode)


def read_png(
    directory: Path, fields: ManifestFields, key: str, name: str, size: tuple[int, int], mode: str
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


def boxes_overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def kind_of(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
