"""OBS with a portrait canvas, as an operator sets it up for a Douyin live room.

A real headless OBS at 360x640 and a live engine streaming 360x640 with `safe_area: douyin`:
the engine's picture fills OBS's canvas, and the caption text the engine puts in OBS sits
clear of the areas Douyin's app covers, not at the frame's foot under the comment list.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from anchor.harness.obs_studio import ObsHarnessError, ObsRequestFailed, ObsStudio
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
    workdir = tmp_path_factory.mktemp("engine")
    config = workdir / "config.yaml"
    config.write_text(
        f"schedule: {ROOT / 'schedules' / 'union-demo.yaml'}\n"
        f"avatars_dir: {ROOT / 'avatars'}\n"
        f"voices_dir: {ROOT / 'voices'}\n"
        f"knowledge: {{path: {ROOT / 'knowledge' / 'union-faq.yaml'}}}\n"
        f"moderation: {{wordlists: [{ROOT / 'moderation' / 'sensitive.txt'}]}}\n"
        f"store: {{path: {workdir / 'anchor.db'}}}\n"
        f"video: {{width: {WIDTH}, height: {HEIGHT}, fps: {FPS}, preset: ultrafast,"
        " safe_area: douyin}\n"
        "obs:\n"
        "  enabled: true\n"
        f"  host: {portrait_obs.host}\n"
        f"  port: {portrait_obs.port}\n"
        "  password_env: ANCHOR_TEST_OBS_PASSWORD\n"
        "  max_reconnect_seconds: 2\n",
        encoding="utf-8",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ANCHOR_TEST_OBS_PASSWORD": portrait_obs.password}
    log = (workdir / "engine.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anchor",
            "run",
            "--config",
            str(config),
            "--out",
            f"udp://127.0.0.1:{port}?pkt_size=1316",
        ],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _until(check: Any, what: str, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, TimeoutError, KeyError, StopIteration, ObsRequestFailed):
            result = None
        if result is not None and result is not False:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def _screenshot(obs: ObsStudio) -> np.ndarray:
    data = obs.request(
        "GetSourceScreenshot",
        {"sourceName": SCENE, "imageFormat": "png", "imageWidth": WIDTH, "imageHeight": HEIGHT},
    )["imageData"]
    png = base64.b64decode(data.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def test_portrait_obs_shows_the_portrait_host_with_the_caption_clear_of_the_app(
    portrait_obs: ObsStudio, engine: subprocess.Popen[bytes]
) -> None:
    def caption_item() -> dict[str, Any] | None:
        items = portrait_obs.request("GetSceneItemList", {"sceneName": SCENE})["sceneItems"]
        return next((item for item in items if item["sourceName"] == CAPTION), None)

    item = _until(caption_item, "the engine's caption text in OBS")
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
        image = _screenshot(portrait_obs)
        return image if image.mean() > 60 else None

    image = _until(showing, "OBS to show the engine's portrait picture")
    assert engine.poll() is None
    b, g, r = (image[..., i].astype(int) for i in range(3))
    red = (r > 150) & (g < 80) & (b < 80)
    rows = np.flatnonzero(red.any(axis=1))
    assert rows.size and rows[0] < 0.25 * HEIGHT, "the title board's red is near the top"
    assert image[:, :8].mean() > 60 and image[:, -8:].mean() > 60, "no pillarbox bars"
