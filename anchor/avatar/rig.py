"""Rig a face photo into a `kind: photo` avatar pack (`anchor avatar build`).

The photo is searched once with mediapipe's face mesh (478 landmarks); from them we keep only
what animation needs, in design-canvas pixels: the lip contours (outer and inner), the jaw
and chin, the eyelid contours and a lid skin tone sampled from the photo, and the neck point
the idle sway pivots about. They are written as plain numbers to `rig.yaml`, so an operator can
read and nudge them; the renderer side (`anchor.avatar.photo`) never needs mediapipe.

mediapipe is an optional extra (about 1 GB with its dependencies): it is imported here, only
when a photo is rigged, with an install hint when it is missing.

The photo is framed on a 16:9 canvas the way a presenter is framed: face centred a little
above the middle, a free band at the bottom for the caption box. Where the photo does not
cover the canvas at that framing, a blurred, enlarged copy of it fills the rest.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

from anchor.avatar.loader import load_pack
from anchor.avatar.pack import MANIFEST, AvatarError

CANVAS = (1280, 720)
CAPTION = (160, 604, 960, 100)
RIG_FILE = "rig.yaml"
PHOTO_FILE = "photo.png"
MOUTH_LEVELS = 6
# Forehead-to-chin height, in photo pixels, below which the face is too blurry once enlarged.
MIN_FACE_HEIGHT = 96
# Where the face lands on the canvas: forehead-to-chin height, and its centre.
FACE_HEIGHT = 0.40 * CANVAS[1]
FACE_CENTRE = (0.5 * CANVAS[0], 0.42 * CANVAS[1])
INSTALL_HINT = (
    "rigging a photo needs mediapipe, an optional extra: "
    "pip install 'anchor[rig]' (in a checkout, ./anchor.sh avatar build ... installs it)"
)

# mediapipe face-mesh landmark indices (canonical face model), each contour corner to corner.
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
LEFT_BROW_LOWER = (285, 295, 282, 283, 276)
FOREHEAD, CHIN, NOSE_BOTTOM = 10, 152, 2
JAW_RIGHT, JAW_LEFT = 172, 397

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_photo_pack(
    photo: str | Path,
    name: str,
    avatars_dir: str | Path,
    *,
    force: bool = False,
    progress: Progress = _stderr,
) -> Path:
    """Rig `photo` into `avatars_dir/name/` and return that folder; `AvatarError` on any defect.

    An existing pack is only replaced with `force`, and only once the new one is complete, so a
    failed build never destroys a working avatar.
    """
    photo = Path(photo)
    if not name or name != Path(name).name or name in {".", ".."}:
        raise AvatarError(f"avatar name {name!r}: expected a plain folder name")
    target = Path(avatars_dir) / name
    if target.exists() and not force:
        raise AvatarError(f"{target}: already exists (use --force to replace it)")
    image = read_photo(photo)
    progress(f"finding the face in {photo}…")
    landmarks = find_face(image, photo)
    progress("framing the photo and building the rig…")
    canvas, placed = frame_photo(image, landmarks)
    rig = face_rig(canvas, placed)
    staging = target.with_name(f".{name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        Image.fromarray(canvas).save(staging / PHOTO_FILE, optimize=True)
        _write_yaml(staging / RIG_FILE, RIG_HEADER, rig)
        _write_yaml(staging / MANIFEST, MANIFEST_HEADER, _manifest(name, photo, rig))
        progress("building mouth shapes…")

        load_pack(staging)  # the pack must load before it replaces anything
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def read_photo(path: Path) -> np.ndarray:
    """The photo as RGB uint8 (alpha flattened onto white, EXIF rotation applied)."""
    if not path.is_file():
        raise AvatarError(f"{path}: no such file")
    try:
        from PIL import ImageOps

        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            if image.mode in {"RGBA", "LA", "P"}:
                image = image.convert("RGBA")
                white = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, image)
            return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise AvatarError(f"{path}: not a readable image ({exc})") from exc


def find_face(image: np.ndarray, path: Path) -> np.ndarray:
    """The one face's 478 landmarks in photo pixels, shape (478, 2).

    The face mesh's detector is tuned for faces filling a good part of the picture; when the
    whole photo shows none, overlapping half-size tiles are searched too, so a presenter shot
    from further away is still found (and then judged by size).
    """
    # mediapipe's native logging and protobuf's deprecation notice say nothing an operator
    # can act on; keep them off the build's output.
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        from mediapipe.python.solutions import face_mesh
    except ImportError as exc:
        raise AvatarError(f"{INSTALL_HINT} ({exc})") from exc
    faces: list[np.ndarray] = []
    with (
        warnings.catch_warnings(),
        face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=True) as mesh,
    ):
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype")
        for x, y, crop in _views(image):
            found = mesh.process(np.ascontiguousarray(crop)).multi_face_landmarks or []
            h, w = crop.shape[:2]
            for face in found:
                points = np.array([[p.x * w + x, p.y * h + y] for p in face.landmark])
                if not any(_same_face(points, seen) for seen in faces):
                    faces.append(points)
            if faces and x == 0 and y == 0 and crop.shape == image.shape:
                break
    if not faces:
        raise AvatarError(f"{path}: no face found (use a photo with one face, seen from the front)")
    if len(faces) > 1:
        raise AvatarError(f"{path}: {len(faces)} faces found; the photo must show exactly one")
    points = faces[0]
    height = _face_height(points)
    if height < MIN_FACE_HEIGHT:
        raise AvatarError(
            f"{path}: the face is too small: {height:.0f} px from forehead to chin, "
            f"at least {MIN_FACE_HEIGHT} px needed (use a closer or larger photo)"
        )
    return points


def _views(image: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """The whole photo, then overlapping tiles of half its shorter side."""
    yield 0, 0, image
    h, w = image.shape[:2]
    tile = min(h, w) // 2
    if tile < 2 * MIN_FACE_HEIGHT:
        return
    step = tile // 2
    for y in range(0, max(1, h - tile + step), step):
        for x in range(0, max(1, w - tile + step), step):
            yield x, y, image[y : y + tile, x : x + tile]


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.linalg.norm(a[1] - b[1])) < 0.25 * max(_face_height(a), _face_height(b))


def _face_height(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[CHIN] - points[FOREHEAD]))


def frame_photo(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo on the canvas (RGB uint8) and the landmarks moved with it."""
    import cv2

    h, w = image.shape[:2]
    cw, ch = CANVAS
    face_scale = FACE_HEIGHT / _face_height(landmarks)
    cover = max(cw / w, ch / h)
    # Enlarge a little past the ideal face size rather than leave part of the canvas unfilled.
    scale = max(face_scale, cover) if cover <= 1.25 * face_scale else face_scale
    centre = (landmarks[FOREHEAD] + landmarks[CHIN]) / 2.0
    ox, oy = FACE_CENTRE[0] - centre[0] * scale, FACE_CENTRE[1] - centre[1] * scale
    sw, sh = w * scale, h * scale
    # Slide the photo to cover the canvas when that moves the face only a little.
    if sw >= cw and abs(_clamp(ox, cw - sw, 0.0) - ox) < 0.2 * cw:
        ox = _clamp(ox, cw - sw, 0.0)
    if sh >= ch and abs(_clamp(oy, ch - sh, 0.0) - oy) < 0.06 * ch:
        oy = _clamp(oy, ch - sh, 0.0)
    matrix = np.array([[scale, 0.0, ox], [0.0, scale, oy]])
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    placed = cv2.warpAffine(image, matrix, CANVAS, flags=interpolation)
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), matrix, CANVAS, flags=cv2.INTER_LINEAR)
    if inside.min() < 255:
        fill = cv2.resize(image, None, fx=cover, fy=cover, interpolation=cv2.INTER_AREA)
        fh, fw = fill.shape[:2]
        fill = fill[(fh - ch) // 2 : (fh - ch) // 2 + ch, (fw - cw) // 2 : (fw - cw) // 2 + cw]
        fill = (cv2.GaussianBlur(fill, (0, 0), 24) * 0.8).astype(np.float32)
        alpha = cv2.GaussianBlur(cv2.erode(inside, np.ones((9, 9), np.uint8)), (0, 0), 4)
        alpha = (alpha.astype(np.float32) / 255.0)[..., None]
        placed = np.rint(placed * alpha + fill * (1.0 - alpha)).astype(np.uint8)
    moved = landmarks * scale + np.array([ox, oy])
    return np.ascontiguousarray(placed), moved


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


@dataclass(frozen=True, slots=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float

    def clipped(self) -> list[int]:
        x0, y0 = max(0, math.floor(self.left)), max(0, math.floor(self.top))
        x1, y1 = min(CANVAS[0], math.ceil(self.right)), min(CANVAS[1], math.ceil(self.bottom))
        return [x0, y0, x1 - x0, y1 - y0]


def face_rig(canvas: np.ndarray, points: np.ndarray) -> dict[str, Any]:
    """Everything the photo reader needs, as plain numbers in canvas pixels."""

    def contour(indices: Sequence[int]) -> list[list[float]]:
        return [[round(float(points[i][0]), 1), round(float(points[i][1]), 1)] for i in indices]

    corners = points[[61, 291]]
    mouth_width = float(np.linalg.norm(corners[1] - corners[0]))
    mouth_centre = corners.mean(axis=0)
    chin = points[CHIN]
    lower_lip = points[17]
    max_gap = 0.34 * mouth_width
    reach = max(0.95 * mouth_width, 0.55 * abs(points[JAW_LEFT][0] - points[JAW_RIGHT][0]))
    mouth_box = _Box(
        mouth_centre[0] - reach,
        (points[NOSE_BOTTOM][1] + points[0][1]) / 2.0,
        mouth_centre[0] + reach,
        chin[1] + max(3.2 * 0.8 * max_gap, 0.6 * (chin[1] - lower_lip[1])),
    )
    eye_width = float(np.linalg.norm(points[133] - points[33]))
    brow = min(points[list(RIGHT_BROW_LOWER + LEFT_BROW_LOWER)][:, 1])
    lids = points[list(RIGHT_EYE_LOWER + LEFT_EYE_LOWER)][:, 1]
    eyes_box = _Box(
        points[33][0] - 0.45 * eye_width,
        brow,
        points[263][0] + 0.45 * eye_width,
        min(lids.max() + 0.35 * eye_width, mouth_box.top - 2),
    )
    neck = chin + np.array([0.0, 0.45 * _face_height(points)])
    return {
        "face_height": round(_face_height(points), 1),
        "anchor": [round(float(neck[0]), 1), round(float(min(neck[1], CANVAS[1])), 1)],
        "mouth": {
            "box": mouth_box.clipped(),
            "max_gap": round(max_gap, 1),
            "outer_upper": contour(LIPS_OUTER_UPPER),
            "outer_lower": contour(LIPS_OUTER_LOWER),
            "inner_upper": contour(LIPS_INNER_UPPER),
            "inner_lower": contour(LIPS_INNER_LOWER),
            "chin": contour([CHIN])[0],
        },
        "eyes": {
            "box": eyes_box.clipped(),
            "lid_tone": _lid_tone(canvas, points),
            "right": {"upper": contour(RIGHT_EYE_UPPER), "lower": contour(RIGHT_EYE_LOWER)},
            "left": {"upper": contour(LEFT_EYE_UPPER), "lower": contour(LEFT_EYE_LOWER)},
        },
    }


def _lid_tone(canvas: np.ndarray, points: np.ndarray) -> list[int]:
    """The colour of a shut lid: the skin just under the eyes, a shade darker.

    The visible lid itself is a poor sample (lashes, shadow, make-up); under-eye skin is what a
    closed lid looks like in most photos.
    """
    samples = []
    for lower in (RIGHT_EYE_LOWER, LEFT_EYE_LOWER):
        lid = points[list(lower)]
        width = float(lid[:, 0].max() - lid[:, 0].min())
        for x, y in lid[2:-2]:
            y0, y1 = int(y + 0.12 * width), int(y + 0.3 * width)
            if 0 <= y0 < y1 <= canvas.shape[0] and 0 <= int(x) < canvas.shape[1]:
                samples.append(canvas[y0:y1, int(x)])
    if not samples:
        return [200, 160, 140]
    return [int(0.93 * v) for v in np.median(np.concatenate(samples), axis=0)]


def _manifest(name: str, photo: Path, rig: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "photo",
        "name": name,
        "size": list(CANVAS),
        "photo": PHOTO_FILE,
        "rig": RIG_FILE,
        "source": photo.name,
        "anchor": rig["anchor"],
        "caption": list(CAPTION),
        "mouth_levels": MOUTH_LEVELS,
        "motion": {"breath": 1.0, "sway": 0.8},
    }


MANIFEST_HEADER = (
    "# A photo avatar made by `anchor avatar build`; the face rig is in rig.yaml.\n"
    "# caption: x, y, w, h of the caption box; motion: idle rise and lean in canvas px.\n"
)
RIG_HEADER = (
    "# Face rig found by mediapipe face mesh, in canvas pixels [x, y].\n"
    "# Contours run corner to corner. mouth.max_gap: lip gap when fully open.\n"
    "# eyes.lid_tone: RGB of the closed lid.\n"
    "# Edit with care; `anchor avatar preview` shows the result.\n"
)


def _write_yaml(path: Path, header: str, data: dict[str, Any]) -> None:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)
    path.write_text(header + body, encoding="utf-8")
