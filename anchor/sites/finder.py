"""Which sites answer a query: of the kind asked, in the town asked or nearest the place.

Distances are great-circle (haversine) distances from the place asked about, computed for
every site at once with numpy over arrays prepared when the finder is built, so a question
costs tens of microseconds however it is asked; only the few sites that may be named have
their opening hours read (`anchor.sites.hours.is_open`, plain Python), never all of them.

"Is it open now?" is answered on the sites' own clock: `now` is turned into the timezone the
finder was given before the hours are read, so a server kept in UTC does not close every
station eight hours early.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from anchor.sites.gazetteer import Gazetteer, normalize, town_stem
from anchor.sites.hours import is_open
from anchor.sites.model import Site, SiteKind, SiteMatch, SiteQuery

EARTH_RADIUS_KM = 6371.0088


class SiteFinder:
    """The sites, prepared for many questions: coordinates in radians, kinds and towns coded."""

    def __init__(
        self,
        sites: Sequence[Site],
        timezone: ZoneInfo,
        *,
        gazetteer: Gazetteer | None = None,
    ) -> None:
        self.sites: tuple[Site, ...] = tuple(sites)
        self.timezone = timezone
        self._gazetteer = gazetteer
        lon = np.radians(np.array([site.lon for site in self.sites], dtype=np.float64))
        lat = np.radians(np.array([site.lat for site in self.sites], dtype=np.float64))
        self._lon = lon
        self._lat = lat
        self._cos_lat = np.cos(lat)
        kinds = list(SiteKind)
        self._kind = np.array([kinds.index(site.kind) for site in self.sites], dtype=np.int8)
        self._kind_codes = {kind: code for code, kind in enumerate(kinds)}
        self._town_codes: dict[str, int] = {}
        self._town = np.array([self._town_code(site.town) for site in self.sites], dtype=np.int32)

    def find(self, query: SiteQuery, now: datetime, limit: int = 3) -> list[SiteMatch]:
        """Up to `limit` sites for the query, nearest first; with `open_now`, open ones first
        after the nearest (so the reply can say the nearest is closed). A town with none of the
        kind: the one nearest elsewhere. No place: the sites of the kind when there are no more
        than `limit` of them in all, otherwise none (the reply asks where the viewer is)."""
        if limit <= 0 or not self.sites:
            return []
        wanted = self._kind_mask(query.kind)
        local = _local(now, self.timezone)
        place = query.place
        if place is None:
            indexes = np.flatnonzero(wanted)
            if len(indexes) > limit:
                return []
            return [self._match(int(i), None, local, None) for i in indexes]
        distances = self.distances_km(place.lon, place.lat)
        in_town: bool | None = None
        candidates = wanted
        if query.in_town:
            in_town_mask = wanted & (self._town == self._town_codes.get(self._key(place.town), -1))
            in_town = bool(in_town_mask.any())
            if in_town:
                candidates = in_town_mask
            else:
                limit = 1  # none in the town: the one nearest elsewhere, as a pointer
        indexes = np.flatnonzero(candidates)
        order = indexes[np.argsort(distances[indexes], kind="stable")]
        if query.open_now:
            chosen = self._open_first(order, local, limit)
        else:
            chosen = [(int(i), self._is_open(self.sites[i], local)) for i in order[:limit]]
        return [
            SiteMatch(self.sites[i], float(distances[i]), state, in_town) for i, state in chosen
        ]

    def count(self, query: SiteQuery) -> int:
        """How many sites of the kind there are in the town asked about (in all, with no
        town): what "小榄镇有几个驿站" asks."""
        wanted = self._kind_mask(query.kind)
        if query.in_town and query.place is not None:
            wanted &= self._town == self._town_codes.get(self._key(query.place.town), -1)
        return int(wanted.sum())

    def distances_km(self, lon: float, lat: float) -> np.ndarray:
        """Great-circle distance from (lon, lat) to every site, in kilometres."""
        lon_r, lat_r = np.radians(lon), np.radians(lat)
        half_dlat = np.sin((self._lat - lat_r) / 2.0)
        half_dlon = np.sin((self._lon - lon_r) / 2.0)
        a = half_dlat * half_dlat + np.cos(lat_r) * self._cos_lat * half_dlon * half_dlon
        distances: np.ndarray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        return distances

    def _open_first(
        self, order: np.ndarray, local: datetime, limit: int
    ) -> list[tuple[int, bool | None]]:
        """The nearest site if it is not open, then the nearest open ones; when none is open,
        simply the nearest. Hours are read lazily, nearest first, until enough are open."""
        states: list[tuple[int, bool | None]] = []
        opened: list[tuple[int, bool | None]] = []
        for index in order:
            i = int(index)
            state = self._is_open(self.sites[i], local)
            states.append((i, state))
            if state is True:
                opened.append((i, state))
                if len(opened) == limit:
                    break
        if not opened:
            return states[:limit]
        if states[0][1] is True:
            return opened[:limit]
        return [states[0], *opened[: limit - 1]]

    def _match(
        self, i: int, distance: float | None, local: datetime, in_town: bool | None
    ) -> SiteMatch:
        site = self.sites[i]
        return SiteMatch(site, distance, self._is_open(site, local), in_town)

    @staticmethod
    def _is_open(site: Site, local: datetime) -> bool | None:
        return is_open(site.hours, local)

    def _kind_mask(self, kind: SiteKind | None) -> np.ndarray:
        if kind is None:
            return np.ones(len(self.sites), dtype=bool)
        mask: np.ndarray = self._kind == self._kind_codes[kind]
        return mask

    def _key(self, town: str) -> str:
        if self._gazetteer is not None:
            return self._gazetteer.town_key(town)
        return normalize(town_stem(town))

    def _town_code(self, town: str) -> int:
        return self._town_codes.setdefault(self._key(town), len(self._town_codes))


def _local(now: datetime, timezone: ZoneInfo) -> datetime:
    """`now` on the sites' clock; a naive time is taken to be that clock already."""
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone)
    return now.astimezone(timezone)
