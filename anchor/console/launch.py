"""Starting and stopping the console's web servers for one channel.

The console (with `/metrics` and `/healthz`) listens on `console.listen`; the signals also get
`health.listen` when that is set. A server that cannot start (its port taken) is logged and
the show goes on without it: the pages are for the operator, never a reason to go off air."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request

from anchor.config import Config
from anchor.console.app import build_app, signals_app
from anchor.console.auth import Accounts, Sessions, load_passwords
from anchor.console.core import Console
from anchor.console.gate import Gate
from anchor.console.parts import ConsoleParts
from anchor.console.server import WebServer

log = logging.getLogger(__name__)


class ConsoleService:
    def __init__(self, parts: ConsoleParts) -> None:
        self.parts = parts
        self.console: Console | None = None
        self.web: WebServer | None = None
        self.signals: WebServer | None = None

    @property
    def url(self) -> str | None:
        return None if self.web is None else self.web.url

    async def start(self) -> None:
        config = self.parts.config
        settings = config.console
        password_file = (
            settings.password_file or Path(config.store.path).parent / "console-password"
        )
        passwords, source = load_passwords(
            settings.password_env, settings.supervisor_password_env, password_file
        )
        accounts = Accounts.from_passwords(passwords)
        del passwords  # only the hashes are kept
        sessions = Sessions(
            idle_s=settings.session_idle_minutes * 60, max_age_s=settings.session_max_hours * 3600
        )
        console = self.console = Console(
            self.parts,
            accounts,
            Gate(sessions),
            password_env=settings.password_env,
            secure_cookies=_secure(config),
        )
        await self.parts.blocked.load()
        await self._keep_starting_schedule()
        if settings.address is not None:
            web = WebServer(
                build_app(console, max_body_bytes=settings.max_upload_kb * 1024 + 16 * 1024),
                *settings.address,
                trusted_proxies=settings.trusted_proxies,
            )
            try:
                await web.start()
            except OSError as exc:
                log.warning("console not started on %s: %s", settings.listen, exc)
            else:
                self.web = web
                log.info("console on %s (operator password: %s)", web.url, source)
        address = config.health.address
        if address is not None:
            telemetry = self.parts.telemetry
            signals = WebServer(
                signals_app(telemetry.registry.exposition, telemetry.health), *address
            )
            try:
                await signals.start()
            except OSError as exc:
                log.warning("health server not started on %s: %s", config.health.listen, exc)
            else:
                self.signals = signals
                log.info("health and metrics on %shealthz and /metrics", signals.url)

    async def _keep_starting_schedule(self) -> None:
        """The schedule on air at start is the first version to roll back to, unless the
        newest kept version is already the same text."""
        schedule = self.parts.director.schedule
        if schedule.source is None:
            return
        store = self.parts.store
        try:
            text = await asyncio.to_thread(Path(schedule.source).read_text, encoding="utf-8")
            versions = await store.schedule_versions(1)
            newest = await store.schedule_version(versions[0].id) if versions else None
            if newest is None or newest[1] != text:
                await store.add_schedule_version(schedule.name, text, by="start")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("the schedule on air is not kept for roll-back: %s", exc)
        except Exception as exc:  # a failing store: the console still starts
            log.warning("the schedule on air is not kept for roll-back: %s", exc)

    async def aclose(self) -> None:
        for server in (self.web, self.signals):
            if server is not None:
                await server.aclose()


def _secure(config: Config) -> Callable[[Request], bool]:
    """Cookies are `Secure` when the request came over TLS: directly, or through a proxy
    listed in `console.trusted_proxies` (uvicorn then believes its X-Forwarded-Proto)."""

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    return secure
