"""The console's parts on their own: accounts, sessions, the login limit, knowledge-base edits,
today's rundown and the words of both languages."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from anchor.answers.knowledge import KnowledgeBase
from anchor.console import i18n
from anchor.console.auth import Accounts, LoginLimiter, Sessions, load_passwords
from anchor.console.kbedit import EntryForm, save_entry
from anchor.console.programme import today
from anchor.show.schedule import load_schedule

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "anchor" / "console"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_accounts_keep_only_hashes_and_check_passwords() -> None:
    accounts = Accounts.from_passwords({"operator": "s3cret-密码", "supervisor": ""})
    assert accounts.names == ("operator",)
    assert accounts.check("operator", "s3cret-密码")
    assert not accounts.check("operator", "s3cret")
    assert not accounts.check("supervisor", "")
    assert not accounts.check("nobody", "s3cret-密码")
    assert not accounts.check("operator", "x" * 5000)
    assert "s3cret" not in repr(vars(accounts))


def test_the_password_comes_from_the_environment_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONSOLE_PW", "from-env")
    monkeypatch.delenv("TEST_CONSOLE_SUP", raising=False)
    passwords, source = load_passwords("TEST_CONSOLE_PW", "TEST_CONSOLE_SUP", tmp_path / "pw")
    assert passwords == {"operator": "from-env"} and source == "$TEST_CONSOLE_PW"
    assert not (tmp_path / "pw").exists()
    monkeypatch.delenv("TEST_CONSOLE_PW")
    made, source = load_passwords("TEST_CONSOLE_PW", "TEST_CONSOLE_SUP", tmp_path / "pw")
    assert source == str(tmp_path / "pw") and len(made["operator"]) >= 16
    assert (tmp_path / "pw").stat().st_mode & 0o777 == 0o600
    again, _ = load_passwords("TEST_CONSOLE_PW", "TEST_CONSOLE_SUP", tmp_path / "pw")
    assert again == made


def test_sessions_end_when_idle_when_old_and_beyond_the_bound() -> None:
    clock = Clock()
    sessions = Sessions(idle_s=60, max_age_s=300, limit=3, clock=clock)
    first = sessions.start("operator", "operator")
    assert sessions.find(first.token) is first
    clock.now += 59
    assert sessions.find(first.token) is first  # activity restarts the idle time
    clock.now += 61
    assert sessions.find(first.token) is None
    kept = sessions.start("operator", "operator")
    for _ in range(5):
        clock.now += 50
        assert sessions.find(kept.token) is kept
    clock.now += 55  # active all along, but older than the maximum age
    assert sessions.find(kept.token) is None
    many = [sessions.start("supervisor", "supervisor") for _ in range(5)]
    assert len(sessions) == 3
    assert sessions.find(many[0].token) is None and sessions.find(many[-1].token) is not None
    assert sessions.find("") is None and sessions.find("forged") is None
    assert many[-1].csrf != many[-2].csrf and not many[-1].can_change


def test_failed_logins_are_limited_per_address_and_in_total() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_client=5, overall=8, window_s=300, clock=clock)
    for _ in range(5):
        assert limiter.wait_s("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert 299 <= limiter.wait_s("10.0.0.1") <= 300
    assert limiter.wait_s("10.0.0.2") == 0
    for _ in range(3):
        limiter.failed("10.0.0.2")
    assert limiter.wait_s("10.0.0.3") > 0  # eight failures from anywhere: everyone waits
    clock.now += 301
    assert limiter.wait_s("10.0.0.1") == 0 and limiter.wait_s("10.0.0.3") == 0


def test_an_edited_entry_keeps_the_files_comments_and_an_invalid_one_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "faq.yaml"
    shutil.copy(ROOT / "knowledge" / "union-faq.yaml", path)
    before = path.read_text(encoding="utf-8")
    first = KnowledgeBase.load(path)
    entry = first.get("mutual-aid-what")
    answer = "互助保障是工会组织的互助活动。"
    changed = EntryForm(entry.id, entry.question, answer, entry.alternates)
    assert save_entry(path, changed) == []
    after = path.read_text(encoding="utf-8")
    assert after.splitlines()[:12] == before.splitlines()[:12]  # header comments kept
    assert after.count("# ──") == before.count("# ──")
    reloaded = KnowledgeBase.load(path)
    assert reloaded.get("mutual-aid-what").answer == "互助保障是工会组织的互助活动。"
    assert reloaded.get("mutual-aid-what").alternates == entry.alternates
    assert len(reloaded) == len(first)
    assert (tmp_path / "faq.yaml.bak").read_text(encoding="utf-8") == before

    added = EntryForm("console-new", "新问题是什么", "新回答。", ("另一种问法",), ("测试",))
    assert save_entry(path, added) == []
    assert KnowledgeBase.load(path).get("console-new").tags == ("测试",)

    saved = path.read_text(encoding="utf-8")
    duplicate = EntryForm("console-other", entry.question, "重复的问题。")
    problems = save_entry(path, duplicate)
    assert problems and any("faq.yaml" in p for p in problems)
    assert path.read_text(encoding="utf-8") == saved
    assert save_entry(path, EntryForm("Bad Id", "", "")) == [
        "id: lowercase letters, digits, - or _ (at most 64)",
        "question: must not be empty",
        "answer: must not be empty",
    ]
    assert not list(tmp_path.glob(".*console-check*"))


def test_todays_rundown_follows_the_timetable_in_the_schedules_zone(tmp_path: Path) -> None:
    source = tmp_path / "day.yaml"
    source.write_text(
        "name: 测试\ntimezone: Asia/Shanghai\nsegments:\n"
        "  - {id: a, title: 甲, points: [第一句话说得长一些好估计时间。]}\n"
        "  - {id: b, title: 乙, points: [乙段。]}\n"
        "timetable:\n  - {at: '20:00', segment: b}\n",
        encoding="utf-8",
    )
    schedule = load_schedule(source)
    zone = schedule.timezone
    now = dt.datetime(2026, 12, 2, 19, 59, 50, tzinfo=zone)
    slots = today(schedule, now)
    assert slots[0].start == now and slots[0].segment_id == "a"
    at_eight = [s for s in slots if s.start == dt.datetime(2026, 12, 2, 20, 0, tzinfo=zone)]
    assert at_eight and at_eight[0].segment_id == "b" and at_eight[0].timetabled
    assert all(s.start.date() == now.date() for s in slots)
    assert len(slots) <= 200
    utc_now = now.astimezone(dt.UTC)
    assert today(schedule, utc_now)[0].start.tzinfo == zone


def test_every_word_the_pages_use_exists_in_both_languages() -> None:
    used: set[str] = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\.([a-z_]+)", text))
        used |= set(re.findall(r"\bt\[['\"]([a-z_]+)['\"]\]", text))
    for module in ("pages.py", "core.py"):
        text = (CONSOLE / module).read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\[\"([a-z_]+)\"\]", text))
    used -= {"format"}
    missing = sorted(used - set(i18n.WORDS))
    assert not missing, missing
    for key, (zh, en) in i18n.WORDS.items():
        assert zh and en, key
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), key
    assert i18n.pick(None, "en-US,en;q=0.9") == "en" and i18n.pick(None, "zh-CN") == "zh"
    assert i18n.pick("zh", "en-US") == "zh" and i18n.pick("xx", None) == "zh"


async def test_a_body_too_large_is_refused_whether_or_not_it_declares_its_length() -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from anchor.console.gate import BodyLimit
    from anchor.console.server import WebServer

    async def size(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = BodyLimit(Starlette(routes=[Route("/", size, methods=["POST"])]), 1024)
    web = WebServer(app, "127.0.0.1", 0)
    await web.start()

    async def chunks(count: int):  # no Content-Length: sent in chunks
        for _ in range(count):
            yield b"x" * 300

    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            small = await client.post("/", content=chunks(2))
            assert small.status_code == 200 and small.text == "600"
            assert (await client.post("/", content=chunks(10))).status_code == 413
            declared = await client.post("/", content=b"x" * 2000)
            assert declared.status_code == 413
            assert declared.headers["x-content-type-options"] == "nosniff"
    finally:
        await web.aclose()


def test_switching_language_returns_only_to_a_page_of_this_console() -> None:
    from starlette.requests import Request

    from anchor.console.core import _back

    def back(referer: str) -> str:
        headers = [(b"host", b"127.0.0.1:8080"), (b"referer", referer.encode())]
        return _back(Request({"type": "http", "headers": headers}))

    assert back("http://127.0.0.1:8080/takeover") == "/takeover"
    assert back("http://127.0.0.1:8080/records?tab=audit") == "/records"
    for hostile in (
        "http://127.0.0.1:8080//evil.example/",
        "http://127.0.0.1:8080/\\evil.example",
        "http://evil.example/?x=//127.0.0.1:8080/\\evil.example",
        "http://evil.example/takeover",
        "",
    ):
        assert back(hostile) == "/", hostile
