"""A sites file, checked whole: every site valid, in the city, and listed once.

The host tells viewers where to go, so a wrong site is worse than a missing one: a 驿站 put
in the sea by swapped coordinates, or listed twice with different hours, sends a delivery
rider to the wrong door. So a file is accepted whole or not at all, and when it is refused
every problem is listed at once as ``file:line: field: message`` — staff fix the spreadsheet
in one round, not one error per try.

What is checked, per site: the required fields are there (name, kind, town, address, lon,
lat, hours), the kind is one of the four (by id or by its Chinese name), the coordinates are
numbers inside the city's bounds after the datum is applied, the opening hours can be read,
the phone number looks like one. Across sites: an id, a name with its address, or a name at
the same spot (within `DUPLICATE_METRES`) appears only once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchor.config import ZHONGSHAN_BOUNDS, SitesConfig
from anchor.sites.datum import Datum, distance_m, parse_datum, to_wgs84
from anchor.sites.hours import HoursError, normalize_hours
from anchor.sites.model import Bounds, Site, SiteKind
from anchor.sites.readers import MAX_BYTES, REQUIRED, RawFile, RawRecord, read_sites_file
from anchor.store.database import MAX_SITES, SiteRow, Store
from anchor.yamlsource import SourceError

log = logging.getLogger(__name__)

ZHONGSHAN = Bounds(*ZHONGSHAN_BOUNDS)  # 中山市; config's sites.bounds overrides it
DUPLICATE_METRES = 5.0
MAX_FIELD_CHARS = 200
MAX_SERVICES_CHARS = 500
MAX_SERVICES = 20

KIND_ALIASES: dict[str, SiteKind] = {
    **{kind.value: kind for kind in SiteKind},
    "职工服务站": SiteKind.SERVICE,
    "职工服务中心": SiteKind.SERVICE,
    "服务站": SiteKind.SERVICE,
    "户外劳动者驿站": SiteKind.REST,
    "户外劳动者服务站": SiteKind.REST,
    "驿站": SiteKind.REST,
    "法律援助站": SiteKind.LEGAL,
    "法律援助工作站": SiteKind.LEGAL,
    "工会法律援助工作站": SiteKind.LEGAL,
    "职工书屋": SiteKind.BOOKS,
    "书屋": SiteKind.BOOKS,
}
_KIND_HINT = "use service, rest, legal, books or 职工服务站, 户外劳动者驿站, 法律援助站, 职工书屋"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TRUE = {"true", "yes", "1", "y", "是", "√"}
_FALSE = {"false", "no", "0", "n", "否", ""}
_PHONE_SPLIT = re.compile(r"\s*[/、;；]\s*")
_PHONES = (
    re.compile(r"^0\d{2,3}-?\d{7,8}(?:-\d{1,5})?$"),  # landline with area code: 0760-88881234
    re.compile(r"^1[3-9]\d{9}$"),  # mobile
    re.compile(r"^[2-9]\d{6,7}$"),  # landline within the city, without the area code
    re.compile(r"^1\d{4}$"),  # service hotlines: 12351 (union), 12348 (legal aid), 12345
    re.compile(r"^[49]00-?\d{3}-?\d{4}$"),  # 400 / 900 numbers
)
_SERVICE_SPLIT = re.compile(r"\s*[;；、]\s*")


class SitesError(SourceError):
    """A sites file that cannot be used; every problem as ``file:line: field: message``."""


@dataclass(frozen=True)
class SitesFile:
    """A checked sites file: its sites in file order, and how it was read."""

    path: Path
    sites: tuple[Site, ...]
    encoding: str  # "UTF-8" or "GB18030 (GBK)": said back, so staff know how Excel saved it
    datum: Datum  # the file's datum (or the default used for it)

    def summary(self) -> str:
        """'FILE: ok, 620 sites (4 kinds, 23 towns: 三乡镇, …); UTF-8, wgs84'."""
        kinds = Counter(site.kind for site in self.sites)
        towns = sorted({site.town for site in self.sites})
        shown = ", ".join(towns[:8]) + (", …" if len(towns) > 8 else "")
        return (
            f"{self.path}: ok, {len(self.sites)} sites ({len(kinds)} kinds, "
            f"{len(towns)} towns: {shown}); {self.encoding}, {self.datum}"
        )


def load_sites(
    path: Path | str,
    *,
    datum: Datum = "wgs84",
    bounds: Bounds = ZHONGSHAN,
    max_bytes: int = MAX_BYTES,
) -> SitesFile:
    """Read and check a CSV or GeoJSON sites file; raise SitesError listing every problem.

    ``datum`` applies when the file does not say its own (a ``datum`` column, a ``# datum:``
    comment row, a top-level GeoJSON ``"datum"``); GCJ-02 is converted to WGS-84 here."""
    path = Path(path)
    raw = read_sites_file(path, max_bytes=max_bytes, max_rows=MAX_SITES)
    problems = list(raw.problems)
    file_datum = _file_datum(raw, datum, problems)
    file_sample = _file_sample(raw, problems)
    placed: list[tuple[RawRecord, Site]] = []
    for record in raw.records:
        site = _site(_Row(record, problems, raw.absent), file_datum, file_sample, bounds)
        if site is not None:
            placed.append((record, site))
    problems.extend(_duplicates(raw.records, placed))
    if problems or (not raw.records and not problems):
        if not problems:
            problems.append((0, "", "no sites in the file"))
        raise SitesError(_format(path, problems))
    return SitesFile(
        path=path,
        sites=tuple(site for _, site in placed),
        encoding=raw.encoding_name,
        datum=file_datum,
    )


def load_configured(
    config: SitesConfig, path: Path | None = None, *, datum: Datum | None = None
) -> SitesFile:
    """`load_sites` with the channel's datum and bounds; ``path`` defaults to sites.path."""
    return load_sites(
        path or config.path, datum=datum or config.datum, bounds=Bounds(*config.bounds)
    )


def site_row(site: Site) -> SiteRow:
    """A site as the store keeps it."""
    return SiteRow(
        site.id,
        site.name,
        site.kind.value,
        site.town,
        site.address,
        site.lon,
        site.lat,
        site.hours,
        site.phone,
        site.services,
        site.sample,
    )


def site_of(row: SiteRow) -> Site | None:
    """A stored site; None (logged) for a kind this engine does not know, which only a newer
    engine could have written."""
    try:
        kind = SiteKind(row.kind)
    except ValueError:
        log.warning("site %s: unknown kind %r, left out", row.id, row.kind)
        return None
    return Site(
        row.id,
        row.name,
        kind,
        row.town,
        row.address,
        row.lon,
        row.lat,
        row.hours,
        row.phone,
        row.services,
        row.sample,
    )


async def stored_sites(store: Store) -> list[Site]:
    """The sites on air: as last imported into the store."""
    return [site for row in await store.sites() if (site := site_of(row)) is not None]


async def store_sites(store: Store, sites: Sequence[Site]) -> int:
    """Replace the sites on air (one transaction); how many."""
    return await store.replace_sites([site_row(site) for site in sites])


async def seed_sites(store: Store, config: SitesConfig) -> int:
    """At start: import ``sites.path`` when the store holds no sites yet; sites imported.

    Sites an operator imported are never overwritten by the configured file; a broken file
    raises SitesError and the store stays as it was."""
    if not config.enabled or await store.sites():
        return 0
    return await store_sites(store, load_configured(config).sites)


def _file_datum(raw: RawFile, default: Datum, problems: list[tuple[int, str, str]]) -> Datum:
    if raw.datum is None:
        return default
    line, text = raw.datum
    try:
        return parse_datum(text)
    except ValueError as exc:
        problems.append((line, "datum", str(exc)))
        return default


def _file_sample(raw: RawFile, problems: list[tuple[int, str, str]]) -> bool:
    if raw.sample is None:
        return False
    line, text = raw.sample
    value = _boolean(text)
    if value is None:
        problems.append((line, "sample", f"expected true or false, got {text!r}"))
    return bool(value)


class _Row:
    """One record being judged: each problem is noted with the field's own line and label."""

    def __init__(
        self, record: RawRecord, problems: list[tuple[int, str, str]], absent: set[str]
    ) -> None:
        self.record = record
        self.problems = problems
        self.absent = absent  # columns missing from the header: reported once, not per row
        self.failed = False

    def problem(self, name: str, message: str) -> None:
        self.failed = True
        self.problems.append((self.record.line_of(name), self.record.label(name), message))

    def text(self, name: str, *, limit: int = MAX_FIELD_CHARS) -> str | None:
        """The field as text, or None when empty; required fields must not be."""
        value = self.record.values.get(name)
        if isinstance(value, bool | int | float) and name not in ("phone", "id"):
            value = str(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in self.absent:
                self.failed = True
            elif name in REQUIRED:
                given = name in self.record.values
                self.problem(name, "required, but empty" if given else "required, but missing")
            return None
        if not isinstance(value, str):
            self.problem(name, f"expected text, got {_describe(value)}")
            return None
        value = value.strip()
        if len(value) > limit:
            self.problem(name, f"{len(value)} characters, more than {limit} allowed")
            return None
        if any(ord(char) < 32 for char in value):
            self.problem(name, "line breaks and control characters are not allowed")
            return None
        return value


def _site(row: _Row, file_datum: Datum, file_sample: bool, bounds: Bounds) -> Site | None:
    name, town, address = row.text("name"), row.text("town"), row.text("address")
    kind = _kind(row)
    lon, lat = _coordinate(row, "lon"), _coordinate(row, "lat")
    datum = _row_datum(row, file_datum)
    if lon is not None and lat is not None:
        lon, lat = to_wgs84(lon, lat, datum)
        if not bounds.contains(lon, lat):
            outside = "lon" if not bounds.lon_min <= lon <= bounds.lon_max else "lat"
            row.problem(outside, _outside(lon, lat, bounds))
    hours = _hours(row)
    phone = _phone(row)
    services = _services(row)
    sample = _sample(row) or file_sample
    given_id = _id(row)
    if row.failed or None in (name, town, address, kind, lon, lat, hours):
        return None
    assert name and town and address and kind and hours and lon is not None and lat is not None
    return Site(
        id=given_id or derived_id(kind, name, address),
        name=name,
        kind=kind,
        town=town,
        address=address,
        lon=round(lon, 7),
        lat=round(lat, 7),
        hours=hours,
        phone=phone,
        services=services,
        sample=sample,
    )


def derived_id(kind: SiteKind, name: str, address: str) -> str:
    """A stable id for a site listed without one: the same name and address give the same id
    on every import, so references to it (an operator's note, a log line) stay valid."""
    digest = hashlib.blake2b(f"{name}\n{address}".encode(), digest_size=5).hexdigest()
    return f"{kind.value}-{digest}"


def _kind(row: _Row) -> SiteKind | None:
    text = row.text("kind")
    if text is None:
        return None
    kind = KIND_ALIASES.get(text.lower())
    if kind is None:
        row.problem("kind", f"unknown kind {text!r}; {_KIND_HINT}")
    return kind


def _coordinate(row: _Row, name: str) -> float | None:
    value = row.record.values.get(name)
    if isinstance(value, str):
        value = row.text(name)
        if value is None:
            return None
    elif value is None:
        if name in row.absent or row.record.label(name) == "geometry":
            row.failed = True  # already reported: the header, or the feature's geometry
        else:
            row.problem(name, "required, but missing")
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        row.problem(name, f"expected a number in degrees (e.g. 113.38), got {_describe(value)}")
        return None
    if not math.isfinite(number):
        row.problem(name, f"expected a finite number, got {_describe(value)}")
        return None
    return number


def _row_datum(row: _Row, file_datum: Datum) -> Datum:
    text = row.text("datum")
    if text is None:
        return file_datum
    try:
        return parse_datum(text)
    except ValueError as exc:
        row.problem("datum", str(exc))
        return file_datum


def _outside(lon: float, lat: float, bounds: Bounds) -> str:
    message = (
        f"{lon:.6f}, {lat:.6f} is outside the city (lon {bounds.lon_min}–{bounds.lon_max}, "
        f"lat {bounds.lat_min}–{bounds.lat_max})"
    )
    if bounds.contains(lat, lon):
        message += "; lon and lat look swapped"
    return message


def _hours(row: _Row) -> str | None:
    text = row.text("hours")
    if text is None:
        return None
    try:
        return normalize_hours(text)
    except HoursError as exc:
        row.problem("hours", str(exc))
        return None


def _phone(row: _Row) -> str | None:
    """Digits and dashes only, each number plausible; several may be separated by '/'."""
    value = row.record.values.get("phone")
    if isinstance(value, int | float) and not isinstance(value, bool):
        row.problem("phone", "write the number as text (in quotes), or a leading 0 is lost")
        return None
    text = row.text("phone")
    if text is None:
        return None
    numbers = []
    for part in _PHONE_SPLIT.split(text):
        number = re.sub(r"[\s()（）]", "", part).replace("—", "-").replace("－", "-")
        if not any(pattern.fullmatch(number) for pattern in _PHONES):
            row.problem(
                "phone",
                f"{part!r} does not look like a phone number "
                "(e.g. 0760-88881234, 13800138000 or 12351)",
            )
            return None
        numbers.append(number)
    return "/".join(numbers)


def _services(row: _Row) -> tuple[str, ...]:
    value = row.record.values.get("services")
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            row.problem("services", "expected a list of text")
            return ()
        value = "、".join(value)
        row.record.values["services"] = value
    text = row.text("services", limit=MAX_SERVICES_CHARS)
    if text is None:
        return ()
    services = tuple(item for item in _SERVICE_SPLIT.split(text) if item)
    if len(services) > MAX_SERVICES:
        row.problem("services", f"{len(services)} services, more than {MAX_SERVICES}")
        return ()
    return services


def _sample(row: _Row) -> bool:
    value = row.record.values.get("sample")
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = row.text("sample") or ""
    flag = _boolean(text)
    if flag is None:
        row.problem("sample", f"expected true or false, got {text!r}")
    return bool(flag)


def _id(row: _Row) -> str | None:
    value = row.record.values.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
        row.record.values["id"] = value
    text = row.text("id")
    if text is not None and not _ID.fullmatch(text):
        row.problem("id", f"{text!r}: use letters, digits, '-', '_' or '.' (at most 64)")
        return None
    return text


def _duplicates(
    records: list[RawRecord], placed: list[tuple[RawRecord, Site]]
) -> Iterable[tuple[int, str, str]]:
    """Each site listed twice, reported at the later line with the first one's line.

    Ids are compared on every record that gives one (a row with other errors still claims its
    id); names, addresses and places only on rows that are valid, since they need all three."""
    by_id: dict[str, int] = {}
    for record in records:
        value = record.values.get("id")
        given = str(value).strip() if isinstance(value, str | int) else ""
        if given:
            first = by_id.setdefault(given, record.line)
            if first != record.line:
                message = f"{given!r} is used again (first on line {first})"
                yield record.line_of("id"), record.label("id"), message
    by_name_address: dict[tuple[str, str], int] = {}
    by_name: dict[str, list[tuple[int, Site]]] = {}
    for record, site in placed:
        line = record.line
        first = by_name_address.setdefault((site.name, site.address), line)
        if first != line:
            yield line, record.label("name"), f"same name and address as line {first}"
            continue
        for other_line, other in by_name.get(site.name, ()):
            metres = distance_m(site.lon, site.lat, other.lon, other.lat)
            if metres <= DUPLICATE_METRES:
                message = f"{metres:.1f} m from the site of the same name on line {other_line}"
                yield record.line_of("lon"), record.label("lon"), message
                break
        else:
            by_name.setdefault(site.name, []).append((line, site))


def _boolean(text: str) -> bool | None:
    key = text.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return None


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _format(path: Path, problems: list[tuple[int, str, str]]) -> list[str]:
    """``file:line: field: message`` in line order (no line for a problem of the whole file)."""
    lines = []
    for line, name, message in sorted(problems, key=lambda item: item[0]):
        where = f"{path}:{line}" if line else f"{path}"
        lines.append(f"{where}: {name}: {message}" if name else f"{where}: {message}")
    return lines
