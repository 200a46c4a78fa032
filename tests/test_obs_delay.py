"""OBS shows the engine's stream promptly, with its sound, whenever its Media Source opens it.

OBS's Media Source starts playing a stream on its first keyframe, and plays what it read before
(the sound) first, in real time: the wait for a keyframe becomes a delay that lasts as long as
the stream plays (beyond 2 s its picture runs ahead and the sound alone stays late). The engine
sends a keyframe whenever the Media Source opens the stream. Here a stream with a keyframe only
every 10 s (so that waiting for one cannot go unnoticed) and a steady tone is sent to a real,
headless OBS: the picture must appear promptly after the engine's controller created the Media
Source, and a new picture promptly after a new connection reopened it. The bound is loose (a
few times what OBS takes here, against the 10 s a keyframe could take); the measured delays are
in benchmarks/bench_obs_latency.py.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from anchor.config import ObsConfig
from anchor.harness.obs_studio import ObsProbe, ObsStudio
from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, StreamEncoder
from anchor.media.output import OutputTarget
from anchor.obs import ObsController

WIDTH, HEIGHT, FPS, RATE = 640, 360, 30, 48000
KEYFRAME_SECONDS = 10.0
GRAY_Y, WHITE_Y = 110, 235  # the canvas is black where nothing is shown
PROMPT_S = 4.0  # OBS takes ~0.3-0.5 s here; waiting for a keyframe would take up to 10 s
SHOWN_WITHIN_S = 30.0


class LiveStream:
    """A live H.264 + AAC stream of a flat picture, paced by absolute deadlines on its own
    thread; `show_white` returns when the first white frame was handed to the encoder."""

    def __init__(self, url: str) -> None:
        clock = MediaClock(RATE, FPS)
        settings = EncoderSettings(
            width=WIDTH, height=HEIGHT, video_bitrate_kbps=800, keyframe_seconds=KEYFRAME_SECONDS
        )
        self._clock = clock
        self.encoder = StreamEncoder(OutputTarget.parse(url), clock, settings)
        self._white = False
        self._handed: float | None = None
        self._handed_event = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-stream", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self.encoder.open()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.encoder.close()

    def show(self, white: bool) -> float:
        self._handed_event.clear()
        self._white = white
        if not self._handed_event.wait(5):
            raise AssertionError(f"the stream stopped: {self.error!r}")
        assert self._handed is not None
        return self._handed

    def _run(self) -> None:
        pictures = {}
        for white, luma in ((False, GRAY_Y), (True, WHITE_Y)):
            picture = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
            picture[:HEIGHT] = luma
            pictures[white] = picture
        clock, start, frame = self._clock, time.monotonic(), 0
        try:
            while not self._stop.is_set():
                wait = start + frame / FPS - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                first = clock.frame_start_sample(frame)
                t = (first + np.arange(clock.samples_in_frame(frame))) / RATE
                tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                white = self._white
                handed = time.monotonic()
                self.encoder.write(frame, pictures[white], tone)
                if not self._handed_event.is_set():
                    self._handed = handed
                    self._handed_event.set()
                frame += 1
        except BaseException as exc:
            self.error = exc
            self._handed_event.set()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _program_gray(probe: ObsProbe, scene: str) -> float | None:
    """The mean gray level of the scene as OBS renders it; None while OBS cannot render it."""
    try:
        data = probe.request(
            "GetSourceScreenshot", {"sourceName": scene, "imageFormat": "png", "imageWidth": 64}
        )["imageData"]
    except AssertionError:
        return None
    png = base64.b64decode(data.split(",", 1)[1])
    return float(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE).mean())


def _seen(obs: ObsStudio, scene: str, white: bool, within: float) -> float | None:
    """When OBS's program first showed the white (or the gray) picture; None if not in time."""
    deadline = time.monotonic() + within
    with obs.probe() as probe:
        while time.monotonic() < deadline:
            gray = _program_gray(probe, scene)
            answered = time.monotonic()
            if gray is not None and (gray > 180 if white else 60 < gray < 150):
                return answered
            time.sleep(0.005)
    return None


async def _shown(obs: ObsStudio, scene: str, white: bool) -> float:
    seen = await asyncio.to_thread(_seen, obs, scene, white, SHOWN_WITHIN_S)
    assert seen is not None, f"OBS never showed the stream\n{obs.log_tail()}"
    return seen


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SHOWN_WITHIN_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_obs_shows_a_stream_with_sound_promptly_after_each_opening(obs: ObsStudio) -> None:
    url = f"udp://127.0.0.1:{_free_udp_port()}"
    config = ObsConfig(enabled=True, host=obs.host, port=obs.port, max_reconnect_seconds=2)
    stream = LiveStream(f"{url}?pkt_size=1316")
    stream.start()
    tasks: list[asyncio.Task[None]] = []
    controllers: list[ObsController] = []

    def connect() -> ObsController:
        controller = ObsController(config, password=obs.password, media_url=url)
        controller.on_media_opened(stream.encoder.request_keyframe)
        controllers.append(controller)
        tasks.append(asyncio.create_task(controller.run(), name="obs-controller"))
        return controller

    try:
        await asyncio.sleep(0.5)  # the stream's first keyframe is long gone
        connected = time.monotonic()
        first = connect()
        shown = await _shown(obs, config.scene, white=False)
        await _until(lambda: first.media_opens > 0, "the Media Source created")
        created_to_shown = shown - connected

        # The engine reconnects (it restarted, or OBS did): the Media Source is opened anew
        # and must not wait for the stream's next keyframe.
        tasks.pop().cancel()
        await asyncio.gather(first.aclose(), return_exceptions=True)
        second = connect()
        await _until(lambda: second.media_opens > 0, "the Media Source reopened")
        handed = await asyncio.to_thread(stream.show, True)
        reopened_to_shown = await _shown(obs, config.scene, white=True) - handed
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for controller in controllers:
            await controller.aclose()
        stream.stop()
    assert created_to_shown < PROMPT_S, f"the stream appeared {created_to_shown:.2f} s after"
    assert reopened_to_shown < PROMPT_S, f"a new picture appeared {reopened_to_shown:.2f} s after"
    settings = obs.request("GetInputSettings", {"inputName": config.media_input})["inputSettings"]
    assert settings["ffmpeg_options"] == "fpsprobesize=0"
    assert settings["restart_on_activate"] is False


def test_a_requested_keyframe_is_an_idr_frame_a_new_reader_can_start_on(tmp_path: Path) -> None:
    path = tmp_path / "stream.ts"
    clock = MediaClock(RATE, FPS)
    encoder = StreamEncoder(
        OutputTarget.parse(str(path)),
        clock,
        EncoderSettings(width=320, height=180, keyframe_seconds=KEYFRAME_SECONDS),
    )
    encoder.open()
    rng = np.random.default_rng(7)
    for frame in range(40):
        if frame == 25:
            encoder.request_keyframe()
        picture = rng.integers(16, 235, (270, 320), dtype=np.uint8)
        encoder.write(frame, picture, np.zeros(clock.samples_in_frame(frame), np.float32))
    encoder.close()

    with av.open(str(path)) as container:
        packets = sorted(
            (packet.pts, packet.is_keyframe)
            for packet in container.demux(video=0)
            if packet.pts is not None
        )
    assert [index for index, (_, key) in enumerate(packets) if key] == [0, 25]

    # A reader joining at the requested keyframe decodes every frame from there on.
    data = path.read_bytes()
    joins = _video_keyframe_starts(data)
    assert len(joins) == 2
    joined = tmp_path / "joined.ts"
    joined.write_bytes(data[joins[1] :])
    with av.open(str(joined)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == 40 - 25


def _video_keyframe_starts(data: bytes) -> list[int]:
    """Byte offsets of the MPEG-TS packets that begin a video keyframe (random access set,
    a PES of a video stream starting in it), each moved back to the tables written before it."""
    starts = []
    for offset in range(0, len(data) - 187, 188):
        packet = data[offset : offset + 188]
        has_field = packet[3] & 0x20 and packet[4] > 0
        if not (packet[1] & 0x40 and has_field and packet[5] & 0x40):
            continue
        payload = packet[5 + packet[4] :]
        if payload[:3] == b"\x00\x00\x01" and 0xE0 <= payload[3] <= 0xEF:
            tables = offset
            while tables >= 188 and _pid(data[tables - 188 : tables]) in (0x0000, 0x0011, 0x1000):
                tables -= 188
            starts.append(tables)
    return starts


def _pid(packet: bytes) -> int:
    return (packet[1] & 0x1F) << 8 | packet[2]
