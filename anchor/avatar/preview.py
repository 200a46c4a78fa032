"""See an avatar pack before it goes on air (`anchor avatar preview`).

A `.png` is a contact sheet of the face in every state the show uses (mouth closed, half and
fully open, the wide and round lip shapes, a blink), each labelled, cut from the pack's own
canvas. A `.mp4`/`.ts`/`.mkv` is a short silent clip drawn by the real renderer and encoder:
the mouth cycles through its shapes and the host blinks, so motion and seams can be judged.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from anchor.avatar.captions import CaptionFontError, find_cjk_font
from anchor.avatar.motion import Blinks, Eyelid
from anchor.avatar.pack import AvatarError, AvatarPack, SpriteSet
from anchor.messages import MouthShape

if TYPE_CHECKING:
    from PIL import ImageFont

SHEET_COLUMNS = 3
CLIP_SECONDS = 4.0
CLIP_FPS = 25
_LABEL_HEIGHT = 30
_CLIP_SHAPES = (MouthShape.OPEN, MouthShape.WIDE, MouthShape.ROUND)


def write_preview(pack: AvatarPack, out: Path) -> Path:
    """Write a contact sheet (.png) or a clip (.mp4, .ts, .mkv) of `pack` to `out`."""
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        Image.fromarray(contact_sheet(pack)).save(out)
    elif suffix in {".mp4", ".ts", ".mkv"}:
        write_clip(pack, out)
    else:
        raise AvatarError(f"{out}: write a .png contact sheet or a .mp4/.ts/.mkv clip")
    return out


def sheet_cells(pack: AvatarPack) -> list[tuple[str, np.ndarray]]:
    """(label, RGB canvas) for each state shown on the contact sheet."""
    top = len(pack.mouth.frames) - 1
    states = [
        ("closed", pack.mouth, 0, False),
        ("half open", pack.mouth, round(top / 2), False),
        ("open", pack.mouth, top, False),
        ("wide", pack.shapes.get(MouthShape.WIDE, pack.mouth), top, False),
        ("round", pack.shapes.get(MouthShape.ROUND, pack.mouth), top, False),
        ("blink", pack.mouth, 0, True),
    ]
    cells = []
    for label, sprites, level, blink in states:
        canvas = _over(pack.background, pack.body)
        canvas = _paste(canvas, sprites, level)
        if blink:
            canvas = _paste(canvas, pack.eyes, len(pack.eyes.frames) - 1)
        if pack.foreground is not None:
            canvas = _over(canvas, pack.foreground)
        cells.append((label, canvas))
    return cells


def contact_sheet(pack: AvatarPack) -> np.ndarray:
    """The labelled states side by side, cropped to the face (RGB uint8)."""
    left, top, right, bottom = _face_crop(pack)
    cells = sheet_cells(pack)
    cw, ch = right - left, bottom - top
    rows = math.ceil(len(cells) / SHEET_COLUMNS)
    sheet = Image.new("RGB", (cw * SHEET_COLUMNS, (ch + _LABEL_HEIGHT) * rows), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    font = _label_font()
    for i, (label, canvas) in enumerate(cells):
        x, y = (i % SHEET_COLUMNS) * cw, (i // SHEET_COLUMNS) * (ch + _LABEL_HEIGHT)
        sheet.paste(Image.fromarray(canvas[top:bottom, left:right]), (x, y + _LABEL_HEIGHT))
        draw.text((x + 8, y + 4), label, fill=(235, 235, 235), font=font)
    return np.asarray(sheet)


def write_clip(
    pack: AvatarPack, out: Path, *, width: int = 1280, height: int = 720, fps: int = CLIP_FPS
) -> int:
    """Encode a silent clip of the mouth cycling and one blink; returns the frame count."""
    from anchor.avatar.renderer import AvatarRenderer
    from anchor.media.clock import MediaClock
    from anchor.media.encoder import EncoderSettings, StreamEncoder
    from anchor.media.output import OutputTarget

    frames = round(CLIP_SECONDS * fps)
    renderer = AvatarRenderer(
        pack, width, height, fps=fps, captions=False, seed=_seed_blinking_within(fps, frames)
    )
    clock = MediaClock(sample_rate=48000, fps=fps)
    encoder = StreamEncoder(
        OutputTarget.parse(str(out)), clock, EncoderSettings(width, height, audio=False)
    )
    encoder.open()
    silence = np.zeros(0, dtype=np.float32)
    try:
        for n in range(frames):
            t = n / fps
            mouth = 0.5 - 0.5 * math.cos(2.0 * math.pi * 1.25 * t)
            shape = _CLIP_SHAPES[int(t / 1.2) % len(_CLIP_SHAPES)]
            encoder.write(n, renderer.render(n, mouth, None, shape), silence)
    finally:
        encoder.close()
    return frames


def _seed_blinking_within(fps: int, frames: int) -> int:
    """A blink seed whose first blink falls in the clip, well clear of its ends."""
    for seed in range(1000):
        blinks = Blinks(fps, seed)
        if any(blinks.eyelid(n) == Eyelid.CLOSED for n in range(fps // 2, frames - fps // 2)):
            return seed
    return 0


def _face_crop(pack: AvatarPack) -> tuple[int, int, int, int]:
    """The mouth and eye boxes with a margin, inside the canvas."""
    boxes = [pack.mouth.box, pack.eyes.box]
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[0] + b[2] for b in boxes)
    bottom = max(b[1] + b[3] for b in boxes)
    margin = max(16, (bottom - top) // 5)
    width, height = pack.size
    return (
        max(0, left - margin),
        max(0, top - margin),
        min(width, right + margin),
        min(height, bottom + margin),
    )


def _paste(canvas: np.ndarray, sprites: SpriteSet, level: int) -> np.ndarray:
    x, y, w, h = sprites.box
    out = canvas.copy()
    out[y : y + h, x : x + w] = _over(canvas[y : y + h, x : x + w], sprites.frames[level])
    return out


def _over(under: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """`layer` (RGBA) over `under` (RGB), both uint8."""
    alpha = layer[..., 3:4].astype(np.float32) / 255.0
    mixed = layer[..., :3] * alpha + under[..., :3] * (1.0 - alpha)
    rounded: np.ndarray = np.rint(mixed)
    return rounded.clip(0, 255).astype(np.uint8)


def _label_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(find_cjk_font()), 18)
    except (CaptionFontError, OSError):  # labels are ASCII: the built-in font will do
        return ImageFont.load_default()
