"""OBS with a portrait canvas, as an operator sets it up for a Douyin live room.

A real headless OBS at 360x640 and a live engine streaming 360x640 with `safe_area: douyin`:
the engine's picture fills OBS's canvas, and the caption text the engine puts in OBS sits
clear of the areas Douyin's app covers, not at the frame's foot under the comment list.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from obs_engine import obs_engine, screenshot, until

from anchor.harness.obs_studio import ObsHarnessError, ObsStudio
from anchor.media.safearea import SafeArea

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 360, 640, 30
SCENE, CAPTION = "Anchor", "Anchor captions"


@pytest.fixture(scope="module")
def portrait_obs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsStudio]:
    try:
        studio = ObsStudio(tmp_path_factory.mktemp("obs"), width=WIDTH, height=HEIGHT, fps=FPS)
        studio.start()
    except ObsHarnessError as exc:
        pytest.fail(str(exc))
    try:
        yield studio
    finally:
        studio.close()


@pytest.fixture(scope="module")
def engine(
    portrait_obs: ObsStudio, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    video = f"width: {WIDTH}, height: {HEIGHT}, fps: {FPS}, preset: ultrafast, safe_area: douyin"
    with obs_engine(portrait_obs, tmp_path_factory.mktemp("engine"), video=video) as process:
        yield process


def test_portrait_obs_shows_the_portrait_host_with_the_caption_clear_of_the_app(
    portrait_obs: ObsStudio, engine: subprocess.Popen[bytes]
) -> None:
    def caption_item() -> dict[str, Any] | None:
        items = portrait_obs.request("GetSceneItemList", {"sceneName": SCENE})["sceneItems"]
        return next((item for item in items if item["sourceName"] == CAPTION), None)

    item = until(caption_item, "the engine's caption text in OBS")
    transform = portrait_obs.request(
        "GetSceneItemTransform", {"sceneName": SCENE, "sceneItemId": item["sceneItemId"]}
    )["sceneItemTransform"]
    # Bottom-centre aligned: the text's area runs up from positionY, boundsWidth wide.
    bottom, width, height = (
        transform["positionY"],
        transform["boundsWidth"],
        transform["boundsHeight"],
    )
    left = transform["positionX"] - width / 2
    box = (round(left), round(bottom - height), round(width), round(height))
    assert SafeArea.preset("douyin").clears(box, WIDTH, HEIGHT), box
    assert bottom <= 0.64 * HEIGHT, "above Douyin's comment list"

    # The portrait picture fills the portrait canvas: the title board's red near the top, the
    # host's helmet below it, no black bars at the sides.
    def showing() -> np.ndarray | None:
        image = screenshot(portrait_obs, SCENE, WIDTH, HEIGHT)
        return image if image.mean() > 60 else None

    image = until(showing, "OBS to show the engine's portrait picture")
    assert engine.poll() is None
    b, g, r = (image[..., i].astype(int) for i in range(3))
    red = (r > 150) & (g < 80) & (b < 80)
    rows = np.flatnonzero(red.any(axis=1))
    assert rows.size and rows[0] < 0.25 * HEIGHT, "the title board's red is near the top"
    assert image[:, :8].mean() > 60 and image[:, -8:].mean() > 60, "no pillarbox bars"
