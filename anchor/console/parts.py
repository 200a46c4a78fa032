"""The channel's parts the console reads and drives, named once by the daemon."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from anchor.answers.answerer import Answerer
from anchor.answers.live import LiveKnowledge
from anchor.config import Config
from anchor.media.linequeue import LineQueue
from anchor.media.playout import Playout
from anchor.moderation import mask_personal_data
from anchor.ops.telemetry import ChannelTelemetry
from anchor.questions.desk import QuestionDesk
from anchor.questions.reception import Reception
from anchor.questions.review import ReviewDesk
from anchor.show.control import Control
from anchor.show.director import Director
from anchor.show.library import ScheduleLibrary
from anchor.show.rundown import Screen
from anchor.store import Store

if TYPE_CHECKING:
    from anchor.console.onair import OnAirBoard

log = logging.getLogger(__name__)

MAX_BLOCKED_IN_MEMORY = 10_000


class BlockList:
    """Viewers an operator blocked: kept in the store, looked up in memory on every question."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._users: set[tuple[str, str]] = set()

    async def load(self) -> None:
        try:
            rows = await self._store.blocked()
        except Exception as exc:  # a failing store: nobody blocked until it answers again
            log.warning("blocked viewers not loaded: %s", exc)
            return
        self._users = {(row.user, row.platform) for row in rows[:MAX_BLOCKED_IN_MEMORY]}

    def __call__(self, user: str, platform: str) -> bool:
        return (_key(user), platform or "") in self._users

    async def block(self, user: str, platform: str, *, by: str, reason: str) -> None:
        key = (_key(user), platform or "")
        await self._store.block(key[0], key[1], by=by, reason=reason)
        self._users.add(key)

    async def unblock(self, user: str, platform: str) -> None:
        key = (_key(user), platform or "")
        await self._store.unblock(key[0], key[1])
        self._users.discard(key)


def _key(user: str) -> str:
    """Viewers are named as they are stored: masked."""
    return mask_personal_data(user)[0]


@dataclass(slots=True)
class ConsoleParts:
    config: Config
    control: Control
    director: Director
    review: ReviewDesk
    reception: Reception
    desk: QuestionDesk
    store: Store
    knowledge: LiveKnowledge | None
    answerer: Answerer
    screen: Screen
    telemetry: ChannelTelemetry
    playout: Playout
    lines: LineQueue
    library: ScheduleLibrary
    blocked: BlockList
    board: OnAirBoard
