"""Shared fixtures: a real mosquitto broker per test, a headless OBS Studio per module.

The MQTT tests talk to the real broker, not a fake, because what they prove (persistent
sessions, redelivery of unacknowledged messages, last wills, retained status) is the broker's
behaviour as much as ours. A missing broker or OBS fails the test with the package to install
rather than skipping it, so a green run always means that path was exercised. The peers
themselves live in `anchor.harness`, shared with the soak and the benchmarks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from anchor.harness.mosquitto import Broker, BrokerError, ShippedBroker
from anchor.harness.obs_studio import ObsHarnessError, ObsStudio


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A running mosquitto for this test only, killed when the test ends."""
    try:
        broker = Broker(tmp_path / "mosquitto")
        broker.start()
    except BrokerError as exc:
        pytest.fail(
            f"{exc}. The MQTT tests need the real broker: install the Debian/Ubuntu packages "
            "'mosquitto' and 'mosquitto-clients', or run ./anchor.sh test as root, which does."
        )
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def shipped_mosquitto(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ShippedBroker]:
    """mosquitto with the shipped deploy/mosquitto configuration and secrets from `anchor broker
    secrets` for the test module's ``CHANNEL`` ("default" if it has none): the engine, bridges
    "chat" and "other", operators "console", "dashboard" and "cli". One connection per user
    (the client id is the user name). Killed when the test ends."""
    channel = getattr(request.module, "CHANNEL", "default")
    try:
        broker = ShippedBroker(tmp_path / "shipped-mosquitto", channel=channel)
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"{exc}. Install 'mosquitto' and 'mosquitto-clients' (./anchor.sh test does).")
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsStudio]:
    """A headless OBS Studio (under its own Xvfb) shared by one test module.

    OBS and Xvfb are killed when the module ends, whatever happened.
    """
    try:
        studio = ObsStudio(tmp_path_factory.mktemp("obs"))
        studio.start()
    except ObsHarnessError as exc:
        pytest.fail(str(exc))
    try:
        yield studio
    finally:
        studio.close()


NEURAL_BUILD_TIMEOUT_S = 1200.0


@pytest.fixture(scope="session")
def neural_model_built() -> None:
    """The neural voice's model, once `./anchor.sh test` finished building it in the
    background (it says where its log is); a failed or missing build fails the test."""
    from anchor.speech.neural_model import status

    pid = os.environ.get("ANCHOR_NEURAL_BUILD_PID")
    if pid:
        try:
            build = psutil.Process(int(pid))
            deadline = time.monotonic() + NEURAL_BUILD_TIMEOUT_S
            while build.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
                time.sleep(0.5)
        except psutil.NoSuchProcess:
            pass
    found = status()
    if not found.ok:
        log = os.environ.get("ANCHOR_NEURAL_BUILD_LOG")
        tail = Path(log).read_text(errors="replace")[-3000:] if log and Path(log).exists() else ""
        pytest.fail(f"neural voice model: {found.detail} ({found.fix})\n{tail}")
