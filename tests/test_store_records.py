"""The store's records for the operator's console: blocked viewers, schedule versions, and
bounded, filtered pages of the as-run log, the questions and the audit trail."""

import csv
import sqlite3
from pathlib import Path

import pytest

from anchor.messages import Question
from anchor.store import database as database_module
from anchor.store.database import (
    _MIGRATIONS,
    MAX_PAGE_ROWS,
    MAX_SCHEDULE_SOURCE_BYTES,
    SCHEMA_VERSION,
    AsRunRow,
    AuditRow,
    BlockedListFull,
    BlockedViewer,
    Store,
    StoreError,
)

T0 = 1_778_300_000.0


@pytest.fixture
async def store(tmp_path):
    opened = await Store.open(tmp_path / "anchor.db", clock=lambda: T0)
    yield opened
    await opened.close()


async def aired(store: Store, n: int, text: str, segment: str | None = "opening") -> None:
    await store.record_aired(
        text=text,
        priority="IDLE",
        segment=segment,
        question_id=None,
        stream_time=float(n),
        aired_at=T0 + n,
    )


async def asked(store: Store, n: int, text: str, masked: str, status: str = "pending") -> None:
    q = Question(id=f"q{n}", user=f"职工{n}", text=text, received_at=T0 + n, platform="douyin")
    await store.add_question(q, masked_text=masked, status=status)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


# -- schema ------------------------------------------------------------------------------------


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return int(version)


async def test_a_schema_4_file_upgrades_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "anchor.db"
    db = sqlite3.connect(path)
    for version in range(1, 5):  # what the previous anchor created
        db.executescript(_MIGRATIONS[version])
    db.execute(
        "INSERT INTO audit (at, by, via, cmd, detail, result) VALUES (?, ?, ?, ?, ?, ?)",
        (T0, "王芳", "mqtt", "pause", "", "applied"),
    )
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    assert SCHEMA_VERSION == 5
    async with await Store.open(path) as store:
        assert await store.audit_rows() == [AuditRow(T0, "王芳", "mqtt", "pause", "", "applied")]
        await store.block("刷屏的人", "douyin", by="王芳", at=T0)
        assert await store.add_schedule_version("工作日", "segments: []\n", by="王芳") == 1
    assert user_version(path) == 5
    async with await Store.open(path) as reopened:  # and opens again as it is
        assert [viewer.user for viewer in await reopened.blocked()] == ["刷屏的人"]


# -- blocked viewers ---------------------------------------------------------------------------


async def test_block_unblock_and_list_newest_first(store):
    await store.block("甲***", "douyin", by="王芳", reason="广告", at=T0 + 1)
    await store.block("乙***", "", by="李强", at=T0 + 2)
    await store.block("甲***", "kuaishou", by="李强")  # same name elsewhere: another viewer
    assert await store.blocked() == [
        BlockedViewer("乙***", "", "李强", T0 + 2, ""),
        BlockedViewer("甲***", "douyin", "王芳", T0 + 1, "广告"),
        BlockedViewer("甲***", "kuaishou", "李强", T0, ""),
    ]
    await store.block("甲***", "douyin", by="李强", reason="辱骂", at=T0 + 3)  # upsert
    first = (await store.blocked())[0]
    assert first == BlockedViewer("甲***", "douyin", "李强", T0 + 3, "辱骂")
    assert len(await store.blocked()) == 3
    assert await store.unblock("甲***", "douyin") is True
    assert await store.unblock("甲***", "douyin") is False
    assert [(v.user, v.platform) for v in await store.blocked()] == [
        ("乙***", ""),
        ("甲***", "kuaishou"),
    ]


async def test_blocking_beyond_the_cap_is_refused_without_degrading_the_store(store, monkeypatch):
    monkeypatch.setattr(database_module, "MAX_BLOCKED", 2)
    await store.block("a", "douyin", by="王芳")
    await store.block("b", "douyin", by="王芳")
    with pytest.raises(BlockedListFull, match="2 viewers are blocked already") as refused:
        await store.block("c", "douyin", by="王芳")
    assert isinstance(refused.value, StoreError)
    assert store.healthy, "a full list is not a failing disk"
    await store.block("a", "douyin", by="李强", reason="again")  # already there: updated
    assert await store.unblock("b", "douyin")
    await store.block("c", "douyin", by="王芳")
    assert sorted(v.user for v in await store.blocked()) == ["a", "c"]


# -- schedule versions -------------------------------------------------------------------------


async def test_schedule_versions_keep_the_newest_and_their_source(store, monkeypatch):
    monkeypatch.setattr(database_module, "MAX_SCHEDULE_VERSIONS", 3)
    source = "name: 工作日\nsegments:\n  - say: 大家好\n"
    ids = [
        await store.add_schedule_version(f"v{n}", f"{source}# {n}\n", by="王芳", at=T0 + n)
        for n in range(5)
    ]
    assert ids == sorted(ids) and len(set(ids)) == 5
    versions = await store.schedule_versions()
    assert [v.name for v in versions] == ["v4", "v3", "v2"]
    newest = versions[0]
    assert (newest.id, newest.activated_at, newest.by) == (ids[4], T0 + 4, "王芳")
    assert newest.size == len(f"{source}# 4\n".encode())
    assert await store.schedule_versions(limit=1) == versions[:1]
    assert await store.schedule_version(ids[4]) == (newest, f"{source}# 4\n")
    assert await store.schedule_version(ids[0]) is None  # pruned
    assert await store.schedule_version(12345) is None


async def test_a_schedule_source_over_256_kib_is_refused(store):
    at_limit = "#" * MAX_SCHEDULE_SOURCE_BYTES
    await store.add_schedule_version("big", at_limit, by="王芳")
    with pytest.raises(ValueError, match="256 KiB"):
        await store.add_schedule_version("bigger", "汉" + at_limit[3:] + "#", by="王芳")
    assert [v.name for v in await store.schedule_versions()] == ["big"]


# -- pages -------------------------------------------------------------------------------------


async def test_as_run_contains_matches_wildcards_literally(store):
    await aired(store, 1, "参保率达到50%以上")
    await aired(store, 2, "参保率达到50以上")
    await aired(store, 3, "文件名a_b.pdf")
    await aired(store, 4, "文件名axb.pdf", segment="closing")
    await aired(store, 5, r"路径C:\temp")
    texts = [row.text for row in await store.as_run_rows(contains="50%")]
    assert texts == ["参保率达到50%以上"]
    assert [row.text for row in await store.as_run_rows(contains="a_b")] == ["文件名a_b.pdf"]
    assert [row.text for row in await store.as_run_rows(contains="\\t")] == [r"路径C:\temp"]
    assert [row.text for row in await store.as_run_rows(contains="%")] == ["参保率达到50%以上"]
    assert await store.as_run_rows(contains="'; DROP TABLE as_run; --") == []
    assert len(await store.as_run_rows()) == 5
    assert [row.text for row in await store.as_run_rows(segment="closing")] == ["文件名axb.pdf"]
    assert (await store.as_run_rows(segment="closing"))[0] == AsRunRow(
        T0 + 4, 4.0, "IDLE", "closing", None, "文件名axb.pdf"
    )


async def test_as_run_pages_are_newest_first_bounded_and_offset(store):
    for n in range(MAX_PAGE_ROWS + 20):
        await aired(store, n, f"第{n}句")
    newest = await store.as_run_rows(limit=10_000)
    assert len(newest) == MAX_PAGE_ROWS
    assert newest[0].text == f"第{MAX_PAGE_ROWS + 19}句"
    assert [r.text for r in await store.as_run_rows(limit=3, offset=2)] == [
        f"第{MAX_PAGE_ROWS + n}句" for n in (17, 16, 15)
    ]
    window = await store.as_run_rows(since=T0 + 10, until=T0 + 13)
    assert [r.aired_at for r in window] == [T0 + 12, T0 + 11, T0 + 10]
    assert await store.as_run_rows(limit=0) == []
    with pytest.raises(ValueError, match="offset"):
        await store.as_run_rows(offset=-1)
    with pytest.raises(ValueError, match="limit"):
        await store.as_run_rows(limit=-1)


async def test_question_rows_search_the_masked_text_only(store):
    await asked(store, 1, "我电话13812345678，欠薪怎么办？", "我电话[手机号]，欠薪怎么办？")
    await asked(store, 2, "工伤认定要多久？", "工伤认定要多久？", status="answered")
    await asked(store, 3, "100%报销吗", "100%报销吗", status="answered")
    assert await store.question_rows(contains="13812345678") == []
    found = await store.question_rows(contains="[手机号]")
    assert [q.id for q in found] == ["q1"]
    assert found[0].text == found[0].masked_text == "我电话[手机号]，欠薪怎么办？"
    raw = await store.question_rows(contains="[手机号]", raw=True)
    assert raw[0].text == "我电话13812345678，欠薪怎么办？"
    assert [q.id for q in await store.question_rows(contains="0%")] == ["q3"]
    assert [q.id for q in await store.question_rows()] == ["q3", "q2", "q1"]
    assert [q.id for q in await store.question_rows(status="answered")] == ["q3", "q2"]
    assert [q.id for q in await store.question_rows(status="pending")] == ["q1"]
    assert [q.id for q in await store.question_rows(since=T0 + 2, until=T0 + 3)] == ["q2"]
    assert [q.id for q in await store.question_rows(limit=1, offset=1)] == ["q2"]
    with pytest.raises(ValueError, match="done"):
        await store.question_rows(status="done")


async def test_audit_rows_filter_by_command_and_time(store):
    for n, cmd in enumerate(["pause", "resume", "pause", "load_schedule"]):
        await store.record_command(
            at=T0 + n, by="王芳", via="console", cmd=cmd, detail=f"#{n}", result="applied"
        )
    assert [r.detail for r in await store.audit_rows()] == ["#3", "#2", "#1", "#0"]
    assert [r.detail for r in await store.audit_rows(cmd="pause")] == ["#2", "#0"]
    assert [r.detail for r in await store.audit_rows(since=T0 + 1, until=T0 + 3)] == ["#2", "#1"]
    assert [r.detail for r in await store.audit_rows(limit=2, offset=1)] == ["#2", "#1"]
    assert await store.audit_rows(cmd="pause' OR '1'='1") == []


async def test_audit_export_guards_formula_looking_details(store, tmp_path):
    await store.record_command(
        at=T0, by="王芳", via="console", cmd="block", detail='=HYPERLINK("http://x")', result="ok"
    )
    await store.record_command(
        at=T0 + 1, by="@李强", via="mqtt", cmd="pause", detail="普通说明", result="applied"
    )
    out = tmp_path / "audit.csv"
    assert await store.export_csv("audit", out) == 2
    assert out.read_bytes().startswith(b"\xef\xbb\xbfat,by,via,cmd,detail,result")
    first, second = read_csv(out)
    assert first["detail"] == '\'=HYPERLINK("http://x")'
    assert second["by"] == "'@李强" and second["detail"] == "普通说明"
    assert first["at"].startswith("20") and "T" in first["at"]
    assert await store.export_csv("audit", out, since=T0 + 1) == 1
