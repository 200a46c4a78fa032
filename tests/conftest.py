"""Shared fixtures: a real mosquitto broker per test.

The MQTT tests talk to the real broker, not a fake, because what they prove (persistent
sessions, redelivery of unacknowledged messages, last wills, retained status) is the broker's
behaviour as much as ours. A missing broker fails the test with the package to install
rather than skipping it, so a green run always means the MQTT path was exercised.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor.harness.mosquitto import Broker, BrokerError

MosquittoBroker = Broker  # the tests' name for it


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


async def mosquitto_pub(
    broker: MosquittoBroker,
    topic: str,
    payload: str | bytes | list[str],
    *,
    qos: int = 1,
    retain: bool = False,
) -> None:
    """Publish with the real ``mosquitto_pub`` client, as a chat bridge or an operator would.

    A list publishes one message per item through a single connection (``-l``), which is how
    a flood of thousands of messages is sent quickly. Fails the test if the client fails.
    """
    executable = shutil.which("mosquitto_pub")
    if executable is None:
        pytest.fail("mosquitto_pub is not installed: install the package 'mosquitto-clients'")
    args = [executable, "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos)]
    if retain:
        args.append("-r")
    if isinstance(payload, list):
        args.append("-l")
        data = "".join(f"{line}\n" for line in payload).encode("utf-8")
    else:
        args.append("-s")
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
    process = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, stderr = await process.communicate(data)
    if process.returncode != 0:
        pytest.fail(f"mosquitto_pub failed ({process.returncode}): {stderr.decode().strip()}")


# OBS Studio, headless: the harness lives in its own module (tests/obs_harness.py).
from obs_harness import ObsHarnessError, ObsStudio  # noqa: E402


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsStudio]:
    """A headless OBS Studio (under its own Xvfb) shared by one test module.

    Missing packages fail the test rather than skip it, so a green run always means the OBS
    path was exercised. OBS and Xvfb are killed when the module ends, whatever happened.
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
