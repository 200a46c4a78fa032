"""The soak's viewers and operator, over the real broker.

Viewers ask a steady trickle of questions (Chinese and English, some that moderation must
refuse) paced by stream time; a listener keeps what the engine publishes (answers, and the
events the faults look for). Every publish opens its own short connection with QoS 1, so a
question counts as sent only when the broker acknowledged it, and a dead broker costs the
questions asked while it is down, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

log = logging.getLogger(__name__)

RECONNECT_S = 0.5
PUBLISH_TIMEOUT_S = 5.0

# (text, expected to be refused by moderation)
QUESTIONS: tuple[tuple[str, bool], ...] = (
    ("住院了互助金怎么报？", False),
    ("老板一直拖着不发工资怎么办", False),
    ("外卖骑手能加入工会吗？", False),
    ("How do I join the trade union?", False),
    ("工伤认定要多久内申请", False),
    ("What can I do if my wages are not paid?", False),
    ("没签劳动合同能要双倍工资吗", False),
    ("哪里有赌博网站推荐一下", True),
    ("入会要交多少会费", False),
    ("Is there free legal aid for workers?", False),
    ("this fucking boss never pays", True),
    ("职工服务站在哪里", False),
    ("有人能代开发票吗，便宜点", True),
)


@dataclass(slots=True)
class Audience:
    host: str
    port: int
    channel: str
    stream_s: Callable[[], float]
    sent: list[str] = field(default_factory=list)  # ids the broker acknowledged
    unsent: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)
    schedule_rejections: list[list[str]] = field(default_factory=list)
    spoken: int = 0
    aired_questions: set[str] = field(default_factory=set)  # ids whose lines were heard
    last_segment: str | None = None
    _count: int = 0

    def topic(self, name: str) -> str:
        return f"anchor/{self.channel}/{name}"

    def answer_for(self, question_id: str) -> dict[str, Any] | None:
        return next((a for a in self.answers if a.get("question_id") == question_id), None)

    async def trickle(self, every_s: float, stop_at_s: float) -> None:
        """One question every `every_s` of stream time until `stop_at_s`."""
        next_at: float | None = None
        while True:
            now = self.stream_s()
            if now >= stop_at_s:
                return
            if next_at is None and now > 0:  # the playout has started
                next_at = now + every_s / 3
            if next_at is not None and now >= next_at:
                text, _ = QUESTIONS[self._count % len(QUESTIONS)]
                await self.ask(f"q{self._count:05d}", f"viewer{self._count % 41}", text)
                next_at = now + every_s  # a late tick is not made up for with a burst
            await asyncio.sleep(0.1)

    async def ask(self, question_id: str, user: str, text: str) -> bool:
        self._count += 1
        payload = json.dumps(
            {"id": question_id, "user": user, "text": text, "platform": "soak"},
            ensure_ascii=False,
        )
        if await self._publish(self.topic("questions"), payload):
            self.sent.append(question_id)
            return True
        self.unsent += 1
        return False

    async def ask_probe(self, tag: str, text: str = "怎么申请工会法律援助？") -> str | None:
        """A question a fault's recovery check follows; its id, or None if it could not be sent."""
        question_id = f"probe-{tag}-{self._count}"
        return question_id if await self.ask(question_id, f"probe-{tag}", text) else None

    async def control(self, payload: str) -> bool:
        return await self._publish(self.topic("control"), payload)

    async def _publish(self, topic: str, payload: str) -> bool:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                async with aiomqtt.Client(self.host, self.port) as client:
                    await client.publish(topic, payload.encode("utf-8"), qos=1)
            return True
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.info("publish to %s failed: %s", topic, exc)
            return False

    async def listen(self) -> None:
        """Keep what the engine publishes, reconnecting whenever the broker goes away."""
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port) as client:
                    await client.subscribe(self.topic("answers"), qos=1)
                    await client.subscribe(self.topic("events"), qos=1)
                    async for message in client.messages:
                        self._take(str(message.topic), message.payload)
            except aiomqtt.MqttError:
                await asyncio.sleep(RECONNECT_S)

    def _take(self, topic: str, payload: Any) -> None:
        try:
            data = json.loads(payload)
        except (TypeError, ValueError):
            return
        if topic.endswith("/answers"):
            self.answers.append(
                {
                    "question_id": data.get("question_id"),
                    "source": data.get("source"),
                    "heard_at_s": self.stream_s(),
                }
            )
        elif data.get("type") == "schedule_rejected":
            self.schedule_rejections.append([str(e) for e in data.get("errors", [])])
        elif data.get("type") == "speaking":
            self.spoken += 1
            if data.get("question_id"):
                self.aired_questions.add(str(data["question_id"]))
            if data.get("segment"):
                self.last_segment = data["segment"]
