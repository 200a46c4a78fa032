"""The console's ASGI application: one Starlette application for the operator's pages,
`/metrics` and `/healthz`, and a second one with only the signals for a port of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from anchor.console import pages
from anchor.console.core import HERE, Console
from anchor.console.gate import BodyLimit
from anchor.ops.metrics import CONTENT_TYPE

Exposition = Callable[[], Awaitable[str]]
Verdict = Callable[[], dict[str, Any]]


def build_app(console: Console, *, max_body_bytes: int) -> Any:
    """The console: its pages, the live state, the preview, /metrics and /healthz."""
    telemetry = console.parts.telemetry
    routes = [
        *signal_routes(telemetry.registry.exposition, telemetry.health),
        Route("/login", console.login_page, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/lang/{lang}", console.language),
        Route("/", console.onair),
        Route("/api/state", console.api_state),
        Route("/live", console.live),
        Route("/preview.jpg", console.preview_jpeg),
        *pages.routes(console),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    return BodyLimit(app, max_body_bytes)


def signals_app(exposition: Exposition, verdict: Verdict) -> Any:
    """Only /metrics and /healthz, for a port of their own."""
    return BodyLimit(Starlette(routes=signal_routes(exposition, verdict)), 1024)


def signal_routes(exposition: Exposition, verdict: Verdict) -> list[Route]:
    """`/metrics`: Prometheus text; `/healthz`: the verdict as JSON, 503 when stalled (the
    picture or the event loop stopped) and 200 otherwise, so a probe needs only the code."""

    async def metrics(request: Request) -> Response:
        return Response(await exposition(), headers={"content-type": CONTENT_TYPE})

    async def healthz(request: Request) -> Response:
        found = verdict()
        status = 503 if found.get("status") == "stalled" else 200
        return JSONResponse(found, status_code=status, headers={"cache-control": "no-store"})

    return [Route("/metrics", metrics), Route("/healthz", healthz)]
