"""The avatar as a viewer sees it: pixels of rendered frames, and the errors an operator reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from anchor.avatar import AvatarError, AvatarPack, AvatarRenderer
from anchor.avatar import captions as captions_module
from anchor.avatar.captions import CaptionFontError, CaptionPainter, find_cjk_font
from anchor.avatar.loader import load_pack
from anchor.avatar.renderer import yuv420p_to_rgb
from anchor.messages import MouthShape

DEFAULT_PACK = Path(__file__).resolve().parent.parent / "avatars" / "default"
W, H, FPS = 320, 180, 25
SENTENCE = "大家好，欢迎来到职工服务直播间！"


@pytest.fixture(scope="module")
def pack() -> AvatarPack:
    return load_pack(DEFAULT_PACK)


@pytest.fixture(scope="module")
def renderer(pack: AvatarPack) -> AvatarRenderer:
    return AvatarRenderer(pack, W, H, fps=FPS, seed=7)


def luma(frame: np.ndarray, width: int = W, height: int = H) -> np.ndarray:
    return frame.reshape(-1)[: width * height].reshape(height, width)


def region(plane: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return plane[y : y + h, x : x + w].astype(np.int16)


def outside(plane: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    mask = np.ones(plane.shape, dtype=bool)
    mask[y : y + h, x : x + w] = False
    return plane[mask]


# ---------------------------------------------------------------- frames


def test_frame_is_a_yuv420p_picture_the_encoder_accepts(renderer: AvatarRenderer) -> None:
    frame = renderer.render(0, 0.0, None)
    assert frame.shape == (H * 3 // 2, W) and frame.dtype == np.uint8
    video = av.VideoFrame.from_ndarray(frame, format="yuv420p")
    assert (video.width, video.height) == (W, H)
    assert np.array_equal(video.to_ndarray(format="yuv420p"), frame)


def test_frame_shows_a_picture_not_a_blank(renderer: AvatarRenderer) -> None:
    rgb = yuv420p_to_rgb(renderer.render(0, 0.0, None), W, H)
    assert 60 < rgb.mean() < 220
    assert rgb.std() > 25
    # The union-red helmet is there: plenty of strongly red pixels.
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    assert red.sum() > 300


def test_open_mouth_changes_the_mouth_and_nothing_else(pack: AvatarPack) -> None:
    a = AvatarRenderer(pack, W, H, fps=FPS, seed=3)
    b = AvatarRenderer(pack, W, H, fps=FPS, seed=3)
    closed, opened = luma(a.render(40, 0.0, None)), luma(b.render(40, 1.0, None))
    box = a.mouth_box
    assert np.abs(region(closed, box) - region(opened, box)).mean() > 8
    assert np.array_equal(outside(closed, box), outside(opened, box))
    # An open mouth shows a dark opening that a closed smile does not.
    assert (region(opened, box) < 80).sum() >= (region(closed, box) < 80).sum() + 6


def test_same_inputs_give_the_same_pixels(pack: AvatarPack) -> None:
    a = AvatarRenderer(pack, W, H, fps=FPS, seed=11)
    b = AvatarRenderer(pack, W, H, fps=FPS, seed=11)
    for n in (0, 1, 57, 300, 301, 2000):
        mouth = (n % 7) / 6
        caption = SENTENCE if n % 2 else None
        assert np.array_equal(a.render(n, mouth, caption), b.render(n, mouth, caption))
    # Rendering a frame again, after others, reproduces it exactly (no hidden drift).
    first = a.render(123, 0.5, SENTENCE).copy()
    a.render(124, 0.1, None)
    a.render(9999, 1.0, "别的句子")
    assert np.array_equal(a.render(123, 0.5, SENTENCE), first)


def test_mouth_values_out_of_range_are_clamped(renderer: AvatarRenderer) -> None:
    box = renderer.mouth_box
    closed = region(luma(renderer.render(10, 0.0, None)), box)
    opened = region(luma(renderer.render(10, 1.0, None)), box)
    assert np.array_equal(region(luma(renderer.render(10, -3.0, None)), box), closed)
    assert np.array_equal(region(luma(renderer.render(10, float("nan"), None)), box), closed)
    assert np.array_equal(region(luma(renderer.render(10, 7.0, None)), box), opened)


def test_returned_frame_stays_valid_for_the_next_renders(pack: AvatarPack) -> None:
    r = AvatarRenderer(pack, W, H, fps=FPS, buffers=3)
    frame = r.render(0, 1.0, SENTENCE)
    kept = frame.copy()
    r.render(1, 0.0, None)
    r.render(2, 0.0, "另一句")
    assert np.array_equal(frame, kept)


# ---------------------------------------------------------------- idle life


def test_eyes_blink_within_ten_seconds(renderer: AvatarRenderer) -> None:
    blinking = [n for n in range(10 * FPS) if renderer.is_blinking(n)]
    assert blinking, "no blink in 10 s"
    open_frame = next(n for n in range(10 * FPS) if not renderer.is_blinking(n))
    box = renderer.eye_box

    def pupils(n: int) -> int:
        return int((region(luma(renderer.render(n, 0.0, None)), box) < 70).sum())

    open_pupils = pupils(open_frame)
    assert open_pupils > 20
    assert min(pupils(n) for n in blinking) < open_pupils * 0.5


def test_blinks_come_at_natural_intervals(renderer: AvatarRenderer) -> None:
    minute = [renderer.is_blinking(n) for n in range(60 * FPS)]
    starts = [n for n, b in enumerate(minute) if b and (n == 0 or not minute[n - 1])]
    assert 8 <= len(starts) <= 30
    lengths = []
    for start in starts:
        end = start
        while end < len(minute) and minute[end]:
            end += 1
        lengths.append(end - start)
    assert all(2 <= length <= 0.4 * FPS for length in lengths)


def test_only_the_character_moves(pack: AvatarPack) -> None:
    r = AvatarRenderer(pack, W, H, fps=FPS, buffers=1)
    frames = [luma(r.render(n, 0.0, None)).copy() for n in range(0, 12 * FPS, 5)]
    stack = np.stack(frames)
    changing = (stack != stack[0]).any(axis=0)
    assert changing.any(), "the host never moves"
    ys, xs = np.nonzero(changing)
    # Banner (top right) and the desk stay still: motion is confined to the host.
    assert xs.max() < W * 0.6 and ys.max() < H * 0.8


# ---------------------------------------------------------------- captions


def test_caption_draws_in_the_caption_area_only(pack: AvatarPack) -> None:
    r = AvatarRenderer(pack, W, H, fps=FPS, seed=5, buffers=1)
    plain = luma(r.render(20, 0.0, None)).copy()
    captioned = luma(r.render(20, 0.0, SENTENCE)).copy()
    box = r.caption_box
    assert np.abs(region(plain, box) - region(captioned, box)).mean() > 5
    assert np.array_equal(outside(plain, box), outside(captioned, box))
    # White text on the band: bright pixels appear in the caption area.
    assert (region(captioned, box) > 200).sum() > (region(plain, box) > 200).sum() + 30
    # When the sentence ends the caption goes away completely.
    assert np.array_equal(luma(r.render(20, 0.0, None)), plain)


def test_captions_can_be_switched_off(pack: AvatarPack) -> None:
    r = AvatarRenderer(pack, W, H, fps=FPS, captions=False, buffers=1)
    plain = r.render(5, 0.0, None).copy()
    assert np.array_equal(r.render(5, 0.0, SENTENCE), plain)


def _text_lines(rgba: np.ndarray) -> int:
    rows = (rgba[..., :3].min(axis=-1) > 200) & (rgba[..., 3] > 200)
    inked = rows.any(axis=1)
    return int(np.count_nonzero(inked[1:] & ~inked[:-1]) + inked[0])


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("你好！", 1),
        ("职工互助保障怎么申请理赔？请带好住院病历和费用清单，到所在单位工会办理。", 2),
        (
            "职工互助保障的理赔需要提交住院病历、费用清单和身份证明材料，由所在单位工会统一审核后"
            "报送市总工会，一般在十五个工作日内完成审批并把互助金发放到职工本人的银行账户。",
            2,
        ),
        ("Welcome to the union service channel. Ask us anything about your rights at work.", 2),
    ],
)
def test_captions_wrap_to_at_most_two_lines(text: str, lines: int) -> None:
    painter = CaptionPainter(find_cjk_font(), 940, 112)
    assert _text_lines(painter.paint(text)) == lines


def test_find_cjk_font_returns_a_font_file() -> None:
    assert find_cjk_font().is_file()


def test_missing_cjk_font_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captions_module, "CJK_FONT_PATHS", ())
    monkeypatch.setattr(captions_module.shutil, "which", lambda name: None)
    with pytest.raises(CaptionFontError, match="fonts-wqy-microhei"):
        find_cjk_font()


def test_unreadable_caption_font_is_reported(pack: AvatarPack, tmp_path: Path) -> None:
    bogus = tmp_path / "font.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(AvatarError, match="font.ttf"):
        AvatarRenderer(pack, W, H, fps=FPS, caption_font=str(bogus))


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(("width", "height"), [(640, 360), (1280, 720), (400, 400)])
def test_renders_at_other_sizes(pack: AvatarPack, width: int, height: int) -> None:
    r = AvatarRenderer(pack, width, height, fps=30)
    frame = r.render(0, 1.0, SENTENCE)
    assert frame.shape == (height * 3 // 2, width)
    for box in (r.mouth_box, r.eye_box, r.caption_box):
        x, y, w, h = box
        assert 0 <= x < x + w <= width and 0 <= y < y + h <= height
    assert luma(frame, width, height).std() > 25


def test_odd_frame_size_is_refused(pack: AvatarPack) -> None:
    with pytest.raises(ValueError, match="even"):
        AvatarRenderer(pack, 321, 180, fps=FPS)


# ---------------------------------------------------------------- pack validation


@pytest.fixture()
def pack_copy(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, target)
    return target


def edit_manifest(directory: Path, change) -> None:
    path = directory / "manifest.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_default_pack_is_valid(pack: AvatarPack) -> None:
    assert pack.kind == "sprite"
    assert pack.size == (1280, 720)
    assert len(pack.mouth.frames) >= 2 and len(pack.eyes.frames) >= 1


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(AvatarError, match="manifest.yaml"):
        load_pack(tmp_path)


def test_missing_file_names_file_and_field(pack_copy: Path) -> None:
    (pack_copy / "mouth_3.png").unlink()
    with pytest.raises(AvatarError, match=r"mouth\.frames\[3\].*mouth_3\.png"):
        load_pack(pack_copy)


def test_box_outside_canvas_names_the_field(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m["eyes"].update(box=[1200, 700, 136, 58]))
    with pytest.raises(AvatarError, match=r"eyes\.box.*outside"):
        load_pack(pack_copy)


def test_unreadable_png_names_the_file(pack_copy: Path) -> None:
    (pack_copy / "body.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    with pytest.raises(AvatarError, match=r"body.*body\.png.*cannot read"):
        load_pack(pack_copy)


def test_missing_key_names_the_key(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m["layouts"]["9:16"].pop("caption"))
    with pytest.raises(AvatarError, match="layouts.9:16.caption: missing key"):
        load_pack(pack_copy)


def test_sprite_of_wrong_size_names_file_and_size(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m["mouth"].update(box=[400, 334, 70, 44]))
    with pytest.raises(AvatarError, match=r"mouth_0\.png: size 72x44, expected 70x44"):
        load_pack(pack_copy)


def test_unknown_kind_lists_the_supported_ones(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m.update(kind="hologram"))
    with pytest.raises(AvatarError, match="kind.*hologram.*sprite"):
        load_pack(pack_copy)


def test_caption_over_the_mouth_is_refused(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m["layouts"]["16:9"].update(caption=[300, 300, 400, 100]))
    with pytest.raises(AvatarError, match=r"layouts\.16:9\.caption.*overlaps mouth\.box"):
        load_pack(pack_copy)


# ---------------------------------------------------------------- lip shapes


def _lips_extent(frame: np.ndarray, box: tuple[int, int, int, int], w: int, h: int):
    """Columns and rows of the mouth box where lips or the mouth's inside show (dark pixels)."""
    dark = region(luma(frame, w, h), box) < 120
    return int(dark.any(axis=0).sum()), int(dark.any(axis=1).sum())


def test_default_pack_draws_wide_and_round_mouths(pack: AvatarPack) -> None:
    assert set(pack.shapes) == {MouthShape.WIDE, MouthShape.ROUND}
    for sprites in pack.shapes.values():
        assert sprites.box == pack.mouth.box
        assert len(sprites.frames) == len(pack.mouth.frames)


def test_lip_shapes_look_spread_and_pursed(pack: AvatarPack) -> None:
    w, h = 640, 360
    r = AvatarRenderer(pack, w, h, fps=FPS, captions=False)
    box = r.mouth_box
    frames = {shape: r.render(40, 1.0, None, shape).copy() for shape in MouthShape}
    wide_w, wide_h = _lips_extent(frames[MouthShape.WIDE], box, w, h)
    round_w, round_h = _lips_extent(frames[MouthShape.ROUND], box, w, h)
    assert wide_w > round_w + 4, "a spread mouth is wider than a pursed one"
    assert round_h > wide_h + 2, "a pursed mouth is taller than a spread one"
    for a, b in [(MouthShape.OPEN, MouthShape.WIDE), (MouthShape.OPEN, MouthShape.ROUND)]:
        assert (
            np.abs(region(luma(frames[a], w, h), box) - region(luma(frames[b], w, h), box)).mean()
            > 4
        )
        assert np.array_equal(
            outside(luma(frames[a], w, h), box), outside(luma(frames[b], w, h), box)
        )


def test_closed_shape_shuts_the_mouth_however_loud(pack: AvatarPack) -> None:
    r = AvatarRenderer(pack, W, H, fps=FPS, captions=False)
    rest = luma(r.render(12, 0.0, None)).copy()
    for shape in MouthShape:
        assert np.array_equal(luma(r.render(12, 0.0, None, shape)), rest)
    assert np.array_equal(luma(r.render(12, 1.0, None, MouthShape.CLOSED)), rest)


def test_pack_without_shapes_draws_them_open(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m.pop("mouth_shapes"))
    plain = load_pack(pack_copy)
    assert plain.shapes == {}
    r = AvatarRenderer(plain, W, H, fps=FPS, captions=False)
    opened = luma(r.render(3, 0.8, None)).copy()
    for shape in (MouthShape.WIDE, MouthShape.ROUND):
        assert np.array_equal(luma(r.render(3, 0.8, None, shape)), opened)


def test_mouth_shape_with_wrong_frame_count_names_the_key(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m["mouth_shapes"]["round"]["frames"].pop())
    with pytest.raises(AvatarError, match=r"mouth_shapes\.round\.frames: expected 6 images"):
        load_pack(pack_copy)


def test_unknown_mouth_shape_names_the_key(pack_copy: Path) -> None:
    edit_manifest(pack_copy, lambda m: m["mouth_shapes"].update(smile={"frames": ["mouth_0.png"]}))
    with pytest.raises(AvatarError, match=r"mouth_shapes\.smile: unknown shape"):
        load_pack(pack_copy)
