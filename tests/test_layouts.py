"""Layouts per aspect ratio and the platforms' covered areas, as a viewer's phone shows them.

Portrait is how Douyin, WeChat Channels and Kuaishou reach workers; their apps cover the top,
the bottom third and a right-hand column. These tests render and stream every supported shape
and look at the pixels: the title board and the caption lie wholly in the frame and clear of
each platform's covered areas, the mouth moves with the speech, and a shape the pack cannot
compose is refused with a message that says which sizes work.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import av
import numpy as np
import pytest
from configs import write_config
from PIL import Image

from anchor.avatar.layoutsheet import layout_sheet
from anchor.avatar.loader import load_pack
from anchor.avatar.pack import AvatarError, AvatarPack
from anchor.avatar.renderer import AvatarRenderer, yuv420p_to_rgb
from anchor.config import SafeAreaPreset
from anchor.media.safearea import PORTRAIT_PRESETS, PRESETS, SafeArea

ROOT = Path(__file__).resolve().parent.parent
FPS, RATE = 30, 48000
SENTENCE = "职工互助保障住院理赔，出院后把材料交给单位工会。"
PORTRAIT = [(720, 1280), (1080, 1920)]
LANDSCAPE = [(1280, 720), (1920, 1080)]


@pytest.fixture(scope="module")
def pack() -> AvatarPack:
    return load_pack(ROOT / "avatars" / "default")


def _rgb(renderer: AvatarRenderer, frame: np.ndarray) -> np.ndarray:
    return yuv420p_to_rgb(frame, renderer.width, renderer.height).astype(np.int16)


def _changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box (x, y, w, h) of the pixels that differ visibly between two frames."""
    changed = np.abs(a - b).max(axis=2) > 12
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    assert rows.size, "nothing changed"
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def _cases() -> list[tuple[int, int, str]]:
    """Every platform at 720p portrait; each other size once (boxes scale with the frame)."""
    cases = [(720, 1280, preset) for preset in ("none", *PORTRAIT_PRESETS)]
    cases += [(1080, 1920, "douyin"), (1280, 720, "none"), (1280, 720, "bilibili")]
    return [*cases, (1920, 1080, "none"), (1080, 1080, "none")]


@pytest.mark.parametrize(("width", "height", "preset"), _cases())
def test_title_and_caption_are_drawn_clear_of_the_covered_areas(
    pack: AvatarPack, width: int, height: int, preset: str
) -> None:
    safe = SafeArea.preset(preset)
    renderer = AvatarRenderer(pack, width, height, fps=FPS, safe_area=safe, buffers=2)
    covered = safe.mask(width, height)

    # The caption: what a sentence changes on screen lies inside the caption box, in the frame
    # and on no covered pixel.
    bare = _rgb(renderer, renderer.render(0, 0.0, None))
    captioned = _rgb(renderer, renderer.render(0, 0.0, SENTENCE))
    drawn = _changed_box(bare, captioned)
    assert renderer.caption_box is not None
    assert _inside(drawn, renderer.caption_box), (drawn, renderer.caption_box)
    assert _inside(drawn, (0, 0, width, height))
    x, y, w, h = drawn
    assert not covered[y : y + h, x : x + w].any(), f"caption under the {preset} app's controls"
    assert drawn[2] > 0.4 * renderer.caption_box[2], "the sentence should fill most of the band"

    # The title board: the same frame composed without it differs exactly where it is drawn.
    layout = renderer.layout
    untitled = dataclasses.replace(
        pack, layouts=tuple(dataclasses.replace(lay, title=None) for lay in pack.layouts)
    )
    plain = AvatarRenderer(untitled, width, height, fps=FPS, safe_area=safe, buffers=1)
    board = _changed_box(_rgb(plain, plain.render(0, 0.0, None)), bare)
    assert renderer.title_box is not None and layout.title is not None
    assert _inside(board, renderer.title_box), (board, renderer.title_box)
    x, y, w, h = board
    assert not covered[y : y + h, x : x + w].any(), f"title under the {preset} app's controls"
    assert w > 0.5 * width if height > width else w > 0.3 * width, "the title should read large"

    # Caption text grows with the frame: its band is a fixed share of the frame's height.
    assert renderer.caption_box[3] >= 0.09 * height


@pytest.mark.parametrize(("width", "height"), [*PORTRAIT, *LANDSCAPE, (1080, 1080)])
def test_the_mouth_moves_in_every_layout(pack: AvatarPack, width: int, height: int) -> None:
    renderer = AvatarRenderer(pack, width, height, fps=FPS, captions=False, buffers=2)
    shut = _rgb(renderer, renderer.render(0, 0.0, None))
    open_ = _rgb(renderer, renderer.render(0, 1.0, None))
    moved = _changed_box(shut, open_)
    assert _inside(moved, renderer.mouth_box)
    mx, my, mw, mh = renderer.mouth_box
    # The mouth is drawn at the layout's scale: bigger in portrait, where the host is closer.
    assert mw >= 0.055 * min(width, height) * (1.2 if height > width else 1.0)
    # and it stays where the viewer sees it: in the frame, above the caption.
    assert my + mh <= renderer.caption_box[1]


def test_a_custom_covered_area_moves_the_caption(pack: AvatarPack) -> None:
    """An operator adds the area where their app shows a shopping bar: the caption moves up."""
    plain = AvatarRenderer(pack, 720, 1280, fps=FPS, captions=False)
    x, y, w, h = plain.caption_box
    bar = (0.0, (y + h / 2) / 1280, 1.0, (y + h + 10) / 1280)
    safe = SafeArea.preset("douyin", [bar])
    moved = AvatarRenderer(pack, 720, 1280, fps=FPS, captions=False, safe_area=safe)
    assert safe.clears(moved.caption_box, 720, 1280)
    assert moved.caption_box != plain.caption_box
    # It does not land on the host's face either.
    for face in (moved.mouth_box, moved.eye_box):
        fx, fy, fw, fh = face
        cx, cy, cw, ch = moved.caption_box
        assert cx + cw <= fx or fx + fw <= cx or cy + ch <= fy or fy + fh <= cy


def test_presets_in_the_config_match_the_renderer() -> None:
    assert set(get_args(SafeAreaPreset)) == set(PRESETS)


def test_a_pack_without_a_portrait_layout_is_refused_by_name(
    pack: AvatarPack, tmp_path: Path
) -> None:
    landscape_only = dataclasses.replace(pack, layouts=pack.layouts[:1])
    with pytest.raises(AvatarError, match=r"720x1280 \(9:16\) has no layout.*16:9 \(1280x720"):
        AvatarRenderer(landscape_only, 720, 1280, fps=FPS)


def test_an_unsupported_size_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, width=1000, height=800)
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "run", "--config", str(config), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    message = run.stderr
    assert "Traceback" not in message
    assert f"{config}:" in message and "video.width" in message and "video.height" in message
    for works in ("1280x720", "1920x1080", "720x1280", "1080x1920", "1080x1080"):
        assert works in message, message


def test_an_unknown_platform_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, width=720, height=1280, safe_area="tiktok")
    run = subprocess.run(
        [sys.executable, "-m", "anchor", "run", "--config", str(config), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    assert "video.safe_area" in run.stderr and "douyin" in run.stderr, run.stderr


def test_the_layout_sheet_shows_every_layout_and_platform(pack: AvatarPack, tmp_path: Path) -> None:
    out = tmp_path / "layouts.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "anchor",
            "avatar",
            "preview",
            "default",
            "--layouts",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(np.int16)
    expected = layout_sheet(pack).astype(np.int16)
    assert sheet.shape == expected.shape
    # One cell per platform for portrait (4), two for landscape, one square: 3 rows.
    assert sheet.shape[1] >= 4 * 360 and sheet.shape[0] >= 640 + 360 + 480
    # The covered areas are tinted red over the portrait cells.
    reddish = (sheet[..., 0] > sheet[..., 1] + 60) & (sheet[..., 0] > sheet[..., 2] + 60)
    assert reddish.mean() > 0.05


# ------------------------------------------------------------------ streams, decoded


def _probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("width", "height", "preset"),
    [
        (1080, 1920, "douyin"),
        (720, 1280, "wechat_channels"),
        (1280, 720, "none"),
        (1920, 1080, "none"),
    ],
)
def test_every_shape_streams_with_speech_in_sync(
    pack: AvatarPack, tmp_path: Path, width: int, height: int, preset: str
) -> None:
    seconds = 8
    out = tmp_path / "show.ts"
    config = write_config(tmp_path, width=width, height=height, safe_area=preset)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "anchor",
            "run",
            "--config",
            str(config),
            "--fast",
            "--duration",
            f"{seconds}s",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    info = _probe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", width, height)
    assert video["r_frame_rate"] == "30/1"
    assert (audio["codec_name"], audio["sample_rate"]) == ("aac", "48000")
    assert abs(int(video["nb_read_packets"]) - seconds * FPS) <= 1

    renderer = AvatarRenderer(
        pack, width, height, fps=FPS, captions=False, safe_area=SafeArea.preset(preset)
    )
    x, y, w, h = renderer.mouth_box
    pad = max(6, w // 6)
    # Around the mouth, but never into the caption band below it (its dark band comes and goes
    # with the sentences).
    bottom = min(y + h + pad, renderer.caption_box[1])
    dark, samples = [], []
    with av.open(str(out)) as container:
        for frame in container.decode(video=0):
            gray = frame.to_ndarray(format="gray")
            dark.append(int((gray[y - pad : bottom, x - pad : x + w + pad] < 90).sum()))
    with av.open(str(out)) as container:
        for chunk in container.decode(audio=0):
            samples.append(chunk.to_ndarray().mean(axis=0))
    audio_samples = np.concatenate(samples).astype(np.float32)
    assert abs(len(audio_samples) / RATE - seconds) < 0.1
    per_frame = RATE // FPS
    usable = min(len(dark), len(audio_samples) // per_frame)
    envelope = np.sqrt(
        (audio_samples[: usable * per_frame].reshape(usable, per_frame) ** 2).mean(axis=1)
    )
    mouth = np.asarray(dark[:usable], dtype=np.float64)
    assert (envelope > 0.03).sum() > 2 * FPS, "two seconds of clear speech at least"
    assert mouth.std() > 0, "the mouth should move"

    # Lip sync: the mouth's opening follows the audio envelope; the best lag is 0 ± 1 frame.
    a = (mouth - mouth.mean()) / mouth.std()
    e = (envelope - envelope.mean()) / envelope.std()
    lags = range(-5, 6)
    scores = [
        float(np.mean(a[max(0, k) : usable + min(0, k)] * e[max(0, -k) : usable - max(0, k)]))
        for k in lags
    ]
    best = list(lags)[int(np.argmax(scores))]
    assert abs(best) <= 1, dict(zip(lags, scores, strict=True))
    assert max(scores) > 0.4, "the mouth should clearly follow the speech"
