"""The map card: drawn once per answer, shown in the layout's card area, gone after.

Pixel tests on what a viewer sees: the card appears only inside the card area, it carries a
SAMPLE badge on demo data (and none on real data), and taking it off leaves exactly the
frame that was there before, host and caption included.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from configs import write_config

from anchor.avatar.captions import find_cjk_font
from anchor.avatar.loader import load_pack
from anchor.avatar.pack import AvatarPack
from anchor.avatar.renderer import AvatarRenderer, yuv420p_to_rgb
from anchor.media.safearea import SafeArea
from anchor.messages import Card
from anchor.sites.card import render_card
from anchor.sites.datum import to_gcj02
from anchor.sites.model import Place, Site, SiteKind, SiteMatch, SiteQuery, SiteReply
from anchor.sites.outline import OutlineError, load_outline

ROOT = Path(__file__).resolve().parent.parent
CAPTION = "离石岐最近的驿站有三个。"


def _reply(sample: bool) -> SiteReply:
    sites = [
        Site(
            "a", "石岐第一驿站", SiteKind.REST, "石岐街道", "孙文西路1号", 113.381, 22.525, "24/7"
        ),
        Site("b", "石岐第二驿站", SiteKind.REST, "石岐街道", "悦来路9号", 113.370, 22.516, "24/7"),
        Site("c", "东区第四驿站", SiteKind.REST, "东区街道", "中山路3号", 113.395, 22.512, "24/7"),
    ]
    sites = [dataclasses.replace(s, sample=sample) for s in sites]
    place = Place("石岐街道", "town", 113.378, 22.522, "石岐街道")
    matches = tuple(
        SiteMatch(site, km, open_)
        for site, km, open_ in zip(sites, (0.4, 1.1, 1.8), (True, False, True), strict=True)
    )
    return SiteReply(("x",), SiteQuery(SiteKind.REST, place, nearest=True), matches, sample)


@pytest.fixture(scope="module")
def pack() -> AvatarPack:
    return load_pack(ROOT / "avatars" / "default")


def _yellow(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 220) & (g > 180) & (b < 120)


def test_sample_data_carries_a_badge_and_real_data_none() -> None:
    font = find_cjk_font()
    sample = render_card(_reply(sample=True), (470, 364), font)
    real = render_card(_reply(sample=False), (470, 364), font)
    assert sample.shape == (364, 470, 4) and (sample[..., 3] == 255).all()
    assert _yellow(sample).sum() > 2000, "the SAMPLE badge"
    assert _yellow(real).sum() < 50
    # The header is the union's red, across the top.
    top = sample[5:40, 20:-20, :3].astype(int)
    assert (top[..., 0] > 180).mean() > 0.6 and (top[..., 1] < 80).mean() > 0.6


@pytest.mark.parametrize(
    ("width", "height", "preset"), [(1280, 720, "none"), (720, 1280, "douyin")]
)
def test_the_card_shows_in_its_area_and_leaves_no_trace(
    pack: AvatarPack, width: int, height: int, preset: str
) -> None:
    safe = SafeArea.preset(preset)
    renderer = AvatarRenderer(pack, width, height, fps=30, safe_area=safe, buffers=1)
    reference = AvatarRenderer(pack, width, height, fps=30, safe_area=safe, buffers=1)
    assert renderer.card_box is not None and safe.clears(renderer.card_box, width, height)
    x, y, w, h = renderer.card_box
    card = Card("answer-1", render_card(_reply(sample=True), (w, h), find_cjk_font()))

    before = yuv420p_to_rgb(reference.render(0, 0.5, CAPTION), width, height).astype(int)
    shown = yuv420p_to_rgb(renderer.render(0, 0.5, CAPTION, card=card), width, height).astype(int)
    changed = np.abs(shown - before).max(axis=2) > 12
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    assert rows.size, "the card should be on screen"
    assert x <= cols[0] and cols[-1] < x + w and y <= rows[0] and rows[-1] < y + h
    assert changed[y : y + h, x : x + w].mean() > 0.3
    assert _yellow(shown.astype(np.uint8)[y : y + h, x : x + w]).sum() > 500

    # Frames go on with the card over the moving host; then the answer ends.
    for n in range(1, 40):
        renderer.render(n, 0.5 if n % 2 else 0.0, CAPTION, card=card)
        reference.render(n, 0.5 if n % 2 else 0.0, CAPTION)
    after = renderer.render(40, 0.3, CAPTION)
    assert np.array_equal(after, reference.render(40, 0.3, CAPTION)), "no trace of the card"


# ------------------------------------------------------------------ on air, decoded


def _as_run(db: Path) -> list[tuple[float, str, str | None, str]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT stream_time, priority, question_id, text FROM as_run ORDER BY stream_time"
        ).fetchall()
    connection.close()
    return [(float(t), str(p), q, str(text)) for t, p, q, text in rows]


@pytest.mark.slow
def test_a_sites_answer_airs_with_its_card_and_the_card_goes_after(
    pack: AvatarPack, tmp_path: Path
) -> None:
    """A viewer asks for the nearest 驿站 near 石岐: the host names sample sites, saying they
    are samples; the decoded stream shows the card while the answer airs and not after."""
    width, height, fps = 640, 360, 30
    out = tmp_path / "show.ts"
    config = write_config(tmp_path, width=width, height=height)
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
            "50s",
            "--out",
            str(out),
            "--question",
            "离石岐最近的驿站在哪？",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    rows = _as_run(tmp_path / "anchor.db")
    texts = [text for _, _, _, text in rows]
    start = next(i for i, text in enumerate(texts) if "示例站点" in text)
    assert "不是真实地址" in texts[start], "the host says the sites are samples"
    answer = [i for i, (_, _, question, _) in enumerate(rows) if question and i >= start]
    end = answer[-1] + 1
    assert end < len(rows), "the show went on after the answer"
    aired = "".join(texts[start:end])
    assert "石岐" in aired and "驿站" in aired and "电话：零七六零" in aired, aired
    assert "[电话]" not in aired and "[地址]" not in aired, "the union's own numbers are read out"
    first_s, after_s = rows[start][0], rows[end][0]

    renderer = AvatarRenderer(pack, width, height, fps=fps, captions=False)
    assert renderer.card_box is not None
    x, y, w, h = renderer.card_box
    shown = []
    with av.open(str(out)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(int)
            band = rgb[y + 2 : y + h // 8, x + 4 : x + w - 4]
            red = (band[..., 0] > 160) & (band[..., 1] < 90) & (band[..., 2] < 90)
            shown.append(red.mean() > 0.5)
    frames = np.flatnonzero(shown)
    assert frames.size, "the card should be on screen"
    on_s, off_s = frames[0] / fps, (frames[-1] + 1) / fps
    assert frames.size == frames[-1] - frames[0] + 1, "one unbroken showing"
    # On with the answer's first sentence, off when the next line starts (a frame's slack:
    # the card is painted before the line airs and a frame spans 33 ms).
    assert abs(on_s - first_s) <= 2 / fps, (on_s, first_s)
    assert abs(off_s - after_s) <= 2 / fps, (off_s, after_s)
    assert len(shown) / fps > off_s + 1, "frames without the card follow"


def test_an_operator_outline_is_drawn_and_a_bad_one_named(tmp_path: Path) -> None:
    """The operator's own GeoJSON outline (here in GCJ-02, as copied from a Chinese web map)
    is converted and drawn on the card; a file without polygons is refused by name."""
    # A district boundary running between the sites, written in GCJ-02 as a web map gives it.
    wgs = [(113.372, 22.514), (113.392, 22.528), (113.372, 22.528), (113.372, 22.514)]
    ring = [list(to_gcj02(lon, lat)) for lon, lat in wgs]
    good = tmp_path / "city.geojson"
    good.write_text(
        json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}),
        encoding="utf-8",
    )
    rings = load_outline(good, "gcj02")
    assert len(rings) == 1 and len(rings[0]) == 4
    for (lon, lat), back in zip(wgs, rings[0], strict=True):
        assert abs(back[0] - lon) < 1e-6 and abs(back[1] - lat) < 1e-6

    reply = _reply(sample=False)
    wide = dataclasses.replace(reply, query=dataclasses.replace(reply.query, place=None))
    font = find_cjk_font()
    plain = render_card(wide, (470, 364), font).astype(int)
    drawn = render_card(wide, (470, 364), font, outline=rings).astype(int)
    assert (np.abs(drawn - plain).max(axis=2) > 30).sum() > 200, "the outline shows"

    bad = tmp_path / "points.geojson"
    bad.write_text(json.dumps({"type": "Point", "coordinates": [113.3, 22.5]}), encoding="utf-8")
    with pytest.raises(OutlineError, match=f"{bad}: no Polygon or MultiPolygon"):
        load_outline(bad, "wgs84")


async def test_a_site_whose_name_moderation_refuses_never_airs(tmp_path: Path) -> None:
    """The card draws names without the line-by-line screening of speech, so the sites
    themselves are screened once at start: a listed word or a private phone number in a name
    keeps that site off the air; the others, and their own phone numbers, are used."""
    from zoneinfo import ZoneInfo

    from anchor import build
    from anchor.config import DEFAULT_WORDLISTS, Config
    from anchor.moderation import Moderator
    from anchor.sites.dataset import load_sites, store_sites
    from anchor.store.database import Store

    sample = load_sites(ROOT / "sites" / "sample-zhongshan.csv").sites
    clean = [s for s in sample if s.town == "石岐街道" and s.kind is SiteKind.REST]
    # Both at the town's centre: without the screening they would be named first.
    centre = {"lon": 113.378, "lat": 22.522}
    bad_word = dataclasses.replace(clean[0], id="bad-1", name="石岐赌博驿站", **centre)
    private = dataclasses.replace(clean[1], id="bad-2", name="张三13812345678驿站", **centre)
    default = Config.default(ROOT)
    config = default.model_copy(
        update={"store": default.store.model_copy(update={"path": tmp_path / "anchor.db"})}
    )
    moderator = await Moderator.aload([ROOT / path for path in DEFAULT_WORDLISTS])
    async with await Store.open(tmp_path / "anchor.db") as store:
        await store_sites(store, [bad_word, private, *clean[2:]])
        on_air = await build.sites(config, store, ZoneInfo("Asia/Shanghai"), moderator)
    assert on_air is not None
    reply = on_air.desk.reply("石岐街道有几个驿站")
    assert reply is not None
    named = {match.site.id for match in reply.matches}
    assert named and not named & {"bad-1", "bad-2"}
    # The sites' own numbers are published: read out, not masked.
    phone = next(s.phone for s in clean[2:] if s.phone)
    assert moderator.screen(f"电话：{phone}").text == f"电话：{phone}"
