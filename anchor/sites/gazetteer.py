"""The city's towns, streets and landmarks, and spotting them in a viewer's question.

Viewers name places the way they say them, not the way the civil-affairs register writes
them: "小榄" for 小榄镇, "火炬区" for 中山港街道, "石岐" for 石岐街道, "Xiaolan" in
English, "石歧" with a slip of the input method. So each place carries its aliases, and a
question is read by plain longest match over every name and alias: "中山港客运码头" is the
ferry pier, not the town 中山港 followed by some noise. A dictionary segmenter (jieba) would
cut place names it has never seen, which is most of them; a longest match over a list of a
few hundred names is exact, explainable to an operator and takes well under a millisecond.

The shipped list (``sites/gazetteer-zhongshan.csv``) gives approximate centroids, good
enough to say which site is nearer; the operator's own CSV (same columns) adds places and
replaces shipped ones of the same name. Errors name ``file:line`` like every file the
operator edits.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from anchor.moderation.folding import fold
from anchor.sites.model import Place
from anchor.yamlsource import SourceError

SHIPPED = Path(__file__).resolve().parent.parent.parent / "sites" / "gazetteer-zhongshan.csv"
COLUMNS = ("name", "kind", "town", "lon", "lat", "aliases")
PLACE_KINDS = ("town", "street", "landmark")
MAX_BYTES = 1024 * 1024
MAX_ROWS = 5000
MAX_NAME_CHARS = 40
# Suffixes of a town's official name that speakers drop ("小榄镇" → "小榄").
TOWN_SUFFIXES = ("街道办事处", "街道", "镇", "区")
# Where coordinates may lie at all: mainland China, Hong Kong and Macao, generously; a value
# outside is a typo or longitude and latitude swapped.
_LON_RANGE = (73.0, 136.0)
_LAT_RANGE = (3.0, 54.0)


def normalize(text: str) -> str:
    """Text as names are matched: compatibility-folded and case-folded, letters and digits
    only; one space is kept between two Latin words ("Zhongshan  Station" → "zhongshan
    station") and none elsewhere, so "小榄 镇" and "小榄镇" read the same."""
    out: list[str] = []
    gap = False
    for char in fold(text):
        if char.isalnum():
            if gap and out and _latin(out[-1]) and _latin(char):
                out.append(" ")
            out.append(char)
            gap = False
        else:
            gap = True
    return "".join(out)


def town_stem(name: str) -> str:
    """A town's name without its administrative suffix, as speakers say it."""
    for suffix in TOWN_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def english_name(place: Place) -> str:
    """What to call a place in an English reply: its first alias in Latin letters, if any."""
    for alias in place.aliases:
        if alias.isascii() and any(char.isalpha() for char in alias):
            return alias
    return place.name


@dataclass(frozen=True, slots=True)
class PlaceSpan:
    """A place named in a text, at [start, end) of the text's `normalize`d form."""

    start: int
    end: int
    place: Place


class Gazetteer:
    """Every place a question may name, indexed by each of its normalized names."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.places: tuple[Place, ...] = tuple(places)
        self._index: dict[str, Place] = {}
        for place in self.places:
            for key in _keys(place):
                self._index[key] = place  # a later place (the operator's) wins
        self._lengths = sorted({len(key) for key in self._index}, reverse=True)
        self._towns = {place.name: place for place in self.places if place.kind == "town"}
        self._town_keys: dict[str, Place] = {}
        for place in self._towns.values():
            for key in _keys(place):
                self._town_keys[key] = place

    @property
    def towns(self) -> tuple[Place, ...]:
        return tuple(self._towns.values())

    def find(self, text: str) -> list[Place]:
        """The places named in `text`, each once, in the order first named."""
        found: list[Place] = []
        for span in self.spans(normalize(text)):
            if span.place not in found:
                found.append(span.place)
        return found

    def spans(self, normalized: str) -> list[PlaceSpan]:
        """Longest, non-overlapping matches, left to right, in already `normalize`d text.

        A Latin name must stand as a whole word ("nantou" is not found in "nantoujie"),
        since Latin letters run together in a way Chinese characters do not."""
        spans: list[PlaceSpan] = []
        i = 0
        while i < len(normalized):
            for length in self._lengths:
                key = normalized[i : i + length]
                place = self._index.get(key) if len(key) == length else None
                if place is not None and _stands_alone(normalized, i, i + length):
                    spans.append(PlaceSpan(i, i + length, place))
                    i += length
                    break
            else:
                i += 1
        return spans

    def town_named(self, name: str) -> Place | None:
        """The town a site's or place's `town` field means ("小榄", "石岐区", "火炬开发区")."""
        key = normalize(name)
        return self._town_keys.get(key) or self._town_keys.get(normalize(town_stem(name)))

    def town_key(self, name: str) -> str:
        """One spelling per town, to compare `town` fields written in different ways."""
        town = self.town_named(name)
        return town.name if town is not None else normalize(town_stem(name))


def load_gazetteer(extra: Path | None = None) -> Gazetteer:
    """The shipped gazetteer, extended (and, name for name, overridden) by `extra`.

    Raises `SourceError` listing every problem of a file as ``file:line: message``."""
    places = {place.name: place for place in read_places(SHIPPED)}
    if extra is not None:
        places.update((place.name, place) for place in read_places(extra))
    return Gazetteer(_resolve_towns(places.values(), extra or SHIPPED))


def read_places(path: Path) -> list[Place]:
    """The rows of one gazetteer CSV, validated; lines starting with "#" are comments."""
    text = _read_text(path)
    errors: list[str] = []
    places: list[Place] = []
    seen: dict[str, tuple[int, str]] = {}  # normalized name or alias → (line, place name)
    rows = _rows(text)
    header = next(rows, None)
    if header is None:
        raise SourceError([f"{path}:1: no header; expected {','.join(COLUMNS)}"])
    line, cells = header
    names = [cell.strip().lower() for cell in cells]
    if names[: len(COLUMNS) - 1] != list(COLUMNS[:-1]) or names[len(COLUMNS) :]:
        raise SourceError([f"{path}:{line}: header must be {','.join(COLUMNS)}"])
    for count, (line, cells) in enumerate(rows, start=1):
        if count > MAX_ROWS:
            errors.append(f"{path}:{line}: more than {MAX_ROWS} places; split the file")
            break
        try:
            place = _place(cells)
        except ValueError as exc:
            errors.append(f"{path}:{line}: {exc}")
            continue
        for key in _keys(place):
            if key in seen and seen[key][1] != place.name:
                first_line, other = seen[key]
                errors.append(
                    f"{path}:{line}: '{key}' already names {other} (line {first_line}); "
                    "a name or alias may name one place only"
                )
            seen.setdefault(key, (line, place.name))
        places.append(place)
    if errors:
        raise SourceError(errors)
    return places


def _place(cells: Sequence[str]) -> Place:
    if len(cells) < len(COLUMNS) - 1 or len(cells) > len(COLUMNS):
        raise ValueError(f"expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), got {len(cells)}")
    name, kind, town, lon_text, lat_text = (cell.strip() for cell in cells[:5])
    aliases = tuple(a.strip() for a in cells[5].split("|") if a.strip()) if len(cells) > 5 else ()
    if not name or len(name) > MAX_NAME_CHARS:
        raise ValueError(f"name: expected 1 to {MAX_NAME_CHARS} characters")
    if kind not in PLACE_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(PLACE_KINDS)}, got '{kind[:20]}'")
    if kind == "town":
        town = town or name
    elif not town:
        raise ValueError("town: the town (镇/街道) the place lies in is required")
    lon, lat = _coordinate("lon", lon_text), _coordinate("lat", lat_text)
    if _within(lat, _LON_RANGE) and _within(lon, _LAT_RANGE):
        raise ValueError(f"lon {lon}, lat {lat}: swapped? lon comes first (about 113 here)")
    if not _within(lon, _LON_RANGE) or not _within(lat, _LAT_RANGE):
        raise ValueError(f"lon {lon}, lat {lat}: outside China; expected WGS-84 degrees")
    for alias in aliases:
        key = normalize(alias)
        if len(key) > MAX_NAME_CHARS:
            raise ValueError(f"alias '{alias[:20]}…': longer than {MAX_NAME_CHARS} characters")
        if len(key) < 2 or (key.isascii() and len(key) < 3):
            raise ValueError(
                f"alias '{alias}': too short to be told apart from ordinary words "
                "(at least 2 Chinese characters or 3 letters)"
            )
    return Place(name=name, kind=kind, lon=lon, lat=lat, town=town, aliases=aliases)


def _resolve_towns(places: Iterable[Place], path: Path) -> list[Place]:
    """Each place's `town` written as its town's full name, checked to be a known town."""
    listed = list(places)
    towns = Gazetteer(place for place in listed if place.kind == "town")
    resolved: list[Place] = []
    errors: list[str] = []
    for place in listed:
        town = towns.town_named(place.town)
        if town is None:
            errors.append(f"{path}: {place.name}: town '{place.town}' is not a town in the list")
            continue
        resolved.append(place if town.name == place.town else replace(place, town=town.name))
    if errors:
        raise SourceError(errors)
    return resolved


def _keys(place: Place) -> Iterator[str]:
    """Every normalized spelling a place is found by; a town also by its stem."""
    spellings = [place.name, *place.aliases]
    if place.kind == "town":
        spellings.append(town_stem(place.name))
    for spelling in spellings:
        key = normalize(spelling)
        if len(key) >= 2:
            yield key


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row that is not blank or a comment."""
    lines = [("\n" if line.lstrip().startswith("#") else line) for line in text.splitlines(True)]
    reader = csv.reader(lines)
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield reader.line_num, cells


def _read_text(path: Path) -> str:
    """A small regular file as UTF-8: a FIFO, a device or a huge file is refused unread."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SourceError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise SourceError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise SourceError([f"{path}: not a regular file, expected a CSV file"])
        raw = file.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise SourceError([f"{path}: more than {MAX_BYTES} bytes allowed"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SourceError([f"{path}:{line}: not valid UTF-8; save the file as UTF-8"]) from None


def _coordinate(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number of degrees, got '{text[:20]}'") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name}: expected a number of degrees, got '{text[:20]}'")
    return value


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _stands_alone(text: str, start: int, end: int) -> bool:
    if not _latin(text[start]):
        return True
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not _latin(before) and not _latin(after)
