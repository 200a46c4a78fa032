"""The map card shown beside the host while a sites answer airs.

Drawn once per answer with Pillow, off the frame loop (it takes tens of milliseconds; the
frame loop only pastes the finished picture): a header naming what was asked, a schematic map
(the city's towns from the gazetteer as grey dots, the operator's own outline when one is
configured, the place asked about as a red star, the sites as numbered pins) and the list of
the sites with whether each is open now. Sample data carries a SAMPLE badge, so a demo is
never mistaken for the union's real sites.

The map is schematic on purpose: no web tiles (nothing may be fetched at run time) and no
boundary data the project could not ship under a clear licence; distances and directions are
true to the coordinates, as the caption says.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anchor.messages import Card
from anchor.sites.model import Place, SiteMatch, SiteReply

Ring = Sequence[tuple[float, float]]  # lon, lat (WGS-84)

PAPER = (250, 247, 240, 255)
INK = (52, 40, 36, 255)
MUTED = (130, 120, 112, 255)
RED = (200, 30, 36, 255)
OPEN = (34, 139, 74, 255)
CLOSED = (150, 140, 132, 255)
WATER = (226, 236, 242, 255)
TOWN = (190, 182, 172, 255)
SAMPLE = (255, 214, 64, 255)
MIN_SPAN_KM = 1.6
SUPERSAMPLE = 2


class CardPainter:
    """Paints the card of each sites answer in a worker thread, at the card area's size.

    `size` is set once the renderer knows where its layout puts cards (None: the layout has
    no card area, and answers air without a card)."""

    def __init__(
        self, font: str | Path, *, towns: Sequence[Place] = (), outline: Sequence[Ring] = ()
    ) -> None:
        self._font = font
        self._towns = tuple(towns)
        self._outline = tuple(outline)
        self._numbers = itertools.count(1)
        self.size: tuple[int, int] | None = None

    async def paint(self, reply: SiteReply) -> Card | None:
        """The card for `reply`, or None (no card area, or no site to show)."""
        size = self.size
        if size is None or not reply.matches:
            return None
        image = await asyncio.to_thread(
            render_card, reply, size, self._font, towns=self._towns, outline=self._outline
        )
        return Card(f"sites-{next(self._numbers)}", image)


def render_card(
    reply: SiteReply,
    size: tuple[int, int],
    font: str | Path,
    *,
    towns: Sequence[Place] = (),
    outline: Sequence[Ring] = (),
) -> np.ndarray:
    """The card as RGBA uint8 of `size` (width, height); opaque."""
    width, height = size
    big = (width * SUPERSAMPLE, height * SUPERSAMPLE)
    image = Image.new("RGBA", big, PAPER)
    draw = ImageDraw.Draw(image)
    s = SUPERSAMPLE
    header = round(height * 0.17) * s
    draw.rectangle((0, 0, big[0], header), fill=RED)
    title = _title(reply)
    room = big[0] - header * 0.7
    title_size = header * 0.5
    while title_size > header * 0.25 and draw.textlength(title, _font(font, title_size)) > room:
        title_size *= 0.92
    title_font = _font(font, title_size)
    draw.text((header * 0.35, header / 2), title, font=title_font, fill=PAPER, anchor="lm")

    body_top = header + 6 * s
    map_box: tuple[float, float, float, float]
    list_box: tuple[float, float, float, float]
    if width < height * 1.1:
        map_box = (6 * s, body_top, big[0] - 6 * s, body_top + (big[1] - body_top) * 0.55)
        list_box = (8 * s, map_box[3] + 4 * s, big[0] - 8 * s, big[1] - 6 * s)
    else:
        map_box = (6 * s, body_top, big[0] * 0.55, big[1] - 6 * s)
        list_box = (big[0] * 0.55 + 8 * s, body_top, big[0] - 8 * s, big[1] - 6 * s)
    # The map on a layer of its own, pasted in its box: a label near its edge is cut there
    # rather than running into the list.
    left, top = round(map_box[0]), round(map_box[1])
    layer = Image.new("RGBA", (round(map_box[2]) - left, round(map_box[3]) - top), PAPER)
    local = (0.0, 0.0, float(layer.width), float(layer.height))
    _draw_map(layer, local, reply, towns, outline, font)
    image.alpha_composite(layer, (left, top))
    _draw_list(draw, list_box, reply.matches, font)
    if reply.sample:
        # On the map's corner, where no pin can hide it: this is demo data, not real sites.
        badge_font = _font(font, header * 0.36)
        label = "示例数据 SAMPLE"
        box = draw.textbbox((0, 0), label, font=badge_font)
        bw, bh = box[2] - box[0] + header * 0.4, box[3] - box[1] + header * 0.3
        bx, by = map_box[0] + 4 * s, map_box[1] + 4 * s
        draw.rounded_rectangle((bx, by, bx + bw, by + bh), radius=bh / 3, fill=SAMPLE)
        draw.text((bx + bw / 2, by + bh / 2), label, font=badge_font, fill=INK, anchor="mm")
    card = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(card, dtype=np.uint8).copy()


def _title(reply: SiteReply) -> str:
    query = reply.query
    kind = query.kind.chinese if query.kind is not None else "服务站点"
    if query.place is None:
        return kind
    where = query.place.name
    return f"{where}的{kind}" if query.in_town else f"{where}附近的{kind}"


def _draw_map(
    image: Image.Image,
    box: tuple[float, float, float, float],
    reply: SiteReply,
    towns: Sequence[Place],
    outline: Sequence[Ring],
    font: str | Path,
) -> None:
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    draw.rounded_rectangle(box, radius=8 * SUPERSAMPLE, fill=WATER)
    points = [(m.site.lon, m.site.lat) for m in reply.matches]
    place = reply.query.place
    if place is not None:
        points.append((place.lon, place.lat))
    if not points:
        return
    project = _projection(points, box)
    for ring in outline:
        if len(ring) >= 2:
            draw.line([project(lon, lat) for lon, lat in ring], fill=TOWN, width=2 * SUPERSAMPLE)
    small = _font(font, (y1 - y0) * 0.07)
    for town in towns:
        if place is not None and town.name == place.name:
            continue
        tx, ty = project(town.lon, town.lat)
        if x0 + 4 < tx < x1 - 4 and y0 + 4 < ty < y1 - 4:
            r = 2.5 * SUPERSAMPLE
            draw.ellipse((tx - r, ty - r, tx + r, ty + r), fill=TOWN)
            draw.text((tx + 2 * r, ty), town.name, font=small, fill=MUTED, anchor="lm")
    if place is not None:
        px, py = project(place.lon, place.lat)
        star = max(10 * SUPERSAMPLE, (y1 - y0) * 0.06)
        _star(draw, px, py, star)
        draw.text((px, py + star * 1.2), place.name, font=small, fill=RED, anchor="mt")
    r = max(9 * SUPERSAMPLE, (y1 - y0) * 0.055)
    label = _font(font, r * 1.3)
    for number, match in enumerate(reply.matches, start=1):
        sx, sy = project(match.site.lon, match.site.lat)
        colour = OPEN if match.open_now else CLOSED if match.open_now is False else INK
        draw.ellipse(
            (sx - r, sy - r, sx + r, sy + r), fill=colour, outline=PAPER, width=SUPERSAMPLE
        )
        draw.text((sx, sy), str(number), font=label, fill=PAPER, anchor="mm")
    note = _font(font, (y1 - y0) * 0.06)
    draw.text(
        (x1 - 4 * SUPERSAMPLE, y1 - 3 * SUPERSAMPLE), "示意图", font=note, fill=MUTED, anchor="rd"
    )


def _projection(
    points: Sequence[tuple[float, float]], box: tuple[float, float, float, float]
) -> _Project:
    """Lon/lat to card pixels: equirectangular about the points' middle, north up, kilometres
    true in both directions, the points' extent (at least `MIN_SPAN_KM`) filling the box."""
    x0, y0, x1, y1 = box
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    mid_lon, mid_lat = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
    km_lon = 111.32 * math.cos(math.radians(mid_lat))
    km_lat = 110.57
    span_x = max((max(lons) - min(lons)) * km_lon, MIN_SPAN_KM)
    span_y = max((max(lats) - min(lats)) * km_lat, MIN_SPAN_KM)
    margin = 0.18
    scale = min((x1 - x0) * (1 - 2 * margin) / span_x, (y1 - y0) * (1 - 2 * margin) / span_y)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return _Project(mid_lon, mid_lat, km_lon * scale, km_lat * scale, cx, cy)


class _Project:
    def __init__(
        self, lon: float, lat: float, px_lon: float, px_lat: float, cx: float, cy: float
    ) -> None:
        self._lon, self._lat, self._px_lon, self._px_lat = lon, lat, px_lon, px_lat
        self._cx, self._cy = cx, cy

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self._cx + (lon - self._lon) * self._px_lon,
            self._cy - (lat - self._lat) * self._px_lat,
        )


def _draw_list(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    matches: Sequence[SiteMatch],
    font: str | Path,
) -> None:
    x0, y0, x1, y1 = box
    if not matches:
        draw.text((x0, y0), "没有找到合适的站点", font=_font(font, (y1 - y0) * 0.1), fill=MUTED)
        return
    row = (y1 - y0) / 3
    name_font = _font(font, min(row * 0.26, (x1 - x0) / 11))
    detail_font = _font(font, min(row * 0.2, (x1 - x0) / 14))
    for number, match in enumerate(matches[:3], start=1):
        top = y0 + (number - 1) * row
        r = row * 0.16
        draw.ellipse((x0, top + 2, x0 + 2 * r, top + 2 + 2 * r), fill=RED)
        draw.text((x0 + r, top + 2 + r), str(number), font=detail_font, fill=PAPER, anchor="mm")
        left = x0 + 2.6 * r
        lines = _wrap(draw, match.site.name, name_font, x1 - left, 2)
        y = top
        for line in lines:
            draw.text((left, y), line, font=name_font, fill=INK)
            y += name_font.size * 1.15
        state, colour = _state(match)
        draw.text((left, y + 2), state, font=detail_font, fill=colour)


def _state(match: SiteMatch) -> tuple[str, tuple[int, int, int, int]]:
    parts = []
    if match.open_now is True:
        parts.append("开放中")
    elif match.open_now is False:
        parts.append("已休息")
    if match.distance_km is not None:
        parts.append(f"约{match.distance_km:.1f}公里")
    colour = OPEN if match.open_now else CLOSED if match.open_now is False else MUTED
    return " · ".join(parts) or match.site.town, colour


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: float, lines: int
) -> list[str]:
    out, current = [], ""
    for char in text:
        if draw.textlength(current + char, font=font) > width and current:
            out.append(current)
            current = char
            if len(out) == lines:
                break
        else:
            current += char
    else:
        out.append(current)
        return out[:lines]
    last = out[-1]
    while last and draw.textlength(last + "…", font=font) > width:
        last = last[:-1]
    out[-1] = last + "…"
    return out


def _star(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    corners = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        corners.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
    draw.polygon(corners, fill=RED, outline=PAPER)


_FONTS: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(path: str | Path, size: float) -> ImageFont.FreeTypeFont:
    key = (str(path), max(8, round(size)))
    found = _FONTS.get(key)
    if found is None:
        if len(_FONTS) > 64:
            _FONTS.clear()
        found = _FONTS[key] = ImageFont.truetype(key[0], key[1])
    return found
