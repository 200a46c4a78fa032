"""A sheet of every layout of a pack, as the platforms' apps will cover it.

`anchor avatar preview NAME --layouts --out sheet.png` draws each layout with the real renderer
(a sample caption on air), tints the areas each platform's app covers in red, and outlines
where the title board (gold), the caption (cyan) and cards (green) ended up once fitted clear
of them. An operator sees before going on air whether the host, the title and the caption
survive Douyin's comment list or WeChat Channels' buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anchor.avatar.captions import CaptionFontError, find_cjk_font
from anchor.avatar.pack import AvatarError, AvatarPack, Layout
from anchor.media.safearea import PORTRAIT_PRESETS, SafeArea

SAMPLE_CAPTION = "大家好，欢迎来到职工服务直播间。"
CELL_HEIGHT = {"portrait": 640, "landscape": 360, "square": 480}
_LABEL = 34
_GAP = 12
_TITLE = (242, 190, 80)
_CAPTION = (80, 220, 240)
_CARDS = (90, 220, 110)


def write_layout_sheet(pack: AvatarPack, out: Path, presets: Sequence[str] = ()) -> Path:
    """Write the sheet as a .png; `presets` limits it to those platforms."""
    if out.suffix.lower() != ".png":
        raise AvatarError(f"{out}: the layout sheet is a .png")
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(layout_sheet(pack, presets or None)).save(out)
    return out


def presets_for(layout: Layout) -> tuple[str, ...]:
    """The platforms worth showing a layout under: portrait apps for 9:16, else the rest."""
    if layout.aspect < 0.8:
        return PORTRAIT_PRESETS
    if layout.aspect > 1.2:
        return ("none", "bilibili")
    return ("none",)


def layout_sheet(pack: AvatarPack, presets: Sequence[str] | None = None) -> np.ndarray:
    """One row per layout, one cell per platform preset (RGB uint8)."""
    rows = []
    for layout in pack.layouts:
        names = tuple(presets) if presets else presets_for(layout)
        rows.append([_cell(pack, layout, name) for name in names])
    width = max(sum(cell.width for cell in row) + _GAP * (len(row) + 1) for row in rows)
    height = sum(max(cell.height for cell in row) + _GAP for row in rows) + _GAP
    sheet = Image.new("RGB", (width, height), (24, 24, 28))
    y = _GAP
    for row in rows:
        x = _GAP
        for cell in row:
            sheet.paste(cell, (x, y))
            x += cell.width + _GAP
        y += max(cell.height for cell in row) + _GAP
    return np.asarray(sheet)


def _cell(pack: AvatarPack, layout: Layout, preset: str) -> Image.Image:
    from anchor.avatar.renderer import AvatarRenderer, yuv420p_to_rgb

    width, height = _cell_size(layout)
    safe = SafeArea.preset(preset)
    renderer = AvatarRenderer(pack, width, height, fps=30, safe_area=safe, buffers=1)
    frame = renderer.render(0, 0.0, SAMPLE_CAPTION)
    picture = Image.fromarray(yuv420p_to_rgb(frame, width, height)).convert("RGBA")
    mask = safe.mask(width, height)
    red = np.zeros((height, width, 4), dtype=np.uint8)
    red[mask] = (220, 30, 30, 110)
    tint = Image.fromarray(red)
    picture = Image.alpha_composite(picture, tint).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for box, colour in (
        (renderer.title_box, _TITLE),
        (renderer.caption_box, _CAPTION),
        (renderer.card_box, _CARDS),
    ):
        if box is not None:
            x, y, w, h = box
            draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=3)
    cell = Image.new("RGB", (width, height + _LABEL), (24, 24, 28))
    cell.paste(picture, (0, _LABEL))
    ImageDraw.Draw(cell).text(
        (6, 6), f"{layout.name} · {preset} · {width}x{height}", fill=(235, 235, 235), font=_font()
    )
    return cell


def _cell_size(layout: Layout) -> tuple[int, int]:
    kind = "portrait" if layout.aspect < 0.8 else "landscape" if layout.aspect > 1.2 else "square"
    height = CELL_HEIGHT[kind]
    width = round(height * layout.aspect / 2) * 2
    return width, height


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(str(find_cjk_font()), 18)
    except (CaptionFontError, OSError):
        return ImageFont.load_default()
