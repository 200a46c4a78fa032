"""The Bilibili open-platform chat client: a streamer's 身份码 in, `ChatEvent`s out.

The open platform is the sanctioned way in and gives real names and stable ``open_id``s. The
life of a session is a *game*: ``/v2/app/start`` opens one and returns the chat server's
addresses and an opaque auth body; the game lives while ``/v2/app/heartbeat`` is called every
20 s and ends with ``/v2/app/end``. Within a game the client keeps one websocket (auth, a
heartbeat every 30 s) and reconnects it with capped back-off when it drops; when the game
itself is over (7003 from the heartbeat, ``LIVE_OPEN_PLATFORM_INTERACTION_END``, or the chat
server refusing the auth body) it starts a new game. Codes that mean a setting is wrong (7007
the 身份码, 4001/4002 the keys, 8002 the app's access) stop the client with a `SettingError`
naming the setting: retrying would only hammer Bilibili.

Logs carry counts, commands and codes, never what a viewer wrote or their name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from anchor.bridges.bilibili.errors import (
    ApiError,
    AuthRejected,
    ConnectionLost,
    GameOver,
    SettingError,
)
from anchor.bridges.bilibili.live_socket import Backoff, Timings, run_socket
from anchor.bridges.bilibili.mapping import GAME_OVER, command, open_platform_event
from anchor.bridges.bilibili.signing import sign
from anchor.bridges.chat import Sink

log = logging.getLogger(__name__)

OPEN_PLATFORM_API = "https://live-open.biliapi.com"
COOLDOWN = 7001  # start called again too soon
GAME_GONE = 7003  # heartbeat lapsed or the game was ended
# Codes no retry can fix, and the setting (after the prefix) that the operator must change.
FATAL_SETTINGS = {
    4001: "access_key_id",  # the access key is not known
    4002: "access_key_secret",  # the signature does not match
    7007: "code",  # the streamer's 身份码 is wrong
    8002: "app_id",  # the app has no access to this API
}
MAX_MESSAGE_CHARS = 200


@dataclass(slots=True)
class Game:
    """One open-platform game: what start returned that the session needs."""

    game_id: str
    auth_body: bytes
    links: tuple[str, ...]
    room_id: int
    over: bool = False


class OpenPlatformClient:
    """Keeps a streamer's room's chat flowing into ``sink`` until cancelled or a setting is wrong.

    ``code`` is the streamer's 身份码; ``app_id``, ``access_key_id`` and ``access_key_secret``
    come from the developer's open-platform app. ``api_base`` is the API's origin (tests point it
    at loopback). ``setting_prefix`` is how the configuration names these settings, so a
    `SettingError` tells the operator which key to fix. ``run()`` returns only by raising
    `SettingError`; cancelling it (or ``stop()``) ends the game and closes every socket.
    """

    platform = "bilibili"

    def __init__(
        self,
        *,
        code: str,
        app_id: int,
        access_key_id: str,
        access_key_secret: str,
        sink: Sink,
        api_base: str = OPEN_PLATFORM_API,
        timings: Timings | None = None,
        setting_prefix: str = "bilibili.",
    ) -> None:
        self._code, self._app_id = code, app_id
        self._key_id, self._key_secret = access_key_id, access_key_secret
        self._sink = sink
        self._api_base = api_base.rstrip("/")
        self._timings = timings or Timings()
        self._prefix = setting_prefix
        self._backoff = Backoff(self._timings.backoff_first_s, self._timings.backoff_max_s)
        self._task: asyncio.Task[Any] | None = None
        self.events = 0  # how many events reached the sink

    async def run(self) -> None:
        self._task = asyncio.current_task()
        timeout = httpx.Timeout(self._timings.http_timeout_s)
        async with httpx.AsyncClient(base_url=self._api_base, timeout=timeout) as http:
            while True:
                game = await self._start(http)
                try:
                    await self._play(http, game)
                finally:
                    if not game.over:
                        await self._end(http, game)
                await asyncio.sleep(self._backoff.next_delay())

    async def stop(self) -> None:
        """Cancel ``run()`` and wait for it to end the game and close its sockets."""
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=self._timings.end_timeout_s + 2.0)

    # --- the game ----------------------------------------------------------------------------

    async def _start(self, http: httpx.AsyncClient) -> Game:
        """A new game, retrying what can be retried; `SettingError` for what cannot."""
        while True:
            try:
                data = await self._call(
                    http, "/v2/app/start", {"code": self._code, "app_id": self._app_id}
                )
                game = _game(data)
            except ApiError as exc:
                setting = FATAL_SETTINGS.get(exc.code)
                if setting is not None:
                    raise SettingError(self._prefix + setting, exc.code, exc.message) from exc
                delay = self._timings.cooldown_s if exc.code == COOLDOWN else None
                delay = delay if delay is not None else self._backoff.next_delay()
                log.warning("Bilibili game start refused: %s; retrying in %.1f s", exc, delay)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                delay = self._backoff.next_delay()
                log.warning(
                    "Bilibili game start failed (%s); retrying in %.1f s", _describe(exc), delay
                )
            else:
                log.info("Bilibili game started for room %d (%d chat servers)", *_shape(game))
                return game
            await asyncio.sleep(delay)

    async def _play(self, http: httpx.AsyncClient, game: Game) -> None:
        """The game's heartbeat and its chat socket, until the game is over or refused."""
        tasks = {
            asyncio.create_task(self._keep_game(http, game), name="bilibili-game-heartbeat"),
            asyncio.create_task(self._keep_socket(game), name="bilibili-chat-socket"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except GameOver as exc:
            game.over = True
            log.info("Bilibili game over (%s); starting a new one", exc)
        except AuthRejected as exc:
            log.warning("Bilibili %s; ending the game and starting a new one", exc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_game(self, http: httpx.AsyncClient, game: Game) -> None:
        """Heartbeat the game at absolute deadlines; a lapsed game raises `GameOver`."""
        started = time.monotonic()
        beat = 0
        while True:
            beat += 1
            deadline = started + beat * self._timings.game_heartbeat_s
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            try:
                await self._call(http, "/v2/app/heartbeat", {"game_id": game.game_id})
            except ApiError as exc:
                if exc.code == GAME_GONE:
                    raise GameOver(f"heartbeat answered {exc.code}") from exc
                log.warning("Bilibili game heartbeat refused: %s", exc)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("Bilibili game heartbeat failed: %s", _describe(exc))

    async def _keep_socket(self, game: Game) -> None:
        """The chat socket, reconnected with back-off across the game's servers."""
        attempt = 0
        while True:
            url = game.links[attempt % len(game.links)]
            attempt += 1
            try:
                await run_socket(
                    url,
                    game.auth_body,
                    self._on_message,
                    self._timings,
                    on_authenticated=self._authenticated,
                )
            except ConnectionLost as exc:
                delay = self._backoff.next_delay()
                log.warning("Bilibili chat connection lost (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)

    def _authenticated(self) -> None:
        self._backoff.healthy()
        log.info("Bilibili chat connected")

    async def _on_message(self, message: Mapping[str, Any]) -> None:
        if command(message) == GAME_OVER:
            raise GameOver("the platform ended the game")
        event = open_platform_event(message, received_at=time.time())
        if event is not None:
            self.events += 1
            await self._sink(event)

    async def _end(self, http: httpx.AsyncClient, game: Game) -> None:
        """Best effort, bounded: a game left open lapses by itself within a minute."""
        try:
            async with asyncio.timeout(self._timings.end_timeout_s):
                await self._call(
                    http, "/v2/app/end", {"app_id": self._app_id, "game_id": game.game_id}
                )
            log.info("Bilibili game ended")
        except ApiError as exc:
            log.warning("Bilibili game end refused: %s", exc)
        except (httpx.HTTPError, ValueError, TimeoutError) as exc:
            log.warning("Bilibili game end failed: %s", _describe(exc))

    # --- HTTP --------------------------------------------------------------------------------

    async def _call(
        self, http: httpx.AsyncClient, path: str, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """POST a signed JSON body; the answer's ``data``, or `ApiError` with Bilibili's code."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        response = await http.post(
            path, content=body, headers=sign(body, self._key_id, self._key_secret)
        )
        response.raise_for_status()
        reply = response.json()
        if not isinstance(reply, dict):
            raise ValueError("the answer is not a JSON object")
        code = reply.get("code")
        if code != 0:
            raise ApiError(
                code if isinstance(code, int) else -1,
                str(reply.get("message", ""))[:MAX_MESSAGE_CHARS],
                str(reply.get("request_id", ""))[:MAX_MESSAGE_CHARS],
            )
        data = reply.get("data")
        return data if isinstance(data, dict) else {}


def _game(data: Mapping[str, Any]) -> Game:
    """The game in start's answer (KeyError/TypeError/ValueError when it lacks a part)."""
    socket = data["websocket_info"]
    links = tuple(link for link in socket["wss_link"] if isinstance(link, str) and link)
    if not links:
        raise ValueError("start answered no chat server")
    auth_body = socket["auth_body"]
    if not isinstance(auth_body, str):
        raise TypeError("auth_body is not a string")
    room = data.get("anchor_info", {}).get("room_id", 0)
    return Game(
        game_id=str(data["game_info"]["game_id"]),
        auth_body=auth_body.encode(),
        links=links,
        room_id=room if isinstance(room, int) else 0,
    )


def _shape(game: Game) -> tuple[int, int]:
    return game.room_id, len(game.links)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
