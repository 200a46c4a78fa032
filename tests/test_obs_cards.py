"""The sites map card in OBS: an Image Source shown while the answer airs, then hidden.

With `obs.card_input`, OBS shows the card (an operator can move it in the scene) and the
engine's picture carries none, so the card is never on screen twice. A real headless OBS and
a live engine answering "离石岐最近的驿站在哪？"; OBS is read with the harness's own client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from obs_engine import obs_engine, screenshot, until

from anchor.harness.obs_studio import ObsStudio

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 640, 360, 30
SCENE, MEDIA, CARD = "Anchor", "Anchor stream", "Anchor card"


@pytest.fixture(scope="module")
def engine(obs: ObsStudio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    workdir = tmp_path_factory.mktemp("engine")
    with obs_engine(
        obs,
        workdir,
        video=f"width: {WIDTH}, height: {HEIGHT}, fps: {FPS}, preset: ultrafast",
        extra="captions: {enabled: false}\n",  # OBS shows the captions, as in test_obs
        obs_extra=f"  card_input: {CARD}\n",
        args=("--question", "离石岐最近的驿站在哪？"),
    ):
        yield workdir


def _red_header(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of union red across the top of `box` (BGR image)."""
    x, y, w, h = box
    band = image[y + 2 : y + max(4, h // 8), x + 4 : x + w - 4].astype(int)
    b, g, r = band[..., 0], band[..., 1], band[..., 2]
    return float(((r > 150) & (g < 90) & (b < 90)).mean())


def test_obs_shows_the_card_while_the_answer_airs_and_hides_it_after(
    obs: ObsStudio, engine: Path
) -> None:
    def card_item() -> int | None:
        items = obs.request("GetSceneItemList", {"sceneName": SCENE})["sceneItems"]
        found = [item for item in items if item["sourceName"] == CARD]
        return found[0]["sceneItemId"] if found else None

    item = until(card_item, "the card's Image Source in the scene")
    assert obs.request("GetInputSettings", {"inputName": CARD})["inputKind"] == "image_source"

    def enabled() -> bool:
        return bool(
            obs.request("GetSceneItemEnabled", {"sceneName": SCENE, "sceneItemId": item})[
                "sceneItemEnabled"
            ]
        )

    until(enabled, "the card to be shown while the sites answer airs", timeout=90)
    path = Path(obs.request("GetInputSettings", {"inputName": CARD})["inputSettings"]["file"])
    assert path.is_file() and path.suffix == ".png"
    card = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert _red_header(card, (0, 0, card.shape[1], card.shape[0])) > 0.6

    from anchor.avatar.loader import load_pack
    from anchor.avatar.renderer import AvatarRenderer

    renderer = AvatarRenderer(load_pack(ROOT / "avatars" / "default"), WIDTH, HEIGHT, fps=FPS)
    assert renderer.card_box is not None
    transform = obs.request("GetSceneItemTransform", {"sceneName": SCENE, "sceneItemId": item})[
        "sceneItemTransform"
    ]
    x, y, w, h = renderer.card_box
    assert abs(transform["positionX"] - x) <= 1 and abs(transform["positionY"] - y) <= 1

    # The program shows the card over the picture; the engine's picture itself carries none.
    def program_shows_card() -> np.ndarray | None:
        image = screenshot(obs, SCENE, WIDTH, HEIGHT)
        return image if _red_header(image, renderer.card_box) > 0.5 else None

    program = until(program_shows_card, "the card on OBS's program")
    cv2.imwrite(str(engine / "program-with-card.png"), program)  # to look at when it fails
    assert _red_header(screenshot(obs, MEDIA, WIDTH, HEIGHT), renderer.card_box) < 0.05

    until(lambda: not enabled(), "the card to go when the answer ends", timeout=120)
    log = (engine / "engine.log").read_text(encoding="utf-8", errors="replace")
    assert "不是真实地址" in log, "the host said the sites are samples"
