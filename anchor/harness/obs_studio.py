"""A real OBS Studio for tests and the soak: headless under Xvfb, in a throw-away configuration.

OBS reads its settings from ``$XDG_CONFIG_HOME/obs-studio``; pointing that (and HOME) at the
test's directory means the user's own OBS setup is never read or touched. The configuration
written here skips every first-run dialog, turns the preview off (it costs OBS half its CPU
under software GL), enables obs-websocket with a random password on a free port, and sets a
small canvas and an x264 "ultrafast" recording into the test's directory.

`ObsStudio.start` returns once obs-websocket identifies a client, so a test can talk to OBS
right away; `kill` is a crash (SIGKILL), and `start` again brings the same OBS back, with the
scene collection it saved. `ObsProbe` is a deliberately separate, synchronous obs-websocket
client, so the tests check OBS with something other than the code under test.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from anchor.harness.ports import free_port

OBS_START_TIMEOUT_S = 60.0
XVFB_START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
PROFILE = "AnchorTest"
COLLECTION = "AnchorTest"
MISSING = (
    "OBS Studio under Xvfb is needed for the OBS tests: install the Debian/Ubuntu packages "
    "'obs-studio' and 'xvfb' (apt-get install obs-studio xvfb), or run ./anchor.sh test as "
    "root, which installs them."
)


class ObsHarnessError(RuntimeError):
    """OBS or Xvfb is missing or did not come up; the message says what to do."""


class ObsRequestFailed(AssertionError):
    def __init__(self, request_type: str, code: int, comment: str | None) -> None:
        super().__init__(f"{request_type} failed: code {code}: {comment}")
        self.code = code
        self.comment = comment


class ObsProbe:
    """A minimal synchronous obs-websocket v5 client (JSON protocol) for test assertions."""

    def __init__(self, host: str, port: int, password: str, *, timeout: float = 10.0) -> None:
        self._connection = contextlib.ExitStack()
        self._ws: ClientConnection = self._connection.enter_context(
            connect(
                f"ws://{host}:{port}",
                subprotocols=[Subprotocol("obswebsocket.json")],
                open_timeout=timeout,
                max_size=2**25,
            )
        )
        self._timeout = timeout
        try:
            hello = self._receive(op=0)
            identify: dict[str, Any] = {"rpcVersion": 1, "eventSubscriptions": 0}
            auth = hello.get("authentication")
            if auth:
                secret = base64.b64encode(
                    hashlib.sha256((password + auth["salt"]).encode()).digest()
                )
                identify["authentication"] = base64.b64encode(
                    hashlib.sha256(secret + auth["challenge"].encode()).digest()
                ).decode()
            self._ws.send(json.dumps({"op": 1, "d": identify}))
            self._receive(op=2)
        except BaseException:
            self._connection.close()
            raise

    def _receive(self, *, op: int, request_id: str | None = None) -> dict[str, Any]:
        while True:
            message = json.loads(self._ws.recv(timeout=self._timeout))
            if message["op"] != op:
                continue
            data: dict[str, Any] = message["d"]
            if request_id is None or data.get("requestId") == request_id:
                return data

    def request(self, request_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """OBS's response data; `ObsRequestFailed` (an AssertionError) if OBS refuses."""
        request_id = uuid.uuid4().hex
        payload: dict[str, Any] = {"requestType": request_type, "requestId": request_id}
        if data is not None:
            payload["requestData"] = data
        self._ws.send(json.dumps({"op": 6, "d": payload}))
        response = self._receive(op=7, request_id=request_id)
        status = response["requestStatus"]
        if not status["result"]:
            raise ObsRequestFailed(request_type, status["code"], status.get("comment"))
        return response.get("responseData") or {}

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ObsProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ObsStudio:
    """One headless OBS (with its own Xvfb) in `workdir`, restartable with the same config."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, width: int = 640, height: int = 360, fps: int = 30):
        obs, xvfb = shutil.which("obs"), shutil.which("Xvfb")
        if obs is None or xvfb is None:
            raise ObsHarnessError(MISSING)
        self.obs, self.xvfb = obs, xvfb
        self.workdir = workdir
        self.home = workdir / "home"
        self.config_dir = self.home / ".config" / "obs-studio"
        self.record_dir = workdir / "recordings"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.width, self.height, self.fps = width, height, fps
        self.display: str | None = None
        self._xvfb: subprocess.Popen[bytes] | None = None
        self._obs: subprocess.Popen[bytes] | None = None
        self._obs_output = workdir / "obs-output.log"
        self._write_config()

    def _write_config(self) -> None:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "basic" / "profiles" / PROFILE).mkdir(parents=True, exist_ok=True)
        (self.config_dir / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
        _write_ini(
            self.config_dir / "global.ini",
            {
                "General": {"FirstRun": "true", "EnableAutoUpdates": "false"},
                "BasicWindow": {"PreviewEnabled": "false", "SysTrayEnabled": "false"},
                "Basic": {
                    "Profile": PROFILE,
                    "ProfileDir": PROFILE,
                    "SceneCollection": COLLECTION,
                    "SceneCollectionFile": COLLECTION,
                    "ConfigOnNewProfile": "false",
                },
                "OBSWebSocket": {
                    "FirstLoad": "false",
                    "ServerEnabled": "true",
                    "ServerPort": str(self.port),
                    "AlertsEnabled": "false",
                    "AuthRequired": "true",
                    "ServerPassword": self.password,
                },
            },
        )
        _write_ini(
            self.config_dir / "basic" / "profiles" / PROFILE / "basic.ini",
            {
                "General": {"Name": PROFILE},
                "Video": {
                    "BaseCX": str(self.width),
                    "BaseCY": str(self.height),
                    "OutputCX": str(self.width),
                    "OutputCY": str(self.height),
                    "FPSType": "0",
                    "FPSCommon": str(self.fps),
                    "ScaleType": "bilinear",
                },
                "Audio": {"SampleRate": "48000", "ChannelSetup": "Stereo"},
                "Output": {"Mode": "Simple"},
                "SimpleOutput": {
                    "FilePath": str(self.record_dir),
                    "RecFormat": "mkv",
                    "RecFormat2": "mkv",
                    "RecQuality": "Stream",
                    "StreamEncoder": "x264",
                    "RecEncoder": "x264",
                    "Preset": "ultrafast",
                    "VBitrate": "800",
                    "ABitrate": "128",
                    "RecRB": "false",
                },
            },
        )

        # An empty scene collection (one empty scene), so OBS neither warns nor adds defaults.
        scene = {"id": "scene", "versioned_id": "scene", "name": "Scene", "settings": {"items": []}}
        collection = {
            "name": COLLECTION,
            "current_scene": "Scene",
            "current_program_scene": "Scene",
            "scene_order": [{"name": "Scene"}],
            "sources": [scene],
            "groups": [],
            "transitions": [],
            "current_transition": "Fade",
            "transition_duration": 300,
        }
        (self.config_dir / "basic" / "scenes" / f"{COLLECTION}.json").write_text(
            json.dumps(collection), encoding="utf-8"
        )

    @property
    def running(self) -> bool:
        return self._obs is not None and self._obs.poll() is None

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("XDG_", "WAYLAND_", "QT_", "DBUS_SESSION"))
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_RUNTIME_DIR=str(self._runtime_dir()),
            DISPLAY=self.display or "",
            LIBGL_ALWAYS_SOFTWARE="1",
            QT_QPA_PLATFORM="xcb",
            OBS_USE_EGL="1",
        )
        return env

    def _runtime_dir(self) -> Path:
        runtime = self.workdir / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        return runtime

    def start(self) -> None:
        """Start (or restart) OBS; return once obs-websocket identifies a client."""
        if self.running:
            return
        self._start_xvfb()
        with self._obs_output.open("ab") as output:
            self._obs = subprocess.Popen(
                [
                    self.obs,
                    "--multi",
                    "--disable-updater",
                    "--disable-missing-files-check",
                    "--profile",
                    PROFILE,
                    "--collection",
                    COLLECTION,
                ],
                env=self.environment(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_for_websocket()

    def _start_xvfb(self) -> None:
        if self._xvfb is not None and self._xvfb.poll() is None:
            return
        read_end, write_end = os.pipe()
        try:
            self._xvfb = subprocess.Popen(
                [
                    self.xvfb,
                    "-displayfd",
                    str(write_end),
                    "-screen",
                    "0",
                    "1280x720x24",
                    "-nolisten",
                    "tcp",
                ],
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            os.close(write_end)
            write_end = -1
            number = _read_line(read_end, XVFB_START_TIMEOUT_S)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        if not number.isdigit():
            self.close()
            raise ObsHarnessError(f"Xvfb did not report a display number (got {number!r})")
        self.display = f":{number}"

    def _wait_for_websocket(self) -> None:
        deadline = time.monotonic() + OBS_START_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._obs is not None and self._obs.poll() is not None:
                code = self._obs.returncode
                self.close()
                raise ObsHarnessError(f"OBS exited at start ({code}).\n{self.log_tail()}")
            try:
                with ObsProbe(self.host, self.port, self.password, timeout=2.0) as probe:
                    probe.request("GetVersion")
                return
            except Exception as exc:  # refused, or a handshake error while OBS is starting
                last_error = exc
            time.sleep(0.2)
        self.close()
        raise ObsHarnessError(
            f"obs-websocket did not identify a client on port {self.port} within "
            f"{OBS_START_TIMEOUT_S:g} s ({last_error!r}).\n{self.log_tail()}"
        )

    def probe(self) -> ObsProbe:
        return ObsProbe(self.host, self.port, self.password)

    def request(self, request_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request on a fresh connection."""
        with self.probe() as probe:
            return probe.request(request_type, data)

    def kill(self) -> None:
        """OBS crashes (SIGKILL); Xvfb stays, so `start` brings OBS back quickly."""
        _end(self._obs, signal.SIGKILL)
        self._obs = None

    def close(self) -> None:
        """Kill OBS and Xvfb."""
        _end(self._obs, signal.SIGKILL)
        _end(self._xvfb, signal.SIGTERM)
        self._obs = self._xvfb = None

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted((self.config_dir / "logs").glob("*.txt"), key=lambda p: p.stat().st_mtime)
        parts = []
        if self._obs_output.exists():
            parts.append(self._obs_output.read_text(errors="replace").splitlines()[-lines:])
        if logs:
            parts.append(logs[-1].read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(line for part in parts for line in part)


def _end(process: subprocess.Popen[bytes] | None, how: signal.Signals) -> None:
    """End a process this harness started, and its process group (OBS's helpers)."""
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, how)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def _write_ini(path: Path, sections: dict[str, dict[str, str]]) -> None:
    text = "".join(
        f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in values.items()) + "\n"
        for name, values in sections.items()
    )
    path.write_text(text, encoding="utf-8")
