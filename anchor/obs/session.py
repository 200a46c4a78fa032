"""One identified obs-websocket v5 connection, and the errors it raises.

OBS answers every request with a status code and a comment (``604 InvalidInputKind``,
``500 OutputRunning`` ...); an operator reading the log needs those verbatim, so a refused
request becomes an `ObsError` that keeps them. Anything that is not OBS's answer (OBS gone,
no answer in time, the handshake refused) is an `ObsUnavailable`, so callers can tell "OBS
said no" from "OBS is not there".

Every request races the connection itself: when OBS quits mid-request the caller learns it at
once instead of after the request timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import simpleobsws
import websockets

IDENTIFY_POLL_S = 0.02
CLOSE_TIMEOUT_S = 2.0
AUTHENTICATION_FAILED = 4009  # obs-websocket's close code for a wrong or missing password
MEDIA_INPUT_EVENTS = 1 << 8  # obs-websocket EventSubscription::MediaInputs


class ObsError(Exception):
    """A request OBS refused: its request type, OBS's status code and OBS's comment, verbatim."""

    def __init__(self, request_type: str, code: int | None, comment: str | None) -> None:
        self.request_type = request_type
        self.code = code
        self.comment = comment
        super().__init__(request_type, code, comment)

    def __str__(self) -> str:
        return f"OBS {self.request_type} failed (code {self.code}): {self.comment or 'no comment'}"


class ObsUnavailable(ObsError):
    """OBS could not be asked: not connected, connection lost, or no answer in time."""

    def __init__(self, request_type: str, reason: str, *, code: int | None = None) -> None:
        super().__init__(request_type, code, reason)

    def __str__(self) -> str:
        code = "" if self.code is None else f" (code {self.code})"
        return f"OBS {self.request_type} not done{code}: {self.comment}"


class ObsSession:
    """An identified connection; `request` returns OBS's response data or raises `ObsError`."""

    def __init__(self, client: simpleobsws.WebSocketClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        password: str | None,
        *,
        request_timeout: float,
        events: int = 0,
    ) -> ObsSession:
        """Connect and identify, or raise `ObsUnavailable`.

        `request_timeout` bounds the handshake and, later, each request. `events` are the
        obs-websocket event categories wanted (a bit mask); by default none, since polling also
        works across OBS restarts.
        """
        client = simpleobsws.WebSocketClient(
            url=f"ws://{host}:{port}",
            password=password or "",
            identification_parameters=simpleobsws.IdentificationParameters(
                eventSubscriptions=events
            ),
        )
        try:
            await asyncio.wait_for(client.connect(), request_timeout)
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise ObsUnavailable("Connect", _describe(exc)) from exc
        session = cls(client, timeout=request_timeout)
        try:
            async with asyncio.timeout(request_timeout):
                await session._identified()
        except TimeoutError as exc:
            await session.aclose()
            raise ObsUnavailable(
                "Identify", f"not identified within {request_timeout:g} s"
            ) from exc
        except BaseException:
            await session.aclose()
            raise
        return session

    async def _identified(self) -> None:
        while not self._client.identified:
            if self._client.recv_task is None or self._client.recv_task.done():
                ws = self._client.ws
                code = None if ws is None else ws.close_code
                reason = (None if ws is None else ws.close_reason) or "connection closed"
                if code == AUTHENTICATION_FAILED:
                    reason = f"{reason} (wrong or missing password)"
                raise ObsUnavailable("Identify", reason, code=code)
            await asyncio.sleep(IDENTIFY_POLL_S)

    def on_event(
        self, event_type: str, callback: Callable[[dict[str, Any] | None], Awaitable[None]]
    ) -> None:
        """Call `callback(event_data)` (None: an event without data) for every event of
        `event_type` among the categories subscribed at `open`. Keep it short: the client runs
        it as a task of its own on the event loop."""
        self._client.register_event_callback(callback, event_type)

    @property
    def alive(self) -> bool:
        task = self._client.recv_task
        return self._client.identified and task is not None and not task.done()

    async def wait_closed(self) -> None:
        """Return when the connection ends (OBS quit, crashed, or the network dropped)."""
        task = self._client.recv_task
        if task is not None:
            await asyncio.wait({task})

    async def request(
        self, request_type: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one request; OBS's response data, or `ObsError` with OBS's code and comment."""
        receiver = self._client.recv_task
        if not self.alive or receiver is None:
            raise ObsUnavailable(request_type, "not connected to OBS")
        call = asyncio.create_task(
            self._client.call(simpleobsws.Request(request_type, data), timeout=self._timeout),
            name=f"obs-{request_type}",
        )
        try:
            await asyncio.wait({call, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not call.done():
                call.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await call
        if call.cancelled():
            raise ObsUnavailable(request_type, "connection to OBS lost")
        try:
            response = call.result()
        except simpleobsws.MessageTimeout as exc:
            raise ObsUnavailable(request_type, f"no answer within {self._timeout:g} s") from exc
        except (
            simpleobsws.NotIdentifiedError,
            websockets.exceptions.WebSocketException,
            OSError,
        ) as exc:
            raise ObsUnavailable(request_type, _describe(exc)) from exc
        status = response.requestStatus
        if not status.result:
            raise ObsError(request_type, status.code, status.comment)
        return response.responseData or {}

    async def aclose(self) -> None:
        receiver = self._client.recv_task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.disconnect(), CLOSE_TIMEOUT_S)
        if receiver is not None and receiver.done() and not receiver.cancelled():
            receiver.exception()  # retrieved, so a receive error is not reported as unhandled


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
