"""Photo avatars: a real face photo rigged with mediapipe, animated, and previewed.

The astronaut portrait from scikit-image is rigged once per module (about a second); the
assertions look at rendered pixels and at the messages an operator reads.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import skimage.data
import yaml
from configs import write_config
from PIL import Image

from anchor.avatar import AvatarError, AvatarPack, AvatarRenderer
from anchor.avatar.loader import load_pack
from anchor.avatar.pack import Motion
from anchor.avatar.preview import CLIP_SECONDS, contact_sheet
from anchor.avatar.renderer import yuv420p_to_rgb
from anchor.avatar.rig import MIN_FACE_HEIGHT, build_photo_pack
from anchor.cli import main
from anchor.messages import MouthShape

W, H, FPS = 640, 360, 25


def save(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("photo")


@pytest.fixture(scope="module")
def astronaut(workdir: Path) -> Path:
    return save(workdir / "astronaut.png", skimage.data.astronaut())


@pytest.fixture(scope="module")
def pack_dir(workdir: Path, astronaut: Path) -> Path:
    return build_photo_pack(astronaut, "astronaut", workdir / "avatars", progress=lambda _: None)


@pytest.fixture(scope="module")
def pack(pack_dir: Path) -> AvatarPack:
    return load_pack(pack_dir)


@pytest.fixture(scope="module")
def renderer(pack: AvatarPack) -> AvatarRenderer:
    """Idle motion off, so any two frames differ only where the face moved."""
    still = dataclasses.replace(pack, motion=Motion(breath=0.0, sway=0.0))
    return AvatarRenderer(still, W, H, fps=FPS, captions=False, seed=3)


def rgb(renderer: AvatarRenderer, frame: int, mouth: float, shape=MouthShape.OPEN) -> np.ndarray:
    return yuv420p_to_rgb(renderer.render(frame, mouth, None, shape), W, H).astype(np.int16)


def lips(pack_dir: Path, renderer: AvatarRenderer) -> tuple[float, float, float]:
    """Where the lips meet (x, y in the mouth patch) and the widest gap, in output pixels."""
    rig = yaml.safe_load((pack_dir / "rig.yaml").read_text(encoding="utf-8"))["mouth"]
    inner = np.array(rig["inner_upper"] + rig["inner_lower"]) * (W / 1280)
    cx, cy = inner.mean(axis=0)
    x, y = renderer.mouth_box[:2]
    return cx - x, cy - y, rig["max_gap"] * (W / 1280)


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return image[y : y + h, x : x + w]


# ---------------------------------------------------------------- the pack


def test_build_writes_a_readable_photo_pack(pack_dir: Path, pack: AvatarPack) -> None:
    manifest = (pack_dir / "manifest.yaml").read_text(encoding="utf-8")
    assert "kind: photo" in manifest
    assert (pack_dir / "rig.yaml").is_file() and (pack_dir / "photo.png").is_file()
    assert pack.kind == "photo" and pack.size == (1280, 720)
    assert len(pack.mouth.frames) == 6 and len(pack.eyes.frames) == 2
    for shape in (MouthShape.WIDE, MouthShape.ROUND):
        assert pack.shapes[shape].box == pack.mouth.box
        assert len(pack.shapes[shape].frames) == len(pack.mouth.frames)
    # The face sits in the upper part of the canvas, clear of the caption band.
    assert pack.mouth.box[1] + pack.mouth.box[3] <= pack.layouts[0].caption[1]
    assert pack.eyes.box[1] + pack.eyes.box[3] <= pack.mouth.box[1]


def test_the_closed_mouth_is_the_photo_itself(pack: AvatarPack) -> None:
    x, y, w, h = pack.mouth.box
    photo = pack.body[y : y + h, x : x + w, :3].astype(np.int16)
    assert np.abs(pack.mouth.frames[0][..., :3] - photo).max() <= 2


def test_opening_the_mouth_darkens_the_inside_of_the_lips(
    renderer: AvatarRenderer, pack_dir: Path
) -> None:
    closed = crop(rgb(renderer, 0, 0.0), renderer.mouth_box)
    opened = crop(rgb(renderer, 0, 1.0), renderer.mouth_box)
    assert (np.abs(opened - closed).max(axis=-1) > 40).mean() > 0.05
    # Just below the line where the lips meet, the open mouth shows the dark cavity.
    cx, cy, gap = lips(pack_dir, renderer)
    window = (round(cx - 0.5 * gap), round(cy), round(gap), round(0.35 * gap))
    assert crop(opened, window).mean() < crop(closed, window).mean() - 40


def test_wide_and_round_shapes_differ_from_open(renderer: AvatarRenderer, pack_dir: Path) -> None:
    opened = crop(rgb(renderer, 0, 1.0), renderer.mouth_box)
    for shape in (MouthShape.WIDE, MouthShape.ROUND):
        other = crop(rgb(renderer, 0, 1.0, shape), renderer.mouth_box)
        assert (np.abs(other - opened).max(axis=-1) > 40).mean() > 0.03, shape.name
    wide = crop(rgb(renderer, 0, 1.0, MouthShape.WIDE), renderer.mouth_box)
    round_ = crop(rgb(renderer, 0, 1.0, MouthShape.ROUND), renderer.mouth_box)
    # The round opening is narrower than the wide one: fewer columns with dark cavity.
    _, cy, gap = lips(pack_dir, renderer)
    band = slice(round(cy - 0.2 * gap), round(cy + 0.5 * gap))
    dark_columns = [(image[band].sum(axis=-1) < 200).any(axis=0).sum() for image in (wide, round_)]
    assert dark_columns[1] < dark_columns[0]


def test_a_blink_closes_the_eyes_and_leaves_the_rest_of_the_face(
    renderer: AvatarRenderer,
) -> None:
    blink = next(n for n in range(FPS * 12) if renderer.is_blinking(n))
    shut, awake = rgb(renderer, blink, 0.0), rgb(renderer, 0, 0.0)
    eyes = renderer.eye_box
    assert (np.abs(crop(shut, eyes) - crop(awake, eyes)).max(axis=-1) > 30).mean() > 0.02
    outside = np.ones((H, W), dtype=bool)
    for box in (eyes, renderer.mouth_box):
        x, y, w, h = box
        outside[y : y + h, x : x + w] = False
    assert np.abs(shut - awake).max(axis=-1)[outside].max() <= 2


def test_mouth_moves_leave_the_eyes_and_the_rest_alone(renderer: AvatarRenderer) -> None:
    closed, opened = rgb(renderer, 0, 0.0), rgb(renderer, 0, 1.0)
    x, y, w, h = renderer.mouth_box
    outside = np.ones((H, W), dtype=bool)
    outside[y : y + h, x : x + w] = False
    assert np.abs(opened - closed).max(axis=-1)[outside].max() <= 2


# ---------------------------------------------------------------- what the operator reads


def test_build_refuses_to_replace_a_pack_without_force(
    astronaut: Path, pack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["avatar", "build", str(astronaut), "--name", "astronaut", "--avatars-dir",
         str(pack_dir.parent)]
    )  # fmt: skip
    assert code == 1
    assert "already exists (use --force" in capsys.readouterr().err


def test_no_face(workdir: Path) -> None:
    photo = save(workdir / "coffee.png", skimage.data.coffee())
    with pytest.raises(AvatarError, match=r"coffee\.png: no face found"):
        build_photo_pack(photo, "coffee", workdir / "failed", progress=lambda _: None)
    assert not (workdir / "failed" / "coffee").exists()


def test_several_faces_says_how_many(workdir: Path) -> None:
    face = skimage.data.astronaut()[30:330, 80:380]
    photo = save(workdir / "two.png", np.concatenate([face, face], axis=1))
    with pytest.raises(AvatarError, match=r"two\.png: 2 faces found"):
        build_photo_pack(photo, "two", workdir / "failed", progress=lambda _: None)


def test_face_too_small_says_size_and_minimum(workdir: Path) -> None:
    small = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((384, 384)))
    canvas = np.full((420, 420, 3), 200, dtype=np.uint8)
    canvas[:384, :384] = small
    photo = save(workdir / "small.png", canvas)
    with pytest.raises(AvatarError) as caught:
        build_photo_pack(photo, "small", workdir / "failed", progress=lambda _: None)
    message = str(caught.value)
    assert "small.png: the face is too small" in message
    assert f"at least {MIN_FACE_HEIGHT} px" in message
    found = int(message.split("too small: ")[1].split(" px")[0])
    assert 60 <= found < MIN_FACE_HEIGHT


def test_unreadable_file(workdir: Path) -> None:
    photo = workdir / "notes.png"
    photo.write_text("this is not a picture\n", encoding="utf-8")
    with pytest.raises(AvatarError, match=r"notes\.png: not a readable image"):
        build_photo_pack(photo, "notes", workdir / "failed", progress=lambda _: None)


def test_a_broken_rig_names_the_file_and_field(workdir: Path, pack_dir: Path) -> None:
    broken = workdir / "broken"
    broken.mkdir()
    for name in ("manifest.yaml", "photo.png"):
        (broken / name).write_bytes((pack_dir / name).read_bytes())
    rig = (pack_dir / "rig.yaml").read_text(encoding="utf-8")
    (broken / "rig.yaml").write_text(rig.replace("lid_tone: [", "lid_tone: [900, "), "utf-8")
    with pytest.raises(AvatarError, match=r"rig\.yaml: eyes\.lid_tone: expected a list of 3"):
        load_pack(broken)


# ---------------------------------------------------------------- previews


def test_preview_png_is_a_labelled_contact_sheet(
    pack_dir: Path, pack: AvatarPack, workdir: Path
) -> None:
    out = workdir / "sheet.png"
    assert main(["avatar", "preview", "astronaut", "--avatars-dir", str(pack_dir.parent),
                 "--out", str(out)]) == 0  # fmt: skip
    with Image.open(out) as image:
        sheet = np.asarray(image.convert("RGB"))
    assert sheet.shape == contact_sheet(pack).shape
    assert sheet.shape[0] > 200 and sheet.shape[1] > 300
    # Six cells in a 3 x 2 grid: the open cell differs from the closed one.
    cell_w = sheet.shape[1] // 3
    closed, opened = sheet[:, :cell_w].astype(int), sheet[:, cell_w * 2 :].astype(int)
    assert np.abs(closed[: opened.shape[0], : opened.shape[1]] - opened).mean() > 1


def test_preview_clip_decodes_with_the_expected_frames(pack_dir: Path, workdir: Path) -> None:
    out = workdir / "clip.mp4"
    assert main(["avatar", "preview", "astronaut", "--avatars-dir", str(pack_dir.parent),
                 "--out", str(out)]) == 0  # fmt: skip
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(frames) == round(CLIP_SECONDS * 25)
    assert frames[0].shape == (720, 1280)
    assert max(np.abs(f.astype(int) - frames[0]).max() for f in frames) > 40


# ---------------------------------------------------------------- on air


@pytest.mark.slow
def test_the_photo_host_opens_its_mouth_when_it_speaks(pack_dir: Path, tmp_path: Path) -> None:
    """A real run with the photo host: in the decoded stream, the gap between the lips is dark
    (the mouth open) in frames with loud speech and not in frames of silence."""
    config = write_config(
        tmp_path, width=W, height=H, avatars_dir=pack_dir.parent, extra="avatar: astronaut\n"
    )
    out = tmp_path / "photo.ts"
    subprocess.run(
        [sys.executable, "-m", "anchor", "run", "--config", str(config), "--fast"]
        + ["--duration", "12s", "--out", str(out), "--log-level", "WARNING"],
        check=True,
        timeout=180,
    )
    rig = yaml.safe_load((pack_dir / "rig.yaml").read_text(encoding="utf-8"))["mouth"]
    cx, cy = (np.array(rig["inner_upper"] + rig["inner_lower"]) * (W / 1280)).mean(axis=0)
    gap = rig["max_gap"] * (W / 1280)
    rows = slice(int(cy - gap / 2), int(cy + 1.5 * gap))  # where the lips part
    cols = slice(int(cx - 1.5 * gap), int(cx + 1.5 * gap))
    with av.open(str(out)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    dark, loudness = [], []
    with av.open(str(out)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            lips_area = frame.to_ndarray(format="gray")[rows, cols]
            dark.append(float((lips_area < 70).mean()))
            chunk = audio[index * 1600 : (index + 1) * 1600]  # 48 kHz / 30 fps
            loudness.append(float(np.sqrt(np.mean(np.square(chunk)))) if chunk.size else 0.0)
    dark, loudness = np.array(dark), np.array(loudness)
    loud, silent = loudness > 0.05, loudness < 0.002
    assert loud.sum() > 30 and silent.sum() > 10, "the run has both speech and silence"
    assert dark[loud].mean() > 2 * dark[silent].mean() + 0.05, (
        "the lips should part, showing the dark mouth, while the host speaks"
    )


@pytest.mark.parametrize(("width", "height"), [(720, 1280), (1080, 1080)])
def test_a_photo_host_fills_portrait_and_square_frames(
    pack: AvatarPack, width: int, height: int
) -> None:
    """A photo framed for 16:9 is cut around the face for 9:16 and 1:1: the face stays whole,
    the mouth moves, and the caption clears both the mouth and Douyin's covered areas."""
    from anchor.media.safearea import SafeArea

    safe = SafeArea.preset("douyin" if height > width else "none")
    r = AvatarRenderer(pack, width, height, fps=FPS, safe_area=safe, buffers=2)
    shut = yuv420p_to_rgb(r.render(0, 0.0, "出院后把材料交给单位工会。"), width, height)
    open_ = yuv420p_to_rgb(r.render(0, 1.0, "出院后把材料交给单位工会。"), width, height)
    changed = np.abs(shut.astype(np.int16) - open_).max(axis=2) > 12
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    mx, my, mw, mh = r.mouth_box
    assert (
        rows.size and mx <= cols[0] and cols[-1] < mx + mw and my <= rows[0] and rows[-1] < my + mh
    )
    # The face is in the frame, left to right, and in its upper part.
    ex, ey, ew, eh = r.eye_box
    assert 0.15 * width < ex and ex + ew < 0.85 * width and ey < 0.5 * height
    assert safe.clears(r.caption_box, width, height)
    cx, cy, cw, ch = r.caption_box
    assert cy >= my + mh, "the caption sits below the mouth"
    Image.fromarray(shut).save(Path(pack.directory) / f"frame-{width}x{height}.png")
