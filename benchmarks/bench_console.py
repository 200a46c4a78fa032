"""What an open console page costs the channel, measured side by side with none open.

Runs the live channel (`anchor run`, 1280x720@30, paced, its own process) in pairs of runs, one
after the other with the same config and the same duration (`--rounds` pairs, alternated, since
one pair is noisier than the effect on a shared machine): once with nobody on the console, once
with a client in this process that logs in and then, like an open on-air page, keeps `/live`
(server-sent events) open and fetches `/preview.jpg` one second after the last one arrived (the
page's own rhythm). For each run it prints, over a window that opens once start-up is over and
closes before the channel stops: the channel process's CPU seconds (user + sys of its own
threads, psutil) per stream second, the renders skipped and the frames aired as silence (from
`/metrics`), and the previews made; then the ratio with/without per pair and its median (the
issue's bound: 1.05) and
the preview's own cost, one `jpeg_of` of a real 720p yuv420p frame (median of 200).

    .venv/bin/python benchmarks/bench_console.py [--seconds 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from anchor.avatar.loader import load_pack
from anchor.avatar.renderer import AvatarRenderer
from anchor.console.preview import WIDTH as PREVIEW_WIDTH
from anchor.console.preview import jpeg_of
from anchor.harness.ports import free_port
from anchor.messages import MouthShape

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 1280, 720, 30
PASSWORD = "bench-console-password"
WARMUP_S = 5.0  # stream seconds on air before the window opens: start-up is nobody's preview
TAIL_S = 10.0  # stream seconds after the window closes, so the channel is sampled still running
PAGE_EVERY_S = 1.0  # the on-air page asks for the next preview this long after the last arrived
JPEG_REPEATS = 200
STREAM = "anchor_stream_time_seconds"
SKIPPED = "anchor_renders_skipped_total"
UNDERRUNS = "anchor_underrun_frames_total"


@dataclass(frozen=True, slots=True)
class Sample:
    cpu_s: float
    stream_s: float
    skipped: float
    underruns: float


@dataclass(slots=True)
class PageActivity:
    previews_fetched: int = 0
    preview_bytes: int = 0
    events: int = 0
    previews_made: int | None = None  # the server's count, from the last event


@dataclass(frozen=True, slots=True)
class RunFigures:
    label: str
    cpu_s: float
    stream_s: float
    skipped: float
    underruns: float
    page: PageActivity | None

    @property
    def cpu_per_stream_s(self) -> float:
        return self.cpu_s / self.stream_s


def _metrics(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (STREAM, SKIPPED, UNDERRUNS):
            found[name] = float(value)
    return found


async def _sample(client: httpx.AsyncClient, channel: psutil.Process) -> Sample:
    response = await client.get("/metrics")
    response.raise_for_status()
    times = channel.cpu_times()
    values = _metrics(response.text)
    return Sample(times.user + times.system, values[STREAM], values[SKIPPED], values[UNDERRUNS])


async def _wait_on_air(
    client: httpx.AsyncClient, channel: subprocess.Popen[bytes], stream_s: float
) -> None:
    """Until the console answers and the stream has run `stream_s` seconds."""
    while True:
        if channel.poll() is not None:
            raise RuntimeError(f"the channel exited early with code {channel.returncode}")
        with contextlib.suppress(httpx.TransportError):
            response = await client.get("/metrics")
            if response.status_code == 200 and _metrics(response.text).get(STREAM, 0) >= stream_s:
                return
        await asyncio.sleep(0.5)


async def _log_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    form.raise_for_status()
    marker = 'name="ticket" value="'
    ticket = form.text.split(marker, 1)[1].split('"', 1)[0]
    response = await client.post(
        "/login",
        data={"ticket": ticket, "user": "operator", "password": PASSWORD},
        follow_redirects=True,
    )
    response.raise_for_status()
    if "anchor_session" not in client.cookies:
        raise RuntimeError("the console refused the login")


async def _follow_live(client: httpx.AsyncClient, page: PageActivity) -> None:
    async with client.stream("GET", "/live") as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                page.events += 1
                page.previews_made = json.loads(line[5:])["console"]["previews"]


async def _fetch_previews(client: httpx.AsyncClient, page: PageActivity) -> None:
    while True:
        response = await client.get("/preview.jpg", params={"t": int(time.time() * 1000)})
        response.raise_for_status()
        page.previews_fetched += 1
        page.preview_bytes += len(response.content)
        await asyncio.sleep(PAGE_EVERY_S)


async def _run(label: str, config: Path, port: int, seconds: float, workdir: Path, *, page: bool):
    env = {**os.environ, "ANCHOR_CONSOLE_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        "-m",
        "anchor",
        "run",
        "--config",
        str(config),
        "--out",
        str(workdir / f"{label.replace(' ', '-')}.ts"),
        "--duration",
        f"{WARMUP_S + seconds + TAIL_S:.0f}s",
        "--log-level",
        "WARNING",
    ]
    channel = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: ASYNC220
    activity = PageActivity() if page else None
    try:
        timeout = httpx.Timeout(10.0)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout
        ) as client:
            await _wait_on_air(client, channel, WARMUP_S)
            tasks: list[asyncio.Task[None]] = []
            if activity is not None:
                await _log_in(client)
                tasks = [
                    asyncio.create_task(_follow_live(client, activity), name="live"),
                    asyncio.create_task(_fetch_previews(client, activity), name="previews"),
                ]
                await asyncio.sleep(0.5)  # both requests under way before the window opens
            process = psutil.Process(channel.pid)
            start = await _sample(client, process)
            await asyncio.sleep(seconds)
            end = await _sample(client, process)
            for task in tasks:
                if task.done():
                    task.result()  # a failed page request spoils the run: say so
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        channel.terminate()  # our own child: do not leave it on air after a failed run
        await asyncio.to_thread(channel.wait, 30)
        raise
    code = await asyncio.to_thread(channel.wait, WARMUP_S + seconds + TAIL_S + 120)
    if code != 0:
        raise RuntimeError(f"the channel exited with code {code}")
    return RunFigures(
        label,
        end.cpu_s - start.cpu_s,
        end.stream_s - start.stream_s,
        end.skipped - start.skipped,
        end.underruns - start.underruns,
        activity,
    )


def _write_config(workdir: Path, port: int) -> Path:
    """The tests' runnable channel config (tests/ is no package: imported from the root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.configs import write_config

    console = f"{{listen: '127.0.0.1:{port}'}}"
    return write_config(workdir, width=WIDTH, height=HEIGHT, console=console)


def _jpeg_cost() -> tuple[float, int]:
    """(median ms, bytes) of one preview of a real 720p frame with a caption."""
    renderer = AvatarRenderer(load_pack(ROOT / "avatars" / "default"), WIDTH, HEIGHT, fps=FPS)
    caption = "职工互助保障的理赔材料，可以向所在单位工会咨询。"
    picture = renderer.render(150, 0.6, caption, MouthShape.OPEN).copy()
    size = len(jpeg_of(picture))
    times = []
    for _ in range(JPEG_REPEATS):
        start = time.perf_counter()
        jpeg_of(picture)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, size


def _print(runs: list[RunFigures], seconds: float) -> None:
    print(f"live {WIDTH}x{HEIGHT}@{FPS}, window of {seconds:.0f} s per run (after start-up)")
    print(
        f"{'run':<12} {'CPU s':>7} {'stream s':>9} {'CPU s/stream s':>15} "
        f"{'skipped':>8} {'underrun':>9} {'previews':>16} {'events':>7}"
    )
    for run in runs:
        previews = events = "-"
        if run.page is not None:
            made = "?" if run.page.previews_made is None else run.page.previews_made
            previews = f"{run.page.previews_fetched} got/{made} made"
            events = str(run.page.events)
        print(
            f"{run.label:<12} {run.cpu_s:7.2f} {run.stream_s:9.1f} {run.cpu_per_stream_s:15.4f} "
            f"{run.skipped:8.0f} {run.underruns:9.0f} {previews:>16} {events:>7}"
        )
    pairs = list(zip(runs[0::2], runs[1::2], strict=True))
    ratios = sorted(page.cpu_per_stream_s / alone.cpu_per_stream_s for alone, page in pairs)
    print(
        "ratio with/without, per round: "
        + ", ".join(f"{ratio:.3f}" for ratio in ratios)
        + f"; median {statistics.median(ratios):.3f} (the issue's bound: 1.050)"
    )
    served = [run.page for run in runs if run.page is not None and run.page.previews_fetched]
    if served:
        average = sum(p.preview_bytes for p in served) / sum(p.previews_fetched for p in served)
        print(f"preview as served: {average / 1024:.1f} KiB on average")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="window per run, stream s")
    parser.add_argument(
        "--rounds", type=int, default=3, help="pairs of runs, alternated (the median is printed)"
    )
    args = parser.parse_args()
    runs = []
    order = [("no client", False), ("with client", True)]
    with tempfile.TemporaryDirectory() as tmp:
        for number, (label, page) in enumerate(order * args.rounds):
            workdir = Path(tmp) / f"{number}-{label.replace(' ', '-')}"
            workdir.mkdir()
            port = free_port()
            config = _write_config(workdir, port)
            runs.append(asyncio.run(_run(label, config, port, args.seconds, workdir, page=page)))
    _print(runs, args.seconds)
    ms, size = _jpeg_cost()
    print(
        f"preview alone: jpeg_of({WIDTH}x{HEIGHT} yuv420p -> {PREVIEW_WIDTH} px wide) "
        f"median {ms:.2f} ms of {JPEG_REPEATS} ({size / 1024:.1f} KiB), "
        f"{ms / 1000:.4f} CPU s per second at 1 preview/s"
    )


if __name__ == "__main__":
    main()
