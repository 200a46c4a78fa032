"""The operator's console in real headless Chromium (Debian's, driven by Playwright).

One live channel (720p30, espeak-ng, a real mosquitto, the stream written to a file) runs for
the whole module with its console on a free loopback port; each test logs in as a user would
and checks what the page shows, what the as-run log recorded and what the stream carries.
With ANCHOR_SCREENSHOTS=DIR set, the main pages are saved there as PNGs (the README's).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import av
import httpx
import numpy as np
import pytest
import pytest_asyncio
from configs import write_config
from playwright.async_api import Browser, Page, async_playwright

from anchor.config import load_config
from anchor.daemon import Channel, RunOptions
from anchor.harness.mosquitto import Broker
from anchor.media.output import OutputTarget
from anchor.show.schedule import load_schedule

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SHIPPED_FAQ = Path(__file__).resolve().parent.parent / "knowledge" / "union-faq.yaml"
PASSWORD = "correct horse 马 battery"
SUPERVISOR = "just-watching"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BANNED = "赌博"
GOOD_SCHEDULE = """\
name: 控制台测试节目
timezone: Asia/Shanghai
segments:
  - id: console-first
    title: 控制台上传的节目
    points:
      - 这是从控制台上传的第一句话。
      - 第二句话也来自控制台。
idle:
  - 欢迎在评论区留言。
"""
BROKEN_SCHEDULE = """\
name: 坏节目单
timezone: Mars/Base
segments:
  - id: only
    title: 只有一段
    points: []
timetable:
  - {at: "25:00", segment: nowhere}
"""


class Show:
    """The running channel, its files and how to reach it."""

    def __init__(self, channel: Channel, task: asyncio.Task[Any], root: Path, broker: Broker):
        self.channel = channel
        self.task = task
        self.root = root
        self.broker = broker

    @property
    def url(self) -> str:
        assert self.channel.console is not None and self.channel.console.url is not None
        return self.channel.console.url.rstrip("/")

    @property
    def store(self) -> Any:
        assert self.channel.console is not None
        return self.channel.console.parts.store

    async def aired(self, contains: str) -> list[Any]:
        return await self.store.as_run_rows(contains=contains, limit=50)


async def until(check: Callable[[], Awaitable[Any]], what: str, limit_s: float = 45.0) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    pytest.fail(f"never happened: {what}")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def show(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Show]:
    root = tmp_path_factory.mktemp("console")
    broker = Broker(root / "mosquitto")
    broker.start()
    faq = root / "faq.yaml"  # the page edits it: a copy, never the shipped file
    shutil.copy(SHIPPED_FAQ, faq)
    os.environ["ANCHOR_CONSOLE_PASSWORD"] = PASSWORD
    os.environ["ANCHOR_CONSOLE_SUPERVISOR_PASSWORD"] = SUPERVISOR
    config = load_config(
        write_config(
            root,
            width=1280,
            height=720,
            console="{listen: '127.0.0.1:0', review_timeout_seconds: 600}",
            knowledge=faq,
            extra=f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n",
        )
    )
    options = RunOptions(output=OutputTarget.parse(str(root / "show.ts")), duration_s=900)
    channel = Channel(config, load_schedule(config.schedule), options)
    task = asyncio.create_task(channel.run())
    try:
        await until(
            lambda: _ready(channel, task), "the console to serve and the first line to air", 90
        )
        yield Show(channel, task, root, broker)
    finally:
        channel.request_stop()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            broker.stop()
            os.environ.pop("ANCHOR_CONSOLE_PASSWORD", None)
            os.environ.pop("ANCHOR_CONSOLE_SUPERVISOR_PASSWORD", None)


async def _ready(channel: Channel, task: asyncio.Task[Any]) -> bool:
    if task.done():
        task.result()
        pytest.fail("the channel ended before its console came up")
    console = channel.console
    return bool(console and console.url and console.parts.board.line)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    found = await asyncio.to_thread(Path(CHROMIUM).exists)
    assert found, "Debian's chromium is missing: ./anchor.sh test installs it"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def logged_in(browser: Browser, show: Show, *, user: str = "operator") -> Page:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    await page.goto(show.url + "/login")
    await page.select_option("select[name=user]", user)
    await page.fill("input[name=password]", PASSWORD if user == "operator" else SUPERVISOR)
    await page.click("button[type=submit]")
    await page.wait_for_url(show.url + "/")
    return page


async def shoot(page: Page, name: str) -> None:
    folder = os.environ.get("ANCHOR_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))


async def test_the_on_air_page_follows_the_channel(show: Show, browser: Browser) -> None:
    page = await logged_in(browser, show)
    assert await page.inner_text("h2 >> nth=0") == "节目画面"
    first = await page.inner_text("#line")
    assert first, "no sentence on air shown"
    # The live state replaces the sentence as the host goes on (server-sent events).
    await page.wait_for_function(
        "first => document.getElementById('line').textContent !== first", arg=first, timeout=30000
    )
    aired = await page.inner_text("#line")
    assert await show.aired(aired[:12]), f"the page shows {aired!r}, which never aired"
    assert await page.inner_text("#health") in ("ok", "degraded")
    # The preview is a real picture of the program: decoded, sized, not blank.
    await page.wait_for_function(
        "() => { const i = document.getElementById('preview'); return i.complete && "
        "i.naturalWidth > 0 }"
    )
    size = await page.evaluate(
        "() => [document.getElementById('preview').naturalWidth, "
        "document.getElementById('preview').naturalHeight]"
    )
    assert size == [480, 270]
    jpeg = await page.context.request.get(show.url + "/preview.jpg")
    picture = av.open(_bytes_file(await jpeg.body()))
    frame = next(picture.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.std() > 20, "the preview is a flat picture"
    await shoot(page, "onair")
    # On a phone the page still reads: nothing wider than the screen.
    phone = await page.context.browser.new_context(  # type: ignore[union-attr]
        locale="zh-CN", viewport={"width": 390, "height": 844}
    )
    await phone.add_cookies(await page.context.cookies())
    small = await phone.new_page()
    await small.goto(show.url + "/")
    width = await small.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the on-air page is {width} px wide on a 390 px phone"
    await shoot(small, "onair-phone")
    await phone.close()
    await page.context.close()


async def test_a_broken_schedule_shows_its_errors_and_changes_nothing(
    show: Show, browser: Browser
) -> None:
    director = show.channel.console.parts.director  # type: ignore[union-attr]
    before = director.schedule.name
    page = await logged_in(browser, show)
    await page.goto(show.url + "/schedules")
    await page.fill("textarea[name=yaml]", BROKEN_SCHEDULE)
    await page.click("button[value=activate]")
    errors = await page.inner_text("#errors")
    assert "L2" in errors and "Mars/Base" in errors
    assert "L6" in errors and "must not be empty" in errors
    assert "L8" in errors and "nowhere" in errors
    assert await page.locator("pre.numbered span.bad").count() == 3
    assert "没有改变" in await page.inner_text(".flash.error")
    await shoot(page, "schedule-errors")
    assert director.schedule.name == before
    assert not await show.aired("只有一段")
    audit = await show.store.audit_rows(cmd="load_schedule", limit=5)
    assert audit and audit[0].result.startswith("refused") and audit[0].via == "console"
    await page.context.close()


async def test_a_good_schedule_is_previewed_activated_and_airs(
    show: Show, browser: Browser, tmp_path: Path
) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/schedules")
    upload = tmp_path / "console.yaml"
    upload.write_text(GOOD_SCHEDULE, encoding="utf-8")
    await page.set_input_files("input[name=file]", str(upload))
    await page.click("button[value=check]")
    rundown = await page.inner_text("#rundown")
    assert "控制台上传的节目" in rundown
    assert "Asia/Shanghai" in await page.inner_text("h3 >> text=今日安排")
    await page.fill("textarea[name=yaml]", GOOD_SCHEDULE)
    await page.click("button[value=activate]")
    assert "已启用节目单：控制台测试节目" in await page.inner_text(".flash.ok")
    rows = await until(lambda: show.aired("这是从控制台上传的第一句话"), "the first line on air")
    assert await page.locator("#versions tr").count() >= 2  # the one at start and this one
    # The line is in the stream too: speech where the as-run log says it aired.
    stream_time = rows[0].stream_time
    await until(lambda: _stream_reaches(show.root / "show.ts", stream_time + 3), "stream written")
    level = _speech_level(show.root / "show.ts", stream_time, stream_time + 2.0)
    assert level > 0.01, f"no speech in the stream at {stream_time:.1f} s (rms {level:.4f})"
    await shoot(page, "schedules")
    # Roll back: the previous schedule is on air again.
    await page.click("form[action='/schedules/rollback'] button")
    assert "已启用节目单" in await page.inner_text(".flash.ok")
    director = show.channel.console.parts.director  # type: ignore[union-attr]
    assert director.schedule.name != "控制台测试节目"
    await page.context.close()


async def test_review_mode_airs_approved_answers_and_never_rejected_ones(
    show: Show, browser: Browser
) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/questions")
    await page.click("form[action='/questions/review'] button")
    assert await page.inner_text("#review-state") == "开启审核"
    channel = "default"
    async with aiomqtt.Client(**show.broker.client_options()) as client:
        for qid, text in (("rv-1", "工伤认定要准备哪些材料"), ("rv-2", "怎么加入工会")):
            payload = {"id": qid, "user": "工友小李", "text": text, "platform": "test"}
            await client.publish(
                f"anchor/{channel}/questions", json.dumps(payload, ensure_ascii=False), qos=1
            )

    async def drafted() -> bool:
        await page.reload()
        return await page.locator("li.draft").count() == 2

    await until(drafted, "both questions drafted for review", 60)
    await shoot(page, "questions-review")
    assert not await show.store.as_run_rows(contains="工伤认定要准备", limit=5)
    first = page.locator("li.draft[data-id='rv-1']")
    await first.locator("button[value=approve]").click()
    assert "已执行" in await page.inner_text(".flash.ok")
    second = page.locator("li.draft[data-id='rv-2']")
    await second.locator("input[name=reason]").fill("稍后人工回复")
    await second.locator("button[value=reject]").click()

    async def answered() -> list[Any]:
        rows = await show.store.as_run_rows(limit=200)
        return [row for row in rows if row.question_id == "rv-1"]

    await until(answered, "the approved answer on air", 60)
    await asyncio.sleep(3)
    rows = await show.store.as_run_rows(limit=300)
    assert not [row for row in rows if row.question_id == "rv-2"]
    assert not await show.aired("怎么加入工会")
    stored = await show.store.get("rv-2")
    assert stored.status == "rejected" and "稍后人工回复" in (stored.reason or "")
    await page.goto(show.url + "/questions")
    await page.click("form[action='/questions/review'] button")
    assert await page.inner_text("#review-state") == "关闭审核"
    await page.context.close()


async def test_say_now_airs_next_and_a_banned_line_is_refused(show: Show, browser: Browser) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/takeover")
    await page.fill("#say-text", "各位工友，这是一条插播通知。")
    await page.click("button[value=say]")
    assert "插播通知" in await page.inner_text(".flash.ok")
    asked = time.monotonic()
    rows = await until(lambda: show.aired("这是一条插播通知"), "the operator's line on air", 30)
    assert rows[0].priority == "operator"
    # At the next sentence boundary: at most the sentence on air and the lookahead before it.
    assert time.monotonic() - asked < 25
    await shoot(page, "takeover")
    await page.fill("#say-text", f"欢迎大家来{BANNED}")
    await page.click("button[value=say]")
    assert "moderation" in await page.inner_text(".flash.error")
    await asyncio.sleep(2)
    assert not await show.aired(BANNED)
    await page.context.close()


async def test_hold_airs_standby_until_release(show: Show, browser: Browser) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/takeover")
    await page.click("button[value=hold]")
    assert "紧急待机" in await page.inner_text(".flash.ok")
    rows = await until(lambda: show.aired("直播稍作休息"), "the standby loop on air", 30)
    held_at = rows[0].aired_at
    await page.goto(show.url + "/")
    assert await page.is_visible("#held")
    await asyncio.sleep(6)
    after = [r for r in await show.store.as_run_rows(since=held_at + 0.5, limit=50) if r.text]
    assert all(r.text.startswith("直播稍作休息") or r.priority == "operator" for r in after), after
    await page.goto(show.url + "/takeover")
    await page.click("button[value=release]")
    assert "解除待机" in await page.inner_text(".flash.ok")
    released = time.time()
    await until(
        lambda: _scheduled_since(show, released), "the schedule back on air after the release", 40
    )
    await page.context.close()


async def _scheduled_since(show: Show, since: float) -> bool:
    rows = await show.store.as_run_rows(since=since, limit=20)
    return any(row.priority == "schedule" for row in rows)


async def test_the_knowledge_base_page_tries_a_question_and_edits_an_entry(
    show: Show, browser: Browser
) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/knowledge?try=住院了互助金怎么报")
    would = await page.inner_text("#would-air")
    assert "互助" in would and "kb" in would
    assert await page.locator("#hits tr").count() >= 2
    await shoot(page, "knowledge")
    await page.goto(show.url + "/knowledge")
    await page.fill("input[name=id]", "console-test-entry")
    await page.fill("input[name=question]", "控制台新增的测试问题是什么")
    await page.fill("textarea[name=answer]", f"这条回答含有{BANNED}。")
    await page.click("button[value=save]")
    assert "moderation" in await page.inner_text("#problems")
    await page.fill("textarea[name=answer]", "这是控制台新增的测试回答。")
    await page.click("button[value=save]")
    assert "console-test-entry" in await page.inner_text(".flash.ok")
    live = show.channel.knowledge
    assert live is not None and "console-test-entry" in live.knowledge.ids
    await page.context.close()


async def test_records_filter_and_export(show: Show, browser: Browser) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/records?tab=audit")
    text = await page.inner_text("#records")
    assert "login" in text and "console" in text
    await shoot(page, "records")
    await page.goto(show.url + "/records?tab=as_run&contains=工会")
    cells = await page.locator("#records tbody tr td:nth-child(4)").all_inner_texts()
    assert cells and all("工会" in cell for cell in cells)
    async with page.expect_download() as download:
        await page.click("a.button")
    saved = await (await download.value).path()
    body = await asyncio.to_thread(Path(saved).read_text, encoding="utf-8-sig")
    assert body.startswith("aired_at,") and "工会" in body
    await page.context.close()


async def test_requests_without_the_csrf_token_and_guessed_passwords_are_refused(
    show: Show, browser: Browser
) -> None:
    page = await logged_in(browser, show)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=show.url, cookies=cookies) as client:
        refused = await client.post("/takeover", data={"action": "skip"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        forged = await client.post(
            "/takeover",
            data={"action": "skip", "csrf": "x" * 43},
            headers={"origin": "http://evil.example"},
        )
        assert forged.status_code == 403
        huge = await client.post("/takeover", content=b"x" * (4 * 1024 * 1024))
        assert huge.status_code == 413
    audit = await show.store.audit_rows(cmd="skip", limit=5)
    assert not audit, "a refused request reached the show"
    async with httpx.AsyncClient(base_url=show.url) as guesser:
        statuses = []
        for attempt in range(10):
            form = await guesser.get("/login")
            ticket = form.text.split('name="ticket" value="', 1)[1].split('"', 1)[0]
            answer = await guesser.post(
                "/login",
                data={"ticket": ticket, "user": "operator", "password": f"guess-{attempt}"},
            )
            statuses.append(answer.status_code)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
        assert "retry-after" in answer.headers
        # Even the right password waits now, from this address.
        form = await guesser.get("/login")
        ticket = form.text.split('name="ticket" value="', 1)[1].split('"', 1)[0]
        right = await guesser.post(
            "/login", data={"ticket": ticket, "user": "operator", "password": PASSWORD}
        )
        assert right.status_code == 429
    show.channel.console.console.limiter.succeeded("127.0.0.1")  # type: ignore[union-attr]
    await page.context.close()


async def test_cookies_are_http_only_and_same_site_and_supervisors_only_watch(
    show: Show, browser: Browser
) -> None:
    page = await logged_in(browser, show, user="supervisor")
    session = next(c for c in await page.context.cookies() if c["name"] == "anchor_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert "只读" in await page.inner_text("main")
    await page.goto(show.url + "/takeover")
    assert await page.locator("button[value=say]").is_disabled()
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    response = await page.context.request.post(
        show.url + "/takeover", form={"action": "skip", "csrf": csrf or ""}
    )
    assert response.status == 403 and "read-only" in await response.text()
    await page.context.close()


async def test_the_pages_speak_english_too(show: Show, browser: Browser) -> None:
    page = await logged_in(browser, show)
    await page.goto(show.url + "/takeover")
    await page.click("text=English")
    assert page.url.endswith("/takeover")
    assert await page.inner_text("nav a[aria-current=page]") == "Takeover"
    assert await page.locator("button[value=hold]").inner_text() == "Emergency hold"
    await page.click("text=中文")
    assert await page.inner_text("nav a[aria-current=page]") == "人工接管"
    await page.context.close()


async def test_metrics_and_health_come_from_the_same_application(show: Show) -> None:
    async with httpx.AsyncClient(base_url=show.url) as client:
        metrics = await client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "anchor_frames_encoded_total" in metrics.text
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
        assert (await client.get("/")).status_code in (303, 307)
        assert (await client.get("/api/state")).status_code == 401


def _bytes_file(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


async def _stream_reaches(path: Path, seconds: float) -> bool:
    return await asyncio.to_thread(_duration, path) >= seconds


def _duration(path: Path) -> float:
    try:
        with av.open(str(path)) as container:
            last = 0.0
            for packet in container.demux(audio=0):
                if packet.pts is not None:
                    last = float(packet.pts * packet.time_base)
            start = container.streams.audio[0].start_time or 0
            return last - float(start * container.streams.audio[0].time_base)
    except (av.FFmpegError, IndexError, OSError):
        return 0.0


def _speech_level(path: Path, start: float, end: float) -> float:
    """RMS of the stream's audio between two stream times."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        origin = float((stream.start_time or 0) * stream.time_base)
        chunks = []
        for frame in container.decode(stream):
            at = float(frame.pts * frame.time_base) - origin
            if start <= at <= end:
                chunks.append(frame.to_ndarray().astype(np.float32).ravel())
            elif at > end:
                break
    if not chunks:
        return 0.0
    samples = np.concatenate(chunks)
    return float(np.sqrt(np.mean(samples**2)))
