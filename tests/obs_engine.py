"""A live engine streaming to a real OBS, for the OBS test modules: start, poll, look.

The engine runs `anchor run` with the project's schedule, avatar, voice, knowledge base and
sites, OBS enabled, streaming MPEG-TS over UDP; it is stopped with Ctrl-C at the end.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from configs import KB_VECTORS, ROOT

from anchor.harness.obs_studio import ObsRequestFailed, ObsStudio

PASSWORD_ENV = "ANCHOR_TEST_OBS_PASSWORD"


@contextmanager
def obs_engine(
    obs: ObsStudio,
    workdir: Path,
    *,
    video: str,
    obs_extra: str = "",
    extra: str = "",
    args: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """The engine streaming to `obs`; `video` is the video block's contents, `obs_extra` more
    lines of the obs block, `extra` more top-level config; its log is workdir/engine.log."""
    config = workdir / "config.yaml"
    config.write_text(
        f"schedule: {ROOT / 'schedules' / 'union-demo.yaml'}\n"
        f"avatars_dir: {ROOT / 'avatars'}\n"
        f"voices_dir: {ROOT / 'voices'}\n"
        f"knowledge: {{path: {ROOT / 'knowledge' / 'union-faq.yaml'}, "
        f"vector_cache_dir: {KB_VECTORS}}}\n"
        f"sites: {{path: {ROOT / 'sites' / 'sample-zhongshan.csv'}}}\n"
        f"moderation: {{wordlists: [{ROOT / 'moderation' / 'sensitive.txt'}]}}\n"
        f"store: {{path: {workdir / 'data' / 'anchor.db'}}}\n"
        f"video: {{{video}}}\n" + extra + "obs:\n"
        "  enabled: true\n"
        f"  host: {obs.host}\n"
        f"  port: {obs.port}\n"
        f"  password_env: {PASSWORD_ENV}\n"
        "  max_reconnect_seconds: 2\n" + obs_extra,
        encoding="utf-8",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "anchor", "run", "--config", str(config)]
    command += ["--out", f"udp://127.0.0.1:{port}?pkt_size=1316", *args]
    with (workdir / "engine.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env={**os.environ, PASSWORD_ENV: obs.password},
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


def until(check: Callable[[], Any], what: str, timeout: float = 40.0) -> Any:
    """Poll `check` until it returns something (not None or False); else fail naming `what`."""
    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, TimeoutError, KeyError, StopIteration, ObsRequestFailed):
            result = None
        if result is not None and result is not False:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def screenshot(obs: ObsStudio, source: str, width: int, height: int) -> np.ndarray:
    """`source` as OBS renders it, BGR at width x height."""
    data = obs.request(
        "GetSourceScreenshot",
        {"sourceName": source, "imageFormat": "png", "imageWidth": width, "imageHeight": height},
    )["imageData"]
    png = base64.b64decode(data.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
