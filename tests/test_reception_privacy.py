"""No personal data gets past reception: questions carrying it in their text *and* in the
viewer's name go through the real path (payload parsing, rate limit, moderation, the SQLite
store, the desk, a restart) and the data is in none of what comes out: published events, the
log, any column of any table or the database file itself, the desk, the CSV export."""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from itertools import count
from pathlib import Path

import pytest
from personal_data import personal_forms, survives

from anchor.config import QuestionsConfig, StoreConfig
from anchor.events import Event
from anchor.links.payloads import event_payload
from anchor.messages import WaitingQuestion
from anchor.moderation import NEAR_DUPLICATE, Moderator, similarity
from anchor.questions.desk import QuestionDesk
from anchor.questions.reception import Reception
from anchor.store import Retention, Store
from anchor.store.database import DAY_SECONDS

T0 = 1_778_300_000.0
FORMS = personal_forms()
SECRETS = [secret for _, secret in FORMS]


class WallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Channel:
    """Reception as the daemon builds it, with the events it publishes kept."""

    def __init__(self, store: Store, moderator: Moderator, clock: WallClock, **options) -> None:
        self.events: list[Event] = []
        self.desk = QuestionDesk(
            max_pending=20,  # some questions are turned away as "busy": one more path
            max_age_s=600,
            merge_window_s=300,
            similarity=similarity,
            near_duplicate=NEAR_DUPLICATE,
        )
        self.reception = Reception(
            QuestionsConfig(per_viewer=3),
            store=store,
            moderator=moderator,
            desk=self.desk,
            nudge=lambda: None,
            publish=self.events.append,
            wall_clock=clock,
            **options,
        )

    async def ask(self, name: str, user: str, text: str) -> str:
        payload = {"id": name, "user": user, "text": text, "platform": "douyin"}
        return await self.reception.take_payload(json.dumps(payload, ensure_ascii=False).encode())

    def waiting(self, now: float) -> list[WaitingQuestion]:
        taken = []
        while True:
            next_up, expired = self.desk.take(now)
            taken.extend(expired)
            if next_up is None:
                return taken
            taken.append(next_up)


def ids() -> map[str]:
    """Question ids without digits, so no digit of an id can pass for a leaked number."""
    return map(lambda n: "q-" + "".join(chr(ord("a") + int(d)) for d in str(n)), count())


@pytest.fixture
async def moderator(tmp_path: Path) -> Moderator:
    words = tmp_path / "words.txt"
    words.write_text("赌博\n", encoding="utf-8")
    return await Moderator.aload([words])


def table_cells(path: Path) -> list[str]:
    """Every text value in every column of every table."""
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            value
            for table in tables
            for row in db.execute(f"SELECT * FROM {table}")
            for value in row
            if isinstance(value, str)
        ]


def csv_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def leaks(outputs: dict[str, list[str]], secrets: list[str]) -> list[tuple[str, str, str]]:
    return [
        (where, secret, text)
        for where, texts in outputs.items()
        for text in texts
        for secret in secrets
        if survives(secret, text)
    ]


async def test_no_secret_reaches_any_output(tmp_path, moderator, caplog):
    caplog.set_level(logging.DEBUG)
    clock = WallClock(T0)
    path = tmp_path / "anchor.db"
    store = await Store.open(path, clock=clock)
    channel = Channel(store, moderator, clock)
    name = ids()
    outcomes = []
    # Every form as a question, from a viewer whose name is another form.
    for n, (text, _) in enumerate(FORMS):
        user = FORMS[(n + 7) % len(FORMS)][0]
        outcomes.append(await channel.ask(next(name), user, text))
    # Refused by a listed word; then one viewer past the rate limit.
    outcomes.append(await channel.ask(next(name), "阿强13811112222", "赌博加我13800138000"))
    for text, _ in FORMS[:5]:
        outcomes.append(await channel.ask(next(name), "小李 138.2222.3333", text))
    # A payload refused at intake, with a number in its name.
    await channel.reception.take_payload(b'{"id": "x", "user": "13912345678", "text": 5}')
    # The engine restarts: pending questions go to a new desk.
    restarted = Channel(store, moderator, clock)
    await restarted.reception.try_resume(100)

    default_csv, raw_csv, as_run_csv = tmp_path / "q.csv", tmp_path / "raw.csv", tmp_path / "r.csv"
    await store.export_csv("questions", default_csv)
    await store.export_csv("questions", raw_csv, raw=True)  # raw text is not kept: still masked
    await store.export_csv("as_run", as_run_csv)
    counts = await store.counts()
    await store.close()

    assert {"accepted", "merged", "rejected"} <= set(outcomes)
    assert counts["rejected"] >= 7 and counts["pending"] >= 1  # refused, limited, busy
    events = channel.events + restarted.events
    waiting = channel.waiting(T0) + restarted.waiting(T0)
    assert len(waiting) >= 20
    secrets = [*SECRETS, "13811112222", "138.2222.3333", "13912345678"]
    outputs = {
        "events": [repr(event) for event in events],
        "event payloads": [
            json.dumps(event_payload(event, channel="c", now=T0), ensure_ascii=False)
            for event in events
        ],
        "log": [record.getMessage() for record in caplog.records],
        "desk": [repr(question) for question in waiting],
        "database": table_cells(path),
        "csv": csv_cells(default_csv) + csv_cells(raw_csv) + csv_cells(as_run_csv),
    }
    assert leaks(outputs, secrets) == []
    files = [file.read_bytes() for file in tmp_path.iterdir() if file.name.startswith("anchor.db")]
    assert [s for s in secrets if any(s.encode() in data for data in files)] == []
    assert any("[手机号]" in cell for cell in outputs["database"])
    assert any(user.startswith("[") or "[" in user for user in outputs["database"])


async def test_raw_text_is_kept_only_when_configured_and_only_for_its_days(tmp_path, moderator):
    clock = WallClock(T0)
    path = tmp_path / "anchor.db"
    store = await Store.open(path, clock=clock)
    channel = Channel(store, moderator, clock, keep_raw_text=True)
    await channel.ask("q-a", "阿强13811112222", "我的电话13800138000，欠薪怎么办")
    for _ in range(3):  # the fourth is over the rate limit and refused: its raw text is kept too
        await channel.ask(f"q-{'bcd'[_]}", "王五", "赌博加我13700001111" if _ == 0 else "工伤")
    await channel.ask("q-e", "王五", "我叫李四，电话13911112222")

    stored = await store.get("q-a")
    assert stored is not None
    assert (stored.user, stored.masked_text) == ("阿强[手机号]", "我的电话[手机号]，欠薪怎么办")
    assert stored.text == "我的电话13800138000，欠薪怎么办"  # for staff to follow up
    limited = await store.get("q-e")
    assert limited is not None and limited.reason and limited.reason.startswith("rate limit")
    assert (limited.text, limited.masked_text) == (
        "我叫李四，电话13911112222",
        "我叫[姓名]，电话[手机号]",
    )
    default_csv, raw_csv = tmp_path / "q.csv", tmp_path / "raw.csv"
    await store.export_csv("questions", default_csv)
    await store.export_csv("questions", raw_csv, raw=True)
    assert not leaks({"csv": csv_cells(default_csv)}, ["13800138000", "13911112222"])
    assert "我的电话13800138000，欠薪怎么办" in csv_cells(raw_csv)

    config = StoreConfig(keep_raw_text=True, raw_text_days=30)
    retention = Retention(store, config, wall_clock=clock)
    clock.now = T0 + 29 * DAY_SECONDS
    await retention.prune_once()
    assert retention.raw_texts_purged == 0
    clock.now = T0 + 31 * DAY_SECONDS
    await retention.prune_once()
    assert retention.raw_texts_purged == 3  # q-a, q-b (refused by a word), q-e
    await store.close()
    secrets = ["13800138000", "13700001111", "13911112222", "13811112222", "李四"]
    assert leaks({"database": table_cells(path)}, secrets) == []
    files = [file.read_bytes() for file in tmp_path.iterdir() if file.name.startswith("anchor.db")]
    assert [s for s in secrets if any(s.encode() in data for data in files)] == []
