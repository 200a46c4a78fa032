"""`anchor bridge run`: one bridge process, its platform client feeding the bridge core.

The platform client (the Bilibili open platform or web room, the capture-helper intake, or a
DouyinBarrageGrab reader) hands each viewer event to the bridge's sink; the bridge screens,
spools and publishes. Stopping (Ctrl-C, SIGTERM) stops the client first, so nothing new
comes in, then lets the bridge send what it holds (at most a few seconds) and close its
spool: what was accepted and not yet sent is kept on disk for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine, Mapping
from typing import Any

from anchor.bridges.bilibili import OpenPlatformClient, WebRoomClient
from anchor.bridges.bilibili.openplatform import OPEN_PLATFORM_API
from anchor.bridges.bridge import Bridge
from anchor.bridges.chat import Sink
from anchor.bridges.config import (
    BarrageGrabConfig,
    BilibiliOpenConfig,
    BilibiliWebConfig,
    BridgeConfig,
    IntakeConfig,
)
from anchor.bridges.intake import BarrageGrabClient, HelperSource, Intake

log = logging.getLogger(__name__)


class BridgeSetupError(Exception):
    """The bridge cannot start; the message names the setting or variable to fix."""


def platform_client(
    config: BridgeConfig, sink: Sink, environ: Mapping[str, str] = os.environ
) -> Coroutine[Any, Any, None]:
    """The platform client's run() for this bridge's config (not started yet)."""
    platform = config.platform
    if isinstance(platform, BilibiliOpenConfig):
        client = OpenPlatformClient(
            code=_secret(environ, platform.auth_code_env),
            app_id=platform.app_id,
            access_key_id=_secret(environ, platform.access_key_id_env),
            access_key_secret=_secret(environ, platform.access_key_secret_env),
            sink=sink,
            api_base=platform.api_base or OPEN_PLATFORM_API,
            setting_prefix="platform.",
        )
        return client.run()
    if isinstance(platform, BilibiliWebConfig):
        extra: dict[str, Any] = {}
        if platform.api_base:
            extra["api_base"] = platform.api_base
            if platform.api_base.startswith("http://"):
                extra["socket_scheme"] = "ws"  # a local stand-in serves plain ws
        return WebRoomClient(room_id=platform.room_id, sink=sink, **extra).run()
    if isinstance(platform, IntakeConfig):
        return _serve_intake(platform, sink, environ)
    if isinstance(platform, BarrageGrabConfig):
        source = HelperSource(config.name, "douyin_barrage_grab", "douyin")
        return BarrageGrabClient(platform.url, source, sink).run()
    raise BridgeSetupError(f"platform kind {platform!r} is not supported")


async def _serve_intake(config: IntakeConfig, sink: Sink, environ: Mapping[str, str]) -> None:
    host, _, port = config.listen.rpartition(":")
    sources = [
        HelperSource(s.name, s.format, s.platform, s.secret_env, s.rate, s.burst)
        for s in config.sources
    ]
    intake = Intake(sources, sink, listen=(host.strip("[]"), int(port)), environ=environ)
    await intake.start()
    log.info("capture-helper intake on %s:%d", host, intake.port)
    try:
        await asyncio.Event().wait()
    finally:
        await intake.aclose()


def _secret(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise BridgeSetupError(f"set the environment variable {name} (read at start, never logged)")
    return value


async def run_bridge(config: BridgeConfig, environ: Mapping[str, str] = os.environ) -> None:
    """Run until cancelled or a signal; a client's fatal setting error ends it with that error."""
    bridge = Bridge(config)
    client_run = platform_client(config, bridge.sink, environ)
    core = asyncio.create_task(bridge.run(), name="bridge-core")
    client = asyncio.create_task(client_run, name="bridge-platform")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    stopping = asyncio.create_task(stop.wait(), name="bridge-stop")
    try:
        done, _ = await asyncio.wait({core, client, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopping}:
            task.result()  # a part that ended on its own failed: its error is the bridge's
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        stopping.cancel()
        client.cancel()  # first: nothing new comes in
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await client
        core.cancel()  # then the core sends what it holds and closes its spool
        with contextlib.suppress(asyncio.CancelledError):
            await core
        log.info("bridge %s stopped", config.name)
