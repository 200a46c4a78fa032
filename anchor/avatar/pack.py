"""Avatar packs: a folder with `manifest.yaml` and PNG layers, loaded and checked once.

A pack is authored on a fixed design canvas (e.g. 1280x720); the renderer scales it to the
stream size. Everything an operator can get wrong in a pack (a missing file, a sprite of the
wrong size, a box that leaves the canvas, a typo in a key) is reported here, at start-up, as an
`AvatarError` naming the file and the field, instead of surfacing later as a broken frame.

`load_pack` (loader.py) reads a pack; the `kind` key selects the reader: `sprite` (drawn
layers, sprite.py) or `photo` (a rigged face photo whose mouth is opened by warping,
photo.py). Both produce the same `AvatarPack`: the renderer only needs mouth and eyelid images
at a few levels, however they were made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
class Placed:
    """A still image on a layout's canvas (the title board, a decoration), fitted into `box`.

    The image keeps its proportions: it is scaled to fit the box and centred in it, so a
    layout can resize a board without distorting its lettering."""

    image: np.ndarray  # RGBA uint8
    box: Box


@dataclass(frozen=True, slots=True)
class Layout:
    """How the scene is composed for one aspect ratio, on a canvas of that shape.

    The host (body, mouth, eyes and the desk in front, all drawn on the pack's own canvas) is
    placed on this canvas at `host_at` with `host_scale`; the background, the title board and
    the decorations belong to the layout. `caption` and `cards` are areas of this canvas: the
    sentence on air, and the card (a map, a notice) shown beside an answer. The renderer scales
    the whole canvas to the stream size, so one layout serves every size of its aspect ratio.
    """

    name: str
    size: tuple[int, int]
    background: np.ndarray  # RGB uint8 of `size`
    caption: Box
    host_scale: float = 1.0
    host_at: tuple[float, float] = (0.0, 0.0)
    title: Placed | None = None
    decorations: tuple[Placed, ...] = ()
    cards: Box | None = None

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]


@dataclass(frozen=True, slots=True)
class AvatarPack:
    """A validated avatar: every image decoded, every box inside the canvas.

    `body` holds the character with mouth closed and eyes open; `mouth.frames` run from
    closed to fully open; `eyes.frames` are the half-closed and the closed lids. `foreground`
    (optional) is drawn over the character and never moves, e.g. a desk hiding the lower body.
    `anchor` is the pivot of the idle sway (the base of the neck). `shapes` holds extra lip
    shapes (WIDE, ROUND) drawn in the mouth box with as many levels as `mouth`; a shape the
    pack lacks is drawn with `mouth` (the OPEN shape), and CLOSED is `mouth.frames[0]`.
    `background` is the backdrop on the pack's own canvas (previews of the face draw on it);
    `layouts` say how a frame of each supported aspect ratio is composed (see `Layout`).
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
    motion: Motion
    layouts: tuple[Layout, ...]
    shapes: Mapping[MouthShape, SpriteSet] = field(default_factory=dict)
