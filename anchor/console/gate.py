"""Who is asking: the session behind a request, the CSRF check and the size of what is sent.

Requests are untrusted. A body larger than the console's cap is refused before it is read
(by its Content-Length, and by counting when it arrives in chunks); a request that changes
anything must come from a logged-in operator, carry the session's CSRF token, and, when the
browser says where it comes from, come from the console's own origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from anchor.console.auth import Session, Sessions, same_token

COOKIE = "anchor_session"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, and adds the security headers.

    A body is read whole (it is small: the cap) before the application sees it, so one sent in
    chunks without a length is refused as cleanly as one that declares it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max):
            await _too_large(scope, receive, with_headers)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await _too_large(scope, receive, with_headers)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: bytes | None = b"".join(chunks)

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                whole, body = body, None
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self._app(scope, replay, with_headers)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("request too large", status_code=413)(scope, receive, send)


class Gate:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def session(self, request: Request) -> Session | None:
        return self.sessions.find(request.cookies.get(COOKIE))

    def viewer(self, request: Request) -> Session | Response:
        """A logged-in user of either role, or the way to the login page."""
        session = self.session(request)
        if session is None:
            if request.url.path.startswith("/api/") or request.url.path.endswith(".jpg"):
                return PlainTextResponse("log in first", status_code=401)
            return RedirectResponse("/login", status_code=303)
        return session

    def changer(self, request: Request, form: Any) -> Session | Response:
        """A logged-in operator whose request carries the session's CSRF token."""
        found = self.viewer(request)
        if isinstance(found, Response):
            return found
        if not same_origin(request):
            return PlainTextResponse("refused: the request came from another site", 403)
        token = request.headers.get("x-csrf-token") or (form.get("csrf") if form else None)
        if not same_token(token if isinstance(token, str) else None, found.csrf):
            return PlainTextResponse("refused: missing or wrong CSRF token", status_code=403)
        if not found.can_change:
            return PlainTextResponse("refused: this account is read-only", status_code=403)
        return found


def same_origin(request: Request) -> bool:
    """The browser's Origin, when it sends one, names this console. (Pages are served with
    `Referrer-Policy: same-origin`; under `no-referrer` a browser sends "null" instead.)"""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")
