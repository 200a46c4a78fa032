"""OBS Studio as the broadcast sink, end to end against a real, headless OBS.

One OBS and one live engine (``anchor run`` streaming MPEG-TS over UDP, with OBS enabled in
its config) serve the whole module: the engine's controller builds the scene, OBS shows the
host, the caption follows the sentences aired, an OBS recording carries the engine's picture
and voice, and the scene survives a person's edits and an OBS crash. OBS is checked with the
harness's own obs-websocket client, not with the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from anchor.config import ObsConfig
from anchor.harness.obs_studio import ObsHarnessError, ObsStudio
from anchor.obs import ObsController, ObsError
from anchor.obs.cues import CueSheet
from anchor.obs.session import ObsSession

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 640, 360, 30
SCENE, MEDIA, CAPTION, LOWER_THIRD = (
    "Anchor",
    "Anchor stream",
    "Anchor captions",
    "Anchor lower third",
)
_AIRED = re.compile(r"anchor\.show\.airlog: \[\d\d:\d\d:\d\d\] (.+)$")


@dataclass
class Engine:
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def aired(self) -> list[str]:
        """The sentences the engine logged as aired, in order."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [m.group(1).strip() for line in text.splitlines() if (m := _AIRED.search(line))]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the engine exited ({self.process.returncode}):\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def engine(obs: ObsStudio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The live engine streaming to OBS, with OBS enabled; stopped with Ctrl-C at the end."""
    workdir = tmp_path_factory.mktemp("engine")
    config = workdir / "config.yaml"
    config.write_text(
        f"schedule: {ROOT / 'schedules' / 'union-demo.yaml'}\n"
        f"avatars_dir: {ROOT / 'avatars'}\n"
        f"voices_dir: {ROOT / 'voices'}\n"
        f"knowledge: {{path: {ROOT / 'knowledge' / 'union-faq.yaml'}}}\n"
        f"moderation: {{wordlists: [{ROOT / 'moderation' / 'sensitive.txt'}]}}\n"
        f"video: {{width: {WIDTH}, height: {HEIGHT}, fps: {FPS}, preset: ultrafast}}\n"
        "captions: {enabled: false}\n"
        "obs:\n"
        "  enabled: true\n"
        f"  host: {obs.host}\n"
        f"  port: {obs.port}\n"
        "  password_env: ANCHOR_TEST_OBS_PASSWORD\n"
        "  stats_every_seconds: 1\n"
        "  max_reconnect_seconds: 2\n",
        encoding="utf-8",
    )
    port = _free_udp_port()
    log = workdir / "engine.log"
    env = {**os.environ, "ANCHOR_TEST_OBS_PASSWORD": obs.password}
    with log.open("wb") as output:
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
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Engine(process, log, port)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _until(check: Callable[[], Any], what: str, *, timeout: float = 40.0) -> Any:
    """Poll `check` until it returns something (not None or False); else fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (AssertionError, OSError, TimeoutError) as exc:
            result, last = None, exc
        if result is not None and result is not False:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def _items(obs: ObsStudio, scene: str = SCENE) -> list[dict[str, Any]]:
    return obs.request("GetSceneItemList", {"sceneName": scene})["sceneItems"]


def _names(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["sourceName"] for item in items)


def _scene_complete(obs: ObsStudio) -> list[dict[str, Any]] | None:
    items = _items(obs)
    names = {item["sourceName"] for item in items}
    return items if {MEDIA, CAPTION, LOWER_THIRD} <= names else None


def _screenshot(obs: ObsStudio, source: str = SCENE) -> np.ndarray:
    """The source as OBS renders it, as a gray image at the canvas size."""
    data = obs.request(
        "GetSourceScreenshot",
        {"sourceName": source, "imageFormat": "png", "imageWidth": WIDTH, "imageHeight": HEIGHT},
    )["imageData"]
    png = base64.b64decode(data.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)


def _showing_host(obs: ObsStudio) -> np.ndarray | None:
    image = _screenshot(obs)
    return image if image.mean() > 40 and image.std() > 20 else None


def _mouth_box() -> tuple[int, int, int, int]:
    from anchor.avatar.loader import load_pack
    from anchor.avatar.renderer import AvatarRenderer

    pack = load_pack(ROOT / "avatars" / "default")
    return AvatarRenderer(pack, WIDTH, HEIGHT, fps=FPS, captions=False).mouth_box


def test_missing_obs_names_the_packages_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ObsHarnessError) as error:
        ObsStudio(tmp_path)
    assert "obs-studio" in str(error.value) and "xvfb" in str(error.value)


def test_engine_builds_its_scene_in_obs(obs: ObsStudio, engine: Engine) -> None:
    items = _until(lambda: _scene_complete(obs), "the engine's scene in OBS")
    engine.check_alive()
    assert _names(items) == sorted([MEDIA, CAPTION, LOWER_THIRD])
    kinds = sorted(item["inputKind"] for item in items)
    assert kinds.count("ffmpeg_source") == 1
    assert kinds.count("text_ft2_source_v2") == 2

    media = obs.request("GetInputSettings", {"inputName": MEDIA})["inputSettings"]
    assert media["input"] == f"udp://127.0.0.1:{engine.port}"
    assert media["is_local_file"] is False and media["input_format"] == "mpegts"
    caption = obs.request("GetInputSettings", {"inputName": CAPTION})["inputSettings"]
    assert caption["font"]["face"] == "WenQuanYi Micro Hei"
    assert obs.request("GetCurrentProgramScene")["currentProgramSceneName"] == SCENE
    # The picture is at the bottom, under the texts.
    media_item = next(item for item in items if item["sourceName"] == MEDIA)
    assert media_item["sceneItemIndex"] == 0
    # The engine answered the Media Source's opening with keyframes (see test_obs_delay.py).
    _until(
        lambda: "OBS opened the stream: keyframes sent" in engine.log.read_text(errors="replace"),
        "keyframes for the Media Source's opening",
    )


def test_obs_shows_the_host_and_the_mouth_moves(obs: ObsStudio, engine: Engine) -> None:
    _until(lambda: _scene_complete(obs), "the engine's scene in OBS")
    first = _until(lambda: _showing_host(obs), "OBS to show the engine's picture")
    assert first.mean() > 40 and first.std() > 20, "the program should show the host, not black"

    # What a viewer sees of an open mouth is its dark inside; a closed mouth is a thin line.
    # Sentences are separated by silence, so within a few sentences both must be seen.
    x, y, w, h = _mouth_box()
    pad = 6
    dark_in_mouth: list[int] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        image = _screenshot(obs)
        dark_in_mouth.append(int((image[y - pad : y + h + pad, x - pad : x + w + pad] < 90).sum()))
        if len(dark_in_mouth) >= 10 and max(dark_in_mouth) > 2.5 * max(1, min(dark_in_mouth)):
            break
        time.sleep(0.1)
    engine.check_alive()
    assert max(dark_in_mouth) > 2.5 * max(1, min(dark_in_mouth)), dark_in_mouth


def test_caption_holds_the_sentence_on_air(obs: ObsStudio, engine: Engine) -> None:
    _until(lambda: _scene_complete(obs), "the engine's scene in OBS")

    def caption_is_aired() -> str | None:
        text = obs.request("GetInputSettings", {"inputName": CAPTION})["inputSettings"].get("text")
        return text if text and text in engine.aired() else None

    text = _until(caption_is_aired, "the caption to show an aired sentence")
    assert text in engine.aired()


def test_obs_recording_carries_picture_and_voice(obs: ObsStudio, engine: Engine) -> None:
    _until(lambda: _showing_host(obs), "OBS to show the engine's picture")
    obs.request("StartRecord")
    time.sleep(5)
    path = Path(obs.request("StopRecord")["outputPath"])
    assert path.parent == obs.record_dir
    # StopRecord answers at once; OBS's muxer finishes the file a moment later.
    _until(lambda: not obs.request("GetRecordStatus")["outputActive"], "the recording to stop")
    _until(lambda: _playable(path), "the recorded file to be complete")

    with av.open(str(path)) as container:
        codecs = {stream.type: stream.codec_context.name for stream in container.streams}
    assert codecs == {"video": "h264", "audio": "aac"}
    with av.open(str(path)) as container:
        video = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = np.concatenate(
            [frame.to_ndarray().mean(axis=0) for frame in container.decode(audio=0)]
        )
    assert len(video) > 2 * FPS
    assert np.mean(video[-1]) > 40, "the recording should show the host"
    window = 4800  # 0.1 s at 48 kHz
    usable = len(audio) // window
    rms = np.sqrt((audio[: usable * window].reshape(usable, window) ** 2).mean(axis=1))
    assert rms.max() > 0.02, "the recording should carry the host's voice above silence"


def _playable(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            return any(True for _ in container.demux(video=0))
    except av.error.InvalidDataError:
        return False


def test_the_scene_comes_back_after_a_person_edits_it(obs: ObsStudio, engine: Engine) -> None:
    everything = sorted([MEDIA, CAPTION, LOWER_THIRD])

    def repaired() -> list[dict[str, Any]] | None:
        items = _items(obs)
        return items if _names(items) == everything else None

    _until(lambda: _scene_complete(obs), "the engine's scene in OBS")
    media_id = next(i["sceneItemId"] for i in _items(obs) if i["sourceName"] == MEDIA)
    obs.request("RemoveInput", {"inputName": CAPTION})
    obs.request("CreateSceneItem", {"sceneName": SCENE, "sourceName": MEDIA})  # a duplicate
    items = _until(repaired, "the deleted caption back and the duplicate gone")
    assert next(i for i in items if i["sourceName"] == MEDIA)["sceneItemId"] == media_id

    # The caption moved to another scene is put back in ours: the same input, not a second.
    obs.request("CreateScene", {"sceneName": "Elsewhere"})
    obs.request("CreateSceneItem", {"sceneName": "Elsewhere", "sourceName": CAPTION})
    caption_id = next(i["sceneItemId"] for i in _items(obs) if i["sourceName"] == CAPTION)
    obs.request("RemoveSceneItem", {"sceneName": SCENE, "sceneItemId": caption_id})
    _until(repaired, "the moved caption back in the scene")
    inputs = [i["inputName"] for i in obs.request("GetInputList")["inputs"]]
    assert sorted(inputs) == everything
    assert [i["sourceName"] for i in _items(obs, "Elsewhere")] == [CAPTION]
    obs.request("RemoveScene", {"sceneName": "Elsewhere"})


def _desk_config(obs: ObsStudio) -> ObsConfig:
    """A second controller's own scene, so it never touches the engine's."""
    return ObsConfig(
        enabled=True,
        host=obs.host,
        port=obs.port,
        scene="Desk",
        media_input="Desk stream",
        caption_input="Desk caption",
        lower_third_input="Desk lower third",
        set_program_scene=False,
        stats_every_seconds=1,
        max_reconnect_seconds=2,
    )


async def _until_async(check: Callable[[], Any], what: str, *, within: float = 40.0) -> Any:
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = await asyncio.to_thread(check)
        except (AssertionError, OSError, TimeoutError) as exc:
            result, last = None, exc
        if result is not None and result is not False:
            return result
        await asyncio.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def _text(obs: ObsStudio, name: str) -> str | None:
    return obs.request("GetInputSettings", {"inputName": name})["inputSettings"].get("text")


async def test_refused_requests_keep_obs_code_and_comment(obs: ObsStudio) -> None:
    session = await ObsSession.open(obs.host, obs.port, obs.password, request_timeout=5)
    try:
        with pytest.raises(ObsError) as refused:
            await session.request("GetInputSettings", {"inputName": "no such input"})
    finally:
        await session.aclose()
    assert refused.value.code == 600  # ResourceNotFound
    assert "no such input" in refused.value.comment
    with pytest.raises(ObsError) as wrong_password:
        await ObsSession.open(obs.host, obs.port, "not the password", request_timeout=5)
    assert wrong_password.value.code == 4009


async def test_a_wrong_password_is_reported_once_and_never_logged(
    obs: ObsStudio, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-password-Zq81"
    controller = ObsController(_desk_config(obs), password=wrong, media_url="udp://127.0.0.1:9")
    task = asyncio.create_task(controller.run())
    try:
        await _until_async(lambda: "code 4009" in caplog.text or None, "the refusal in the log")
        await asyncio.sleep(3)  # a few more attempts (1 s, then 2 s apart)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not controller.connected
    refusals = [r for r in caplog.records if "code 4009" in r.getMessage()]
    assert len(refusals) == 1
    assert "ANCHOR_OBS_PASSWORD" in refusals[0].getMessage()
    assert wrong not in caplog.text


async def test_captions_and_outputs_survive_an_obs_crash(obs: ObsStudio, engine: Engine) -> None:
    # Its own (silent) port: two Media Sources must not read the engine's one.
    controller = ObsController(
        _desk_config(obs), password=obs.password, media_url=f"udp://127.0.0.1:{_free_udp_port()}"
    )
    controller.show_caption("第一句", at=time.time() - 2)
    controller.show_caption("第二句", at=time.time() - 1)
    controller.show_lower_third("正在回答：怎么申请法律援助？", at=time.time())
    task = asyncio.create_task(controller.run())
    try:
        await _until_async(lambda: _text(obs, "Desk caption") == "第二句", "the newest caption")
        await _until_async(
            lambda: _text(obs, "Desk lower third") == "正在回答：怎么申请法律援助？",
            "the lower third",
        )
        controller.show_caption("以后再说", at=time.time() + 600)
        await controller.start_recording()
        await _until_async(lambda: controller.stats.get("recording"), "stats to show recording")
        assert controller.stats["activeFps"] > 0
        assert _text(obs, "Desk caption") == "第二句", "a caption must not air before its time"

        # OBS stops an output by itself when it fails (a full disk): the wanted recording is
        # started again, into a new file.
        before = set(obs.record_dir.iterdir())
        await asyncio.to_thread(obs.request, "StopRecord")
        await _until_async(
            lambda: bool(set(obs.record_dir.iterdir()) - before),
            "a new recording after OBS stopped it",
        )

        await asyncio.to_thread(obs.kill)
        await _until_async(lambda: not controller.connected, "the controller to see OBS gone")
        controller.show_caption("重新连上了", at=time.time())
        with pytest.raises(ObsError):
            await controller.stop_streaming()
        await asyncio.to_thread(obs.start)

        await _until_async(lambda: _text(obs, "Desk caption") == "重新连上了", "the caption again")
        # The engine's own controller rebuilt its scene too: exactly one of each input.
        items = await _until_async(lambda: _scene_complete(obs), "the engine's scene after restart")
        assert _names(items) == sorted([MEDIA, CAPTION, LOWER_THIRD])
        desk = await asyncio.to_thread(_items, obs, "Desk")
        assert _names(desk) == sorted(["Desk stream", "Desk caption", "Desk lower third"])
        # Recording was wanted, so it was started again on the new OBS.
        await _until_async(
            lambda: obs.request("GetRecordStatus")["outputActive"], "recording again"
        )
        path = await controller.stop_recording()
        assert path
        await _until_async(lambda: Path(path).is_file() or None, "the recorded file")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await controller.aclose()
    engine.check_alive()
    _until(lambda: _showing_host(obs), "OBS to show the engine's picture after the restart")


def test_cue_sheet_shows_only_the_newest_due_text() -> None:
    sheet = CueSheet()
    sheet.cue("一", at=10)
    sheet.cue("二", at=11)
    sheet.cue(None, at=15)
    sheet.advance(12)
    assert sheet.current == "二" and sheet.next_at == 15
    sheet.advance(20)
    assert sheet.current == "" and sheet.next_at is None


def test_a_newer_cue_replaces_plans_for_later_times() -> None:
    sheet = CueSheet()
    sheet.cue("一", at=10)
    sheet.cue(None, at=20)  # hide after the sentence ...
    sheet.cue("插话", at=12)  # ... but an interruption airs before that
    sheet.advance(30)
    assert sheet.current == "插话"


def test_cue_sheet_is_bounded() -> None:
    sheet = CueSheet(limit=3)
    for second in range(100):
        sheet.cue(str(second), at=1000 + second)
    sheet.advance(1000 + 96.5)
    assert sheet.current == "", "only the newest three plans are kept"
    sheet.advance(1000 + 97.5)
    assert sheet.current == "97" and sheet.next_at == 1000 + 98
    sheet.shown = "97"
    assert not sheet.stale
    sheet.forget_shown()
    assert sheet.stale
