"""Delay from a viewer's question being published to the host starting to answer it.

A real mosquitto on loopback and the real engine (`anchor run`, live mode, 1280x720, the
offline espeak-ng voice) with an idle-only schedule, so the host is idle when each question
arrives and the knowledge base answers. For each of N questions: publish with QoS 1, note the
wall time, and read the engine's "speaking" event for that question, whose `aired_at` is the
wall time at which the playout put the first sample of the answer (it begins by reading the
question out) into the stream. The next question goes out once the answer is done.

    .venv/bin/python benchmarks/bench_answer_latency.py [--questions 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

from anchor.harness.mosquitto import Broker

ROOT = Path(__file__).resolve().parent.parent

CHANNEL = "bench"
IDLE_LINE_S = 3.0  # "有问题欢迎留言。" takes under two seconds
QUESTIONS = [
    "住院了互助金怎么报", "老板不发工资怎么办", "受伤了要多久内申请工伤", "外卖小哥能入工会吗",
    "没签劳动合同怎么办", "工会驿站在哪里", "入会要交会费吗", "法律援助怎么申请",
]  # fmt: skip


def _config(workdir: Path, broker: Broker) -> Path:
    schedule = workdir / "idle.yaml"
    schedule.write_text("name: idle\nidle:\n  - 有问题欢迎留言。\n", encoding="utf-8")
    config = workdir / "config.yaml"
    config.write_text(
        f"channel: {CHANNEL}\nschedule: {schedule}\n"
        f"avatars_dir: {ROOT / 'avatars'}\nvoices_dir: {ROOT / 'voices'}\n"
        f"knowledge: {{path: {ROOT / 'knowledge' / 'union-faq.yaml'}}}\n"
        f"moderation: {{wordlists: [{ROOT / 'moderation' / 'sensitive.txt'}]}}\n"
        f"store: {{path: {workdir / 'anchor.db'}}}\n"
        "idle: {interval_seconds: 600}\n"
        f"mqtt: {{host: {broker.host}, port: {broker.port}}}\n",
        encoding="utf-8",
    )
    return config


async def _measure(broker: Broker, count: int) -> list[float]:
    delays: list[float] = []
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(f"anchor/{CHANNEL}/#", qos=1)
        messages = client.messages

        async def next_matching(predicate, limit_s: float) -> dict:
            async with asyncio.timeout(limit_s):
                async for message in messages:
                    payload = json.loads(message.payload)
                    if predicate(message.topic.value, payload):
                        return payload
            raise TimeoutError

        await next_matching(lambda t, p: t.endswith("/status") and p.get("state") == "online", 60)
        await asyncio.sleep(2)
        for i in range(count):
            qid = f"lat{i}"
            payload = {"id": qid, "user": f"viewer{i}", "text": QUESTIONS[i % len(QUESTIONS)]}
            published = time.time()
            await client.publish(
                f"anchor/{CHANNEL}/questions", json.dumps(payload, ensure_ascii=False), qos=1
            )
            first = await next_matching(
                lambda t, p, q=qid: p.get("type") == "speaking" and p.get("question_id") == q, 30
            )
            delays.append(first["aired_at"] - published)
            await next_matching(
                lambda t, p, q=qid: t.endswith("/answers") and p.get("question_id") == q, 120
            )
            # The answer is published as its last sentence starts; after it the host says the
            # idle line. Wait until that is over too, so the next question finds an idle host.
            await next_matching(
                lambda t, p: p.get("type") == "speaking" and p.get("source") == "idle", 60
            )
            await asyncio.sleep(IDLE_LINE_S)
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir)
        broker.start()
        engine = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anchor", "run", "--config", str(_config(workdir, broker)),
            "--out", str(workdir / "live.ts"), "--log-level", "WARNING",
        )  # fmt: skip
        try:
            delays = await _measure(broker, args.questions)
        finally:
            engine.terminate()
            await engine.wait()
            broker.stop()
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"question published → first sample of the answer on air, {len(ms)} questions, idle host, "
        f"knowledge base, live 1280x720: p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
        f"min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
