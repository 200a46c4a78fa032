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
