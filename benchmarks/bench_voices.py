"""What a sentence costs to synthesize, per voice engine, and what a cache hit costs instead.

The scripted talking points repeat all day, so most sentences the host speaks can come from
the synthesis cache. Side by side on the demo schedule's sentences: the offline voice through
espeak-ng's C API (engine process of its own), the same voice through pyttsx3, and the cache
in front of the espeak-ng voice once every sentence has been said. Figures are seconds of wall
time per second of speech (lower is better) and the speedup of a hit over synthesis.

    .venv/bin/python benchmarks/bench_voices.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anchor.config import load_voice_profile  # noqa: E402
from anchor.show.schedule import load_schedule  # noqa: E402
from anchor.speech.base import Voice  # noqa: E402
from anchor.speech.cache import CachedVoice, SynthesisCache  # noqa: E402
from anchor.speech.espeak_voice import EspeakVoice  # noqa: E402
from anchor.speech.pyttsx3_voice import Pyttsx3Voice  # noqa: E402
from anchor.speech.text import detect_language, split_sentences  # noqa: E402


def _sentences() -> list[str]:
    schedule = load_schedule(ROOT / "schedules" / "union-demo.yaml")
    texts = []
    for segment in schedule.segments:
        for point in segment.points:
            texts.extend(split_sentences(point.text))
    return texts


async def _speak_all(voice: Voice, sentences: list[str]) -> tuple[float, float]:
    """(wall seconds, seconds of speech) for saying every sentence once."""
    began = time.perf_counter()
    speech = 0.0
    for text in sentences:
        audio = await voice.synthesize(text, detect_language(text))
        speech += audio.duration
    return time.perf_counter() - began, speech


async def main(rounds: int) -> None:
    sentences = _sentences()
    profile = load_voice_profile(ROOT / "voices", "offline")
    voices = dict(profile.voices)
    print(f"{len(sentences)} sentences from the demo schedule, {rounds} rounds each\n")
    with tempfile.TemporaryDirectory() as cache_dir:
        espeak = EspeakVoice(voices, default_language=profile.default_language)
        pyttsx3 = Pyttsx3Voice(voices, default_language=profile.default_language)
        cache = SynthesisCache(Path(cache_dir), 200 * 1024 * 1024)
        cached = CachedVoice(EspeakVoice(voices, default_language=profile.default_language),
                             cache, profile)  # fmt: skip
        await _speak_all(cached, sentences)  # fill the cache (and start every engine once)
        await _speak_all(espeak, sentences[:1])
        await _speak_all(pyttsx3, sentences[:1])
        rows = {"espeak-ng (C API)": espeak, "pyttsx3": pyttsx3, "cache hit": cached}
        totals = {name: [0.0, 0.0] for name in rows}
        for _ in range(rounds):  # interleaved, so machine noise falls on every row alike
            for name, voice in rows.items():
                wall, speech = await _speak_all(voice, sentences)
                totals[name][0] += wall
                totals[name][1] += speech
        for voice in (espeak, pyttsx3, cached):
            await voice.aclose()
    base = totals["espeak-ng (C API)"][0]
    print(f"{'':20} {'wall s / speech s':>18} {'ms / sentence':>14} {'vs espeak-ng':>13}")
    for name, (wall, speech) in totals.items():
        per_sentence = wall / (rounds * len(sentences)) * 1000
        print(f"{name:20} {wall / speech:18.4f} {per_sentence:14.1f} {base / wall:12.1f}x")
    print(f"\ncache: {cache.hits} hits, {cache.misses} misses, {cache.bytes / 1e6:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
