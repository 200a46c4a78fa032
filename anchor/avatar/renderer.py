"""Frames of the host, straight into yuv420p, touching only what changed since last time.

Everything expensive happens once, in `__init__`: layers are scaled to the stream size, the
character is posed in every discrete idle pose (a few breathing heights x a few sideways
leans, sub-pixel warps about the neck), composed over the background and under the
foreground, and converted to YUV. Per pose, the mouth at every opening and the eyes at every
lid position are cut out as small patches. A frame is then a handful of array copies: the
character patch when the pose changed, the mouth and eye patches when they changed, and the
caption band when the sentence changed. Patch boxes are aligned to even pixels so the
half-resolution chroma planes line up exactly.

Colour: BT.709 matrix, limited ("tv") range — tag the stream accordingly (see `COLOR_MATRIX`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from anchor.avatar.captions import CaptionPainter, find_cjk_font
from anchor.avatar.layout import choose_layout
from anchor.avatar.motion import Blinks, Eyelid, Sway
from anchor.avatar.pack import AvatarError, AvatarPack, Box, Layout, Placed, SpriteSet
from anchor.media.safearea import SafeArea, SafeAreaError
from anchor.messages import Card, MouthShape

COLOR_MATRIX = "bt709"
COLOR_RANGE = "tv"
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]
_Rect = tuple[float, float, float, float]  # x0, y0, x1, y1

_CB = 224.0 / (2.0 * (1.0 - _KB))
_CR = 224.0 / (2.0 * (1.0 - _KR))
# Premultiplied 8-bit RGBA -> (Y, alpha) and (U, V, alpha), x256 for the integer blend.
_OVERLAY_LUMA = (
    256.0
    / 255.0
    * np.array(
        [[219.0 * _KR, 219.0 * _KG, 219.0 * _KB, 16.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float32
    )
)
_OVERLAY_CHROMA = (
    256.0
    / 255.0
    * np.array(
        [
            [-_CB * _KR, -_CB * _KG, _CB * (1.0 - _KB), 128.0],
            [_CR * (1.0 - _KR), -_CR * _KG, -_CR * _KB, 128.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        dtype=np.float32,
    )
)


def rgb_to_yuv420(rgb: np.ndarray) -> Planes:
    """Y (h, w), U and V (h/2, w/2) uint8 from RGB floats in [0, 1] (h and w even)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = _KR * r + _KG * g + _KB * b
    h, w = luma.shape
    quad = rgb.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    quad_luma = _KR * quad[..., 0] + _KG * quad[..., 1] + _KB * quad[..., 2]
    y = 16.0 + 219.0 * luma
    u = 128.0 + 224.0 * (quad[..., 2] - quad_luma) / (2.0 * (1.0 - _KB))
    v = 128.0 + 224.0 * (quad[..., 0] - quad_luma) / (2.0 * (1.0 - _KR))
    return _to_uint8(y), _to_uint8(u), _to_uint8(v)


def _to_uint8(plane: np.ndarray) -> np.ndarray:
    rounded: np.ndarray = np.rint(plane)
    return rounded.clip(0, 255).astype(np.uint8)


def _copied(planes: Planes) -> Planes:
    return planes[0].copy(), planes[1].copy(), planes[2].copy()


def yuv420p_to_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3) from a yuv420p array as `render` returns; for previews."""
    flat = frame.reshape(-1)
    size = width * height
    y = flat[:size].reshape(height, width).astype(np.float32)
    u = flat[size : size * 5 // 4].reshape(height // 2, width // 2).astype(np.float32)
    v = flat[size * 5 // 4 : size * 3 // 2].reshape(height // 2, width // 2).astype(np.float32)
    u = np.repeat(np.repeat(u, 2, axis=0), 2, axis=1) - 128.0
    v = np.repeat(np.repeat(v, 2, axis=0), 2, axis=1) - 128.0
    luma = (y - 16.0) / 219.0
    r = luma + v / 224.0 * 2.0 * (1.0 - _KR)
    b = luma + u / 224.0 * 2.0 * (1.0 - _KB)
    g = (luma - _KR * r - _KB * b) / _KG
    return np.clip(np.rint(np.stack([r, g, b], axis=-1) * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class _Region:
    """An even-aligned rectangle of the output, with its slices into the Y and chroma planes."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def covering(
        cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int
    ) -> _Region:
        left = max(0, math.floor(x0 / 2) * 2)
        top = max(0, math.floor(y0 / 2) * 2)
        right = min(width, math.ceil(x1 / 2) * 2)
        bottom = min(height, math.ceil(y1 / 2) * 2)
        return cls(left, top, max(0, right - left), max(0, bottom - top))

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h

    @property
    def luma(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    @property
    def chroma(self) -> tuple[slice, slice]:
        return (
            slice(self.y // 2, (self.y + self.h) // 2),
            slice(self.x // 2, (self.x + self.w) // 2),
        )

    def overlaps(self, other: _Region) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )

    def crop(self, planes: Planes) -> Planes:
        luma, chroma = self.luma, self.chroma
        return planes[0][luma].copy(), planes[1][chroma].copy(), planes[2][chroma].copy()

    def paste(self, planes: Planes, patch: Planes) -> None:
        planes[0][self.luma] = patch[0]
        planes[1][self.chroma] = patch[1]
        planes[2][self.chroma] = patch[2]


# A painted caption cut to its band: (band, alpha of Y and of chroma, premultiplied Y, U, V).
_Overlay = tuple[_Region, tuple[np.ndarray, np.ndarray], Planes]


@dataclass(slots=True)
class _Buffer:
    """One output array and what is currently drawn in it (None: unknown, redraw)."""

    array: np.ndarray
    planes: Planes
    pose: int | None = None
    mouth: tuple[MouthShape, int] | None = None
    eyelid: int | None = None
    caption: tuple[str, int | None] | None = None
    card: str | None = None


class AvatarRenderer:
    """Draws frame n of the host from (mouth openness, lip shape, caption); deterministic.

    `render` returns one of `buffers` internal arrays in turn: a returned frame stays valid
    until `buffers` further calls, which lets the caller encode it (or encode it again when a
    render is skipped) without a copy. Not thread-safe: use one renderer per media thread.
    """

    MAX_BREATH_STEPS = 7
    MAX_LEAN_STEPS = 5

    def __init__(
        self,
        pack: AvatarPack,
        width: int,
        height: int,
        *,
        fps: float,
        caption_font: str | None = None,
        captions: bool = True,
        seed: int = 0,
        buffers: int = 3,
        safe_area: SafeArea | None = None,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"frame size must be positive and even, got {width}x{height}")
        if fps <= 0:
            raise ValueError("fps must be positive")
        if buffers < 1:
            raise ValueError("buffers must be at least 1")
        self.width, self.height, self.fps = width, height, fps
        self._blinks = Blinks(fps, seed)
        self._sway = Sway(fps, seed)
        self._mouth_levels = len(pack.mouth.frames)

        self.layout = choose_layout(pack.layouts, width, height, str(pack.directory))
        self.safe_area = safe_area or SafeArea("none")
        scene = _Scene(pack, self.layout, width, height, self.safe_area)
        # Where the title board ended up, in output pixels (x, y, w, h).
        self.title_box = None if scene.title_box is None else scene.title_box.box
        self._breath_steps, self._lean_steps = scene.pose_steps(
            self.MAX_BREATH_STEPS, self.MAX_LEAN_STEPS
        )
        poses = scene.poses(self._breath_steps, self._lean_steps)
        self._base = scene.base_yuv()
        self._character = scene.character_region(poses)
        self._mouth = scene.sprite_region(poses, pack.mouth.box)
        self._eyes = scene.sprite_region(poses, pack.eyes.box)
        self._caption = scene.fitted(
            "caption", self.layout.caption, avoid=(self._mouth.box, self._eyes.box)
        )
        # The card area keeps clear of the caption too (where the platform pushed it).
        self._card = (
            None
            if self.layout.cards is None
            else scene.fitted("cards", self.layout.cards, avoid=(self._caption.box,))
        )
        # Where cards are shown, in output pixels (x, y, w, h); None: the layout has no place.
        self.card_box = None if self._card is None else self._card.box
        self._card_over = {
            name: self._card is not None and region.overlaps(self._card)
            for name, region in (
                ("character", self._character),
                ("eyes", self._eyes),
                ("mouth", self._mouth),
            )
        }
        self._card_patches: OrderedDict[str, Planes] = OrderedDict()
        # At small sizes the padded patches can touch; the mouth is then redrawn after the eyes.
        self._eyes_touch_mouth = self._eyes.overlaps(self._mouth)
        for name, region in (("mouth", self._mouth), ("eyes", self._eyes)):
            if region.overlaps(self._caption):
                raise AvatarError(f"{pack.directory}: {name} moves into the caption area")
        self._character_patches = [scene.compose(pose, self._character) for pose in poses]
        self._mouth_patches = {
            shape: [
                [scene.compose(pose, self._mouth, pack.mouth.box, s) for s in sprites.frames]
                for pose in poses
            ]
            for shape, sprites in self._mouth_shapes(pack).items()
        }
        lids = (None, pack.eyes.frames[0], pack.eyes.frames[-1])  # open, half, closed
        self._eye_patches = [
            [scene.compose(pose, self._eyes, pack.eyes.box, sprite) for sprite in lids]
            for pose in poses
        ]

        self._caption_moves = self._caption.overlaps(self._character)
        self._caption_bases: dict[int | None, Planes] = {}
        self._painter = self._make_painter(caption_font) if captions else None
        self._overlays: OrderedDict[str, _Overlay] = OrderedDict()
        self._composites: dict[tuple[str, int | None], Planes] = {}
        self._buffers = [self._new_buffer() for _ in range(buffers)]
        self._turn = 0

    @property
    def mouth_box(self) -> tuple[int, int, int, int]:
        """Where the mouth patch is drawn, in output pixels (x, y, w, h)."""
        return self._mouth.box

    @property
    def eye_box(self) -> tuple[int, int, int, int]:
        """Where the eyelid patch is drawn, in output pixels (x, y, w, h)."""
        return self._eyes.box

    @property
    def caption_box(self) -> tuple[int, int, int, int]:
        """The caption area, in output pixels (x, y, w, h), clear of the safe-area mask."""
        return self._caption.box

    def is_blinking(self, frame_index: int) -> bool:
        """Whether the lids are (half) shut in this frame; blinks depend on the seed only."""
        return self._blinks.eyelid(frame_index) != Eyelid.OPEN

    def render(
        self,
        frame_index: int,
        mouth: float,
        caption: str | None,
        shape: MouthShape = MouthShape.OPEN,
        card: Card | None = None,
    ) -> np.ndarray:
        """Frame `frame_index` (stream time = frame_index / fps) as a yuv420p array of shape
        (height*3//2, width), uint8 — exactly what av.VideoFrame.from_ndarray(a, format="yuv420p")
        takes. mouth in [0, 1] (0 = closed). caption: the sentence being spoken, or None.
        shape: the lip shape; CLOSED shuts the mouth whatever `mouth` says, a shape the pack
        does not draw is drawn OPEN. card: a picture for the layout's card area (a layout
        without one shows no card), over whatever it covers.

        The array is the renderer's own: valid until `buffers` more calls, not to be written."""
        buffer = self._buffers[self._turn]
        self._turn = (self._turn + 1) % len(self._buffers)
        card_key = card.key if card is not None and self._card is not None else None
        if buffer.card is not None and buffer.card != card_key:
            self._lift_card(buffer)
        covered = False  # drew under the card this frame: it must go back on top
        pose = self._pose(frame_index)
        if buffer.pose != pose:
            self._character.paste(buffer.planes, self._character_patches[pose])
            buffer.pose, buffer.mouth, buffer.eyelid = pose, None, None
            if self._caption_moves:
                buffer.caption = None
            covered |= self._card_over["character"]
        eyelid = int(self._blinks.eyelid(frame_index))
        if buffer.eyelid != eyelid:
            self._eyes.paste(buffer.planes, self._eye_patches[pose][eyelid])
            buffer.eyelid = eyelid
            if self._eyes_touch_mouth:
                buffer.mouth = None
            covered |= self._card_over["eyes"]
        drawn = self._mouth_drawn(mouth, shape)
        if buffer.mouth != drawn:
            self._mouth.paste(buffer.planes, self._mouth_patches[drawn[0]][pose][drawn[1]])
            buffer.mouth = drawn
            covered |= self._card_over["mouth"]
        self._draw_caption(buffer, pose, caption)
        if card is not None and card_key is not None and (covered or buffer.card != card_key):
            assert self._card is not None  # card_key is set only with a card area
            self._card.paste(buffer.planes, self._card_patch(card))
            buffer.card = card_key
        return buffer.array

    def _lift_card(self, buffer: _Buffer) -> None:
        """Take the card off: the still picture goes back, the moving parts are redrawn."""
        assert self._card is not None
        self._card.paste(buffer.planes, self._card.crop(self._base))
        buffer.pose = buffer.mouth = buffer.eyelid = buffer.caption = buffer.card = None

    def _card_patch(self, card: Card) -> Planes:
        """The card fitted into the card area (proportions kept, centred) over the still
        picture; the last two cards are kept."""
        found = self._card_patches.get(card.key)
        if found is not None:
            self._card_patches.move_to_end(card.key)
            return found
        region = self._card
        assert region is not None
        image = np.ascontiguousarray(card.image[..., :4], dtype=np.uint8)
        ih, iw = image.shape[:2]
        scale = min(region.w / iw, region.h / ih)
        w, h = max(2, int(iw * scale) // 2 * 2), max(2, int(ih * scale) // 2 * 2)
        fitted = cv2.resize(
            image, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        )
        local = _Region((region.w - w) // 2 // 2 * 2, (region.h - h) // 2 // 2 * 2, w, h)
        out = region.crop(self._base)
        fixed, premultiplied = _yuv_overlay(fitted)
        _blend(out, local, fixed, premultiplied)
        self._card_patches[card.key] = out
        if len(self._card_patches) > 2:
            self._card_patches.popitem(last=False)
        return out

    # ----------------------------------------------------------------- per frame

    def _pose(self, frame_index: int) -> int:
        breath, lean = self._sway.pose(frame_index)
        b = round((breath + 1.0) / 2.0 * (self._breath_steps - 1))
        lean_step = round((lean + 1.0) / 2.0 * (self._lean_steps - 1))
        return b * self._lean_steps + lean_step

    def _mouth_drawn(self, mouth: float, shape: MouthShape) -> tuple[MouthShape, int]:
        """Which precomposed mouth patch shows (shape, level).

        A shut mouth (CLOSED, or no opening at all) is one patch for every shape: the rest
        pose. A shape's first frame is its least-open form, shown for a barely open mouth."""
        if shape == MouthShape.CLOSED or not mouth > 0.0:  # also catches NaN
            return MouthShape.OPEN, 0
        level = min(self._mouth_levels - 1, round(mouth * (self._mouth_levels - 1)))
        if shape not in self._mouth_patches:
            return MouthShape.OPEN, level
        return shape, level

    def _draw_caption(self, buffer: _Buffer, pose: int, caption: str | None) -> None:
        text = caption.strip() if caption and self._painter is not None else ""
        moving_pose = pose if self._caption_moves else None
        key = (text, moving_pose)
        if buffer.caption == key:
            return
        if text:
            self._caption.paste(buffer.planes, self._composite(text, moving_pose))
        else:
            self._caption.paste(buffer.planes, self._caption_base(moving_pose))
        buffer.caption = key

    def _composite(self, text: str, pose: int | None) -> Planes:
        """The caption area with the band blended in; kept for the sentence on air only."""
        key = (text, pose)
        found = self._composites.get(key)
        if found is not None:
            return found
        if not any(k[0] == text for k in self._composites):
            self._composites.clear()
        band, alpha, premultiplied = self._overlay(text)
        base = self._caption_base(pose)
        out = _copied(base)
        local = _Region(band.x - self._caption.x, band.y - self._caption.y, band.w, band.h)
        _blend(out, local, alpha, premultiplied)
        self._composites[key] = out
        return out

    def _overlay(self, text: str) -> _Overlay:
        """The painted caption as YUV with premultiplied alpha, cut to the band; a small LRU."""
        found = self._overlays.get(text)
        if found is not None:
            self._overlays.move_to_end(text)
            return found
        painter = self._painter
        assert painter is not None  # _draw_caption asks for caption text only with a painter
        painted = painter.paint(text)
        opaque = painted[..., 3] > 0
        rows, cols = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
        if rows.size:
            local = _Region.covering(
                cols[0], rows[0], cols[-1] + 1, rows[-1] + 1, self._caption.w, self._caption.h
            )
        else:
            local = _Region(0, 0, 0, 0)
        fixed, premultiplied = _yuv_overlay(np.ascontiguousarray(painted[local.luma]))
        band = _Region(local.x + self._caption.x, local.y + self._caption.y, local.w, local.h)
        entry = (band, fixed, premultiplied)
        self._overlays[text] = entry
        if len(self._overlays) > 8:
            self._overlays.popitem(last=False)
        return entry

    def _caption_base(self, pose: int | None) -> Planes:
        """The caption area as it looks without a caption (in `pose`, if the body reaches it)."""
        found = self._caption_bases.get(pose)
        if found is None:
            frame = _copied(self._base)
            if pose is not None:
                self._character.paste(frame, self._character_patches[pose])
            found = self._caption_bases[pose] = self._caption.crop(frame)
        return found

    # ----------------------------------------------------------------- set-up

    @staticmethod
    def _mouth_shapes(pack: AvatarPack) -> dict[MouthShape, SpriteSet]:
        """The mouth sprites per shape: OPEN is the pack's mouth, others only if the pack has them.

        Shapes the pack lacks are left out rather than copied, so they cost no composing."""
        shapes: dict[MouthShape, SpriteSet] = {MouthShape.OPEN: pack.mouth}
        for shape, sprites in pack.shapes.items():
            if shape in (MouthShape.OPEN, MouthShape.CLOSED):
                continue
            if sprites.box != pack.mouth.box or len(sprites.frames) != len(pack.mouth.frames):
                raise AvatarError(
                    f"{pack.directory}: the {shape.name.lower()} mouth must have the mouth's box "
                    f"and {len(pack.mouth.frames)} frames"
                )
            shapes[shape] = sprites
        return shapes

    def _make_painter(self, caption_font: str | None) -> CaptionPainter | None:
        if self._caption.w < 8 or self._caption.h < 8:
            return None
        font = caption_font or find_cjk_font()
        return CaptionPainter(font, self._caption.w, self._caption.h)

    def _new_buffer(self) -> _Buffer:
        array = np.empty((self.height * 3 // 2, self.width), dtype=np.uint8)
        flat = array.reshape(-1)
        size = self.width * self.height
        planes = (
            flat[:size].reshape(self.height, self.width),
            flat[size : size * 5 // 4].reshape(self.height // 2, self.width // 2),
            flat[size * 5 // 4 :].reshape(self.height // 2, self.width // 2),
        )
        for plane, base in zip(planes, self._base, strict=True):
            plane[...] = base
        return _Buffer(array=array, planes=planes)


class _Scene:
    """The pack mapped onto the output through a layout: the backdrop and the host's poses.

    The layout's canvas is scaled to the stream (a hair's difference of aspect is cropped
    evenly); the host's own canvas is placed on it by the layout's `host_scale` and
    `host_at`. The title board is fitted clear of the platform's covered areas, as is the
    caption area. Layers are held premultiplied (RGB x alpha) as floats, so scaling and
    sub-pixel warps do not leave dark fringes around the character.
    """

    def __init__(
        self, pack: AvatarPack, layout: Layout, width: int, height: int, safe: SafeArea
    ) -> None:
        self.pack, self.layout, self.width, self.height = pack, layout, width, height
        self.safe = safe
        lw, lh = layout.size
        self.k = max(width / lw, height / lh)  # layout canvas -> output, cropping any excess
        self.crop = ((round(lw * self.k) - width) // 2, (round(lh * self.k) - height) // 2)
        self.sx = self.sy = self.k * layout.host_scale
        ax, ay = layout.host_at
        self.offset = (ax * self.k - self.crop[0], ay * self.k - self.crop[1])
        shrinking = self.sx < 1.0
        self.interpolation = cv2.INTER_LINEAR if shrinking else cv2.INTER_CUBIC
        # Before a sub-pixel warp that shrinks, blur as much as the shrink would average away.
        self.sigma = max(0.0, (1.0 / self.sx - 1.0) / 2.0)
        self.margin = math.ceil(4 * self.sigma) + 4

        self.title_box = None if layout.title is None else self.fitted("title", layout.title.box)
        self.background = self._backdrop()
        self.foreground = None
        if pack.foreground is not None:
            self.foreground = self._place(self._prefilter(_premultiply(pack.foreground)))
        self.body = self._prefilter(_premultiply(pack.body))
        alpha_rows = np.flatnonzero(pack.body[..., 3].max(axis=1))
        alpha_cols = np.flatnonzero(pack.body[..., 3].max(axis=0))
        if alpha_rows.size == 0:
            raise AvatarError(f"{pack.directory}: body is fully transparent")
        self.body_box = (alpha_cols[0], alpha_rows[0], alpha_cols[-1] + 1, alpha_rows[-1] + 1)

    # -- the still parts

    def fitted(self, what: str, box: Box, avoid: tuple[Box, ...] = ()) -> _Region:
        """A layout box in output pixels, moved (or shrunk) clear of the covered areas and of
        `avoid` (output boxes)."""
        x, y, w, h = box
        k, (cx, cy) = self.k, self.crop
        region = _Region.covering(
            x * k - cx, y * k - cy, (x + w) * k - cx, (y + h) * k - cy, self.width, self.height
        )
        try:
            fitted = self.safe.fit(region.box, self.width, self.height, avoid)
        except SafeAreaError as exc:
            raise AvatarError(
                f"{self.pack.directory}: layouts.{self.layout.name}.{what}: {exc}"
            ) from None
        return _Region(*fitted)

    def _backdrop(self) -> np.ndarray:
        """The layout's background with its decorations and title board, at the output size."""
        layout, k = self.layout, self.k
        lw, lh = layout.size
        scaled = (round(lw * k), round(lh * k))
        shrinking = scaled[0] < lw
        resized = cv2.resize(
            layout.background.astype(np.float32) / 255.0,
            scaled,
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC,
        )
        x0, y0 = self.crop
        out = np.clip(resized[y0 : y0 + self.height, x0 : x0 + self.width], 0.0, 1.0)
        for placed in layout.decorations:
            x, y, w, h = placed.box
            target = _Region.covering(
                x * k - x0, y * k - y0, (x + w) * k - x0, (y + h) * k - y0, self.width, self.height
            )
            out = self._paint(out, placed, target)
        if layout.title is not None and self.title_box is not None:
            out = self._paint(out, layout.title, self.title_box)
        return out

    def _paint(self, out: np.ndarray, placed: Placed, target: _Region) -> np.ndarray:
        """`placed` scaled to fit inside `target` (proportions kept, centred), laid over `out`."""
        ih, iw = placed.image.shape[:2]
        scale = min(target.w / iw, target.h / ih)
        w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
        layer = cv2.resize(
            _premultiply(placed.image),
            (w, h),
            interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC,
        )
        x = target.x + (target.w - w) // 2
        y = target.y + (target.h - h) // 2
        left, top = max(0, x), max(0, y)
        right, bottom = min(self.width, x + w), min(self.height, y + h)
        if right <= left or bottom <= top:
            return out
        cut = layer[top - y : bottom - y, left - x : right - x]
        out = out.copy()
        out[top:bottom, left:right] = self._over(out[top:bottom, left:right], cut)
        return out

    def _place(self, layer: np.ndarray) -> np.ndarray:
        """A still layer of the host's canvas (the desk) placed on the output.

        Its edges carry on past the host's canvas, so where a layout shows more floor than the
        canvas holds (portrait), the desk's front runs on down to the frame's foot."""
        matrix = np.array(
            [
                [self.sx, 0.0, 0.5 * self.sx - 0.5 + self.offset[0]],
                [0.0, self.sy, 0.5 * self.sy - 0.5 + self.offset[1]],
            ]
        )
        placed: np.ndarray = cv2.warpAffine(
            layer,
            matrix,
            (self.width, self.height),
            flags=self.interpolation,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return np.clip(placed, 0.0, 1.0)

    # -- poses

    def pose_steps(self, max_breath: int, max_lean: int) -> tuple[int, int]:
        """How many breath heights and leans to precompose: about one per output pixel of travel."""
        motion = self.pack.motion
        breath_px = motion.breath * self.sy
        lean_px = motion.sway * self.sx
        return (min(max_breath, round(2 * breath_px) + 1), min(max_lean, round(2 * lean_px) + 1))

    def poses(self, breath_steps: int, lean_steps: int) -> list[np.ndarray]:
        """Canvas → output affines (pixel indices), breath-major, matching AvatarRenderer._pose."""
        motion = self.pack.motion
        ax, ay = self.pack.anchor
        reach = max(1.0, ay - self.body_box[1])  # anchor to the crown, in canvas pixels
        max_angle = motion.sway / reach
        scale = np.array(
            [
                [self.sx, 0.0, 0.5 * self.sx - 0.5 + self.offset[0]],
                [0.0, self.sy, 0.5 * self.sy - 0.5 + self.offset[1]],
            ]
        )
        pivot = scale @ np.array([ax, ay, 1.0])
        matrices = []
        for b in range(breath_steps):
            rise = _spread(b, breath_steps) * motion.breath * self.sy
            for step in range(lean_steps):
                angle = _spread(step, lean_steps) * max_angle
                cos, sin = math.cos(angle), math.sin(angle)
                rotate = np.array([[cos, -sin], [sin, cos]])
                linear = rotate @ scale[:, :2]
                offset = rotate @ (scale[:, 2] - pivot) + pivot + np.array([0.0, -rise])
                matrices.append(np.hstack([linear, offset[:, None]]))
        return matrices

    # -- regions

    def sprite_region(self, poses: list[np.ndarray], box: tuple[int, int, int, int]) -> _Region:
        x, y, w, h = box
        return self._union(poses, (x, y, x + w, y + h), pad=2)

    def character_region(self, poses: list[np.ndarray]) -> _Region:
        """Where any pose can show the body over the background, foreground excluded."""
        reach = self._union(poses, self.body_box, pad=3)
        if reach.w == 0 or reach.h == 0:
            raise AvatarError(f"{self.pack.directory}: the body is outside the frame")
        visible = np.zeros((reach.h, reach.w), dtype=bool)
        for matrix in poses:
            alpha = self._warp(self.body[..., 3], matrix, reach)
            if self.foreground is not None:
                alpha = alpha * (1.0 - self.foreground[reach.luma][..., 3])
            visible |= alpha > 1.0 / 512.0
        rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
        if rows.size == 0:
            raise AvatarError(f"{self.pack.directory}: the foreground hides the whole body")
        return _Region.covering(
            reach.x + cols[0],
            reach.y + rows[0],
            reach.x + cols[-1] + 1,
            reach.y + rows[-1] + 1,
            self.width,
            self.height,
        )

    # -- composition

    def base_yuv(self) -> Planes:
        return rgb_to_yuv420(self._over(self.background, self.foreground))

    def compose(
        self,
        matrix: np.ndarray,
        region: _Region,
        box: tuple[int, int, int, int] | None = None,
        sprite: np.ndarray | None = None,
    ) -> Planes:
        """`region` of the frame in this pose: background, body (`sprite` at `box`), foreground."""
        if sprite is None:
            source, origin = self.body, (0, 0)
        else:
            assert box is not None  # a sprite always comes with its box
            source, origin = self._body_with(sprite, box, matrix, region)
        shifted = matrix.copy()
        shifted[:, 2] += matrix[:, :2] @ np.array(origin, dtype=np.float64)
        layer = self._warp(source, shifted, region)
        foreground = None if self.foreground is None else self.foreground[region.luma]
        return rgb_to_yuv420(self._over(self.background[region.luma], layer, foreground))

    def _body_with(
        self,
        sprite: np.ndarray,
        box: tuple[int, int, int, int],
        matrix: np.ndarray,
        region: _Region,
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """A canvas crop of the body with the sprite laid over it, blurred like the body."""
        inverse = cv2.invertAffineTransform(matrix)
        x0, y0, x1, y1 = self._project(
            inverse, (region.x, region.y, region.x + region.w, region.y + region.h)
        )
        cw, ch = self.pack.size
        m = self.margin
        bx, by, bw, bh = box
        # The crop holds the whole sprite even where the frame's edge cuts the region short.
        left, top = max(0, min(bx, math.floor(x0) - m)), max(0, min(by, math.floor(y0) - m))
        right = min(cw, max(bx + bw, math.ceil(x1) + m))
        bottom = min(ch, max(by + bh, math.ceil(y1) + m))
        crop = _premultiply(self.pack.body[top:bottom, left:right])
        target = crop[by - top : by - top + bh, bx - left : bx - left + bw]
        target[...] = self._over(target, _premultiply(sprite))
        return self._prefilter(crop), (left, top)

    def _warp(self, layer: np.ndarray, matrix: np.ndarray, region: _Region) -> np.ndarray:
        shifted = matrix.copy()
        shifted[:, 2] -= (region.x, region.y)
        return cv2.warpAffine(
            layer,
            shifted,
            (region.w, region.h),
            flags=self.interpolation,
            borderMode=cv2.BORDER_REPLICATE,
        )

    @staticmethod
    def _over(under: np.ndarray, *layers: np.ndarray | None) -> np.ndarray:
        """Stack premultiplied RGBA `layers`, bottom first, over `under` (RGB or RGBA)."""
        out = under
        for layer in layers:
            if layer is None:
                continue
            alpha = np.clip(layer[..., 3:4], 0.0, 1.0)
            colour = np.clip(layer[..., :3], 0.0, alpha)
            if out.shape[-1] == 4:
                out = np.concatenate(
                    [colour + out[..., :3] * (1 - alpha), alpha + out[..., 3:4] * (1 - alpha)],
                    axis=-1,
                )
            else:
                out = colour + out * (1 - alpha)
        return out

    def _prefilter(self, layer: np.ndarray) -> np.ndarray:
        if self.sigma < 0.05:
            return layer
        return cv2.GaussianBlur(layer, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE)

    def _union(self, poses: list[np.ndarray], rect: _Rect, *, pad: int) -> _Region:
        xs, ys = [], []
        for matrix in poses:
            x0, y0, x1, y1 = self._project(matrix, rect)
            xs += [x0, x1]
            ys += [y0, y1]
        return _Region.covering(
            min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad, self.width, self.height
        )

    @staticmethod
    def _project(matrix: np.ndarray, rect: _Rect) -> _Rect:
        x0, y0, x1, y1 = rect
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64)
        mapped = corners @ np.asarray(matrix, dtype=np.float64).T
        return (mapped[:, 0].min(), mapped[:, 1].min(), mapped[:, 0].max(), mapped[:, 1].max())


def _yuv_overlay(rgba: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], Planes]:
    """RGBA uint8 (even size) as x256 integer alpha (of Y, of chroma) and premultiplied Y, U,
    V, ready for `_blend`."""
    cut = cv2.cvtColor(rgba, cv2.COLOR_RGBA2mRGBA).astype(np.float32)
    h, w = cut.shape[:2]
    # INTER_AREA at exactly half size is the 2x2 mean that yuv420p chroma needs.
    quad = cv2.resize(cut, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    full = (cut.reshape(-1, 4) @ _OVERLAY_LUMA.T).reshape(h, w, 2)
    half = (quad.reshape(-1, 4) @ _OVERLAY_CHROMA.T).reshape(h // 2, w // 2, 3)
    fixed = (_to_uint16(full[..., 1]), _to_uint16(half[..., 2]))
    premultiplied = (_to_uint16(full[..., 0]), _to_uint16(half[..., 0]), _to_uint16(half[..., 1]))
    return fixed, premultiplied


def _blend(
    out: Planes, local: _Region, alpha: tuple[np.ndarray, np.ndarray], premultiplied: Planes
) -> None:
    """Lay an overlay from `_yuv_overlay` over `out` (planes) at `local`, in place."""
    for plane, (sl, a, pre) in zip(
        out,
        (
            (local.luma, alpha[0], premultiplied[0]),
            (local.chroma, alpha[1], premultiplied[1]),
            (local.chroma, alpha[1], premultiplied[2]),
        ),
        strict=True,
    ):
        under = plane[sl].astype(np.uint16)
        plane[sl] = ((under * (256 - a) + pre) >> 8).astype(np.uint8)


def _to_uint16(plane: np.ndarray) -> np.ndarray:
    rounded: np.ndarray = np.rint(plane)
    return rounded.astype(np.uint16)


def _premultiply(rgba: np.ndarray) -> np.ndarray:
    layer = rgba.astype(np.float32) / 255.0
    layer[..., :3] *= layer[..., 3:4]
    return layer


def _spread(step: int, steps: int) -> float:
    """Step i of n evenly over [-1, 1] (0 for a single step)."""
    return 0.0 if steps <= 1 else 2.0 * step / (steps - 1) - 1.0
