"""The vocabulary of the sites stage: kinds of site, a site, a place, a query, a reply.

Coordinates are WGS-84 longitude/latitude in degrees everywhere inside the engine; data given
in GCJ-02 (the datum of Chinese web maps such as Amap and Tencent) is converted once, on import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# The most sites a channel holds: a city has hundreds; the bound keeps a wrong file (a whole


class SiteKind(StrEnum):
    """What a site is; the value is the id used in data files and on the wire."""

    SERVICE = "service"  # 职工服务站 / 职工服务中心
    REST = "rest"  # 户外劳动者驿站 (water, rest, phone charging, a microwave)
    LEGAL = "legal"  # 法律援助站 / 工会法律援助工作站
    BOOKS = "books"  # 职工书屋

    @property
    def chinese(self) -> str:
        return KIND_NAMES[self]


KIND_NAMES: dict[SiteKind, str] = {
    SiteKind.SERVICE: "职工服务站",
    SiteKind.REST: "户外劳动者驿站",
    SiteKind.LEGAL: "法律援助站",
    SiteKind.BOOKS: "职工书屋",
}


@dataclass(frozen=True, slots=True)
class Bounds:
    """A longitude/latitude box (WGS-84): where a city's sites may lie."""

    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.lon_min <= lon <= self.lon_max and self.lat_min <= lat <= self.lat_max


@dataclass(frozen=True, slots=True)
class Site:
    """One service site, validated; `hours` is in OpenStreetMap opening_hours syntax.

    `sample` marks the fictional demo data the project ships: the host says so whenever it
    names one, and the map card carries a SAMPLE mark."""

    id: str
    name: str
    kind: SiteKind
    town: str
    address: str
    lon: float
    lat: float
    hours: str
    phone: str | None = None
    services: tuple[str, ...] = ()
    sample: bool = False


@dataclass(frozen=True, slots=True)
class Place:
    """A named place of the city a viewer may mention: a town, a street or a landmark."""

    name: str
    kind: str  # "town", "street" or "landmark"
    lon: float
    lat: float
    town: str  # the town (镇/街道) it lies in; a town's own name for a town
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SiteQuery:
    """What a viewer asked about sites, as far as it could be read from the question."""

    kind: SiteKind | None = None  # None: any kind
    place: Place | None = None  # the place to measure from, or to look in
    in_town: bool = False  # "小榄镇有没有…": sites in the place's town, not merely near it
    nearest: bool = False  # "离我最近的…", "附近…"
    open_now: bool = False  # "现在开门吗", "几点开门": opening hours matter
    language: str = "zh"  # "zh" or "en": the language of the question, so of the reply


@dataclass(frozen=True, slots=True)
class SiteMatch:
    """A site found for a query: how far from the place asked about, and whether it is open."""

    site: Site
    distance_km: float | None
    open_now: bool | None  # None: the hours could not tell
    # Asked about a town: True when the site is in it, False when the town has none of the
    # kind and this is the nearest one elsewhere; None when no town was asked about.
    in_town: bool | None = None


@dataclass(frozen=True, slots=True)
class SiteReply:
    """What the host says about sites (sentences to speak, already in spoken form) and what
    the map card shows: the place asked about and the sites named, in the order named."""

    sentences: tuple[str, ...]
    query: SiteQuery
    matches: tuple[SiteMatch, ...] = field(default=())
    sample: bool = False
