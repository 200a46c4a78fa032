"""Datums and distances: GCJ-02 in, WGS-84 inside, metres between two sites.

Chinese web maps (Amap, Tencent, and Baidu before its own further shift) publish coordinates
in GCJ-02, an obfuscated datum that puts a point in Zhongshan some 500–700 m from where GPS
and OpenStreetMap put it. Staff copy coordinates from those maps, so a file says which datum
it is in and is converted once, on import; everything after that is WGS-84, and a map card
drawn on OSM tiles shows each site where it really is.

The conversion is prcoords' (public domain): its inverse iterates the published forward
transform to a fixed point (about 0.1 mm), rather than the one-step approximation many
copies use, which is off by a metre or more.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import prcoords

Datum = Literal["wgs84", "gcj02"]
DATUMS: tuple[Datum, ...] = ("wgs84", "gcj02")
EARTH_RADIUS_M = 6_371_008.8  # mean radius; metres-level distances need nothing finer


def to_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    """(lon, lat) in WGS-84 for a point given in ``datum``."""
    if datum == "wgs84":
        return lon, lat
    with warnings.catch_warnings():
        # prcoords warns for points outside China and returns them unchanged; the bounds
        # check after conversion reports those points to the operator instead.
        warnings.simplefilter("ignore")
        wgs = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))
    return float(wgs.lon), float(wgs.lat)


def to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) in GCJ-02 for a WGS-84 point: for writing data that Chinese maps read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gcj = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
    return float(gcj.lon), float(gcj.lat)


def parse_datum(text: str) -> Datum:
    """'GCJ-02', 'gcj02', 'WGS84', 'wgs-84' → the datum id; ValueError for anything else."""
    key = text.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    for datum in DATUMS:
        if key == datum:
            return datum
    raise ValueError(f"unknown datum {text.strip()!r}; use wgs84 or gcj02")


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine; exact enough within a city)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
