"""What a portrait channel costs next to a landscape one of the same pixel count.

For each pair (1280x720 vs 720x1280, 1920x1080 vs 1080x1920) runs the real playout loop in fast
mode (speech-like audio, lip track, captions, avatar render, H.264 + AAC encode, MPEG-TS mux),
pinned to one core, alternating the two shapes over several rounds so both see the same
machine. Prints CPU milliseconds per stream second and render milliseconds per frame for each,
and the portrait/landscape ratio (the target: within 10 %).

    .venv/bin/python benchmarks/bench_layouts.py [--seconds 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_pipeline import FPS, ROOT, _pipeline

from anchor.avatar.loader import load_pack
from anchor.avatar.renderer import AvatarRenderer

PAIRS = (((1280, 720), (720, 1280)), ((1920, 1080), (1080, 1920)))


def _run(width: int, height: int, seconds: float, workdir: Path) -> tuple[float, float]:
    """(CPU ms per stream second, render ms per frame) of one fast-mode run."""
    _, cpu, recorder, _ = asyncio.run(_pipeline(width, height, seconds, workdir / "out.ts"))
    renderer = AvatarRenderer(load_pack(ROOT / "avatars" / "default"), width, height, fps=FPS)
    start = time.perf_counter()
    for call in recorder.calls:
        renderer.render(*call)
    render_ms = (time.perf_counter() - start) / len(recorder.calls) * 1000
    return cpu / seconds * 1000, render_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        print("pinned to one core")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for landscape, portrait in PAIRS:
            figures: dict[tuple[int, int], list[tuple[float, float]]] = {
                landscape: [],
                portrait: [],
            }
            for _ in range(args.rounds):
                for size in (landscape, portrait):
                    figures[size].append(_run(*size, args.seconds, workdir))
            cpu = {size: statistics.median(f[0] for f in runs) for size, runs in figures.items()}
            render = {size: statistics.median(f[1] for f in runs) for size, runs in figures.items()}
            for size in (landscape, portrait):
                print(
                    f"{size[0]}x{size[1]}@{FPS}: {cpu[size]:6.1f} ms CPU per stream s, "
                    f"render {render[size]:.2f} ms/frame"
                )
            print(
                f"  portrait/landscape CPU ratio {cpu[portrait] / cpu[landscape]:.3f}, "
                f"render ratio {render[portrait] / render[landscape]:.3f}"
            )


if __name__ == "__main__":
    main()
