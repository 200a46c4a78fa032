"""The console's core: rendering, the login, the live state, the preview and the signals.

Pages are rendered on the server by autoescaping Jinja2 templates, so nothing a viewer or an
upload wrote can become markup; a small script only refreshes the on-air page from
server-sent events and the preview picture. `/metrics` is Prometheus text from
prometheus_client, `/healthz` the channel's verdict as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from anchor.console import i18n
from anchor.console.auth import OPERATOR, ROLES, Accounts, LoginLimiter, Session
from anchor.console.gate import COOKIE, Gate
from anchor.console.parts import ConsoleParts
from anchor.console.preview import Preview

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_LIVE_STREAMS = 16
LIVE_EVERY_S = 1.0
NEXT_LINES = 4
Handler = Callable[[Request], Awaitable[Response]]


class Console:
    """The pages and their actions over one channel's parts."""

    def __init__(
        self,
        parts: ConsoleParts,
        accounts: Accounts,
        gate: Gate,
        *,
        password_env: str,
        secure_cookies: Callable[[Request], bool],
    ) -> None:
        self.parts = parts
        self.accounts = accounts
        self.gate = gate
        self.limiter = LoginLimiter()
        self.preview = Preview(lambda: parts.playout.picture, fps=parts.config.console.preview_fps)
        self._password_env = password_env
        self._secure = secure_cookies
        self._live = asyncio.Semaphore(MAX_LIVE_STREAMS)
        self._since = time.time()
        self._templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            enable_async=False,
        )
        self._templates.filters["clock"] = self.clock
        self._templates.filters["span"] = _span

    # Rendering --------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        http_status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        lang = i18n.pick(request.cookies.get("lang"), request.headers.get("accept-language"))
        flash = []
        if session is not None:
            flash, session.flash = session.flash, []
        page = self._templates.get_template(template).render(
            t=i18n.words(lang),
            lang=lang,
            session=session,
            flash=flash,
            path=request.url.path,
            channel=self.parts.config.channel,
            **values,
        )
        response = HTMLResponse(page, status_code=http_status)
        response.headers["cache-control"] = "no-store"
        return response

    def words(self, request: Request) -> dict[str, str]:
        lang = i18n.pick(request.cookies.get("lang"), request.headers.get("accept-language"))
        return i18n.words(lang)

    def clock(self, at: float | None) -> str:
        """A time as the operator reads it: in the schedule's time zone, as the rundown is."""
        if not at:
            return ""
        zone = self.parts.director.schedule.timezone
        return datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M:%S")

    # Login ------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self._login_form(request)

    def _login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        ticket = request.cookies.get("anchor_login") or _token()
        response = self.render(
            request,
            "login.html",
            None,
            http_status=status,
            error=error,
            ticket=ticket,
            roles=ROLES,
            no_password=not self.accounts.names,
            password_env=self._password_env,
        )
        response.set_cookie(
            "anchor_login",
            ticket,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            max_age=3600,
        )
        return response

    async def login(self, request: Request) -> Response:
        t = self.words(request)
        client = request.client.host if request.client else "?"
        wait = self.limiter.wait_s(client)
        if wait > 0:
            response = self._login_form(request, t["login_wait"].format(s=int(wait) + 1), 429)
            response.headers["retry-after"] = str(int(wait) + 1)
            return response
        form = await request.form(max_files=0, max_fields=8)
        ticket = request.cookies.get("anchor_login")
        if not ticket or form.get("ticket") != ticket:
            return PlainTextResponse("refused: reload the login page and try again", 403)
        user = str(form.get("user") or OPERATOR)
        password = str(form.get("password") or "")
        ok = await asyncio.to_thread(self.accounts.check, user, password)
        if not ok:
            self.limiter.failed(client)
            log.warning("console: failed login for account %r from %s", user[:32], client)
            await self.audit("console", "login", f"account {user[:32]}", "refused: password")
            return self._login_form(request, t["login_failed"], 401)
        self.limiter.succeeded(client)
        session = self.gate.sessions.start(user, user)
        log.info("console: %s logged in from %s", user, client)
        await self.audit(user, "login", f"from {client}", "applied")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            max_age=int(self.parts.config.console.session_max_hours * 3600),
        )
        response.delete_cookie("anchor_login")
        return response

    async def logout(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=4)
        session = self.gate.changer(request, form)
        if isinstance(session, Session) or request.cookies.get(COOKIE) is None:
            self.gate.sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def language(self, request: Request) -> Response:
        lang = request.path_params["lang"]
        response = RedirectResponse(_back(request), status_code=303)
        if lang in i18n.LANGUAGES:
            response.set_cookie("lang", lang, samesite="strict", max_age=365 * 86400)
        return response

    # The live state ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        parts = self.parts
        stats = parts.playout.stats
        health = parts.telemetry.health()
        segment = parts.director.current_segment
        board = parts.board
        return {
            "line": board.line,
            "priority": board.line_priority,
            "segment": segment.title if segment is not None else board.segment_title,
            "schedule": parts.director.schedule.name,
            "next": [spoken.line.text for spoken in parts.lines.peek(NEXT_LINES)],
            "paused": parts.director.paused,
            "held": bool(getattr(parts.director, "held", False)),
            "review": parts.review.enabled,
            "drafts": len(parts.review.pending()),
            "waiting": len(parts.desk),
            "stream_s": round(parts.playout.stream_seconds, 1),
            "uptime_s": round(time.time() - self._since),
            "lateness_ms": round(stats.lateness_s * 1000),
            "max_lateness_ms": round(stats.max_lateness_s * 1000),
            "skipped": stats.renders_skipped,
            "renders": stats.renders,
            "underruns": stats.underrun_frames,
            "health": health["status"],
            "checks": health["checks"],
            "console": {"sessions": len(self.gate.sessions), "previews": self.preview.made},
            "recent": [
                {"at": self.clock(h.at), "kind": h.kind, "text": h.text}
                for h in list(board.recent)[:8]
            ],
        }

    async def api_state(self, request: Request) -> Response:
        found = self.gate.viewer(request)
        if isinstance(found, Response):
            return found
        return JSONResponse(self.state(), headers={"cache-control": "no-store"})

    async def live(self, request: Request) -> Response:
        found = self.gate.viewer(request)
        if isinstance(found, Response):
            return found
        if self._live.locked():
            return PlainTextResponse("too many live pages open", status_code=503)
        token = request.cookies.get(COOKIE)

        async def events() -> AsyncIterator[dict[str, str]]:
            async with self._live:
                while self.gate.sessions.alive(token):
                    yield {"event": "state", "data": json.dumps(self.state(), ensure_ascii=False)}
                    await asyncio.sleep(LIVE_EVERY_S)

        return EventSourceResponse(events(), ping=15, send_timeout=10)

    async def preview_jpeg(self, request: Request) -> Response:
        found = self.gate.viewer(request)
        if isinstance(found, Response):
            return found
        jpeg = await self.preview.jpeg()
        if jpeg is None:
            return PlainTextResponse("no picture yet", status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def onair(self, request: Request) -> Response:
        found = self.gate.viewer(request)
        if isinstance(found, Response):
            return found
        return self.render(request, "onair.html", found, state=self.state())

    # Audit ------------------------------------------------------------------------------

    async def audit(self, by: str, cmd: str, detail: str, result: str) -> None:
        """Console actions that are not control commands go into the same audit trail."""
        try:
            await self.parts.store.record_command(
                at=time.time(), by=by, via="console", cmd=cmd, detail=detail, result=result
            )
        except Exception as exc:  # a failing store must not stop the action
            log.warning("console action not recorded: %s", exc)


def _token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


_OWN_PATH = re.compile(r"/(?:[a-z]+(?:/[a-z]+)?)?")


def _back(request: Request) -> str:
    """Where to go after switching language: the page it came from, if it is ours."""
    parts = urlsplit(request.headers.get("referer", "")[:2048])
    host = request.headers.get("host", "")
    # Only a page of this console, by path alone: no "//" or "\" a browser would read as
    # another site, no query that could carry one.
    if host and parts.netloc == host and _OWN_PATH.fullmatch(parts.path):
        return parts.path
    return "/"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
