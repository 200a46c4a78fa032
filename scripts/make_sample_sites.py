"""Write sites/sample-zhongshan.csv: 620 fictional union service sites across Zhongshan.

The demo channel needs a city's worth of sites to answer "where is the nearest 驿站" before a
union has loaded its own list, and tests need a large file that must always check clean. Real
addresses and phone numbers must not appear: a viewer could walk to a made-up door or ring a
stranger. So every name and address carries 【示例】, phone numbers are in 0760-0000xxxx (a
range never assigned to subscribers), every row is marked sample, and the points are scattered
at random within about 2 km of approximate town centres — plausible on a map, nowhere in
particular on the ground.

The output is the same on every run (a fixed seed), so the file can be regenerated and diffed:

    .venv/bin/python scripts/make_sample_sites.py [--out sites/sample-zhongshan.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20260516
COUNT = 620
SCATTER_M = 2000.0
METRES_PER_DEGREE = 111_320.0

# Approximate WGS-84 centres [lon, lat] of Zhongshan's towns and streets.
TOWNS: dict[str, tuple[float, float]] = {
    "石岐街道": (113.378, 22.522),
    "东区街道": (113.400, 22.515),
    "西区街道": (113.350, 22.525),
    "南区街道": (113.370, 22.480),
    "五桂山街道": (113.440, 22.470),
    "中山港街道": (113.480, 22.545),
    "小榄镇": (113.245, 22.665),
    "古镇镇": (113.188, 22.612),
    "横栏镇": (113.255, 22.520),
    "东凤镇": (113.280, 22.690),
    "南头镇": (113.295, 22.720),
    "黄圃镇": (113.340, 22.715),
    "阜沙镇": (113.350, 22.660),
    "港口镇": (113.390, 22.590),
    "三角镇": (113.420, 22.680),
    "民众街道": (113.500, 22.630),
    "沙溪镇": (113.320, 22.530),
    "大涌镇": (113.290, 22.470),
    "板芙镇": (113.330, 22.410),
    "神湾镇": (113.360, 22.310),
    "坦洲镇": (113.470, 22.260),
    "三乡镇": (113.430, 22.350),
    "南朗街道": (113.540, 22.500),
}

# kind (its Chinese name, as staff write it) → (share of sites, opening hours, services)
KINDS: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "户外劳动者驿站": (
        0.48,
        ("每天 7:00-22:00", "24小时", "每天 6:30-21:30", "全天", "每天 7:00-22:00"),
        ("饮水", "休息", "手机充电", "微波炉加热", "应急药箱", "如厕"),
    ),
    "职工服务站": (
        0.32,
        ("周一至周五 9:00-17:30", "周一至周五 8:30-12:00,14:30-17:30", "周一至周六 9:00-17:30"),
        ("政策咨询", "困难帮扶", "互助保障", "入会登记", "就业服务"),
    ),
    "法律援助站": (
        0.1,
        ("工作日 9:00-12:00,14:00-17:30", "周一至周五 9:00-12:00,14:00-17:30，节假日休息"),
        ("法律咨询", "劳动争议调解", "法律援助申请"),
    ),
    "职工书屋": (
        0.1,
        ("周二至周日 9:00-21:00", "周二至周日 9:00-21:00，周一休息"),
        ("图书借阅", "阅读空间", "职工培训", "亲子阅读"),
    ),
}
ROADS = ("示例路", "示例大道", "演示街", "样例巷", "示范路")
HEADER = ("id", "name", "kind", "town", "address", "lon", "lat", "hours", "phone", "services")


def sample_rows(seed: int = SEED, count: int = COUNT) -> list[tuple[str, ...]]:
    """The rows, deterministic for a seed: towns in turn, kinds drawn by their shares."""
    rng = random.Random(seed)
    towns = list(TOWNS)
    kinds = list(KINDS)
    shares = [KINDS[kind][0] for kind in kinds]
    numbers: dict[tuple[str, str], int] = {}
    rows = []
    for index in range(count):
        town = towns[index % len(towns)]
        kind = rng.choices(kinds, weights=shares)[0]
        _, hours, services = KINDS[kind]
        number = numbers[town, kind] = numbers.get((town, kind), 0) + 1
        lon, lat = _scatter(rng, *TOWNS[town])
        phone = f"0760-0000{index + 1:04d}" if rng.random() < 0.8 else ""
        offered = rng.sample(services, rng.randint(2, min(5, len(services))))
        rows.append(
            (
                f"sample-{index + 1:04d}",
                f"【示例】{town}第{number}{kind}",
                kind,
                town,
                f"【示例】{town}{rng.choice(ROADS)}{rng.randint(1, 300)}号",
                f"{lon:.6f}",
                f"{lat:.6f}",
                rng.choice(hours),
                phone,
                "、".join(offered),
            )
        )
    return rows


def _scatter(rng: random.Random, lon: float, lat: float) -> tuple[float, float]:
    """A point uniformly within SCATTER_M of (lon, lat)."""
    distance = SCATTER_M * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    north, east = distance * math.cos(bearing), distance * math.sin(bearing)
    return (
        lon + east / (METRES_PER_DEGREE * math.cos(math.radians(lat))),
        lat + north / METRES_PER_DEGREE,
    )


def write(path: Path) -> int:
    """Write the sample file (UTF-8 with a BOM, so Excel shows the Chinese); rows written."""
    rows = sample_rows()
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        file.write("# SAMPLE DATA — fictional sites for the demo, not real addresses\n")
        file.write("# datum: wgs84\n")
        file.write("# sample: true\n")
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow((*HEADER, "sample"))
        writer.writerows((*row, "true") for row in rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sites" / "sample-zhongshan.csv")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{args.out}: {write(args.out)} sample sites written")


if __name__ == "__main__":
    main()
