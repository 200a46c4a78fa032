"""Burned-in captions: find a CJK font, wrap a sentence into at most two lines, paint it.

The painter produces an RGBA image the size of the caption area; the renderer turns it into
a YUV overlay once per sentence. Layout is measured token by token (a CJK character, a Latin
word, punctuation kept with its neighbour) so Chinese and English wrap the way a reader
expects: no line starts with a comma or full stop, and lines are balanced rather than leaving
one lonely word on the second line.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anchor.avatar.pack import AvatarError

FONT_PACKAGE = "fonts-wqy-microhei"

# Where common CJK fonts live on Debian/Ubuntu, Fedora, Arch, macOS and Windows.
CJK_FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)

_CLOSING = set("，。、；：？！…）》」』】〉〕,.;:?!)]}%’”'\"")
_OPENING = set("（《「『【〈〔([{‘“")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-.]*\s*|\s+|.", re.DOTALL)
_ELLIPSIS = "…"
_SENTENCE_END = set("。！？.!?；;")
_CLAUSE_END = set("，、：,:")


class CaptionFontError(AvatarError):
    """No font able to draw Chinese captions was found."""


def find_cjk_font() -> Path:
    """A font file with Chinese glyphs: the usual paths first, then fontconfig's own answer."""
    for candidate in CJK_FONT_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    found = _fontconfig_cjk_font()
    if found is not None:
        return found
    raise CaptionFontError(
        "no CJK font found for captions; install one (Debian/Ubuntu: "
        f"apt-get install {FONT_PACKAGE}), pass a font file, or disable captions"
    )


def _fontconfig_cjk_font() -> Path | None:
    exe = shutil.which("fc-list")
    if exe is None:
        return None
    try:
        listing = subprocess.run(
            [exe, ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in sorted(listing.splitlines()):
        path = Path(line.split(":", 1)[0].strip())
        if path.suffix.lower() in {".ttc", ".ttf", ".otf"} and path.is_file():
            return path
    return None


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    width: float
    trimmed_width: float  # without trailing spaces, for the last token on a line


class CaptionPainter:
    """Paints one sentence as white text on a translucent dark band, centred in the area.

    Text starts at about a third of the area's height and shrinks (to 70 %) before it is cut
    short with an ellipsis, so a long sentence still fits in two lines.
    """

    MAX_LINES = 2
    BAND_RGBA = (14, 16, 26, 165)
    TEXT_RGB = (255, 255, 255)
    WIDTH_CACHE = 4096

    def __init__(self, font_path: str | Path, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError("caption area must have a positive size")
        self._font_path = str(font_path)
        try:
            ImageFont.truetype(self._font_path, 12)
        except OSError as exc:
            raise CaptionFontError(f"{font_path}: cannot load caption font: {exc}") from exc
        self.width = width
        self.height = height
        self._base_size = max(8, round(height * 0.32))
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._widths: dict[tuple[float, str], float] = {}  # (font size, text)

    def paint(self, text: str) -> np.ndarray:
        """RGBA uint8 of shape (height, width, 4): the band and the text, transparent elsewhere."""
        font, lines = self._layout(" ".join(text.split()))
        ascent, descent = font.getmetrics()
        line_height = round((ascent + descent) * 1.12)
        pad_x, pad_y = round(font.size * 0.7), round(font.size * 0.28)
        text_w = max(font.getlength(line) for line in lines)
        band_w = min(self.width, round(text_w) + 2 * pad_x)
        band_h = min(self.height, line_height * len(lines) + 2 * pad_y)
        left = (self.width - band_w) // 2
        top = (self.height - band_h) // 2

        image = Image.new("RGBA", (self.width, self.height), (0, 0, 0, 0))
        image.paste(_rounded_band(band_w, band_h, self.BAND_RGBA), (left, top))
        draw = ImageDraw.Draw(image)
        y = top + pad_y + (line_height - ascent - descent) // 2
        for line in lines:
            x = (self.width - font.getlength(line)) / 2
            draw.text((x, y), line, font=font, fill=self.TEXT_RGB)
            y += line_height
        return np.asarray(image)

    def _layout(self, text: str) -> tuple[ImageFont.FreeTypeFont, list[str]]:
        limit = self.width * 0.94 - 2 * round(self._base_size * 0.7)
        sizes = sorted(
            {max(8, round(self._base_size * f)) for f in (1.0, 0.9, 0.8, 0.7)}, reverse=True
        )
        for size in sizes:
            font = self._font(size)
            tokens = self._tokens(font, text)
            lines = _wrap(tokens, limit)
            if len(lines) <= self.MAX_LINES:
                return font, _balance(tokens, limit, len(lines))
        font = self._font(sizes[-1])
        lines = _wrap(self._tokens(font, text), limit)
        kept = ["".join(t.text for t in line).strip() for line in lines[: self.MAX_LINES - 1]]
        kept.append(_ellipsize(font, lines[self.MAX_LINES - 1], limit))
        return font, kept

    def _font(self, size: int) -> ImageFont.FreeTypeFont:
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = ImageFont.truetype(self._font_path, size)
        return font

    def _tokens(self, font: ImageFont.FreeTypeFont, text: str) -> list[_Token]:
        tokens = []
        for part in _split(text):
            trimmed = part.rstrip()
            width = self._width(font, part)
            trimmed_width = width if trimmed == part else self._width(font, trimmed)
            tokens.append(_Token(part, width, trimmed_width))
        return tokens

    def _width(self, font: ImageFont.FreeTypeFont, text: str) -> float:
        """Measured once per size: captions reuse the same few thousand characters all day."""
        key = (font.size, text)
        width = self._widths.get(key)
        if width is None:
            if len(self._widths) >= self.WIDTH_CACHE:
                self._widths.clear()
            width = self._widths[key] = font.getlength(text)
        return width


def _split(text: str) -> list[str]:
    """Break units: CJK characters and Latin words, punctuation glued to the word it belongs to."""
    parts: list[str] = []
    pending_open = ""
    for piece in _TOKEN.findall(text):
        if piece.isspace():
            if parts:
                parts[-1] += piece
            continue
        if piece in _OPENING:
            pending_open += piece
            continue
        if parts and piece[0] in _CLOSING and not pending_open:
            parts[-1] = parts[-1].rstrip() + piece
            continue
        parts.append(pending_open + piece)
        pending_open = ""
    if pending_open:
        parts.append(pending_open)
    return parts


def _wrap(tokens: list[_Token], limit: float) -> list[list[_Token]]:
    lines: list[list[_Token]] = [[]]
    width = 0.0
    for token in tokens:
        if lines[-1] and width + token.trimmed_width > limit:
            lines.append([])
            width = 0.0
        lines[-1].append(token)
        width += token.width
    return lines


def _balance(tokens: list[_Token], limit: float, count: int) -> list[str]:
    """Where to break two lines: as even as possible, preferably after a clause's punctuation.

    Two even lines read better than a full line and a stub, and a break at "，" or "！" reads
    better still, so a punctuation break may cost a little evenness.
    """
    if count < 2:
        return ["".join(t.text for t in tokens).strip()]
    best, best_cost = _wrap(tokens, limit), math.inf
    total = sum(t.width for t in tokens)
    head = 0.0
    for k in range(1, len(tokens)):
        head += tokens[k - 1].width
        first = head - tokens[k - 1].width + tokens[k - 1].trimmed_width
        second = total - head - tokens[-1].width + tokens[-1].trimmed_width
        if first > limit or second > limit:
            continue
        cost = max(first, second) - limit * _break_bonus(tokens[k - 1].text)
        if cost < best_cost:
            best, best_cost = [tokens[:k], tokens[k:]], cost
    return ["".join(t.text for t in line).strip() for line in best]


def _break_bonus(text: str) -> float:
    end = text.rstrip()[-1:]
    if end in _SENTENCE_END:
        return 0.15
    if end in _CLAUSE_END:
        return 0.08
    return 0.0


def _ellipsize(font: ImageFont.FreeTypeFont, line: list[_Token], limit: float) -> str:
    text = "".join(t.text for t in line).rstrip()
    while text and font.getlength(text + _ELLIPSIS) > limit:
        text = text[:-1].rstrip()
    return text + _ELLIPSIS


def _rounded_band(width: int, height: int, rgba: tuple[int, int, int, int]) -> Image.Image:
    """The band drawn at twice the size and halved, for smooth rounded corners."""
    mask = Image.new("L", (width * 2, height * 2), 0)
    radius = min(height, max(4, height // 3))
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, width * 2 - 1, height * 2 - 1), radius=radius, fill=rgba[3]
    )
    band = Image.new("RGBA", (width, height), rgba[:3] + (0,))
    band.putalpha(mask.reduce(2))
    return band
