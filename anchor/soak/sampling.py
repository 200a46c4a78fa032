"""Samples of the running engine, every few seconds of wall time, and the memory trend.

A leak shows as resident memory that keeps rising with stream time once caches and queues are
full, so the trend is a straight line fitted to RSS over stream time after the warm-up, in MiB
per hour of stream. Open descriptors, threads and tasks are kept too: a leak of those shows
long before memory does.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

MIB = 1024 * 1024


class Sampler:
    def __init__(self, channel: Any, store_path: Path, *, warmup_s: float) -> None:
        import psutil  # the soak's own dependency (the test extra), not the engine's

        self._channel = channel
        self._store_path = store_path
        self._warmup_s = warmup_s
        self._process = psutil.Process()
        self.samples: list[dict[str, Any]] = []

    async def run(self, every_s: float) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(every_s)
            gauges = self._channel.gauges()
            if not gauges:
                continue
            counts = await asyncio.to_thread(_store_counts, self._store_path)
            memory = self._process.memory_info()
            self.samples.append(
                {
                    "wall_s": round(time.monotonic() - started, 2),
                    **gauges,
                    "rss_mib": memory.rss / MIB,
                    "open_fds": self._process.num_fds() if os.name == "posix" else None,
                    "threads": self._process.num_threads(),
                    "tasks": len(asyncio.all_tasks()),
                    "store": counts,
                }
            )

    def trend(self) -> dict[str, Any]:
        """RSS growth in MiB per hour of stream after the warm-up (least squares)."""
        settled = [s for s in self.samples if s["stream_s"] >= self._warmup_s]
        summary: dict[str, Any] = {
            "warmup_stream_s": self._warmup_s,
            "samples": len(self.samples),
            "samples_after_warmup": len(settled),
            "rss_mib_max": max((s["rss_mib"] for s in self.samples), default=None),
            "open_fds_max": max((s["open_fds"] or 0 for s in self.samples), default=None),
            "threads_max": max((s["threads"] for s in self.samples), default=None),
            "tasks_max": max((s["tasks"] for s in self.samples), default=None),
        }
        if len(settled) < 3:
            summary["rss_mib_per_hour"] = None
            return summary
        hours = np.array([s["stream_s"] / 3600 for s in settled])
        rss = np.array([s["rss_mib"] for s in settled])
        if np.ptp(hours) <= 0:
            summary["rss_mib_per_hour"] = None
            return summary
        slope, _ = np.polyfit(hours, rss, 1)
        summary["rss_mib_per_hour"] = float(slope)
        summary["rss_mib_after_warmup"] = [float(rss[0]), float(rss[-1])]
        return summary


def _store_counts(path: Path) -> dict[str, int]:
    """Questions by status, read through a read-only connection of the soak's own."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return {}
    try:
        return dict(db.execute("SELECT status, count(*) FROM questions GROUP BY status"))
    except sqlite3.Error:
        return {}
    finally:
        db.close()
