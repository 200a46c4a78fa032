"""Thanking the audience on air: welcomes, likes, follows and gifts, merged into few lines.

Bridges report what viewers do on the audience topic. Each kind the channel enables collects
its viewers until its line is due (at most one every ``every_seconds`` of the show's time),
then one line thanks them all: "感谢小明等3位朋友的点赞！". The rundown asks for a due line
only between lines of the schedule, never while a question waits and never inside an answer,
and airs it at the lowest priority; on an emergency hold nothing is thanked.

Names come from outside: each is masked for personal data, cut short and screened on its own
(a name that fails is left out, the thanks still airs), and the whole line passes the
on-air screen like every other. Only a few names are kept per kind; the rest are counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from anchor.config import AudienceConfig, AudienceKindConfig
from anchor.links.payloads import RejectedInput, parse_audience
from anchor.messages import AudienceEvent, Line, Priority
from anchor.moderation import mask_personal_data

log = logging.getLogger(__name__)

ORDER = ("follow", "gift", "enter", "like")  # which due line goes first
DEFAULT_TEMPLATES = {
    "enter": "欢迎{names}来到直播间！",
    "like": "感谢{names}的点赞！",
    "follow": "感谢{names}的关注！",
    "gift": "感谢{names}送出的{gifts}！",
}
MAX_NAME_CHARS = 12
MAX_COUNTED = 100_000
MAX_GIFT_NAMES = 3


@dataclass(slots=True)
class _Waiting:
    names: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # bounded by MAX_COUNTED
    viewers: int = 0
    gifts: list[str] = field(default_factory=list)
    last_aired: float | None = None


class Engagement:
    def __init__(
        self,
        config: AudienceConfig,
        *,
        screen: Callable[[str], str | None],
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._screen = screen
        self._clock = clock
        self._waiting = {kind: _Waiting() for kind in ORDER}
        self.taken = 0
        self.ignored = 0

    @property
    def enabled(self) -> bool:
        return any(self._kind(kind).enabled for kind in ORDER)

    def _kind(self, kind: str) -> AudienceKindConfig:
        setting: AudienceKindConfig = getattr(self._config, kind)
        return setting

    def take(self, event: AudienceEvent) -> None:
        """Note one viewer's action (bounded: a few names, the rest counted)."""
        if not self._kind(event.kind).enabled:
            self.ignored += 1
            return
        self.taken += 1
        waiting = self._waiting[event.kind]
        who = event.user.strip()
        if who in waiting.seen:
            return
        if len(waiting.seen) < MAX_COUNTED:
            waiting.seen.add(who)
        waiting.viewers += 1
        if len(waiting.names) < self._config.max_names:
            name = self._name(who)
            if name:
                waiting.names.append(name)
        if event.kind == "gift" and event.gift and len(waiting.gifts) < MAX_GIFT_NAMES:
            gift = self._name(event.gift)
            if gift and gift not in waiting.gifts:
                waiting.gifts.append(gift)

    async def take_payload(self, payload: bytes) -> None:
        """An audience event from the broker: read and noted; a bad one is dropped (counted):
        these only ever lead to a thanks, so nothing is worth refusing loudly."""
        try:
            self.take(parse_audience(payload))
        except RejectedInput as exc:
            self.ignored += 1
            log.debug("audience event dropped: %s", exc.reason)

    def due_line(self) -> Line | None:
        """The next thanks line whose time has come, or None."""
        now = self._clock()
        for kind in ORDER:
            setting = self._kind(kind)
            waiting = self._waiting[kind]
            if not setting.enabled or waiting.viewers == 0:
                continue
            if waiting.last_aired is not None and now - waiting.last_aired < setting.every_seconds:
                continue
            text = (setting.template or DEFAULT_TEMPLATES[kind]).format(
                names=_names(waiting.names, waiting.viewers),
                gifts="、".join(waiting.gifts) or "礼物",
            )
            self._waiting[kind] = _Waiting(last_aired=now)
            return Line(text, Priority.IDLE, pause_after=0.3)
        return None

    def _name(self, text: str) -> str | None:
        masked = mask_personal_data(text)[0].strip()[:MAX_NAME_CHARS]
        if not masked:
            return None
        return self._screen(masked)


def _names(names: list[str], viewers: int) -> str:
    """小明 / 小明、小红 / 小明等3位朋友 / 朋友们 (no name fit to air)."""
    if not names:
        return "各位朋友" if viewers > 1 else "这位朋友"
    if viewers <= len(names):
        return "、".join(names)
    return f"{'、'.join(names)}等{viewers}位朋友"
