"""Draw the default avatar pack: a friendly union craftsman hosting from a studio desk.

All artwork is generated here from simple shapes, so the pack carries no third-party art and
can be redrawn (or restyled) by editing this file. Shapes are drawn at SUPERSAMPLE times the
1280x720 design size and shrunk with a Lanczos filter, which gives smooth, anti-aliased edges
from Pillow's hard-edged primitives.

Mouth and eyelid sprites are crops of the same character drawn with a different mouth or lid,
so a sprite matches the body pixel for pixel around its edges and swaps in without a seam.

    python scripts/draw_default_avatar.py [--out avatars/default] [--font PATH]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH, HEIGHT = 1280, 720
SUPERSAMPLE = 3
DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

# Palette: warm studio, union red, workwear blue.
UNION_RED = (200, 30, 36)
UNION_RED_DARK = (150, 18, 28)
UNION_RED_LIGHT = (236, 88, 78)
GOLD = (242, 190, 80)
SKIN = (250, 214, 184)
SKIN_SHADE = (232, 182, 150)
SKIN_LINE = (168, 104, 80)
INK = (70, 44, 36)
HAIR = (62, 40, 32)
JACKET = (46, 88, 150)
JACKET_SHADE = (34, 66, 118)
JACKET_LINE = (24, 44, 82)
SHIRT = (246, 242, 232)
MOUTH_DARK = (120, 36, 44)
LIP_LINE = (150, 60, 58)
TONGUE = (232, 118, 120)
TEETH = (255, 253, 248)

# Character layout in design pixels.
HEAD_X, HEAD_Y = 440, 290  # centre of the face
FACE_RX, FACE_RY = 98, 104
EYE_DX, EYE_Y = 40, 292
MOUTH_Y = 350
MOUTH_LEVELS = 6
NECK_BASE = (HEAD_X, 412)

MOUTH_BOX = (HEAD_X - 36, 334, 72, 44)
EYES_BOX = (HEAD_X - 64, 268, 128, 46)
CAPTION_BOX = (170, 598, 940, 112)


def px(value: float) -> int:
    return round(value * SUPERSAMPLE)


def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    return px(x0), px(y0), px(x1), px(y1)


def points(coords: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    return [(px(x), px(y)) for x, y in coords]


def new_layer() -> Image.Image:
    return Image.new("RGBA", (px(WIDTH), px(HEIGHT)), (0, 0, 0, 0))


def overlay(
    base: Image.Image,
    draw: Callable[[ImageDraw.ImageDraw], None],
    *,
    blur: float = 0.0,
    opacity: float = 1.0,
) -> None:
    """Draw on a fresh layer and blend it over `base`; the way to get soft or translucent shapes."""
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw(ImageDraw.Draw(layer))
    if blur:
        # Blur premultiplied, or transparent black bleeds into the edges as a grey fringe.
        layer = layer.convert("RGBa").filter(ImageFilter.GaussianBlur(px(blur))).convert("RGBA")
    if opacity < 1.0:
        alpha = layer.getchannel("A").point(lambda a: round(a * opacity))
        layer.putalpha(alpha)
    base.alpha_composite(layer)


def vertical_gradient(size: tuple[int, int], top: tuple, bottom: tuple) -> Image.Image:
    column = Image.new("RGB", (1, 256))
    for i in range(256):
        t = i / 255
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        column.putpixel((0, i), colour)
    return column.resize(size, Image.BICUBIC)


def curve(x0: float, x1: float, y: Callable[[float], float], steps: int = 24) -> list:
    """Sample a function along x: a polyline for lips, lids and brows."""
    return [(x0 + (x1 - x0) * i / steps, y(x0 + (x1 - x0) * i / steps)) for i in range(steps + 1)]


# --------------------------------------------------------------------------- background


@dataclass(frozen=True)
class LayoutSpec:
    """One layout of the scene: its canvas, where the host stands on it, and its areas."""

    name: str
    size: tuple[int, int]
    host_scale: float
    host_at: tuple[float, float]
    title: tuple[int, int, int, int]
    window: tuple[int, int, int, int]
    caption: tuple[int, int, int, int]
    cards: tuple[int, int, int, int]

    @property
    def file(self) -> str:
        return f"wall_{self.name.replace(':', 'x')}.png"

    def host(self, x: float, y: float) -> tuple[float, float]:
        """A point of the host's canvas on this layout's canvas."""
        return self.host_at[0] + x * self.host_scale, self.host_at[1] + y * self.host_scale


# Portrait keeps the title, the host's face and the caption between the app's header (top
# 13 %) and its comment list (bottom 38 %), and left of its button column (right 15 %).
LAYOUTS = (
    LayoutSpec(
        "16:9",
        (1280, 720),
        1.0,
        (0, 0),
        (670, 38, 580, 170),
        (712, 166, 530, 424),
        CAPTION_BOX,
        (742, 196, 470, 364),
    ),
    LayoutSpec(
        "9:16",
        (720, 1280),
        1.2,
        (-168, 210),
        (70, 168, 580, 150),
        (424, 360, 296, 237),
        (36, 672, 564, 120),
        (48, 330, 560, 330),
    ),
    LayoutSpec(
        "1:1",
        (960, 960),
        1.0,
        (0, 130),
        (190, 30, 580, 170),
        (560, 240, 390, 312),
        (100, 800, 760, 112),
        (520, 240, 400, 360),
    ),
)
WINDOW_MARGIN = 30
WINDOW_SIZE = (470, 364)
TITLE_SIZE = (580, 170)


def draw_wall(spec: LayoutSpec) -> Image.Image:
    """The studio wall of one layout, lit from behind the host, with the desk's front below."""
    width, height = spec.size
    image = vertical_gradient((px(width), px(height)), (255, 244, 226), (246, 200, 160)).convert(
        "RGBA"
    )
    s = spec.host_scale
    x0, y0 = spec.host(140, 40)
    x1, y1 = spec.host(760, 620)
    overlay(image, lambda d: d.ellipse(box(x0, y0, x1, y1), fill=(255, 250, 238, 200)), blur=90 * s)
    _bokeh(image, spec.size)
    _, wall_foot = spec.host(0, 470)
    overlay(
        image, lambda d: d.rectangle(box(0, wall_foot, width, height), fill=(226, 160, 112, 90))
    )
    overlay(
        image,
        lambda d: d.rectangle(
            box(0, wall_foot - 4, width, wall_foot + 2), fill=(196, 130, 92, 150)
        ),
    )
    sx0, sy0 = spec.host(HEAD_X - 170, 140)
    sx1, sy1 = spec.host(HEAD_X + 250, 640)
    overlay(
        image, lambda d: d.ellipse(box(sx0, sy0, sx1, sy1), fill=(150, 90, 60, 70)), blur=40 * s
    )
    _, desk_end = spec.host(0, HEIGHT)
    if desk_end < height:
        # The host's canvas ends above the frame's foot: the desk front carries on to it.
        front = vertical_gradient(
            (px(width), px(height - desk_end) + 1), (96, 56, 38), (70, 40, 28)
        )
        image.paste(front, (0, px(desk_end) - 1))
    return image.convert("RGB")


def _bokeh(image: Image.Image, size: tuple[int, int]) -> None:
    width, height = size
    unit = min(width, height) / 720
    spots = [
        (0.07, 0.15, 54),
        (0.16, 0.07, 30),
        (0.5, 0.08, 38),
        (0.06, 0.53, 36),
        (0.98, 0.83, 40),
    ]

    def draw(d: ImageDraw.ImageDraw) -> None:
        for fx, fy, r in spots:
            x, y, radius = fx * width, fy * height, r * unit
            d.ellipse(
                box(x - radius, y - radius, x + radius, y + radius), fill=(255, 252, 240, 110)
            )

    overlay(image, draw, blur=6)


def draw_window() -> Image.Image:
    """A window onto a soft Guangzhou skyline, with the Canton Tower, on its own layer."""
    m = WINDOW_MARGIN
    image = Image.new(
        "RGBA", (px(WINDOW_SIZE[0] + 2 * m), px(WINDOW_SIZE[1] + 2 * m)), (0, 0, 0, 0)
    )
    _window(image, m, m)
    return image


def draw_title(font_path: str) -> Image.Image:
    """The channel's title board, on its own layer so each layout can place it."""
    image = Image.new("RGBA", (px(TITLE_SIZE[0]), px(TITLE_SIZE[1])), (0, 0, 0, 0))
    _banner(image, font_path, 20, 12)
    return image


def _window(image: Image.Image, x0: float, y0: float) -> None:
    x1, y1 = x0 + WINDOW_SIZE[0], y0 + WINDOW_SIZE[1]
    sky = vertical_gradient((px(x1 - x0), px(y1 - y0)), (196, 222, 240), (252, 222, 196))
    view = Image.new("RGBA", image.size, (0, 0, 0, 0))
    view.paste(sky, (px(x0), px(y0)))
    d = ImageDraw.Draw(view)
    far = (176, 194, 214)
    near = (140, 164, 194)
    for dx, bw, bh in [
        (8, 40, 120),
        (54, 30, 170),
        (90, 46, 110),
        (268, 44, 150),
        (318, 30, 200),
        (354, 52, 130),
        (408, 40, 170),
    ]:
        bx = x0 + dx
        d.rectangle(box(bx, y1 - 60 - bh, bx + bw, y1), fill=far)
    _canton_tower(d, x0 + 188, y1 - 60, 250)
    for dx, bw, bh in [(2, 56, 70), (138, 40, 90), (234, 60, 60), (378, 70, 90)]:
        bx = x0 + dx
        d.rectangle(box(bx, y1 - 60 - bh, bx + bw, y1), fill=near)
        for wy in range(int(y1 - 60 - bh + 12), int(y1 - 60), 16):
            for wx in range(int(bx + 8), int(bx + bw - 6), 14):
                d.rectangle(box(wx, wy, wx + 6, wy + 7), fill=(226, 232, 240))
    d.rectangle(box(x0, y1 - 64, x1, y1), fill=(150, 186, 206))
    d.line(points([(x0 + 30, y1 - 44), (x0 + 130, y1 - 44)]), fill=(214, 232, 240), width=px(3))
    d.line(points([(x0 + 250, y1 - 30), (x0 + 400, y1 - 30)]), fill=(214, 232, 240), width=px(3))
    mask = Image.new("L", view.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(box(x0, y0, x1, y1), radius=px(18), fill=255)
    clipped = Image.new("RGBA", image.size, (0, 0, 0, 0))
    clipped.paste(view, (0, 0), mask)
    overlay(
        image,
        lambda d: d.rounded_rectangle(
            box(x0 + 6, y0 + 10, x1 + 10, y1 + 14), radius=px(22), fill=(120, 70, 40, 90)
        ),
        blur=10,
    )
    image.alpha_composite(clipped)
    frame = ImageDraw.Draw(image)
    frame.rounded_rectangle(
        box(x0, y0, x1, y1), radius=px(18), outline=(196, 150, 112), width=px(10)
    )
    mid = (x0 + x1) / 2
    frame.line(points([(mid, y0 + 4), (mid, y1 - 4)]), fill=(196, 150, 112), width=px(7))
    frame.line(points([(x0 + 4, y0 + 164), (x1 - 4, y0 + 164)]), fill=(196, 150, 112), width=px(7))
    overlay(
        image,
        lambda d: d.polygon(
            points(
                [(x0 + 20, y0 + 12), (x0 + 120, y0 + 12), (x0 + 40, y1 - 80), (x0 + 12, y1 - 80)]
            ),
            fill=(255, 255, 255, 60),
        ),
        blur=4,
    )


def _canton_tower(d: ImageDraw.ImageDraw, cx: float, base: float, height: float) -> None:
    """The hyperboloid tower: wide foot, narrow twisted waist, flared top and a mast."""
    body = height * 0.76
    waist = 0.62  # height of the narrowest point, as a share of the body
    rows = []
    for i in range(41):
        t = i / 40
        if t <= waist:
            half = 9 + 20 * ((t - waist) / waist) ** 2
        else:
            half = 9 + 5 * ((t - waist) / (1 - waist)) ** 2
        rows.append((t, half))
    left = [(cx - h, base - t * body) for t, h in rows]
    right = [(cx + h, base - t * body) for t, h in reversed(rows)]
    d.polygon(points(left + right), fill=(118, 140, 178))
    for k in range(0, 40, 4):
        t0, h0 = rows[k]
        t1, h1 = rows[k + 4]
        d.line(
            points([(cx - h0, base - t0 * body), (cx + h1, base - t1 * body)]),
            fill=(150, 170, 204),
            width=px(1.5),
        )
    top = base - body
    d.polygon(
        points(
            [
                (cx - 4, top),
                (cx + 4, top),
                (cx + 1.5, top - height * 0.24),
                (cx - 1.5, top - height * 0.24),
            ]
        ),
        fill=(118, 140, 178),
    )


def _banner(image: Image.Image, font_path: str, x0: float, y0: float) -> None:
    x1, y1 = x0 + 540, y0 + 96
    overlay(
        image,
        lambda d: d.rounded_rectangle(
            box(x0 + 4, y0 + 8, x1 + 4, y1 + 10), radius=px(20), fill=(110, 30, 20, 110)
        ),
        blur=8,
    )
    d = ImageDraw.Draw(image)
    d.rounded_rectangle(box(x0, y0, x1, y1), radius=px(20), fill=UNION_RED)
    overlay(
        image,
        lambda d: d.rounded_rectangle(
            box(x0, y0, x1, (y0 + y1) / 2), radius=px(20), fill=(255, 255, 255, 34)
        ),
    )
    d.rounded_rectangle(
        box(x0 + 8, y0 + 8, x1 - 8, y1 - 8), radius=px(14), outline=GOLD, width=px(2.5)
    )
    _star(d, x0 + 52, (y0 + y1) / 2, 22, GOLD)
    font = ImageFont.truetype(font_path, px(50))
    text = "职工服务直播间"
    left, top, right, bottom = d.textbbox((0, 0), text, font=font, stroke_width=px(0.8))
    tx = px((x0 + 90 + x1 - 24) / 2) - (right - left) // 2 - left
    ty = px((y0 + y1) / 2) - (bottom - top) // 2 - top
    d.text(
        (tx + px(2), ty + px(2)),
        text,
        font=font,
        fill=UNION_RED_DARK,
        stroke_width=px(0.8),
        stroke_fill=UNION_RED_DARK,
    )
    d.text(
        (tx, ty),
        text,
        font=font,
        fill=(255, 250, 240),
        stroke_width=px(0.8),
        stroke_fill=(255, 250, 240),
    )
    small = ImageFont.truetype(font_path, px(24))
    sub = "工会服务 · 24 小时在线"
    left, top, right, _ = d.textbbox((0, 0), sub, font=small)
    d.text(
        (px((x0 + x1) / 2) - (right - left) // 2 - left, px(y0 + 108) - top),
        sub,
        font=small,
        fill=(150, 46, 32),
    )


def _star(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: tuple) -> None:
    corners = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.42
        angle = -math.pi / 2 + i * math.pi / 5
        corners.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    d.polygon(points(corners), fill=fill)


def _gear(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: tuple, hole: tuple) -> None:
    """A workshop gear: eight square teeth around a hub, the craftsman's emblem."""
    rim = []
    for k in range(32):
        radius = r if (k // 2) % 2 == 0 else r * 0.76
        angle = (k + 0.5) * math.pi / 16
        rim.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    d.polygon(points(rim), fill=fill)
    d.ellipse(box(cx - r * 0.34, cy - r * 0.34, cx + r * 0.34, cy + r * 0.34), fill=hole)


# --------------------------------------------------------------------------- character


def draw_character(
    mouth_level: int = 0, eyelid: str = "open", mouth_shape: str = "open"
) -> Image.Image:
    """The host on a transparent layer: mouth 0..5 (closed..open) in a lip shape
    (open, wide, round), eyelid open/half/closed."""
    image = new_layer()
    _torso(image)
    d = ImageDraw.Draw(image)
    hx, hy = HEAD_X, HEAD_Y
    d.rounded_rectangle(
        box(hx - 34, hy + 60, hx + 34, NECK_BASE[1] + 14),
        radius=px(16),
        fill=SKIN_SHADE,
        outline=SKIN_LINE,
        width=px(2),
    )
    for side in (-1, 1):
        ex = hx + side * (FACE_RX - 6)
        d.ellipse(
            box(ex - 18, hy - 16, ex + 18, hy + 34), fill=SKIN, outline=SKIN_LINE, width=px(2)
        )
        d.arc(
            box(ex - 9, hy - 4, ex + 9, hy + 22),
            start=90 - side * 80,
            end=270 - side * 80,
            fill=SKIN_LINE,
            width=px(2),
        )
    d.ellipse(
        box(hx - FACE_RX, hy - FACE_RY, hx + FACE_RX, hy + FACE_RY),
        fill=SKIN,
        outline=SKIN_LINE,
        width=px(2.2),
    )
    _hair(d)
    _cheeks(image)
    _brows(d)
    _eyes(image, eyelid)
    _nose(d)
    MOUTH_SHAPES[mouth_shape](image, mouth_level)
    _helmet(image)
    return image


def _torso(image: Image.Image) -> None:
    d = ImageDraw.Draw(image)
    hx, ny = NECK_BASE
    outline = [
        (hx - 60, ny - 6),
        (hx - 150, ny + 14),
        (hx - 200, ny + 46),
        (hx - 226, ny + 110),
        (hx - 236, HEIGHT + 10),
        (hx + 236, HEIGHT + 10),
        (hx + 226, ny + 110),
        (hx + 200, ny + 46),
        (hx + 150, ny + 14),
        (hx + 60, ny - 6),
    ]
    d.polygon(points(outline), fill=JACKET, outline=JACKET_LINE, width=px(2.5))
    overlay(
        image,
        lambda d: d.polygon(
            points(
                [(hx + 120, ny + 20), (hx + 236, ny + 110), (hx + 236, HEIGHT), (hx + 150, HEIGHT)]
            ),
            fill=(*JACKET_SHADE, 150),
        ),
        blur=12,
    )
    overlay(
        image,
        lambda d: d.polygon(
            points(
                [(hx - 120, ny + 20), (hx - 236, ny + 110), (hx - 236, HEIGHT), (hx - 190, HEIGHT)]
            ),
            fill=(*JACKET_SHADE, 110),
        ),
        blur=12,
    )
    # Re-cut the silhouette so the soft shading stays inside the jacket.
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon(points(outline), fill=255)
    alpha = image.getchannel("A")
    image.putalpha(Image.composite(alpha, Image.new("L", image.size, 0), mask))
    d = ImageDraw.Draw(image)
    d.polygon(points(outline), outline=JACKET_LINE, width=px(2.5))
    # Shirt in the open collar, then the jacket collar folded over it.
    d.polygon(
        points([(hx - 44, ny - 4), (hx + 44, ny - 4), (hx, ny + 70)]),
        fill=SHIRT,
        outline=(200, 196, 186),
        width=px(2),
    )
    for side in (-1, 1):
        collar = [
            (hx + side * 40, ny - 14),
            (hx + side * 92, ny + 4),
            (hx + side * 70, ny + 58),
            (hx + side * 4, ny + 84),
        ]
        d.polygon(points(collar), fill=JACKET_SHADE, outline=JACKET_LINE, width=px(2.5))
    d.line(points([(hx, ny + 84), (hx, HEIGHT)]), fill=JACKET_LINE, width=px(3))
    d.line(points([(hx + 5, ny + 90), (hx + 5, HEIGHT)]), fill=(180, 190, 210), width=px(1.5))
    # Chest pocket and the union badge on it.
    bx, by = hx + 118, ny + 96
    d.rounded_rectangle(
        box(bx - 38, by - 6, bx + 38, by + 66),
        radius=px(6),
        fill=JACKET,
        outline=JACKET_LINE,
        width=px(2),
    )
    d.rounded_rectangle(
        box(bx + 14, by - 14, bx + 22, by + 24),
        radius=px(3),
        fill=GOLD,
        outline=(170, 120, 40),
        width=px(1),
    )
    d.line(points([(bx - 38, by + 12), (bx + 38, by + 12)]), fill=JACKET_LINE, width=px(2))
    d.ellipse(
        box(bx - 17, by - 32, bx + 17, by + 2), fill=GOLD, outline=(180, 120, 40), width=px(1.5)
    )
    d.ellipse(box(bx - 13, by - 28, bx + 13, by - 2), fill=UNION_RED)
    _gear(d, bx, by - 15, 9, GOLD, UNION_RED)
    # Shoulder seams of workwear.
    for side in (-1, 1):
        d.line(
            points(
                curve(
                    hx + side * 96,
                    hx + side * 208,
                    lambda x, s=side: ny + 30 + 0.0022 * (x - hx - s * 96) ** 2,
                )
            ),
            fill=JACKET_LINE,
            width=px(2),
        )


def _hair(d: ImageDraw.ImageDraw) -> None:
    """Short dark hair showing under the helmet at the temples, in front of the ears."""
    hx, hy = HEAD_X, HEAD_Y
    for side in (-1, 1):
        outer = hx + side * (FACE_RX + 3)
        inner = hx + side * (FACE_RX - 26)
        d.polygon(
            points(
                [
                    (outer, hy - 72),
                    (inner, hy - 72),
                    (inner + side * 10, hy - 50),
                    (outer - side * 4, hy - 10),
                    (outer + side * 1, hy - 40),
                ]
            ),
            fill=HAIR,
        )


def _cheeks(image: Image.Image) -> None:
    hx, hy = HEAD_X, HEAD_Y

    def draw(d: ImageDraw.ImageDraw) -> None:
        for side in (-1, 1):
            cx = hx + side * 58
            d.ellipse(box(cx - 22, hy + 30, cx + 22, hy + 52), fill=(246, 140, 130, 150))

    overlay(image, draw, blur=4)


def _brows(d: ImageDraw.ImageDraw) -> None:
    for side in (-1, 1):
        cx = HEAD_X + side * EYE_DX
        pts = curve(
            cx - 20,
            cx + 20,
            lambda x, c=cx, s=side: EYE_Y - 36 + 0.012 * (x - c) ** 2 + s * 0.1 * (x - c),
        )
        d.line(points(pts), fill=HAIR, width=px(6), joint="curve")
        for end in (pts[0], pts[-1]):
            d.ellipse(box(end[0] - 3, end[1] - 3, end[0] + 3, end[1] + 3), fill=HAIR)


def _eyes(image: Image.Image, eyelid: str) -> None:
    d = ImageDraw.Draw(image)
    for side in (-1, 1):
        cx, cy = HEAD_X + side * EYE_DX, EYE_Y
        if eyelid == "closed":
            pts = curve(cx - 15, cx + 15, lambda x, c=cx, y=cy: y + 5 - 0.018 * (x - c) ** 2)
            d.line(points(pts), fill=INK, width=px(4.5), joint="curve")
            continue
        d.ellipse(box(cx - 13, cy - 17, cx + 13, cy + 17), fill=INK)
        d.ellipse(box(cx - 8, cy - 4, cx + 8, cy + 13), fill=(110, 70, 52))
        d.ellipse(box(cx + 1, cy - 12, cx + 9, cy - 4), fill=(255, 255, 255))
        d.ellipse(box(cx - 8, cy + 5, cx - 4, cy + 9), fill=(255, 255, 255))
        if eyelid == "half":
            d.chord(box(cx - 16, cy - 22, cx + 16, cy + 10), start=180, end=360, fill=SKIN)
            d.rectangle(box(cx - 16, cy - 22, cx + 16, cy - 5), fill=SKIN)
            pts = curve(cx - 15, cx + 15, lambda x, c=cx, y=cy: y - 2 + 0.008 * (x - c) ** 2)
            d.line(points(pts), fill=INK, width=px(4), joint="curve")


def _nose(d: ImageDraw.ImageDraw) -> None:
    hx, hy = HEAD_X, HEAD_Y
    d.arc(box(hx - 10, hy + 14, hx + 10, hy + 34), start=20, end=160, fill=SKIN_LINE, width=px(3))


def _mouth(image: Image.Image, level: int) -> None:
    """Closed smile at level 0; above it a rounder, darker opening with teeth and tongue."""
    d = ImageDraw.Draw(image)
    cx, cy = HEAD_X, MOUTH_Y
    if level == 0:
        pts = curve(cx - 24, cx + 24, lambda x: cy + 1 - 0.008 * (x - cx) ** 2)
        d.line(points(pts), fill=LIP_LINE, width=px(4), joint="curve")
        for end in (pts[0], pts[-1]):
            d.ellipse(box(end[0] - 2, end[1] - 2, end[0] + 2, end[1] + 2), fill=LIP_LINE)
        return
    opening = level / (MOUTH_LEVELS - 1)
    half_w = 24 - 5 * opening
    depth = 6 + 20 * opening
    top = cy - 4

    def upper(x: float) -> float:
        u = (x - cx) / half_w
        return top - 3 * (u * u) + 2 * (1 - u * u) * opening

    def lower(x: float) -> float:
        u = (x - cx) / half_w
        return top - 3 * (u * u) + depth * max(0.0, 1 - u * u) ** 0.8

    outline = curve(cx - half_w, cx + half_w, upper) + curve(cx + half_w, cx - half_w, lower)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon(points(outline), fill=255)
    inside = new_layer()
    di = ImageDraw.Draw(inside)
    di.polygon(points(outline), fill=MOUTH_DARK)
    di.rectangle(box(cx - half_w, top - 10, cx + half_w, top + 2 + 4 * opening), fill=TEETH)
    di.ellipse(
        box(cx - half_w * 0.7, top + depth * 0.55, cx + half_w * 0.7, top + depth * 1.3),
        fill=TONGUE,
    )
    clipped = new_layer()
    clipped.paste(inside, (0, 0), mask)
    image.alpha_composite(clipped)
    d.line(points(outline + outline[:1]), fill=LIP_LINE, width=px(3), joint="curve")


def _wide_mouth(image: Image.Image, level: int) -> None:
    """Lips spread as for "i", "s", "e": a broad, shallow opening showing both rows of teeth.

    Its first level is already parted (the closed mouth is shared by all shapes)."""
    d = ImageDraw.Draw(image)
    cx, cy = HEAD_X, MOUTH_Y
    opening = (level + 1) / MOUTH_LEVELS
    half_w = 27 + 4 * opening
    depth = 3 + 12 * opening
    top = cy - 3 - 2 * opening

    def upper(x: float) -> float:
        u = (x - cx) / half_w
        return top - 2.5 * (u * u)

    def lower(x: float) -> float:
        u = (x - cx) / half_w
        return top - 2.5 * (u * u) + depth * max(0.0, 1 - u * u) ** 0.7

    outline = curve(cx - half_w, cx + half_w, upper) + curve(cx + half_w, cx - half_w, lower)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon(points(outline), fill=255)
    inside = new_layer()
    di = ImageDraw.Draw(inside)
    di.polygon(points(outline), fill=MOUTH_DARK)
    di.rectangle(box(cx - half_w, top - 8, cx + half_w, top + 1 + 3 * opening), fill=TEETH)
    di.rectangle(box(cx - half_w, top + depth * 0.75, cx + half_w, top + depth + 6), fill=TEETH)
    clipped = new_layer()
    clipped.paste(inside, (0, 0), mask)
    image.alpha_composite(clipped)
    d.line(points(outline + outline[:1]), fill=LIP_LINE, width=px(3), joint="curve")
    d.line(
        points(curve(cx - half_w * 0.9, cx + half_w * 0.9, lambda x: top + 1 + 3 * opening)),
        fill=(225, 222, 214),
        width=px(1),
    )


def _round_mouth(image: Image.Image, level: int) -> None:
    """Lips pursed as for "u", "o", "w": a small rounded opening ringed by pushed-out lips."""
    d = ImageDraw.Draw(image)
    cx = HEAD_X
    opening = (level + 1) / MOUTH_LEVELS
    cy = MOUTH_Y + 2 + 4 * opening
    rx, ry = 9 + 3 * opening, 4 + 10 * opening
    lip = 5.5
    d.ellipse(
        box(cx - rx - lip, cy - ry - lip, cx + rx + lip, cy + ry + lip),
        fill=(226, 128, 118),
        outline=LIP_LINE,
        width=px(2.5),
    )
    d.ellipse(box(cx - rx, cy - ry, cx + rx, cy + ry), fill=MOUTH_DARK)
    d.chord(
        box(cx - rx * 0.7, cy + ry * 0.1, cx + rx * 0.7, cy + ry * 1.0),
        start=0,
        end=180,
        fill=TONGUE,
    )
    if opening > 0.5:
        d.chord(box(cx - rx * 0.8, cy - ry, cx + rx * 0.8, cy - ry * 0.4), 180, 360, fill=TEETH)
    d.ellipse(box(cx - rx, cy - ry, cx + rx, cy + ry), outline=LIP_LINE, width=px(2))
    d.arc(
        box(cx - rx - lip + 3, cy - ry - lip + 1, cx + rx + lip - 3, cy - ry + 2),
        start=200,
        end=250,
        fill=(244, 170, 160),
        width=px(1.5),
    )


MOUTH_SHAPES: dict[str, Callable[[Image.Image, int], None]] = {
    "open": _mouth,
    "wide": _wide_mouth,
    "round": _round_mouth,
}


def _helmet(image: Image.Image) -> None:
    """Union-red safety helmet: dome, centre ridge, brim, and a small gold star."""
    hx, hy = HEAD_X, HEAD_Y
    overlay(
        image,
        lambda d: d.ellipse(box(hx - 100, hy - 80, hx + 100, hy - 44), fill=(170, 96, 70, 110)),
        blur=5,
    )
    d = ImageDraw.Draw(image)
    d.chord(
        box(hx - 116, hy - 184, hx + 116, hy + 36),
        start=180,
        end=360,
        fill=UNION_RED,
        outline=UNION_RED_DARK,
        width=px(2.5),
    )
    overlay(
        image,
        lambda d: d.chord(
            box(hx - 100, hy - 172, hx + 10, hy - 20), start=200, end=270, fill=(255, 255, 255, 64)
        ),
        blur=3,
    )
    d = ImageDraw.Draw(image)
    d.rounded_rectangle(
        box(hx - 15, hy - 181, hx + 15, hy - 80),
        radius=px(10),
        fill=UNION_RED_LIGHT,
        outline=UNION_RED_DARK,
        width=px(2),
    )
    d.rounded_rectangle(
        box(hx - 132, hy - 90, hx + 132, hy - 64),
        radius=px(13),
        fill=UNION_RED,
        outline=UNION_RED_DARK,
        width=px(2.5),
    )
    d.line(points([(hx - 118, hy - 84), (hx + 118, hy - 84)]), fill=(234, 86, 80), width=px(2))
    d.ellipse(
        box(hx - 25, hy - 144, hx + 25, hy - 94),
        fill=(255, 246, 230),
        outline=UNION_RED_DARK,
        width=px(2),
    )
    _gear(d, hx, hy - 119, 17, UNION_RED, (255, 246, 230))


# --------------------------------------------------------------------------- desk


def draw_desk() -> Image.Image:
    image = new_layer()
    top_y, front_y = 556, 590
    d = ImageDraw.Draw(image)
    overlay(
        image,
        lambda d: d.rectangle(box(0, top_y - 10, WIDTH, top_y + 6), fill=(90, 50, 30, 90)),
        blur=6,
    )
    d = ImageDraw.Draw(image)
    d.polygon(
        points([(-10, front_y), (WIDTH + 10, front_y), (WIDTH - 20, top_y), (20, top_y)]),
        fill=(214, 160, 110),
    )
    d.line(points([(20, top_y), (WIDTH - 20, top_y)]), fill=(238, 194, 146), width=px(3))
    front = vertical_gradient((px(WIDTH), px(HEIGHT - front_y)), (150, 92, 60), (96, 56, 38))
    image.paste(front, (0, px(front_y)))
    d.rectangle(box(0, front_y, WIDTH, front_y + 12), fill=UNION_RED)
    d.rectangle(box(0, front_y + 12, WIDTH, front_y + 15), fill=GOLD)
    _microphone(image)
    _mug(image, 1040, top_y + 10)
    _plant(image, 1170, top_y + 8)
    return image


def _microphone(image: Image.Image) -> None:
    """A desk microphone left of the host's chest, angled up towards the mouth."""
    d = ImageDraw.Draw(image)
    bx, by = 300, 574
    d.ellipse(box(bx - 40, by - 10, bx + 40, by + 10), fill=(52, 52, 58))
    d.ellipse(box(bx - 36, by - 12, bx + 36, by + 4), fill=(74, 74, 82))
    d.line(points([(bx, by - 6), (bx + 22, 476)]), fill=(60, 60, 66), width=px(7))
    head = Image.new("RGBA", (px(60), px(100)), (0, 0, 0, 0))
    dh = ImageDraw.Draw(head)
    dh.rounded_rectangle(
        box(6, 4, 54, 86), radius=px(23), fill=(64, 64, 72), outline=(36, 36, 40), width=px(2)
    )
    for gy in range(16, 70, 8):
        dh.line(points([(12, gy), (48, gy)]), fill=(96, 96, 106), width=px(2))
    dh.rounded_rectangle(box(4, 66, 56, 76), radius=px(4), fill=UNION_RED)
    dh.ellipse(box(16, 12, 26, 40), fill=(150, 150, 160))
    head = head.rotate(-24, resample=Image.BICUBIC, expand=True)
    image.alpha_composite(head, (px(bx + 22) - head.width // 2, px(430) - head.height // 2))


def _mug(image: Image.Image, x: float, y: float) -> None:
    d = ImageDraw.Draw(image)
    d.ellipse(box(x - 30, y - 6, x + 30, y + 6), fill=(120, 70, 46, 120))
    d.arc(box(x + 16, y - 58, x + 46, y - 22), start=270, end=90, fill=(236, 236, 232), width=px(6))
    d.rounded_rectangle(
        box(x - 26, y - 70, x + 26, y),
        radius=px(8),
        fill=(246, 246, 242),
        outline=(200, 196, 190),
        width=px(2),
    )
    d.rectangle(box(x - 26, y - 50, x + 26, y - 36), fill=UNION_RED)
    d.ellipse(
        box(x - 26, y - 76, x + 26, y - 64),
        fill=(236, 234, 228),
        outline=(200, 196, 190),
        width=px(2),
    )


def _plant(image: Image.Image, x: float, y: float) -> None:
    d = ImageDraw.Draw(image)
    leaf = (92, 160, 96)
    leaf_dark = (62, 126, 74)
    for angle, length, colour in [
        (-60, 70, leaf_dark),
        (-100, 86, leaf),
        (-130, 66, leaf_dark),
        (-80, 96, leaf),
        (-40, 60, leaf),
        (-150, 52, leaf),
    ]:
        a = math.radians(angle)
        tip = (x + length * math.cos(a), y - 50 + length * math.sin(a))
        mid = (x + 0.5 * length * math.cos(a), y - 50 + 0.5 * length * math.sin(a))
        n = (-math.sin(a) * 12, math.cos(a) * 12)
        d.polygon(
            points(
                [(x, y - 50), (mid[0] + n[0], mid[1] + n[1]), tip, (mid[0] - n[0], mid[1] - n[1])]
            ),
            fill=colour,
        )
    d.polygon(
        points([(x - 32, y - 54), (x + 32, y - 54), (x + 24, y), (x - 24, y)]),
        fill=(222, 118, 80),
        outline=(176, 86, 58),
        width=px(2),
    )
    d.rectangle(box(x - 34, y - 60, x + 34, y - 48), fill=(236, 136, 96))


# --------------------------------------------------------------------------- pack


def shrink(image: Image.Image) -> Image.Image:
    return image.resize((WIDTH, HEIGHT), Image.LANCZOS)


def crop(image: Image.Image, region: tuple[int, int, int, int]) -> Image.Image:
    x, y, w, h = region
    return image.crop((x, y, x + w, y + h))


def save(image: Image.Image, path: Path) -> None:
    image.save(path, optimize=True)


def layouts_yaml() -> str:
    lines = []
    for spec in LAYOUTS:
        at = [round(v, 1) for v in spec.host_at]
        lines += [
            f'  "{spec.name}":',
            f"    size: {list(spec.size)}",
            f"    background: {spec.file}",
            f"    host: {{scale: {spec.host_scale}, at: {at}}}",
            f"    title: {{image: title.png, box: {list(spec.title)}}}",
            f"    decorations: [{{image: window.png, box: {list(spec.window)}}}]",
            f"    caption: {list(spec.caption)}",
            f"    cards: {list(spec.cards)}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent.parent / "avatars" / "default"
    )
    parser.add_argument("--font", default=DEFAULT_FONT, help="CJK font for the banner")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    for spec in LAYOUTS:
        wall = draw_wall(spec).resize(spec.size, Image.LANCZOS)
        save(wall, out / spec.file)
    window = draw_window()
    save(
        window.resize((window.width // SUPERSAMPLE, window.height // SUPERSAMPLE), Image.LANCZOS),
        out / "window.png",
    )
    title = draw_title(args.font)
    save(title.resize(TITLE_SIZE, Image.LANCZOS), out / "title.png")
    save(shrink(draw_desk()), out / "desk.png")
    save(shrink(draw_character()), out / "body.png")
    mouth_files = []
    for level in range(MOUTH_LEVELS):
        name = f"mouth_{level}.png"
        save(crop(shrink(draw_character(mouth_level=level)), MOUTH_BOX), out / name)
        mouth_files.append(name)
    shape_files: dict[str, list[str]] = {}
    for shape in ("wide", "round"):
        shape_files[shape] = []
        for level in range(MOUTH_LEVELS):
            name = f"mouth_{shape}_{level}.png"
            character = draw_character(mouth_level=level, mouth_shape=shape)
            save(crop(shrink(character), MOUTH_BOX), out / name)
            shape_files[shape].append(name)
    eye_files = []
    for lid in ("half", "closed"):
        name = f"eyes_{lid}.png"
        save(crop(shrink(draw_character(eyelid=lid)), EYES_BOX), out / name)
        eye_files.append(name)

    manifest = f"""\
# Generated by scripts/draw_default_avatar.py; edit the script, not this file.
kind: sprite
name: default
size: [{WIDTH}, {HEIGHT}]
body: body.png
foreground: desk.png
anchor: {list(NECK_BASE)}
mouth:
  box: {list(MOUTH_BOX)}
  frames: [{", ".join(mouth_files)}]
mouth_shapes:
  wide:
    frames: [{", ".join(shape_files["wide"])}]
  round:
    frames: [{", ".join(shape_files["round"])}]
eyes:
  box: {list(EYES_BOX)}
  frames: [{", ".join(eye_files)}]
motion: {{breath: 2.0, sway: 1.5}}
layouts:
{layouts_yaml()}"""
    (out / "manifest.yaml").write_text(manifest, encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
