"""The SQLite store: what goes in comes back out, survives kill -9, and never stalls the loop."""

import asyncio
import csv
import io
import logging
import signal
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

import pytest

from anchor.config import ConfigError, StoreConfig, load_config
from anchor.messages import Question
from anchor.store import Retention
from anchor.store import database as database_module
from anchor.store.database import (
    DAY_SECONDS,
    FINISHED,
    STATUSES,
    Pruned,
    Store,
    StoreError,
    UnknownQuestion,
)

T0 = 1_778_300_000.0


def question(n: int, text: str = "互助保障住院怎么申请理赔？", **fields) -> Question:
    defaults = {"user": f"职工{n}", "platform": "douyin", "sent_at": T0 + n - 0.5}
    return Question(id=f"q{n}", text=text, received_at=T0 + n, **{**defaults, **fields})


@pytest.fixture
async def store(tmp_path):
    opened = await Store.open(tmp_path / "data" / "anchor.db")
    yield opened
    await opened.close()


async def add(store: Store, q: Question, status: str = "pending", **kwargs) -> bool:
    return await store.add_question(
        q, masked_text=q.text.replace("13812345678", "***"), status=status, **kwargs
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


# -- questions -------------------------------------------------------------------------------


async def test_question_round_trip_keeps_original_and_masked_text(store):
    q = question(1, "我电话13812345678，欠薪怎么办？")
    assert await add(store, q) is True
    stored = await store.get("q1")
    assert stored is not None
    assert (stored.id, stored.user, stored.platform) == ("q1", "职工1", "douyin")
    assert stored.text == "我电话13812345678，欠薪怎么办？"
    assert stored.masked_text == "我电话***，欠薪怎么办？"
    assert (stored.status, stored.reason, stored.merged_into) == ("pending", None, None)
    assert (stored.sent_at, stored.received_at) == (T0 + 0.5, T0 + 1)
    assert (stored.answer, stored.source, stored.aired_at) == (None, None, None)
    assert await store.get("nope") is None


async def test_redelivery_returns_false_and_keeps_the_first(store):
    assert await add(store, question(1, "第一次")) is True
    assert await add(store, question(1, "第二次"), status="rejected") is False
    stored = await store.get("q1")
    assert (stored.text, stored.status) == ("第一次", "pending")
    assert (await store.counts())["pending"] == 1


async def test_pending_is_oldest_first_and_only_pending(store):
    for n in (3, 1, 4, 2, 5):
        await add(store, question(n))
    await store.set_status("q4", "answering")
    await add(store, question(0), status="rejected", reason="sensitive")
    assert [q.id for q in await store.pending(10)] == ["q1", "q2", "q3", "q5"]
    assert [q.id for q in await store.pending(2)] == ["q1", "q2"]


async def test_status_changes_and_reasons(store):
    await add(store, question(1))
    await add(store, question(2))
    await store.set_status("q1", "expired", "waited 600 s")
    await store.set_status("q2", "merged", merged_into="q1")
    one, two = await store.get("q1"), await store.get("q2")
    assert (one.status, one.reason) == ("expired", "waited 600 s")
    assert (two.status, two.merged_into) == ("merged", "q1")
    with pytest.raises(UnknownQuestion, match="nope"):
        await store.set_status("nope", "answered")
    with pytest.raises(ValueError, match="done"):
        await store.set_status("q1", "done")


async def test_merged_on_arrival(store):
    await add(store, question(1))
    await add(store, question(2), status="merged", merged_into="q1")
    assert (await store.get("q2")).merged_into == "q1"


async def test_answers_set_answered_or_fallback(store):
    await add(store, question(1))
    await add(store, question(2))
    await store.record_answer("q1", answer="带身份证和住院发票……", source="kb", aired_at=T0 + 60)
    await store.record_answer(
        "q2", answer="工作人员会尽快跟进。", source="fallback", aired_at=T0 + 90
    )
    one, two = await store.get("q1"), await store.get("q2")
    assert (one.status, one.answer, one.source, one.aired_at) == (
        "answered",
        "带身份证和住院发票……",
        "kb",
        T0 + 60,
    )
    assert (two.status, two.source) == ("fallback", "fallback")
    with pytest.raises(UnknownQuestion):
        await store.record_answer("nope", answer="x", source="kb", aired_at=T0)


async def test_counts_cover_every_status(store):
    assert await store.counts() == dict.fromkeys(STATUSES, 0)
    await add(store, question(1))
    await add(store, question(2))
    await add(store, question(3), status="rejected", reason="sensitive")
    await store.record_answer("q2", answer="好的", source="llm", aired_at=T0)
    counts = await store.counts()
    assert (counts["pending"], counts["answered"], counts["rejected"]) == (1, 1, 1)
    assert sum(counts.values()) == 3


async def test_questions_survive_a_clean_restart_and_interrupted_ones_are_requeued(tmp_path):
    path = tmp_path / "anchor.db"
    async with await Store.open(path) as first:
        await add(first, question(1))
        await add(first, question(2))
        await first.set_status("q1", "answering")
    async with await Store.open(path) as second:
        assert [q.id for q in await second.pending(10)] == ["q2"]
        assert await second.requeue_interrupted() == 1
        assert [q.id for q in await second.pending(10)] == ["q1", "q2"]


# -- as-run log and CSV ----------------------------------------------------------------------


async def test_as_run_log_exports_in_order_with_iso_times(store, tmp_path):
    await store.record_aired(
        text="大家好，欢迎来到职工服务直播间！",
        priority="SCHEDULE",
        segment="welcome",
        question_id=None,
        stream_time=0.0,
        aired_at=T0,
    )
    await store.record_aired(
        text="带身份证和住院发票。",
        priority="ANSWER",
        segment=None,
        question_id="q1",
        stream_time=12.5,
        aired_at=T0 + 12.5,
    )
    out = tmp_path / "as-run.csv"
    assert await store.export_csv("as_run", out) == 2
    rows = read_csv(out)
    assert [row["text"] for row in rows] == [
        "大家好，欢迎来到职工服务直播间！",
        "带身份证和住院发票。",
    ]
    assert [row["question_id"] for row in rows] == ["", "q1"]
    assert rows[1]["priority"] == "ANSWER" and float(rows[1]["stream_time"]) == 12.5
    aired = datetime.fromisoformat(rows[1]["aired_at"])
    assert aired.tzinfo is not None and aired.timestamp() == T0 + 12.5


async def test_questions_csv_opens_in_excel_with_chinese_intact(store, tmp_path):
    await add(store, question(1, "我电话13812345678，欠薪怎么办？"))
    await add(store, question(2, '=HYPERLINK("http://x")'))
    await store.record_answer("q1", answer="可以申请法律援助。", source="kb", aired_at=T0 + 30)
    out = tmp_path / "questions.csv"
    assert await store.export_csv("questions", out, raw=True) == 2
    assert out.read_bytes().startswith(b"\xef\xbb\xbfid,user,platform,text,masked_text,status")
    first, second = read_csv(out)
    assert first["user"] == "职工1"
    assert first["text"] == "我电话13812345678，欠薪怎么办？"
    assert first["masked_text"] == "我电话***，欠薪怎么办？"
    assert (first["status"], first["answer"], first["source"]) == (
        "answered",
        "可以申请法律援助。",
        "kb",
    )
    assert datetime.fromisoformat(first["received_at"]).timestamp() == T0 + 1
    assert second["text"] == '\'=HYPERLINK("http://x")'  # not run as a formula


async def test_questions_export_has_only_the_masked_text_unless_raw_is_asked(store, tmp_path):
    await add(store, question(1, "我电话13812345678，欠薪怎么办？"))
    out = tmp_path / "questions.csv"
    assert await store.export_csv("questions", out) == 1
    assert out.read_bytes().startswith(b"\xef\xbb\xbfid,user,platform,masked_text,status")
    assert "13812345678" not in out.read_text(encoding="utf-8-sig")
    assert read_csv(out)[0]["masked_text"] == "我电话***，欠薪怎么办？"


def received(name: str, text: str, at: float) -> Question:
    return Question(id=name, user="职工", text=text, received_at=at)


async def test_raw_text_is_purged_after_its_days_and_leaves_the_file(tmp_path):
    clock = WallClock(T0)
    path = tmp_path / "anchor.db"
    async with await Store.open(path, clock=clock) as store:
        await add(store, received("q1", "旧的：我电话13812345678", T0 - 40 * DAY_SECONDS))
        await add(store, received("q2", "新的：我电话13812345678", T0 - DAY_SECONDS))
        await add(store, received("q3", "没有个人信息", T0 - 40 * DAY_SECONDS))
        assert await store.purge_raw_text(30) == 1
        assert (await store.get("q1")).text == "旧的：我电话***"
        assert (await store.get("q2")).text == "新的：我电话13812345678"
        assert await store.purge_raw_text(30) == 0
        assert await store.purge_raw_text(0) == 1  # raw text not kept: every original goes
        assert (await store.get("q2")).text == "新的：我电话***"
        with pytest.raises(ValueError, match="older_than_days"):
            await store.purge_raw_text(-1)
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith("anchor.db")]
    assert all(b"13812345678" not in p.read_bytes() for p in leftovers)  # secure_delete


@pytest.mark.parametrize(("keep", "purged"), [(False, 2), (True, 1)])
async def test_retention_purges_raw_text_as_configured(tmp_path, keep, purged):
    clock = WallClock(T0)
    async with await Store.open(tmp_path / "anchor.db", clock=clock) as store:
        await add(store, received("q1", "我电话13812345678", T0 - 10 * DAY_SECONDS))
        await add(store, received("q2", "我电话13812345678", T0 - DAY_SECONDS))
        config = StoreConfig(keep_raw_text=keep, raw_text_days=7)
        retention = Retention(store, config, wall_clock=clock)
        assert await retention.prune_once() == Pruned(as_run=0, questions=0)
        assert retention.raw_texts_purged == purged
        texts = [(await store.get(name)).text for name in ("q1", "q2")]
        assert texts.count("我电话***") == purged


async def test_export_since_and_to_a_stream(store):
    for n in range(1, 6):
        await add(store, question(n))
    stream = io.StringIO()
    assert await store.export_csv("questions", stream, since=T0 + 4) == 2
    text = stream.getvalue()
    assert text.startswith("\ufeffid,")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [row["id"] for row in rows] == ["q4", "q5"]


async def test_large_export_and_prune_keep_every_row_accounted_for(store, tmp_path):
    for n in range(1234):
        await store.record_aired(
            text=f"第{n}句",
            priority="IDLE",
            segment=None,
            question_id=None,
            stream_time=float(n),
            aired_at=T0 + n * 3600.0,
        )
    out = tmp_path / "as-run.csv"
    assert await store.export_csv("as_run", out) == 1234
    assert [row["text"] for row in read_csv(out)] == [f"第{n}句" for n in range(1234)]
    now = T0 + 1233 * 3600.0
    assert await store.prune(older_than_days=10, now=now) == Pruned(as_run=1233 - 240, questions=0)
    assert await store.export_csv("as_run", out) == 241
    assert read_csv(out)[0]["text"] == "第993句"


async def test_export_to_an_unwritable_place_names_it(store, tmp_path):
    target = tmp_path / "no-such-folder" / "q.csv"
    with pytest.raises(StoreError, match="no-such-folder"):
        await store.export_csv("questions", target)
    with pytest.raises(ValueError, match="answers"):
        await store.export_csv("answers", tmp_path / "x.csv")  # type: ignore[arg-type]


# -- retention ---------------------------------------------------------------------------------


class WallClock:
    """The store's and the retention's wall clock, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def aged(name: str, received_at: float) -> Question:
    return Question(id=name, user="职工", text=f"{name}的问题", received_at=received_at)


async def aired(store: Store, text: str, aired_at: float) -> None:
    await store.record_aired(
        text=text,
        priority="IDLE",
        segment=None,
        question_id=None,
        stream_time=0.0,
        aired_at=aired_at,
    )


async def fill_for_pruning(store: Store, clock: WallClock) -> None:
    """Rows on both sides of a 30-day cutoff at T0, in every status."""
    long_ago = T0 - 100 * DAY_SECONDS
    clock.now = long_ago
    for status in FINISHED:
        await add(store, aged(f"old-{status}", long_ago), status=status)
    await add(store, aged("old-pending", long_ago))
    await add(store, aged("old-answering", long_ago))
    await store.set_status("old-answering", "answering")
    await add(store, aged("old-waiting-target", long_ago))
    await add(
        store,
        aged("old-joined-waiting", long_ago),
        status="merged",
        merged_into="old-waiting-target",
    )
    await add(store, aged("answered-lately", long_ago))
    for n in range(5):
        await aired(store, f"old {n}", long_ago + n)
    await aired(store, "just past the cutoff", T0 - 30 * DAY_SECONDS - 1)
    clock.now = T0 - 29 * DAY_SECONDS
    for status in FINISHED:
        await add(store, aged(f"new-{status}", clock.now), status=status)
    await aired(store, "just inside the cutoff", T0 - 30 * DAY_SECONDS + 1)
    clock.now = T0 - DAY_SECONDS
    await store.record_answer("answered-lately", answer="答", source="kb", aired_at=clock.now)
    await aired(store, "yesterday", clock.now)
    clock.now = T0


KEPT = {
    "old-pending",
    "old-answering",
    "old-waiting-target",
    "old-joined-waiting",
    "answered-lately",
    *(f"new-{status}" for status in FINISHED),
}


async def stored_ids(store: Store, tmp_path: Path) -> set[str]:
    out = tmp_path / "left.csv"
    await store.export_csv("questions", out)
    return {row["id"] for row in read_csv(out)}


async def aired_texts(store: Store, tmp_path: Path) -> list[str]:
    out = tmp_path / "left.csv"
    await store.export_csv("as_run", out)
    return [row["text"] for row in read_csv(out)]


async def test_prune_deletes_old_finished_rows_and_keeps_waiting_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "_CHUNK_ROWS", 2)  # several chunks per table
    clock = WallClock(T0)
    async with await Store.open(tmp_path / "anchor.db", clock=clock) as store:
        await fill_for_pruning(store, clock)
        assert await store.prune(30) == Pruned(as_run=6, questions=len(FINISHED))
        assert await stored_ids(store, tmp_path) == KEPT
        assert await aired_texts(store, tmp_path) == ["just inside the cutoff", "yesterday"]
        assert (await store.get("old-pending")).status == "pending"
        assert (await store.get("old-answering")).status == "answering"
        assert await store.prune(30) == Pruned(as_run=0, questions=0)
        clock.now = T0 + 365 * DAY_SECONDS  # a year on, only what still waits is left
        assert await store.prune(30) == Pruned(as_run=2, questions=len(KEPT) - 4)
        assert await stored_ids(store, tmp_path) == {
            "old-pending",
            "old-answering",
            "old-waiting-target",
            "old-joined-waiting",
        }
        with pytest.raises(ValueError, match="older_than_days"):
            await store.prune(-1)


class FailingStore(Store):
    """A real store whose next prunes raise the errors queued in ``failures``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures: list[Exception] = []
        self.calls = 0
        self.pruned = asyncio.Event()

    async def prune(self, older_than_days: float, *, now: float | None = None) -> Pruned:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        pruned = await super().prune(older_than_days, now=now)
        self.pruned.set()
        return pruned


async def test_retention_survives_failing_prunes_and_prunes_at_the_next_interval(tmp_path, caplog):
    clock = WallClock(T0)
    store = await FailingStore.open(tmp_path / "anchor.db", clock=clock)
    store.failures = [
        StoreError(f"{store.path}: cannot prune: disk I/O error"),
        OSError(28, "No space left on device"),
    ]
    await fill_for_pruning(store, clock)
    config = StoreConfig(retention_days=30, prune_every_hours=0.02 / 3600)  # every 20 ms
    retention = Retention(store, config, first_after_seconds=0.0, wall_clock=clock)
    caplog.set_level(logging.INFO, logger="anchor.store.retention")
    task = asyncio.create_task(retention.run(), name="retention")
    try:
        async with asyncio.timeout(5):
            await store.pruned.wait()
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()
    assert retention.failures == 2 and store.calls >= 3
    assert retention.rows_deleted == 6 + len(FINISHED)
    records = [record for record in caplog.records if record.name == "anchor.store.retention"]
    messages = [record.getMessage() for record in records]
    assert "disk I/O error" in messages[0] and "next try in 0.02 s" in messages[0]
    assert not records[0].exc_info  # a StoreError explains itself
    assert "No space left on device" in messages[1] and records[1].exc_info
    assert f"deleted 6 as-run rows and {len(FINISHED)} finished questions" in messages[2]
    async with await Store.open(tmp_path / "anchor.db") as reopened:
        assert await stored_ids(reopened, tmp_path) == KEPT


async def test_retention_waits_before_its_first_prune(tmp_path):
    store = await FailingStore.open(tmp_path / "anchor.db")
    retention = Retention(store, StoreConfig(), first_after_seconds=30.0)
    task = asyncio.create_task(retention.run(), name="retention")
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.close()
    assert store.calls == 0 and retention.prunes == 0


async def test_retention_prunes_by_the_configured_period(tmp_path):
    store = await Store.open(tmp_path / "anchor.db")
    retention = Retention(store, StoreConfig(retention_days=7), wall_clock=lambda: T0)
    await aired(store, "eight days ago", T0 - 8 * DAY_SECONDS)
    await aired(store, "six days ago", T0 - 6 * DAY_SECONDS)
    assert await retention.prune_once() == Pruned(as_run=1, questions=0)
    await store.close()
    assert await retention.prune_once() is None  # a closed store: logged, not raised
    assert retention.failures == 1


@pytest.mark.parametrize("value", ["0", "-5"])
def test_retention_must_be_positive(tmp_path, value):
    path = tmp_path / "config.yaml"
    path.write_text(f"store:\n  retention_days: {value}\n  prune_every_hours: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [
        f"{path}:2: store.retention_days: must be more than 0, got {value}",
        f"{path}:3: store.prune_every_hours: must be more than 0.0, got 0",
    ]


def test_retention_defaults():
    config = StoreConfig()
    assert (config.retention_days, config.prune_every_hours) == (90, 6.0)
    assert (config.keep_raw_text, config.raw_text_days) == (False, 30)


# -- durability, errors, concurrency -------------------------------------------------------

CHILD = """
import asyncio, os, signal, sys
from pathlib import Path
from anchor.messages import Question
from anchor.store.database import Store

async def main():
    store = await Store.open(Path(sys.argv[1]))
    for n in range(3):
        q = Question(f"k{n}", "小李", f"第{n}个问题", received_at=1.0 + n)
        assert await store.add_question(q, masked_text=q.text, status="pending")
    print("stored", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
async def test_a_question_stored_before_kill_9_is_still_there(tmp_path):
    path = tmp_path / "anchor.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert out == b"stored\n"
    assert child.returncode == -signal.SIGKILL
    assert path.with_name("anchor.db-wal").exists()  # killed before any clean close
    async with await Store.open(path) as reopened:
        assert [(q.id, q.text) for q in await reopened.pending(10)] == [
            ("k0", "第0个问题"),
            ("k1", "第1个问题"),
            ("k2", "第2个问题"),
        ]


async def test_store_calls_leave_the_event_loop_free(store):
    ticks = 0
    done = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def caller(first: int):
        for n in range(first, first + 25):
            await add(store, question(n))
            await store.record_aired(
                text="x",
                priority="IDLE",
                segment=None,
                question_id=None,
                stream_time=0.0,
                aired_at=T0,
            )

    ticking = asyncio.create_task(ticker())
    await asyncio.gather(*(caller(first) for first in range(0, 200, 25)))
    done.set()
    await ticking
    assert (await store.counts())["pending"] == 200
    # Each awaited call yields to the loop while the store thread works; a store that ran
    # SQLite on the loop would let the ticker in only between callers (8 times).
    assert ticks >= 400


async def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / "anchor.db"
    path.write_bytes(b"this is not a database " * 200)
    with pytest.raises(StoreError, match=r"anchor\.db.*not a database"):
        await Store.open(path)


async def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE questions (x)")
    with pytest.raises(StoreError, match=r"other\.db.*another program"):
        await Store.open(path)


async def test_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "anchor.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer anchor"):
        await Store.open(path)


@pytest.mark.parametrize("where", ["folder", "under_a_file", "proc"])
async def test_unusable_paths_are_named(tmp_path, where):
    if where == "proc" and not sys.platform.startswith("linux"):
        pytest.skip("needs Linux /proc")
    path = {
        "folder": tmp_path,
        "under_a_file": tmp_path / "config.yaml" / "anchor.db",
        "proc": Path("/proc/self/anchor.db"),  # not writable, even for root
    }[where]
    (tmp_path / "config.yaml").write_text("channel: x\n")
    with pytest.raises(StoreError) as caught:
        await Store.open(path)
    assert str(caught.value).startswith(f"{path}:")


async def test_closed_store_refuses_calls(tmp_path):
    store = await Store.open(tmp_path / "anchor.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.counts()
