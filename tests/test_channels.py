"""Several channels on one machine: configs made by `anchor channels new`, both streaming live
at once, listed by `anchor channels list`, and a channel that clashes refused before it starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
from configs import write_config

pytestmark = pytest.mark.slow

STREAM_S = 25


def _anchor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor", *args], capture_output=True, text=True, timeout=timeout
    )


def _receive(port: int, into: dict[str, int], stop: threading.Event) -> None:
    """Read the MPEG-TS a channel sends to udp://127.0.0.1:port, counting what decodes."""
    url = f"udp://127.0.0.1:{port}?timeout=30000000&fifo_size=1000000&overrun_nonfatal=1"
    with av.open(url, format="mpegts", timeout=40) as container:
        for packet in container.demux():
            if stop.is_set():
                break
            for frame in packet.decode():
                kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
                into[kind] = into.get(kind, 0) + 1
            if into.get("video", 0) >= 150 and into.get("audio", 0) >= 100:
                break


def test_two_channels_from_the_template_stream_side_by_side(tmp_path: Path) -> None:
    base = write_config(tmp_path, width=320, height=180)
    channels = tmp_path / "channels"
    for name in ("alpha", "beta"):
        made = _anchor(
            "channels", "new", name, "--dir", str(channels), "--from", str(base),
            "--data-dir", str(tmp_path / "data"),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    alpha = (channels / "alpha.yaml").read_text(encoding="utf-8")
    beta = (channels / "beta.yaml").read_text(encoding="utf-8")
    ports = [_port(text, "udp://127.0.0.1:") for text in (alpha, beta)]
    assert ports[0] != ports[1] and _port(alpha, "127.0.0.1:") != _port(beta, "listen: '127.0.0.1:")
    received: dict[int, dict[str, int]] = {port: {} for port in ports}
    stop = threading.Event()
    readers = [
        threading.Thread(target=_receive, args=(port, received[port], stop), daemon=True)
        for port in ports
    ]
    for reader in readers:
        reader.start()
    time.sleep(1.0)  # the readers listen before anything is sent
    engines = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anchor",
                "run",
                "--config",
                str(channels / f"{name}.yaml"),
                "--duration",
                f"{STREAM_S}s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "ANCHOR_CONSOLE_PASSWORD": "two-channels-test"},
            start_new_session=True,
        )  # fmt: skip
        for name in ("alpha", "beta")
    ]
    try:
        deadline = time.monotonic() + 60
        listed = ""
        while time.monotonic() < deadline:
            listed = _anchor("channels", "list", "--dir", str(channels)).stdout
            rows = [line for line in listed.splitlines() if line.startswith(("alpha", "beta"))]
            if len(rows) == 2 and all(" ok " in row and " s " in row for row in rows):
                break
            time.sleep(1)
        else:
            pytest.fail(f"both channels never listed as on air:\n{listed}")
        for reader in readers:
            reader.join(timeout=STREAM_S + 40)
    finally:
        stop.set()
        for engine in engines:
            if engine.poll() is None:
                os.killpg(engine.pid, signal.SIGINT)
        errors = [engine.communicate(timeout=30)[1] for engine in engines]
    for engine, error in zip(engines, errors, strict=True):
        assert engine.returncode == 0, error[-2000:]
    for port in ports:
        assert received[port].get("video", 0) >= 150, received
        assert received[port].get("audio", 0) >= 100, received
    after = _anchor("channels", "list", "--dir", str(channels)).stdout
    assert after.count("not running") == 2, after


def test_a_channel_that_clashes_with_another_is_refused_naming_both(tmp_path: Path) -> None:
    base = write_config(tmp_path, width=320, height=180)
    channels = tmp_path / "channels"
    made = _anchor("channels", "new", "alpha", "--dir", str(channels), "--from", str(base))
    assert made.returncode == 0, made.stderr
    copy = (channels / "alpha.yaml").read_text(encoding="utf-8")
    (channels / "gamma.yaml").write_text(
        copy.replace("channel: alpha", "channel: gamma"), encoding="utf-8"
    )
    refused = _anchor("run", "--config", str(channels / "gamma.yaml"), "--duration", "1s")
    assert refused.returncode == 2
    assert "gamma.yaml:" in refused.stderr and "alpha.yaml" in refused.stderr
    for key in ("console.listen", "output.url", "store.path"):
        assert key in refused.stderr, refused.stderr
    (channels / "gamma.yaml").unlink()
    with socket.socket() as holder:  # any program holding the console's port
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        text = copy.replace(f"'127.0.0.1:{_port(copy, 'listen: ' + chr(39) + '127.0.0.1:')}'",
                            f"'127.0.0.1:{port}'")  # fmt: skip
        (channels / "alpha.yaml").write_text(text, encoding="utf-8")
        taken = _anchor("run", "--config", str(channels / "alpha.yaml"), "--duration", "1s")
    assert taken.returncode == 2 and "is in use" in taken.stderr, taken.stderr


def _port(text: str, after: str) -> int:
    start = text.index(after) + len(after)
    digits = ""
    for char in text[start:]:
        if not char.isdigit():
            break
        digits += char
    return int(digits)
