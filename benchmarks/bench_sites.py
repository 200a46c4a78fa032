"""What answering a question about service sites costs, pinned to one core.

Prints, on this machine:

- loading the shipped gazetteer and the sites dataset, and building the desk (once per start);
- per question, `SiteDesk.reply` end to end (reading the question, finding the sites, reading
  their opening hours, composing the spoken answer), p50 / p95 / max over every question of
  a mixed set (nearest to a landmark, in a town, open now, English, no place, and questions
  that are not about sites), `--rounds` times; then the three steps alone: reading the
  question, the finder, composing the reply;
- the same for a city `--scale` times larger (the sample sites repeated with a small offset),
  to show how the cost grows with the number of sites;
- drawing the map card of an answer (Pillow, off the frame loop) at the card area's size for
  1280x720 and 1920x1080 landscape and 720x1280 portrait, p50 / p95 / max (target <= 300 ms),
  and what pasting a shown card costs the frame loop (render ms per frame, with and without).

The dataset is the shipped sample (sites/sample-zhongshan.csv, 620 sites) unless `--sites`
names another. The first round warms the caches (parsed opening hours); it is not counted.

    .venv/bin/python benchmarks/bench_sites.py [--sites FILE] [--rounds 50] [--scale 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from anchor.sites.dataset import load_sites
from anchor.sites.desk import SiteDesk
from anchor.sites.finder import SiteFinder
from anchor.sites.gazetteer import Gazetteer, load_gazetteer
from anchor.sites.intent import read_site_question
from anchor.sites.model import Site
from anchor.sites.reply import compose_reply

ROOT = Path(__file__).resolve().parent.parent
CITY = ZoneInfo("Asia/Shanghai")
QUESTIONS = [
    "离中山站最近的驿站在哪？",
    "小榄镇有没有职工服务站？",
    "法律援助站几点开门？",
    "石岐附近能喝水歇脚的地方",
    "where is the nearest rest station near Zhongshan station?",
    "孙文西路步行街附近有没有书屋",
    "兴中广场旁边的法律援助站现在开着吗",
    "火炬区有几个书屋",
    "古镇灯饰城附近能充电的地方",
    "Is there a library in Xiaolan?",
    "石歧哪里有译站",
    "坦洲镇的职工服务站电话多少",
    "离我最近的驿站在哪？",
    "小榄镇有哪些站点",
    "is the legal aid station near Shiqi open now?",
    "神湾镇有没有法律援助站",
    # Not about sites: the desk must say so quickly too.
    "法律援助怎么申请",
    "互助保障怎么申请理赔？",
    "劳动合同到期不续签有补偿吗",
    "今天天气怎么样",
]


def one_core() -> None:
    """Pin the process to one CPU, as on the union's busy 2-core box."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000.0


def report(label: str, samples_ms: Sequence[float]) -> None:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"  {label:<34} p50 {statistics.median(ordered):7.3f} ms   p95 {p95:7.3f} ms   "
        f"max {ordered[-1]:7.3f} ms   (n={len(ordered)})"
    )


def scaled(sites: Sequence[Site], factor: int) -> list[Site]:
    """The sites `factor` times over, each copy moved a few hundred metres: a bigger city."""
    bigger: list[Site] = []
    for copy in range(factor):
        shift = copy * 0.003
        bigger.extend(
            replace(site, id=f"{site.id}-{copy}", lon=site.lon + shift, lat=site.lat - shift)
            for site in sites
        )
    return bigger


def measure(sites: Sequence[Site], gazetteer: Gazetteer, rounds: int) -> None:
    build = timed(lambda: SiteDesk(sites, gazetteer, CITY))
    desk = SiteDesk(sites, gazetteer, CITY)
    finder = SiteFinder(sites, CITY, gazetteer=gazetteer)
    print(f"{len(sites)} sites: desk built in {build:.1f} ms")
    base = datetime(2025, 3, 5, 6, 0, tzinfo=CITY)
    # Times through a day and a week, so opening hours are read in every state.
    times = [base + timedelta(hours=5 * n, minutes=7 * n) for n in range(rounds + 1)]
    for question in QUESTIONS:  # warm-up round: parsed hours are cached after the first use
        desk.reply(question, times[0])
    whole: list[float] = []
    reading: list[float] = []
    finding: list[float] = []
    composing: list[float] = []
    for now in times[1:]:
        for question in QUESTIONS:
            whole.append(timed(partial(desk.reply, question, now)))
            reading.append(timed(partial(read_site_question, question, gazetteer)))
            query = read_site_question(question, gazetteer)
            if query is None:
                continue
            start = time.perf_counter()
            matches = finder.find(query, now)
            finding.append((time.perf_counter() - start) * 1000.0)
            total = finder.count(query)
            composing.append(timed(partial(compose_reply, query, matches, now, total=total)))
    report("SiteDesk.reply (whole answer)", whole)
    report("read_site_question", reading)
    report("SiteFinder.find (with hours)", finding)
    report("compose_reply", composing)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sites", type=Path, default=ROOT / "sites" / "sample-zhongshan.csv")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args(argv)
    one_core()
    start = time.perf_counter()
    gazetteer = load_gazetteer()
    print(
        f"gazetteer: {len(gazetteer.places)} places ({len(gazetteer.towns)} towns) loaded in "
        f"{(time.perf_counter() - start) * 1000:.1f} ms"
    )
    start = time.perf_counter()
    sites = list(load_sites(args.sites).sites)
    elapsed = (time.perf_counter() - start) * 1000
    print(f"{args.sites.name}: {len(sites)} sites loaded in {elapsed:.1f} ms")
    print(f"{len(QUESTIONS)} questions x {args.rounds} rounds, one core:")
    measure(sites, gazetteer, args.rounds)
    if args.scale > 1:
        measure(scaled(sites, args.scale), gazetteer, max(1, args.rounds // 5))
    measure_cards(sites, gazetteer)
    return 0


def measure_cards(sites: Sequence[Site], gazetteer: Gazetteer) -> None:
    """The card: drawn once per answer (in a worker thread on air), pasted per frame."""
    from anchor.avatar.captions import find_cjk_font
    from anchor.avatar.loader import load_pack
    from anchor.avatar.renderer import AvatarRenderer
    from anchor.messages import Card
    from anchor.sites.card import render_card

    desk = SiteDesk(sites, gazetteer, CITY)
    now = datetime(2026, 12, 2, 10, 0, tzinfo=CITY)
    replies = [r for q in QUESTIONS if (r := desk.reply(q, now)) is not None and r.matches]
    font = find_cjk_font()
    pack = load_pack(ROOT / "avatars" / "default")
    print(f"map card, {len(replies)} answers:")
    for width, height in ((1280, 720), (1920, 1080), (720, 1280)):
        renderer = AvatarRenderer(pack, width, height, fps=30)
        assert renderer.card_box is not None
        size = renderer.card_box[2], renderer.card_box[3]
        times = []
        for reply in replies:
            start = time.perf_counter()
            image = render_card(reply, size, font, towns=gazetteer.towns)
            times.append((time.perf_counter() - start) * 1000)
        card = Card("bench", image)
        frames = 300
        plain = _render_ms(renderer, frames, None)
        shown = _render_ms(renderer, frames, card)
        print(
            f"  {width}x{height} (card {size[0]}x{size[1]}): draw p50 "
            f"{statistics.median(times):.0f} ms, p95 {_p95(times):.0f} ms, max {max(times):.0f}"
            f" ms | render per frame {plain:.2f} ms without, {shown:.2f} ms with the card"
        )


def _render_ms(renderer: object, frames: int, card: object) -> float:
    render = renderer.render  # type: ignore[attr-defined]
    start = time.perf_counter()
    for n in range(frames):
        render(n, 0.5 if n % 3 else 0.0, "离石岐最近的驿站有三个。", card=card)
    return (time.perf_counter() - start) / frames * 1000


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main())
