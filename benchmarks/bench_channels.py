"""How many live channels one machine carries: N channels at once, each its own process.

For each N of `--channels`, starts N channels together (`anchor run`, 1280x720@30, paced, the
tests' runnable config with the offline espeak-ng voice), each with its own temporary folder,
config, store, output file and console port. Once every channel has been on air for a warm-up
(start-up is nobody's steady state), a window of `--seconds` opens; each channel is read from
its own `/metrics` at the start and the end of the window, and its lateness gauge every 0.5 s
in between. A file output costs the encoder what a UDP port nobody reads would.

Prints one row per N: renders skipped in the window (sum over channels, and % of the frames
made), frames aired as silence (sum), lateness p99 and max of the worst channel (p99 over
every frame of the window, from the `anchor_frame_lateness_seconds` histogram: the upper bound
of its bucket, so "≤"; the max is the `anchor_lateness_max_seconds` gauge when it rose in the
window, else the largest sample of the lateness gauge), CPU seconds (user + sys, psutil) per
stream second per channel (mean), the cores kept busy by all channels together, the largest
RSS of one channel at the end of the window, the warnings the channels logged in it and the
sentences a fallback voice said in it; beside them the 1-minute load average before the N
started (the machine may be shared).
Then the largest N that stayed at 0 underruns and under 0.1 % skipped renders.

    .venv/bin/python benchmarks/bench_channels.py [--channels 1,2,3,4] [--seconds 40]
        [--voice natural]    # a voice profile of voices/ (default: the config's, espeak-ng)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from anchor.harness.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 1280, 720, 30
PASSWORD = "bench-channels-password"
WARMUP_S = 10.0  # stream seconds every channel has aired before the window opens
START_TIMEOUT_S = 300.0  # N channels starting together share the cores
SAMPLE_EVERY_S = 0.5
STOP_TIMEOUT_S = 30.0
SAFETY_S = 300.0  # `--duration` beyond the window: a channel stops by itself if we cannot stop it
MAX_SKIPPED = 0.001  # the bound: under 0.1 % of renders skipped, and no underrun
STREAM = "anchor_stream_time_seconds"
RENDERS = "anchor_renders_total"
SKIPPED = "anchor_renders_skipped_total"
UNDERRUNS = "anchor_underrun_frames_total"
LATENESS = "anchor_lateness_seconds"
LATENESS_MAX = "anchor_lateness_max_seconds"
FRAME_LATENESS = "anchor_frame_lateness_seconds"
FALLBACKS = "anchor_voice_events_total"  # {event="fallback"}: sentences the next voice said
WANTED = (STREAM, RENDERS, SKIPPED, UNDERRUNS, LATENESS, LATENESS_MAX)


@dataclass(frozen=True, slots=True)
class Reading:
    """One channel at one moment: its counters and its process's CPU seconds."""

    cpu_s: float
    metrics: dict[str, float]
    late_frames: dict[float, float]  # cumulative frames at or under each bucket bound (s)


@dataclass(slots=True)
class Channel:
    name: str
    workdir: Path
    port: int
    process: subprocess.Popen[bytes]
    lateness_s: list[float] = field(default_factory=list)
    log_at_window: int = 0  # bytes of the log written before the window opened

    @property
    def log(self) -> Path:
        return self.workdir / "channel.log"

    def warnings_in_window(self) -> int:
        """WARNING and ERROR lines logged since the window opened (start-up's are not news)."""
        with self.log.open("rb") as log:
            log.seek(self.log_at_window)
            text = log.read().decode("utf-8", "replace")
        return sum(1 for line in text.splitlines() if " WARNING " in line or " ERROR " in line)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        return ""


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    cpu_s: float
    stream_s: float
    renders: float
    skipped: float
    underruns: float
    fallbacks: float
    lateness_p99_s: float
    lateness_max_s: float
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class FleetFigures:
    channels: list[ChannelFigures]
    wall_s: float
    load_before: float
    warnings: int  # logged by all channels during the window

    @property
    def n(self) -> int:
        return len(self.channels)

    @property
    def skipped(self) -> float:
        return sum(c.skipped for c in self.channels)

    @property
    def skipped_share(self) -> float:
        made = sum(c.renders + c.skipped for c in self.channels)
        return self.skipped / made if made else 0.0

    @property
    def underruns(self) -> float:
        return sum(c.underruns for c in self.channels)

    @property
    def passes(self) -> bool:
        return self.underruns == 0 and self.skipped_share < MAX_SKIPPED


def _metrics(text: str) -> tuple[dict[str, float], dict[float, float]]:
    """The wanted single values, and the frame-lateness histogram's cumulative buckets."""
    found: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in WANTED and not sample.labels:
                found[sample.name] = sample.value
            elif sample.name == FALLBACKS and sample.labels.get("event") == "fallback":
                found[FALLBACKS] = sample.value
            elif sample.name == f"{FRAME_LATENESS}_bucket":
                buckets[float(sample.labels["le"])] = sample.value
    return found, buckets


def _tree(process: psutil.Process) -> list[psutil.Process]:
    """The channel and any helper it runs (in-process today; counted if that changes)."""
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return [process]


def _cpu_s(process: psutil.Process) -> float:
    total = 0.0
    for member in _tree(process):
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


def _rss(process: psutil.Process) -> int:
    total = 0
    for member in _tree(process):
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


async def _scrape(
    client: httpx.AsyncClient, channel: Channel
) -> tuple[dict[str, float], dict[float, float]]:
    if channel.process.poll() is not None:
        raise RuntimeError(
            f"channel {channel.name} exited with code {channel.process.returncode}:\n"
            + channel.log_tail()
        )
    response = await client.get(f"http://127.0.0.1:{channel.port}/metrics")
    response.raise_for_status()
    return _metrics(response.text)


async def _read(client: httpx.AsyncClient, channel: Channel) -> Reading:
    metrics, late_frames = await _scrape(client, channel)
    return Reading(_cpu_s(psutil.Process(channel.process.pid)), metrics, late_frames)


async def _wait_on_air(client: httpx.AsyncClient, channel: Channel) -> None:
    """Until the console answers and the channel has aired the warm-up."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError, httpx.HTTPStatusError):
            if (await _scrape(client, channel))[0].get(STREAM, 0.0) >= WARMUP_S:
                return
        await asyncio.sleep(SAMPLE_EVERY_S)
    raise RuntimeError(f"channel {channel.name} not on air after {START_TIMEOUT_S:.0f} s")


async def _sample_lateness(
    client: httpx.AsyncClient, channels: list[Channel], seconds: float
) -> None:
    """Every channel's lateness gauge on absolute 0.5 s deadlines until the window closes."""
    start = time.monotonic()
    beat = 1
    while (due := start + beat * SAMPLE_EVERY_S) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        scraped = await asyncio.gather(*(_scrape(client, c) for c in channels))
        for channel, (metrics, _) in zip(channels, scraped, strict=True):
            channel.lateness_s.append(metrics[LATENESS])
        beat = max(beat + 1, int((time.monotonic() - start) / SAMPLE_EVERY_S) + 1)
    await asyncio.sleep(max(0.0, start + seconds - time.monotonic()))


def _p99(start: dict[float, float], end: dict[float, float]) -> float:
    """The bucket bound at or under which 99 % of the window's frames started (inf: beyond
    the last bucket); NaN when the window has no frames."""
    window = {bound: end[bound] - start.get(bound, 0.0) for bound in end}
    frames = window.get(float("inf"), 0.0)
    if frames <= 0:
        return float("nan")
    return min(bound for bound, count in window.items() if count >= 0.99 * frames)


def _figures(channel: Channel, start: Reading, end: Reading, rss: int) -> ChannelFigures:
    def delta(name: str) -> float:
        return end.metrics[name] - start.metrics[name]

    sampled_max = max(channel.lateness_s, default=0.0)
    # The gauge is the max since start-up: when it rose during the window, the new value is
    # the window's exact maximum; otherwise the samples are all we know of it.
    rose = end.metrics[LATENESS_MAX] > start.metrics[LATENESS_MAX]
    return ChannelFigures(
        cpu_s=end.cpu_s - start.cpu_s,
        stream_s=delta(STREAM),
        renders=delta(RENDERS),
        skipped=delta(SKIPPED),
        underruns=delta(UNDERRUNS),
        fallbacks=end.metrics.get(FALLBACKS, 0.0) - start.metrics.get(FALLBACKS, 0.0),
        lateness_p99_s=_p99(start.late_frames, end.late_frames),
        lateness_max_s=max(sampled_max, end.metrics[LATENESS_MAX]) if rose else sampled_max,
        rss_bytes=rss,
    )


def _start(n: int, index: int, workdir: Path, seconds: float, voice: str | None) -> Channel:
    port = free_port()
    name = f"bench-{n}-{index}"
    config = _write_config(workdir, port, name, voice)
    command = [
        sys.executable,
        "-m",
        "anchor",
        "run",
        "--config",
        str(config),
        "--out",
        str(workdir / "stream.ts"),
        "--duration",
        f"{WARMUP_S + seconds + SAFETY_S:.0f}s",  # only if our SIGINT never arrives
        "--log-level",
        "WARNING",
    ]
    env = {**os.environ, "ANCHOR_CONSOLE_PASSWORD": PASSWORD}
    with (workdir / "channel.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped by us alone, with one SIGINT (a second forces)
        )
    return Channel(name, workdir, port, process)


def _stop(channels: list[Channel]) -> None:
    """SIGINT to all (a graceful stop each), then wait; whoever outlives the wait is killed."""
    for channel in channels:
        if channel.process.poll() is None:
            channel.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for channel in channels:
        try:
            channel.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            channel.process.kill()
            channel.process.wait()


def _write_config(workdir: Path, port: int, name: str, voice: str | None) -> Path:
    """The tests' runnable channel config (tests/ is no package: imported from the root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.configs import write_config

    console = f"{{listen: '127.0.0.1:{port}'}}"
    extra = f"channel: {name}\n" + (f"voice: {voice}\n" if voice else "")
    return write_config(workdir, width=WIDTH, height=HEIGHT, console=console, extra=extra)


async def _measure(
    channels: list[Channel], seconds: float
) -> tuple[list[ChannelFigures], float, int]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        await asyncio.gather(*(_wait_on_air(client, c) for c in channels))
        began = time.monotonic()
        starts = await asyncio.gather(*(_read(client, c) for c in channels))
        for channel in channels:
            channel.log_at_window = channel.log.stat().st_size
        await _sample_lateness(client, channels, seconds)
        ends = await asyncio.gather(*(_read(client, c) for c in channels))
        wall = time.monotonic() - began
    rss = [_rss(psutil.Process(c.process.pid)) for c in channels]
    figures = [
        _figures(channel, start, end, size)
        for channel, start, end, size in zip(channels, starts, ends, rss, strict=True)
    ]
    return figures, wall, sum(channel.warnings_in_window() for channel in channels)


def run_fleet(n: int, seconds: float, tmp: Path, voice: str | None = None) -> FleetFigures:
    load_before = os.getloadavg()[0]
    channels: list[Channel] = []
    try:
        for index in range(1, n + 1):
            workdir = tmp / f"n{n}-ch{index}"
            workdir.mkdir()
            channels.append(_start(n, index, workdir, seconds, voice))
        figures, wall, warnings = asyncio.run(_measure(channels, seconds))
    finally:
        _stop(channels)
    return FleetFigures(figures, wall, load_before, warnings)


def _print_header(seconds: float, voice: str | None) -> None:
    print(
        f"live {WIDTH}x{HEIGHT}@{FPS}, voice {voice or 'espeak-ng (default)'}, file output; "
        f"{os.cpu_count()} cores; "
        f"window of {seconds:.0f} s after {WARMUP_S:.0f} s on air; "
        f"lateness p99 over every frame (bucket bound), max sampled every {SAMPLE_EVERY_S} s"
    )
    print(
        f"{'N':>2} {'load':>5} {'stream s':>8} {'skipped':>8} {'skip %':>7} {'underrun':>8} "
        f"{'late p99 ms':>11} {'max ms':>7} {'CPU s/stream s':>14} {'cores busy':>10} "
        f"{'RSS MB max':>10} {'warnings':>8} {'fallbacks':>9}"
    )


def _print_row(fleet: FleetFigures) -> None:
    channels = fleet.channels
    cpu_per_stream = statistics.mean(c.cpu_s / c.stream_s for c in channels)
    print(
        f"{fleet.n:>2} {fleet.load_before:5.2f} "
        f"{statistics.mean(c.stream_s for c in channels):8.1f} "
        f"{fleet.skipped:8.0f} {fleet.skipped_share * 100:7.3f} {fleet.underruns:8.0f} "
        f"{'≤' + format(max(c.lateness_p99_s for c in channels) * 1000, '.0f'):>11} "
        f"{max(c.lateness_max_s for c in channels) * 1000:7.1f} "
        f"{cpu_per_stream:14.3f} {sum(c.cpu_s for c in channels) / fleet.wall_s:10.2f} "
        f"{max(c.rss_bytes for c in channels) / 1e6:10.0f} {fleet.warnings:>8} "
        f"{sum(c.fallbacks for c in channels):9.0f}",
        flush=True,
    )


def _print_verdict(fleets: list[FleetFigures]) -> None:
    passing = [fleet.n for fleet in fleets if fleet.passes]
    failing = [fleet.n for fleet in fleets if not fleet.passes]
    verdict = str(max(passing)) if passing else "none"
    note = ""
    if passing and any(n < max(passing) for n in failing):
        note = f" (but N={', '.join(map(str, failing))} failed: noisy machine?)"
    print(f"largest N with 0 underruns and < 0.1 % skipped: {verdict}{note}")


def _counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("give channel counts of 1 or more, like 1,2,3,4")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=_counts, default=[1, 2, 3, 4], help="N to try, 1,2,3")
    parser.add_argument("--seconds", type=float, default=40.0, help="window per N, stream s")
    parser.add_argument("--voice", help="voice profile (voices/NAME.yaml), e.g. natural")
    args = parser.parse_args()
    fleets = []
    _print_header(args.seconds, args.voice)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.channels:
            fleets.append(run_fleet(n, args.seconds, Path(tmp), args.voice))
            _print_row(fleets[-1])
    _print_verdict(fleets)


if __name__ == "__main__":
    main()
