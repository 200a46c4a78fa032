"""Sites files as raw records: CSV or GeoJSON in, field values with the line they came from.

This module only reads; `anchor.sites.dataset` judges the values. The split keeps the two
hard parts apart: what the file says (encodings, Excel's habits, GeoJSON structure, line
numbers) and whether it makes sense (kinds, coordinates, hours, duplicates).

Files come from union staff, usually saved from Excel: often in GBK rather than UTF-8, with
Chinese column headers, sometimes with comment rows like ``# datum: gcj02`` padded out with
commas. They may also come from anyone, so reading is bounded (size, rows, nesting) and only
regular files are opened.

Line numbers are what the person fixing the file needs. For CSV that is the physical line a
row starts on (a quoted cell may span lines). JSON parsers drop positions, so a GeoJSON file
is parsed twice: once whole, for the parser's own syntax errors, then member by member with
the standard decoder's ``raw_decode``, which tells where each feature starts and ends.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000
ENCODINGS = ("utf-8-sig", "gb18030")  # Excel on a Chinese Windows saves CSV as GBK
ENCODING_NAMES = {"utf-8-sig": "UTF-8", "gb18030": "GB18030 (GBK)"}

# Column (CSV) or property (GeoJSON) names, English and the Chinese staff write, by field.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "编号", "站点编号"),
    "name": ("name", "名称", "站点名称", "站名"),
    "kind": ("kind", "type", "类型", "类别", "站点类型"),
    "town": ("town", "镇街", "镇/街道", "镇街道", "所属镇街", "镇"),
    "address": ("address", "地址", "详细地址"),
    "lon": ("lon", "lng", "longitude", "经度"),
    "lat": ("lat", "latitude", "纬度"),
    "datum": ("datum", "坐标系"),
    "hours": ("hours", "opening_hours", "开放时间", "服务时间", "营业时间"),
    "phone": ("phone", "tel", "telephone", "电话", "联系电话"),
    "services": ("services", "服务项目", "服务内容"),
    "sample": ("sample", "示例"),
    "notes": ("notes", "note", "remark", "备注"),  # for people; read and ignored
}
FIELD_OF = {alias.lower(): name for name, aliases in ALIASES.items() for alias in aliases}
REQUIRED = ("name", "kind", "town", "address", "lon", "lat", "hours")
_HEADER_OPTION = re.compile(r"^#\s*(datum|sample)\s*[:=]\s*(\S+)\s*$", re.IGNORECASE)
_MAX_DEPTH_HINT = "the file is nested too deeply to be GeoJSON"


@dataclass
class RawRecord:
    """One row or feature: canonical field name → value as written, and where."""

    line: int
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # a field's own line, when it differs
    labels: dict[str, str] = field(default_factory=dict)  # a field's name in this file's terms

    def line_of(self, name: str) -> int:
        return self.lines.get(name, self.line)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)


@dataclass
class RawFile:
    """What a file said, before judging: its records, file-wide options, and read errors.

    ``problems`` are (line, field, message); field "" for a problem of the file itself."""

    path: Path
    encoding: str = "utf-8-sig"
    records: list[RawRecord] = field(default_factory=list)
    datum: tuple[int, str] | None = None  # (line, text) of a file-wide datum
    sample: tuple[int, str] | None = None  # (line, text) of a file-wide sample mark
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)  # required columns the CSV header lacks

    @property
    def encoding_name(self) -> str:
        return ENCODING_NAMES.get(self.encoding, self.encoding)


def read_sites_file(path: Path, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS) -> RawFile:
    """Read ``path`` as GeoJSON (.geojson/.json, or text starting with '{') or else CSV."""
    raw = RawFile(path=path)
    data = _read_bounded(path, max_bytes, raw)
    if data is None:
        return raw
    text = _decode(data, raw)
    if text is None:
        return raw
    if path.suffix.lower() in (".geojson", ".json") or text.lstrip().startswith("{"):
        _read_geojson(text, raw, max_rows)
    else:
        _read_csv(text, raw, max_rows)
    return raw


def _read_bounded(path: Path, max_bytes: int, raw: RawFile) -> bytes | None:
    """At most ``max_bytes`` of a regular file (never a FIFO or device, which could block)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raw.problems.append((0, "", "file not found"))
        return None
    except OSError as exc:
        raw.problems.append((0, "", f"cannot read: {exc.strerror or exc}"))
        return None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raw.problems.append((0, "", "not a regular file, expected a CSV or GeoJSON file"))
            return None
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raw.problems.append((0, "", f"larger than {max_bytes // (1024 * 1024)} MB; split the file"))
        return None
    return data


def _decode(data: bytes, raw: RawFile) -> str | None:
    """UTF-8 first (with or without Excel's BOM), then GB18030, a superset of GBK."""
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        raw.encoding = encoding
        if "\x00" in text:
            break
        return text
    raw.problems.append(
        (0, "", "neither UTF-8 nor GBK text (is it an .xlsx? save it as CSV UTF-8)")
    )
    return None


def _read_csv(text: str, raw: RawFile, max_rows: int) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str | None] | None = None
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if cells[0].startswith("#"):  # a comment row, perhaps padded with commas by Excel
                if header is None:
                    _header_option(",".join(cells).rstrip(", "), start, raw)
                continue
            if header is None:
                header = _header(cells, start, raw)
                continue
            if len(raw.records) >= max_rows:
                raw.problems.append((start, "", f"more than {max_rows} sites; split the file"))
                return
            raw.records.append(_csv_record(cells, header, start, raw))
    except csv.Error as exc:
        raw.problems.append((reader.line_num, "", f"not readable as CSV: {exc}"))
        return
    if header is None:
        raw.problems.append((1, "", "no header row; the first row names the columns"))


def _header_option(text: str, line: int, raw: RawFile) -> None:
    match = _HEADER_OPTION.match(text)
    if match is None:
        return
    option = (line, match.group(2))
    if match.group(1).lower() == "datum":
        raw.datum = option
    else:
        raw.sample = option


def _header(cells: list[str], line: int, raw: RawFile) -> list[str | None]:
    """Each column's field name (None: ignored); every problem of the header row reported."""
    names: list[str | None] = []
    seen: dict[str, str] = {}
    for cell in cells:
        name = FIELD_OF.get(cell.lower())
        if name is None:
            if cell:
                raw.problems.append((line, "header", f"unknown column {cell!r}{_suggest(cell)}"))
            names.append(None)
            continue
        if name in seen:
            raw.problems.append(
                (line, "header", f"column {cell!r} repeats {seen[name]!r} (both are {name})")
            )
            names.append(None)
            continue
        seen[name] = cell
        names.append(None if name == "notes" else name)
    missing = [name for name in REQUIRED if name not in seen]
    raw.absent.update(missing)
    if missing:
        raw.problems.append((line, "header", f"missing column(s): {', '.join(missing)}"))
    return names


def _suggest(cell: str) -> str:
    close = difflib.get_close_matches(cell.lower(), list(FIELD_OF), n=1, cutoff=0.7)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; known columns: {', '.join(name for name in ALIASES if name != 'notes')}"


def _csv_record(cells: list[str], header: list[str | None], line: int, raw: RawFile) -> RawRecord:
    record = RawRecord(line=line)
    extra = [cell for cell in cells[len(header) :] if cell]
    if extra:
        raw.problems.append(
            (line, "", f"{len(cells)} cells but the header has {len(header)} columns")
        )
    for index, name in enumerate(header):
        if name is not None:
            record.values[name] = cells[index] if index < len(cells) else ""
    return record


def _read_geojson(text: str, raw: RawFile, max_rows: int) -> None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raw.problems.append((exc.lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno})"))
        return
    except RecursionError:
        raw.problems.append((1, "", _MAX_DEPTH_HINT))
        return
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raw.problems.append((1, "", 'expected a GeoJSON FeatureCollection ({"type": ...})'))
        return
    if not isinstance(document.get("features"), list):
        raw.problems.append((1, "features", "expected a list of features"))
        return
    for option in ("datum", "sample"):
        if option in document:
            line = _key_line(text, 0, len(text), option) or 1
            setattr(raw, option, (line, _scalar_text(document[option])))
    spans = _feature_spans(text)
    for index, feature in enumerate(document["features"]):
        if index >= max_rows:
            raw.problems.append((spans[index][0], "", f"more than {max_rows} sites; split it"))
            return
        line, start, end = spans[index]
        record = _feature_record(feature, line, text[start:end], raw)
        if record is not None:
            raw.records.append(record)


def _feature_record(feature: Any, line: int, source: str, raw: RawFile) -> RawRecord | None:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raw.problems.append((line, "", 'expected a Feature ({"type": "Feature", ...})'))
        return None
    record = RawRecord(line=line)
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raw.problems.append((line, "properties", "expected an object of name: value"))
        return None
    for key, value in properties.items():
        name = FIELD_OF.get(str(key).lower())
        where = line + _lines_before(source, key)
        if name is None:
            raw.problems.append((where, str(key), f"unknown property{_suggest(str(key))}"))
        elif name != "notes":
            record.values[name] = value
            record.lines[name] = where
            record.labels[name] = str(key)
    if "id" not in record.values and feature.get("id") is not None:
        record.values["id"] = feature["id"]
        record.lines["id"] = line + _lines_before(source, "id")
    _point(feature.get("geometry"), record, line + _lines_before(source, "geometry"), raw)
    return record


def _point(geometry: Any, record: RawRecord, line: int, raw: RawFile) -> None:
    """A Point's [lon, lat] (an altitude is allowed and ignored) as the record's lon and lat."""
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if not (
        isinstance(geometry, dict)
        and geometry.get("type") == "Point"
        and isinstance(coordinates, list)
        and len(coordinates) in (2, 3)
    ):
        raw.problems.append((line, "geometry", "expected a Point with coordinates [lon, lat]"))
        record.values["lon"] = record.values["lat"] = None
        record.labels["lon"] = record.labels["lat"] = "geometry"
        return
    for name, value in zip(("lon", "lat"), coordinates, strict=False):
        record.values[name] = value
        record.lines[name] = line
        record.labels[name] = "coordinates"


def _feature_spans(text: str) -> list[tuple[int, int, int]]:
    """(line, start, end) of every element of the top-level "features" array, in order.

    The text is known to be valid JSON here, so the walk only needs the standard decoder's
    ``raw_decode`` for each value it steps over. Like ``json.loads``, the last "features"
    member wins if the key is repeated."""
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int, int]] = []
    position = _skip(text, 0) + 1  # past "{"
    while text[_skip(text, position)] != "}":
        key, position = decoder.raw_decode(text, _skip(text, position))
        position = _skip(text, _skip(text, position) + 1)  # past ":"
        if key == "features":
            spans, position = _array_spans(text, position, decoder)
        else:
            _, position = decoder.raw_decode(text, position)
        position = _skip(text, position)
        if text[position] == ",":
            position += 1
    return spans


def _array_spans(
    text: str, position: int, decoder: json.JSONDecoder
) -> tuple[list[tuple[int, int, int]], int]:
    """The elements' spans of the array starting at ``position``, and the index after it."""
    spans: list[tuple[int, int, int]] = []
    position = _skip(text, position + 1)  # past "["
    while text[position] != "]":
        start = position
        _, end = decoder.raw_decode(text, start)
        spans.append((text.count("\n", 0, start) + 1, start, end))
        position = _skip(text, end)
        if text[position] == ",":
            position = _skip(text, position + 1)
    return spans, position + 1


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _lines_before(source: str, key: str) -> int:
    """Lines from a feature's start to where ``key`` is written in it (0 if not found)."""
    found = _key_offset(source, 0, len(source), key)
    return 0 if found is None else source.count("\n", 0, found)


def _key_line(text: str, start: int, end: int, key: str) -> int | None:
    found = _key_offset(text, start, end, key)
    return None if found is None else text.count("\n", 0, found) + 1


def _key_offset(text: str, start: int, end: int, key: str) -> int | None:
    pattern = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:")
    match = pattern.search(text, start, end)
    if match is None and not key.isascii():
        pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
        match = pattern.search(text, start, end)
    return None if match is None else match.start()


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
