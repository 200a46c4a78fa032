"""The one call the answerer makes for a question that may be about service sites.

`SiteDesk.reply` returns None for a question that is not about finding a site, so the
knowledge base answers it as before; otherwise the host's spoken answer and what the map card
shows. Building the desk prepares everything once (the gazetteer's index, the sites'
coordinates as arrays); a reply then takes well under a millisecond for a city's sites, so it
may run on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from anchor.sites.finder import SiteFinder
from anchor.sites.gazetteer import Gazetteer
from anchor.sites.intent import read_site_question
from anchor.sites.model import Site, SiteReply
from anchor.sites.reply import compose_reply

MAX_SITES_NAMED = 3


class SiteDesk:
    """Answers "where is the nearest 驿站", "is there a 书屋 in 小榄镇", "is it open now"."""

    def __init__(self, sites: Sequence[Site], gazetteer: Gazetteer, timezone: ZoneInfo) -> None:
        self.gazetteer = gazetteer
        self.timezone = timezone
        self._finder = SiteFinder(sites, timezone, gazetteer=gazetteer)

    def reply(self, text: str, now: datetime | None = None) -> SiteReply | None:
        """The host's answer, or None when `text` is not a question about finding a site."""
        query = read_site_question(text, self.gazetteer)
        if query is None:
            return None
        when = now if now is not None else datetime.now(self.timezone)
        matches = self._finder.find(query, when, limit=MAX_SITES_NAMED)
        return compose_reply(query, matches, when, total=self._finder.count(query))
