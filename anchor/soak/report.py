"""The soak's report: report.json (everything), report.md (for people), soak.png (the plot).

The plot is drawn with Pillow so the project needs no plotting library: resident memory,
playout lateness and render speed over stream time, one panel each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
PANEL_W, PANEL_H, MARGIN = 900, 200, 60


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
    )
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    plot(report.get("samples", []), out / "soak.png")


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def render_markdown(report: dict[str, Any]) -> str:
    stream, memory, questions = report["stream"], report["memory"], report["questions"]
    playout, machine = report["playout"], report["machine"]
    trend = memory.get("rss_mib_per_hour")
    checks = stream.get("wrap_checks", [])
    rows = [
        ("stream time aired", f"{report['stream_s'] / 3600:.2f} h "
         f"(clock started at {_hms(report['plan']['start_at_s'])})"),
        ("wall time", f"{report['wall_s'] / 60:.1f} min ({report['speed']:.1f}× real time)"),
        ("video packets / audio packets",
         f"{stream['packets'].get('video', 0)} / {stream['packets'].get('audio', 0)}"),
        ("first → last video PTS", f"{_hms(stream['first_pts_s'].get('video'))} → "
         f"{_hms(stream['last_pts_s'].get('video'))} (unwrapped)"),
        ("largest step between video PTS",
         f"{stream['largest_video_step_s'] * 1000:.2f} ms (one frame: "
         f"{stream['video_frame_s'] * 1000:.2f} ms)"),
        ("gaps, jumps, reversals", str(stream["discontinuities"])),
        ("audio–video end difference", f"{stream['av_end_difference_s'] * 1000:.1f} ms"),
        ("33-bit PTS wraps crossed", f"video {stream['wraps'].get('video', 0)}, "
         f"audio {stream['wraps'].get('audio', 0)}"),
        ("frames decoded across the wrap", "; ".join(
            f"{c['frame_before_pts_s']} s → {c['frame_after_pts_s']} s ({c['decoded']} decoded)"
            for c in checks) or "no wrap in this run"),
        ("renders skipped / silent underrun frames",
         f"{playout['renders_skipped']} / {playout['underrun_frames']}"),
        ("lines aired", str(playout["lines_aired"])),
        ("RSS max / trend after warm-up",
         f"{memory.get('rss_mib_max') or 0:.0f} MiB / "
         + (f"{trend:+.2f} MiB per stream hour" if trend is not None else "too few samples")),
        ("open fds / threads / asyncio tasks (max)",
         f"{memory.get('open_fds_max')} / {memory.get('threads_max')} / {memory.get('tasks_max')}"),
        ("questions sent (acked by broker) / not sent (broker down)",
         f"{questions['sent']} / {questions['not_sent_broker_down']}"),
        ("questions by final status", ", ".join(
            f"{k} {v}" for k, v in sorted(questions["by_status"].items()))),
        ("accepted questions lost / unsettled",
         f"{len(questions['never_stored'])} / {len(questions['unsettled'])}"),
        ("answers by source", ", ".join(
            f"{k} {v}" for k, v in sorted(questions["answer_sources"].items()))),
    ]  # fmt: skip
    lines = [
        "# Soak report",
        "",
        "Made by:",
        "",
        f"    {report['command']}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; {machine['system']}; "
        f"Python {machine['python']}, PyAV {machine['pyav']} "
        f"(libavformat {machine['libavformat']}).",
        "",
        "## Figures",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "## Faults",
        "",
        "| fault | at (stream) | result | recovery (stream / wall) | notes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for fault in report["faults"]:
        recovery = (
            f"{fault['recovery_stream_s']:.0f} s / {fault['recovery_wall_s']:.1f} s"
            if fault["recovery_wall_s"] is not None
            else "—"
        )
        notes = fault["reason"] or ", ".join(
            f"{k}: {v}" for k, v in fault["detail"].items() if k != "errors"
        )
        lines.append(
            f"| {fault['what']} | {_hms(fault['injected_at_s'])} | {fault['status']} "
            f"| {recovery} | {notes} |"
        )
    if not report["faults"]:
        lines.append("| (none injected) | | | | |")
    for key in ("obs_problem", "recordings_problem"):
        if report.get(key):
            lines += ["", f"Note: {report[key]}"]
    if stream["events"]:
        lines += ["", "## Discontinuities (first ones)", ""]
        lines += [
            f"- {e['stream']} {e['kind']} at {_hms(e['at_s'])}: step {e['step_s'] * 1000:.1f} ms"
            for e in stream["events"]
        ]
    lines += [
        "",
        "## Plot",
        "",
        "![RSS, lateness and speed over stream time](soak.png)",
        "",
        "In fast mode the playout has no wall-clock deadlines, so its lateness is zero by",
        "construction; the speed panel shows how far ahead of real time rendering ran.",
        "",
    ]
    return "\n".join(lines)


def plot(samples: list[dict[str, Any]], out: Path) -> None:
    """Three panels over stream time: RSS (MiB), playout lateness (s), speed (× real time)."""
    panels = [
        ("RSS (MiB)", [s["rss_mib"] for s in samples]),
        ("playout lateness (s)", [s.get("max_lateness_s", 0.0) for s in samples]),
        ("speed (× real time)", _speeds(samples)),
    ]
    hours = [s["stream_s"] / 3600 for s in samples]
    image = Image.new(
        "RGB", (PANEL_W + 2 * MARGIN, len(panels) * (PANEL_H + MARGIN) + MARGIN), "white"
    )
    draw = ImageDraw.Draw(image)
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    try:
        font = ImageFont.truetype(FONT, 14)
    except OSError:
        font = ImageFont.load_default()
    for index, (title, values) in enumerate(panels):
        top = MARGIN + index * (PANEL_H + MARGIN)
        _panel(draw, font, (MARGIN, top), title, hours, values)
    image.save(out)


def _speeds(samples: list[dict[str, Any]]) -> list[float]:
    speeds, previous = [], None
    for sample in samples:
        if previous is None or sample["wall_s"] <= previous["wall_s"]:
            speeds.append(0.0)
        else:
            speeds.append(
                (sample["stream_s"] - previous["stream_s"])
                / (sample["wall_s"] - previous["wall_s"])
            )
        previous = sample
    return speeds


def _panel(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    origin: tuple[int, int],
    title: str,
    xs: list[float],
    ys: list[float],
) -> None:
    left, top = origin
    right, bottom = left + PANEL_W, top + PANEL_H
    draw.rectangle((left, top, right, bottom), outline="black")
    draw.text((left, top - 20), title, fill="black", font=font)
    if len(xs) < 2:
        draw.text((left + 10, top + 10), "not enough samples", fill="gray", font=font)
        return
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    pad = (y1 - y0) * 0.1
    y0, y1 = y0 - pad, y1 + pad
    span = (x1 - x0) or 1.0

    def point(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / span * PANEL_W, bottom - (y - y0) / (y1 - y0) * PANEL_H

    for frac in (0.0, 0.5, 1.0):
        value = y0 + frac * (y1 - y0)
        _, y = point(x0, value)
        draw.line((left, y, right, y), fill=(225, 225, 225))
        draw.text((left - 55, y - 8), f"{value:.4g}", fill="black", font=font)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, _ = point(x0 + frac * span, y0)
        draw.text((x - 15, bottom + 4), f"{x0 + frac * span:.2f} h", fill="black", font=font)
    draw.line([point(x, y) for x, y in zip(xs, ys, strict=True)], fill=(20, 90, 200), width=2)
