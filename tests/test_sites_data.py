"""The sites dataset: files in (CSV, GeoJSON, GBK), every error with its line, datums, hours,
the store, the command line, and the shipped sample."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import math
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from anchor.config import Config
from anchor.sites.dataset import (
    SitesError,
    derived_id,
    load_sites,
    seed_sites,
    store_sites,
    stored_sites,
)
from anchor.sites.datum import distance_m, to_gcj02, to_wgs84
from anchor.sites.hours import HoursError, is_open, normalize_hours
from anchor.sites.model import Site, SiteKind
from anchor.sites.readers import read_sites_file
from anchor.store.database import MAX_SITES, Store, StoreError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sites" / "sample-zhongshan.csv"
HEADER = "id,name,kind,town,address,lon,lat,hours,phone,services"

MONDAY = datetime(2026, 5, 11)  # a working Monday
SUNDAY = datetime(2026, 5, 10)
NATIONAL_DAY = datetime(2026, 10, 1)  # a Thursday, and a public holiday


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def errors_of(path: Path, **options: object) -> list[str]:
    with pytest.raises(SitesError) as caught:
        load_sites(path, **options)  # type: ignore[arg-type]
    return caught.value.errors


# --- reading ------------------------------------------------------------------------------


def test_csv_gives_sites_with_normalised_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sites.csv",
        f"{HEADER}\n"
        "zs-1,小榄驿站,户外劳动者驿站,小榄镇,小榄镇某路1号,113.245,22.665,"
        "每天 7:00-22:00,0760-88881234,饮水;休息；手机充电\n"
        ',石岐书屋,books,石岐街道,"石岐街道某路2号",113.378,22.522,周二至周日 9:00-21:00,,\n',
    )
    loaded = load_sites(path)
    assert loaded.encoding == "UTF-8"
    assert loaded.sites == (
        Site(
            id="zs-1",
            name="小榄驿站",
            kind=SiteKind.REST,
            town="小榄镇",
            address="小榄镇某路1号",
            lon=113.245,
            lat=22.665,
            hours="07:00-22:00",
            phone="0760-88881234",
            services=("饮水", "休息", "手机充电"),
        ),
        Site(
            id=derived_id(SiteKind.BOOKS, "石岐书屋", "石岐街道某路2号"),
            name="石岐书屋",
            kind=SiteKind.BOOKS,
            town="石岐街道",
            address="石岐街道某路2号",
            lon=113.378,
            lat=22.522,
            hours="Tu-Su 09:00-21:00",
        ),
    )
    # The derived id is stable: the same name and address give it again on the next import.
    assert load_sites(path).sites[1].id == loaded.sites[1].id
    assert loaded.sites[1].id.startswith("books-")


def test_chinese_headers_and_every_kind_name(tmp_path: Path) -> None:
    names = ["职工服务站", "职工服务中心", "户外劳动者驿站", "驿站", "法律援助站", "法律援助工作站"]
    names += ["职工书屋", "service", "REST", "legal"]
    rows = [
        f"站点{i},{kind},东区街道,东区某路{i}号,{113.40 + i / 1000:.3f},22.515,24小时"
        for i, kind in enumerate(names)
    ]
    path = write(
        tmp_path / "sites.csv", "名称,类型,镇街,地址,经度,纬度,开放时间\n" + "\n".join(rows)
    )
    kinds = [site.kind for site in load_sites(path).sites]
    assert kinds == [
        SiteKind.SERVICE,
        SiteKind.SERVICE,
        SiteKind.REST,
        SiteKind.REST,
        SiteKind.LEGAL,
        SiteKind.LEGAL,
        SiteKind.BOOKS,
        SiteKind.SERVICE,
        SiteKind.REST,
        SiteKind.LEGAL,
    ]


def test_gbk_csv_from_excel_is_read_and_the_encoding_said(tmp_path: Path) -> None:
    text = (
        "# sample: true\r\n"
        "名称,类型,镇街,地址,经度,纬度,开放时间,电话\r\n"
        "坦洲驿站,驿站,坦洲镇,坦洲镇某路8号,113.47,22.26,全天,12351\r\n"
    )
    path = write(tmp_path / "gbk.csv", text, encoding="gbk")
    loaded = load_sites(path)
    assert loaded.encoding == "GB18030 (GBK)"
    (site,) = loaded.sites
    assert (site.name, site.town, site.hours, site.phone, site.sample) == (
        "坦洲驿站",
        "坦洲镇",
        "24/7",
        "12351",
        True,
    )
    assert "UTF-8" in load_sites(write(tmp_path / "utf8.csv", text, "utf-8-sig")).encoding


def test_geojson_gives_sites_with_the_files_datum(tmp_path: Path) -> None:
    wgs = (113.378, 22.522)
    gcj = to_gcj02(*wgs)
    document = {
        "type": "FeatureCollection",
        "datum": "gcj02",
        "features": [
            {
                "type": "Feature",
                "id": "legal-1",
                "geometry": {"type": "Point", "coordinates": list(gcj)},
                "properties": {
                    "name": "石岐法律援助站",
                    "kind": "法律援助站",
                    "town": "石岐街道",
                    "address": "石岐街道某路3号",
                    "hours": "Mo-Fr 09:00-12:00,14:00-17:30",
                    "services": ["法律咨询", "劳动争议调解"],
                    "phone": "0760-88889999",
                },
            }
        ],
    }
    path = write(tmp_path / "sites.geojson", json.dumps(document, ensure_ascii=False, indent=2))
    loaded = load_sites(path)
    (site,) = loaded.sites
    assert loaded.datum == "gcj02"
    assert (site.id, site.kind, site.services) == (
        "legal-1",
        SiteKind.LEGAL,
        ("法律咨询", "劳动争议调解"),
    )
    assert distance_m(site.lon, site.lat, *wgs) < 0.05


# --- GCJ-02 -------------------------------------------------------------------------------


def _published_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 forward transform as published (Krasovsky ellipsoid), written out here so the
    library is checked against an independent implementation."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    waves = (20 * math.sin(6 * x * math.pi) + 20 * math.sin(2 * x * math.pi)) * 2 / 3
    d_lat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + waves
    d_lat += (20 * math.sin(y * math.pi) + 40 * math.sin(y / 3 * math.pi)) * 2 / 3
    d_lat += (160 * math.sin(y / 12 * math.pi) + 320 * math.sin(y * math.pi / 30)) * 2 / 3
    d_lon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + waves
    d_lon += (20 * math.sin(x * math.pi) + 40 * math.sin(x / 3 * math.pi)) * 2 / 3
    d_lon += (150 * math.sin(x / 12 * math.pi) + 300 * math.sin(x / 30 * math.pi)) * 2 / 3
    rad = lat / 180 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    d_lat = d_lat * 180 / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    d_lon = d_lon * 180 / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lon + d_lon, lat + d_lat


def test_gcj02_is_converted_once_on_import(tmp_path: Path) -> None:
    gcj = (113.383473, 22.519301)  # 石岐 as Amap shows it
    wgs = to_wgs84(*gcj, "gcj02")
    # The inverse is exact under the published forward transform (to a centimetre) ...
    assert distance_m(*_published_gcj02(*wgs), *gcj) < 0.01
    # ... and moves the point by the few hundred metres GCJ-02 shifts Zhongshan.
    shift = distance_m(*wgs, *gcj)
    assert 400 < shift < 800
    assert wgs == pytest.approx((113.378, 22.522), abs=2e-6)

    row = "石岐驿站,驿站,石岐街道,石岐某路1号,113.383473,22.519301,24小时\n"
    header = "name,kind,town,address,lon,lat,hours\n"
    in_file = load_sites(write(tmp_path / "a.csv", "# datum: GCJ-02\n" + header + row))
    by_option = load_sites(write(tmp_path / "b.csv", header + row), datum="gcj02")
    as_wgs = load_sites(tmp_path / "b.csv")
    for loaded in (in_file, by_option):
        assert (loaded.sites[0].lon, loaded.sites[0].lat) == pytest.approx(wgs, abs=1e-7)
    assert (as_wgs.sites[0].lon, as_wgs.sites[0].lat) == gcj


# --- every error, with its line -----------------------------------------------------------


def test_every_error_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "broken.csv",
        "# a comment row\n"
        f"{HEADER}\n"
        "a1,驿站一,驿站,小榄镇,某路1号,113.245,22.665,每天 7:00-22:00,0760-88881234,\n"
        ",,驿站,小榄镇,某路2号,113.246,22.666,24小时,,\n"
        "a3,站三,canteen,小榄镇,某路3号,abc,22.5,周一至周五 9:00-17:30 xyz,123,\n"
        "a1,驿站四,驿站,小榄镇,某路4号,22.665,113.245,24小时,,\n"
        "a5,驿站一,rest,小榄镇,某路5号,113.24501,22.66501,24小时,,\n"
        "a6,驿站一,rest,小榄镇,某路1号,113.3,22.6,24小时,,\n"
        'a7,"站\n七",rest,小榄镇,某路7号,113.9,22.6,Mo-Fx 9:00,,\n'
        "a8,站八,rest,小榄镇,某路8号,113.3,22.6,周末休息,,\n",
    )
    assert errors_of(path) == [
        f"{path}:4: name: required, but empty",
        f"{path}:5: kind: unknown kind 'canteen'; use service, rest, legal, books or "
        "职工服务站, 户外劳动者驿站, 法律援助站, 职工书屋",
        f"{path}:5: lon: expected a number in degrees (e.g. 113.38), got 'abc'",
        f"{path}:5: hours: '周一至周五 9:00-17:30 xyz': 'xyz' not understood; write e.g. "
        "周一至周五 9:00-17:30, 每天 8:00-20:00, 24小时, or OSM syntax such as Mo-Fr 09:00-17:30",
        f"{path}:5: phone: '123' does not look like a phone number "
        "(e.g. 0760-88881234, 13800138000 or 12351)",
        f"{path}:6: lon: 22.665000, 113.245000 is outside the city "
        "(lon 113.15–113.66, lat 22.17–22.78); lon and lat look swapped",
        f"{path}:6: id: 'a1' is used again (first on line 3)",
        f"{path}:7: lon: 1.5 m from the site of the same name on line 3",
        f"{path}:8: name: same name and address as line 3",
        f"{path}:9: name: line breaks and control characters are not allowed",
        f"{path}:9: lon: 113.900000, 22.600000 is outside the city "
        "(lon 113.15–113.66, lat 22.17–22.78)",
        f"{path}:9: hours: 'Mo-Fx 9:00' is not OpenStreetMap opening_hours syntax "
        "(at character 4); write e.g. 周一至周五 9:00-17:30, 每天 8:00-20:00, 24小时, "
        "or OSM syntax such as Mo-Fr 09:00-17:30",
        f"{path}:11: hours: '周末休息' only says when it is closed; add the opening hours, "
        "e.g. 周一至周五 9:00-17:30，周末休息",
    ]


def test_header_problems_are_reported_once(tmp_path: Path) -> None:
    path = write(
        tmp_path / "header.csv",
        "name,kind,town,adress,lon,lat,hours,colour\n"
        "驿站,驿站,小榄镇,某路1号,113.245,22.665,24小时,red\n"
        "驿站二,驿站,小榄镇,某路2号,113.245,22.665,24小时,red,extra\n",
    )
    assert errors_of(path) == [
        f"{path}:1: header: unknown column 'adress' (did you mean 'address'?)",
        f"{path}:1: header: unknown column 'colour'; known columns: id, name, kind, town, "
        "address, lon, lat, datum, hours, phone, services, sample",
        f"{path}:1: header: missing column(s): address",
        f"{path}:3: 9 cells but the header has 8 columns",
    ]


def test_geojson_errors_carry_the_features_lines(tmp_path: Path) -> None:
    good = {
        "name": "驿站",
        "kind": "rest",
        "town": "港口镇",
        "address": "港口镇某路1号",
        "hours": "24小时",
    }
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.39, 22.59]},
             "properties": good},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []},
             "properties": {**good, "name": "驿站二"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.39, 22.6]},
             "properties": {**good, "name": "驿站三", "kind": "canteen", "phone": 7608888123}},
        ],
    }  # fmt: skip
    path = write(tmp_path / "sites.geojson", json.dumps(document, ensure_ascii=False, indent=1))
    text = path.read_text(encoding="utf-8").splitlines()
    geometry_line = next(i for i, line in enumerate(text, 1) if '"LineString"' in line) - 1
    kind_line = next(i for i, line in enumerate(text, 1) if '"canteen"' in line)
    phone_line = next(i for i, line in enumerate(text, 1) if "7608888123" in line)
    assert errors_of(path) == [
        f"{path}:{geometry_line}: geometry: expected a Point with coordinates [lon, lat]",
        f"{path}:{kind_line}: kind: unknown kind 'canteen'; use service, rest, legal, books or "
        "职工服务站, 户外劳动者驿站, 法律援助站, 职工书屋",
        f"{path}:{phone_line}: phone: write the number as text (in quotes), or a leading 0 is lost",
    ]
    broken = write(tmp_path / "broken.geojson", '{"type": "FeatureCollection",\n "features": [,]}')
    assert errors_of(broken) == [f"{broken}:2: not valid JSON: Expecting value (column 15)"]


def test_input_is_bounded_and_encodings_are_checked(tmp_path: Path) -> None:
    row = "驿站,驿站,小榄镇,某路{n}号,113.245,22.665,24小时\n"
    path = write(
        tmp_path / "many.csv",
        "name,kind,town,address,lon,lat,hours\n" + "".join(row.format(n=n) for n in range(5)),
    )
    raw = read_sites_file(path, max_rows=3)
    assert raw.problems == [(5, "", "more than 3 sites; split the file")]
    assert errors_of(path, max_bytes=100) == [f"{path}: larger than 0 MB; split the file"]
    utf16 = write(tmp_path / "utf16.csv", "name,kind\n驿站,驿站\n", encoding="utf-16")
    assert errors_of(utf16) == [
        f"{utf16}: neither UTF-8 nor GBK text (is it an .xlsx? save it as CSV UTF-8)"
    ]
    long_name = "长" * 201
    too_long = write(
        tmp_path / "long.csv",
        f"name,kind,town,address,lon,lat,hours\n{long_name},驿站,小榄镇,某路,113.245,22.665,全天\n",
    )
    assert errors_of(too_long) == [f"{too_long}:2: name: 201 characters, more than 200 allowed"]
    assert errors_of(tmp_path / "absent.csv") == [f"{tmp_path / 'absent.csv'}: file not found"]
    empty = write(tmp_path / "empty.csv", "name,kind,town,address,lon,lat,hours\n")
    assert errors_of(empty) == [f"{empty}: no sites in the file"]


# --- opening hours ------------------------------------------------------------------------


def mon(hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute)


def sun(hour: int, minute: int = 0) -> datetime:
    return SUNDAY.replace(hour=hour, minute=minute)


@pytest.mark.parametrize(
    ("written", "osm", "open_at", "closed_at"),
    [
        ("周一至周五 9:00-17:30", "Mo-Fr 09:00-17:30", mon(17), sun(10)),
        ("周一至周六 09:00-12:00,14:00-17:30", "Mo-Sa 09:00-12:00,14:00-17:30",
         mon(14, 30), mon(13)),
        ("每天 8:00-20:00", "08:00-20:00", sun(8), sun(20, 1)),
        ("全天", "24/7", sun(3), None),
        ("24小时", "24/7", mon(23, 59), None),
        ("工作日 9:00-17:00", "Mo-Fr 09:00-17:00", mon(9), sun(12)),
        ("周一至周五 9:00-17:00，周末休息", "Mo-Fr 09:00-17:00", mon(12), sun(12)),
        ("周二至周日 9:00-21:00", "Tu-Su 09:00-21:00", sun(20), mon(10)),
        ("开放时间：周一、三、五 上午9点-下午5点半", "Mo,We,Fr 09:00-17:30", mon(17, 29),
         MONDAY.replace(day=12, hour=10)),
        ("周一至周五 9:00-17:30；节假日休息", "Mo-Fr 09:00-17:30; PH closed", mon(10),
         NATIONAL_DAY.replace(hour=10)),
        ("Mo-Fr 09:00-17:30; Sa 09:00-12:00", "Mo-Fr 09:00-17:30; Sa 09:00-12:00",
         SUNDAY.replace(day=9, hour=11), SUNDAY.replace(day=9, hour=13)),
    ],
)  # fmt: skip
def test_hours_forms_open_and_closed(
    written: str, osm: str, open_at: datetime, closed_at: datetime | None
) -> None:
    assert normalize_hours(written) == osm
    assert is_open(osm, open_at) is True
    if closed_at is not None:
        assert is_open(osm, closed_at) is False


def test_hours_in_another_zone_are_converted_to_the_citys() -> None:
    # 01:30 UTC on a Monday is 09:30 in Zhongshan.
    assert is_open("Mo-Fr 09:00-17:30", datetime(2026, 5, 11, 1, 30, tzinfo=UTC)) is True
    assert is_open("Mo-Fr 09:00-17:30", datetime(2026, 5, 11, 0, 30, tzinfo=UTC)) is False
    assert is_open("not hours", MONDAY) is None
    assert is_open('Mo-Fr 09:00-17:30 unknown "ring first"', MONDAY.replace(hour=10)) is None


def test_unreadable_hours_say_what_was_not_understood() -> None:
    with pytest.raises(HoursError, match=r"'早晨' not understood"):
        normalize_hours("周一至周五 早晨")
    with pytest.raises(HoursError, match=r"no hours given for Sa"):
        normalize_hours("周六")
    with pytest.raises(HoursError, match=r"25:00 is not a time of day"):
        normalize_hours("每天 25:00-26:00")


# --- the store ----------------------------------------------------------------------------


async def test_store_replaces_sites_whole_and_is_bounded(tmp_path: Path) -> None:
    sites = load_sites(SAMPLE).sites
    async with await Store.open(tmp_path / "anchor.db") as store:
        assert await stored_sites(store) == []
        assert await store_sites(store, sites) == len(sites)
        assert await stored_sites(store) == list(sites)
        too_many = [sites[0]] * (MAX_SITES + 1)
        with pytest.raises(ValueError, match="more than the 5000"):
            await store_sites(store, too_many)
        with pytest.raises(StoreError, match="UNIQUE"):
            await store_sites(store, [sites[0], sites[1], sites[0]])  # one transaction: undone
        assert await stored_sites(store) == list(sites)
        assert await store_sites(store, sites[:2]) == 2
        assert await stored_sites(store) == list(sites[:2])


async def test_store_migrates_an_older_file(tmp_path: Path) -> None:
    path = tmp_path / "anchor.db"
    async with await Store.open(path):
        pass
    with sqlite3.connect(path) as db:  # as schema 3 left it: no sites table
        db.execute("DROP TABLE sites")
        db.execute("PRAGMA user_version = 3")
    db.close()
    async with await Store.open(path) as store:
        assert await store_sites(store, load_sites(SAMPLE).sites[:3]) == 3


async def test_seed_imports_the_configured_file_only_into_an_empty_store(tmp_path: Path) -> None:
    config = Config.default(ROOT).sites
    async with await Store.open(tmp_path / "anchor.db") as store:
        assert await seed_sites(store, config) >= 600
        first = load_sites(SAMPLE).sites[:1]
        await store_sites(store, first)
        assert await seed_sites(store, config) == 0
        assert await stored_sites(store) == list(first)


# --- the command line ---------------------------------------------------------------------


def anchor(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_sites_check_prints_file_line_errors_and_exits_1(tmp_path: Path) -> None:
    broken = write(
        tmp_path / "broken.csv",
        "name,kind,town,address,lon,lat,hours\n"
        "驿站,canteen,小榄镇,某路1号,113.245,22.665,24小时\n"
        "驿站二,驿站,小榄镇,,113.245,22.665,每天 7:00-22:00\n",
    )
    result = anchor("sites", "check", broken, SAMPLE)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{broken}:2: kind: unknown kind 'canteen'; use service, rest, legal, books or "
        "职工服务站, 户外劳动者驿站, 法律援助站, 职工书屋",
        f"{broken}:3: address: required, but empty",
    ]
    assert result.stdout.startswith(f"{SAMPLE}: ok, 620 sites (4 kinds, 23 towns: ")


def test_sites_import_of_a_bad_file_keeps_the_sites_on_air(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", "store:\n  path: data/anchor.db\n")
    imported = anchor("sites", "import", SAMPLE, "--config", config)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[-1] == (
        f"620 sites imported into {tmp_path / 'data' / 'anchor.db'} (was 0)"
    )
    bad = write(
        tmp_path / "bad.csv", "name,kind,town,address,lon,lat,hours\n驿站,x,镇,址,1,2,全天\n"
    )
    refused = anchor("sites", "import", bad, "--config", config)
    assert refused.returncode == 1
    assert f"{bad}:2: kind: unknown kind 'x'" in refused.stderr
    assert "imported" not in refused.stdout

    async def on_air() -> list[Site]:
        async with await Store.open(tmp_path / "data" / "anchor.db") as store:
            return await stored_sites(store)

    assert len(asyncio.run(on_air())) == 620


# --- the shipped sample -------------------------------------------------------------------


def test_the_sample_checks_clean_and_is_labelled_fictional() -> None:
    loaded = load_sites(SAMPLE)
    assert len(loaded.sites) >= 600
    assert SAMPLE.read_text(encoding="utf-8-sig").startswith(
        "# SAMPLE DATA — fictional sites for the demo, not real addresses\n"
    )
    assert {site.kind for site in loaded.sites} == set(SiteKind)
    assert len({site.town for site in loaded.sites}) == 23
    for site in loaded.sites:
        assert site.name.startswith("【示例】"), site
        assert site.address.startswith("【示例】"), site
        assert site.sample is True
        assert site.phone is None or site.phone.startswith("0760-0000"), site
    kinds = [site.kind for site in loaded.sites]
    assert kinds.count(SiteKind.REST) + kinds.count(SiteKind.SERVICE) > len(kinds) * 0.7


def test_the_sample_is_what_the_script_makes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_sites", ROOT / "scripts" / "make_sample_sites.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.write(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == SAMPLE.read_bytes()


def test_doctor_says_when_the_sites_on_air_are_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from anchor.ops.doctor import _sites

    default = Config.default(ROOT)
    config = default.model_copy(
        update={"store": default.store.model_copy(update={"path": tmp_path / "anchor.db"})}
    )
    finding = _sites(config)
    assert finding.warning and not finding.ok
    assert "620 sites" in finding.detail and "620 of them SAMPLE data" in finding.detail
    assert finding.fix == "anchor sites import YOUR-SITES.csv"

    real = [dataclasses.replace(site, sample=False) for site in load_sites(SAMPLE).sites[:5]]

    async def import_real() -> None:
        async with await Store.open(tmp_path / "anchor.db") as store:
            await store_sites(store, real)

    asyncio.run(import_real())
    finding = _sites(config)
    assert finding.ok and finding.detail == f"5 sites from {tmp_path / 'anchor.db'}"
