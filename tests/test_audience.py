"""Audience events on air: viewers entering, liking, following and sending gifts become a few
merged, rate-limited thanks lines at the lowest priority, never inside an answer."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiomqtt
import pytest
from configs import write_config

from anchor.config import DEFAULT_WORDLISTS, AudienceConfig, load_config
from anchor.daemon import Channel, RunOptions
from anchor.harness.mosquitto import Broker
from anchor.links.payloads import RejectedInput, parse_audience
from anchor.media.output import OutputTarget
from anchor.messages import AudienceEvent, Priority
from anchor.moderation import Moderator
from anchor.show.engagement import Engagement
from anchor.show.rundown import OnAirScreen
from anchor.show.schedule import load_schedule
from anchor.store import Store

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _engagement(**kinds: dict) -> tuple[Engagement, Clock]:
    clock = Clock()
    config = AudienceConfig.model_validate(kinds)
    screen = OnAirScreen(Moderator([ROOT / path for path in DEFAULT_WORDLISTS]))
    return Engagement(config, screen=screen, clock=clock), clock


def test_likes_are_merged_into_one_line_and_rate_limited() -> None:
    thanks, clock = _engagement(like={"enabled": True, "every_seconds": 30})
    for name in ("小明", "小红", "小刚", "小明"):
        thanks.take(AudienceEvent("like", name, count=5))
    line = thanks.due_line()
    assert line is not None and line.priority is Priority.IDLE
    assert line.text == "感谢小明、小红等3位朋友的点赞！"
    thanks.take(AudienceEvent("like", "阿强"))
    clock.now += 29
    assert thanks.due_line() is None
    clock.now += 1
    again = thanks.due_line()
    assert again is not None and again.text == "感谢阿强的点赞！"
    assert thanks.due_line() is None


def test_each_kind_is_off_until_enabled_and_names_are_masked_and_screened() -> None:
    thanks, _ = _engagement(
        gift={"enabled": True}, enter={"enabled": True, "template": "欢迎{names}！"}
    )
    thanks.take(AudienceEvent("like", "小明"))
    thanks.take(AudienceEvent("follow", "小红"))
    assert thanks.ignored == 2
    thanks.take(AudienceEvent("gift", "13812345678", gift="小心心"))
    thanks.take(AudienceEvent("gift", "赌博代理", gift="小心心"))
    gift = thanks.due_line()
    assert gift is not None
    assert "13812345678" not in gift.text and "赌博" not in gift.text
    assert gift.text.endswith("送出的小心心！") and "等2位朋友" in gift.text
    thanks.take(AudienceEvent("enter", "赌博"))
    enter = thanks.due_line()
    assert enter is not None and enter.text == "欢迎这位朋友！"


def test_audience_payloads_are_bounded_and_checked() -> None:
    event = parse_audience(
        json.dumps({"id": "b:1", "kind": "gift", "user": "小明", "count": 3, "gift": "花"}).encode()
    )
    assert event == AudienceEvent("gift", "小明", count=3, gift="花")
    for bad in (
        b"{}",
        b'{"kind": "dance", "user": "x"}',
        b'{"kind": "like", "user": "x", "count": "9"}',
    ):
        with pytest.raises(RejectedInput):
            parse_audience(bad)
    with pytest.raises(RejectedInput):
        parse_audience(b'{"kind": "like", "user": "' + b"x" * 5000 + b'"}')


@pytest.mark.slow
async def test_thanks_air_merged_and_never_inside_an_answer(
    tmp_path: Path, mosquitto: Broker
) -> None:
    config = load_config(
        write_config(
            tmp_path,
            extra=(
                f"mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}\n"
                "audience: {like: {enabled: true, every_seconds: 20},"
                " gift: {enabled: true, every_seconds: 20}}\n"
            ),
        )
    )
    options = RunOptions(
        output=OutputTarget.parse(str(tmp_path / "show.ts")), fast=True, duration_s=150
    )
    channel = Channel(config, load_schedule(config.schedule), options)
    show = asyncio.create_task(channel.run())
    deadline = time.monotonic() + 60
    while channel.gauges().get("mqtt_connected") != 1.0:
        assert not show.done() and time.monotonic() < deadline, "the engine never connected"
        await asyncio.sleep(0.05)
    async with aiomqtt.Client(**mosquitto.client_options()) as client:
        question = {"id": "aud-q", "user": "工友", "text": "工伤认定要准备哪些材料"}
        await client.publish(
            "anchor/default/questions", json.dumps(question, ensure_ascii=False), qos=1
        )
        for number in range(30):
            like = {"id": f"l{number}", "kind": "like", "user": f"观众{number}", "count": 1}
            await client.publish("anchor/default/audience", json.dumps(like, ensure_ascii=False))
        for number in range(5):
            gift = {"kind": "gift", "user": f"送礼{number}", "gift": "小心心", "count": 2}
            await client.publish("anchor/default/audience", json.dumps(gift, ensure_ascii=False))
    await asyncio.wait_for(show, 120)
    async with await Store.open(config.store.path) as store:
        rows = sorted(await store.as_run_rows(limit=500), key=lambda row: row.stream_time)
    thanks = [row for row in rows if row.text.startswith("感谢")]
    likes = [row for row in thanks if row.text.endswith("的点赞！")]
    gifts = [row for row in thanks if "送出的" in row.text]
    assert likes and gifts, [row.text for row in rows]
    assert "等30位朋友" in likes[0].text or sum(_count(row.text) for row in likes) == 30
    assert sum(_count(row.text) for row in gifts) == 5
    assert all(row.priority == "idle" for row in thanks)
    for kind in (likes, gifts):  # at most one line of a kind every 20 s of the show
        times = [row.stream_time for row in kind]
        assert all(b - a >= 19.9 for a, b in zip(times, times[1:], strict=False)), times
    answer = [row.stream_time for row in rows if row.question_id == "aud-q"]
    assert answer, "the question was never answered"
    inside = [row for row in thanks if min(answer) <= row.stream_time <= max(answer)]
    assert not inside, inside


def _count(text: str) -> int:
    """How many viewers a thanks line names: 小明 → 1, 小明、小红 → 2, …等30位朋友 → 30."""
    if "等" in text and "位朋友" in text:
        return int(text.split("等", 1)[1].split("位", 1)[0])
    names = text.removeprefix("感谢").split("的点赞")[0].split("送出的")[0]
    return len(names.split("、"))
