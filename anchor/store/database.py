"""The channel's record: every accepted question, its answer, and the as-run log.

A question is acknowledged to the broker (MQTT QoS 1) only after `Store.add_question` has
returned, so the store must make the row durable before it returns: SQLite in WAL mode with
``synchronous=FULL``, which syncs the WAL to disk at every commit. ``NORMAL`` would survive
the process being killed but could lose the last commits on a power cut; the machine is an
ordinary office PC and one fsync per question is cheap next to a spoken answer, so FULL.

SQLite calls block, so the connection lives on one thread the store owns; the event loop
only awaits results, and at most `MAX_IN_FLIGHT` calls wait for that thread at once (more
callers wait on the loop, which is the back-pressure). Long jobs (CSV export, pruning) are
cut into chunks so a question arriving meanwhile is stored between two chunks.

What is kept about a viewer: the platform user name and the question, both with personal
data masked by reception before they get here. The ``text`` column holds the original
question only when the channel keeps raw text (``store.keep_raw_text``, for union staff to
follow up on a question the host could not answer); otherwise it holds the masked text too,
and `Store.purge_raw_text` replaces any original text older than ``store.raw_text_days``
(or all of it, when raw text is not kept) by the masked text. Everything that goes out
(answers topic, speech, captions, the CSV export by default) uses ``masked_text`` only.
Deleted and overwritten text is zeroed in the file (``secure_delete``), so a purged or
pruned question is gone from the disk, not only from the table. Nothing is kept for ever:
`Store.prune` deletes as-run rows and finished questions older than the retention period
(`anchor.store.retention` calls it on a timer), so a channel that runs for months keeps a
file of bounded size and viewers' words are not held longer than the union decided. A small
key-value ``state`` table keeps what the engine needs across a restart (the schedule
position). The ``sites`` table holds the union's service sites as last imported from a checked
sites file (`anchor.sites.dataset`); an import replaces them all in one transaction, so the
host never answers from half an old list and half a new one.

For the operator's console the store also keeps the viewers staff have blocked (at most
`MAX_BLOCKED`) and the last `MAX_SCHEDULE_VERSIONS` schedules put on air, with their YAML, so
an earlier one can be looked at or brought back. Its record pages (`Store.as_run_rows`,
`Store.question_rows`, `Store.audit_rows`) are newest first and at most `MAX_PAGE_ROWS` a call;
filters from the console are bound as parameters, never written into the SQL.

Exported CSV is UTF-8 with a byte-order mark, because Excel on Windows otherwise reads the
file as the local code page and shows Chinese as mojibake; times are ISO 8601 in the
machine's local time zone with the offset. Cells that Excel would run as a formula (leading
``=``, ``+``, ``-``, ``@``) are prefixed with ``'``: viewers write that text.

One process should own a database file for writing. A second process (an export from the
command line while the show runs) can open the same file: WAL lets it read while the owner
writes, and writers wait for each other up to `BUSY_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, TextIO, TypeVar

from anchor.messages import Question

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
MAX_IN_FLIGHT = 64
BUSY_TIMEOUT_SECONDS = 5.0
STATUSES = ("pending", "answering", "answered", "fallback", "rejected", "expired", "merged")
# Statuses a question never leaves; only these are pruned. A status added later is kept
# until it is listed here.
FINISHED = ("answered", "fallback", "rejected", "expired", "merged")
DAY_SECONDS = 86400.0

_CHUNK_ROWS = 500
_FINISHED_SQL = ", ".join(f"'{s}'" for s in FINISHED)
# One chunk each. A question merged into one still waiting is kept with it: the desk moves
# it to answering and answered along with the question it joined.
_PRUNE_AS_RUN = """
    DELETE FROM as_run WHERE rowid IN
        (SELECT rowid FROM as_run WHERE aired_at < :cutoff LIMIT :chunk)
"""
_PRUNE_AUDIT = """
    DELETE FROM audit WHERE rowid IN (SELECT rowid FROM audit WHERE at < :cutoff LIMIT :chunk)
"""
# Original question texts older than the cutoff become their masked text, one chunk a call.
_PURGE_RAW_TEXT = """
    UPDATE questions SET text = masked_text WHERE rowid IN (
        SELECT rowid FROM questions
        WHERE received_at < :cutoff AND text IS NOT masked_text LIMIT :chunk
    )
"""
_PRUNE_QUESTIONS = f"""
    DELETE FROM questions WHERE rowid IN (
        SELECT rowid FROM questions AS q
        WHERE status IN ({_FINISHED_SQL}) AND received_at < :cutoff AND updated_at < :cutoff
            AND NOT EXISTS (
                SELECT 1 FROM questions AS joined
                WHERE joined.id = q.merged_into AND joined.status IN ('pending', 'answering')
            )
        LIMIT :chunk
    )
"""
_WAL_LIMIT_BYTES = 64 * 1024 * 1024
REOPEN_EVERY_S = 5.0
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_T = TypeVar("_T")

_MIGRATIONS: dict[int, str] = {
    1: f"""
        CREATE TABLE questions (
            id TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            platform TEXT,
            text TEXT NOT NULL,
            masked_text TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
            reason TEXT,
            sent_at REAL,
            received_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            answer TEXT,
            source TEXT,
            aired_at REAL,
            merged_into TEXT
        );
        CREATE INDEX questions_by_status ON questions (status, received_at);
        CREATE TABLE as_run (
            aired_at REAL NOT NULL,
            stream_time REAL NOT NULL,
            priority TEXT NOT NULL,
            segment TEXT,
            question_id TEXT,
            text TEXT NOT NULL
        );
        CREATE INDEX as_run_by_time ON as_run (aired_at);
    """,
    2: """
        CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
    """,
    3: """
        CREATE TABLE audit (
            at REAL NOT NULL,
            by TEXT NOT NULL,
            via TEXT NOT NULL,
            cmd TEXT NOT NULL,
            detail TEXT NOT NULL,
            result TEXT NOT NULL
        );
        CREATE INDEX audit_by_time ON audit (at);
    """,
    4: """
        CREATE TABLE sites (
            position INTEGER NOT NULL,
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            town TEXT NOT NULL,
            address TEXT NOT NULL,
            lon REAL NOT NULL,
            lat REAL NOT NULL,
            hours TEXT NOT NULL,
            phone TEXT,
            services TEXT NOT NULL,
            sample INTEGER NOT NULL,
            imported_at REAL NOT NULL
        );
    """,
    # IF NOT EXISTS: a file whose user_version was set back by hand still upgrades.
    5: """
        CREATE TABLE IF NOT EXISTS blocked (
            user TEXT NOT NULL,
            platform TEXT NOT NULL DEFAULT '',
            by TEXT NOT NULL,
            at REAL NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (user, platform)
        );
        CREATE INDEX IF NOT EXISTS blocked_by_time ON blocked (at);
        CREATE TABLE IF NOT EXISTS schedule_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            source TEXT NOT NULL,
            activated_at REAL NOT NULL,
            by TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS questions_by_time ON questions (received_at);
    """,
}
_SITE_COLUMNS = "id, name, kind, town, address, lon, lat, hours, phone, services, sample"
MAX_SITES = 5000


class SiteRow(NamedTuple):
    """One service site as stored: plain values; `anchor.sites` turns it into its `Site`."""

    id: str
    name: str
    kind: str
    town: str
    address: str
    lon: float
    lat: float
    hours: str
    phone: str | None
    services: tuple[str, ...]
    sample: bool


_QUESTION_COLUMNS = (
    "id, user, platform, text, masked_text, status, reason, sent_at, received_at, "
    "answer, source, aired_at, merged_into"
)
# The questions export without the original text (what `export_csv` writes unless raw).
_MASKED_QUESTION_COLUMNS = ", ".join(
    name for name in _QUESTION_COLUMNS.split(", ") if name != "text"
)
_AS_RUN_COLUMNS = "aired_at, stream_time, priority, segment, question_id, text"
_AUDIT_COLUMNS = "at, by, via, cmd, detail, result"
_EXPORTS = {
    "questions": (_QUESTION_COLUMNS, "received_at", ("sent_at", "received_at", "aired_at")),
    "as_run": (_AS_RUN_COLUMNS, "aired_at", ("aired_at",)),
    "audit": (_AUDIT_COLUMNS, "at", ("at",)),
}
MAX_PAGE_ROWS = 500
MAX_BLOCKED = 10000
MAX_SCHEDULE_VERSIONS = 50
MAX_SCHEDULE_SOURCE_BYTES = 256 * 1024
_BLOCKED_COLUMNS = "user, platform, by, at, reason"
_SCHEDULE_VERSION_COLUMNS = "id, name, activated_at, by, length(CAST(source AS BLOB))"
# What a console page of questions shows: the masked text in place of the original.
_PAGE_QUESTION_COLUMNS = ", ".join(
    "masked_text" if name == "text" else name for name in _QUESTION_COLUMNS.split(", ")
)


class BlockedViewer(NamedTuple):
    """A viewer staff blocked: the name as the platform gives it (masked), who, when, why."""

    user: str
    platform: str
    by: str
    at: float
    reason: str


class ScheduleVersion(NamedTuple):
    """A schedule as it was put on air; ``size`` is its YAML source in bytes."""

    id: int
    name: str
    activated_at: float
    by: str
    size: int


class AsRunRow(NamedTuple):
    """One aired sentence of the as-run log."""

    aired_at: float
    stream_time: float
    priority: str
    segment: str | None
    question_id: str | None
    text: str


class AuditRow(NamedTuple):
    """One operator command of the audit trail."""

    at: float
    by: str
    via: str
    cmd: str
    detail: str
    result: str


class StoreError(Exception):
    """The database cannot be used; the message names the file and keeps SQLite's words."""


class StoreUnusable(StoreError):
    """The file can never be this engine's database (a folder, another program's, newer)."""


class UnknownQuestion(StoreError, LookupError):
    """An update named a question id that is not stored."""


class BlockedListFull(StoreError):
    """`MAX_BLOCKED` viewers are blocked already; a new one waits until some are unblocked.

    The store itself is fine: this does not mark it as having a problem."""


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one `Store.prune` deleted: as-run rows and finished questions."""

    as_run: int
    questions: int
    audit: int = 0


@dataclass(frozen=True, slots=True)
class StoredQuestion:
    """A question as recorded: ``masked_text`` airs; ``text`` is the original (staff only)
    when the channel keeps raw text, else the masked text as well."""

    id: str
    user: str
    platform: str | None
    text: str
    masked_text: str
    status: str
    reason: str | None
    sent_at: float | None
    received_at: float
    answer: str | None
    source: str | None
    aired_at: float | None
    merged_into: str | None


class Store:
    """One SQLite file, one owned thread, awaited from the event loop.

    Build with ``await Store.open(path)``; finish with ``await store.close()`` (or use
    ``async with``). Calls after close raise StoreError. ``clock`` is the wall clock behind
    ``updated_at`` and the pruning cutoff (tests pass their own).

    A store on a full or failing disk must not take the channel off air. Every failed call
    raises StoreError (so a question is not acknowledged and waits at the broker), and
    `problem` says what is wrong until a write succeeds again; health reports the store as
    degraded meanwhile. `open(..., tolerate_disk_errors=True)` returns a store even when the
    file cannot be opened now; it tries again at the next call (at most every few seconds) and
    carries on by itself once the disk is back. A file that can never work (a folder, another
    program's database, a newer schema) is still refused at once.
    """

    def __init__(
        self,
        path: Path,
        executor: ThreadPoolExecutor,
        db: sqlite3.Connection | None,
        *,
        clock: Callable[[], float] = time.time,
        problem: str | None = None,
    ) -> None:
        self._path = path
        self._executor = executor
        self._db = db
        self._clock = clock
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._closed = False
        self._next_open = 0.0  # monotonic time of the next try to open, while db is None
        self.problem = problem  # what keeps the store from working now, or None

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        tolerate_disk_errors: bool = False,
    ) -> Store:
        """Open (or create) the database, creating its folder and bringing the schema up to
        date. With ``tolerate_disk_errors`` a file that cannot be opened *now* (full disk, I/O
        error) gives a store that keeps trying; see the class docstring."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-sqlite")
        loop = asyncio.get_running_loop()
        try:
            path, db = await loop.run_in_executor(executor, _connect, Path(path))
        except StoreError as exc:
            if tolerate_disk_errors and not isinstance(exc, StoreUnusable):
                log.error("%s; going on without it and trying again", exc)
                store = cls(Path(path), executor, None, clock=clock, problem=str(exc))
                store._next_open = time.monotonic() + REOPEN_EVERY_S
                return store
            executor.shutdown(wait=False)
            raise
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, executor, db, clock=clock)

    @property
    def healthy(self) -> bool:
        return self.problem is None

    @property
    def path(self) -> Path:
        return self._path

    async def add_question(
        self,
        q: Question,
        *,
        masked_text: str,
        status: str,
        reason: str | None = None,
        merged_into: str | None = None,
    ) -> bool:
        """Store a question durably; False if its id is already stored (a redelivery).

        When this returns True the row is committed and synced, so the caller may acknowledge
        the message. A merged question names the question it joined in ``merged_into``.
        """
        _check_status(status)

        def insert(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO questions (id, user, platform, text, masked_text, status, reason,"
                " sent_at, received_at, updated_at, merged_into)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    q.id,
                    q.user,
                    q.platform,
                    q.text,
                    masked_text,
                    status,
                    reason,
                    q.sent_at,
                    q.received_at,
                    self._clock(),
                    merged_into,
                ),
            )
            return cursor.rowcount == 1

        return await self._run(insert)

    async def get(self, question_id: str) -> StoredQuestion | None:
        """One stored question, or None."""

        def select(db: sqlite3.Connection) -> StoredQuestion | None:
            row = db.execute(
                f"SELECT {_QUESTION_COLUMNS} FROM questions WHERE id = ?", (question_id,)
            ).fetchone()
            return None if row is None else StoredQuestion(*row)

        return await self._run(select, writes=False)

    async def pending(self, limit: int) -> list[StoredQuestion]:
        """Questions waiting for an answer, oldest first."""

        def select(db: sqlite3.Connection) -> list[StoredQuestion]:
            rows = db.execute(
                f"SELECT {_QUESTION_COLUMNS} FROM questions WHERE status = 'pending'"
                " ORDER BY received_at, rowid LIMIT ?",
                (max(0, limit),),
            ).fetchall()
            return [StoredQuestion(*row) for row in rows]

        return await self._run(select, writes=False)

    async def set_status(
        self,
        question_id: str,
        status: str,
        reason: str | None = None,
        *,
        merged_into: str | None = None,
    ) -> None:
        """Move a question to ``status``; raises UnknownQuestion if the id is not stored."""
        _check_status(status)

        def update(db: sqlite3.Connection) -> None:
            cursor = db.execute(
                "UPDATE questions SET status = ?, reason = ?,"
                " merged_into = coalesce(?, merged_into), updated_at = ? WHERE id = ?",
                (status, reason, merged_into, self._clock(), question_id),
            )
            self._found(cursor, question_id)

        await self._run(update)

    async def record_answer(
        self, question_id: str, *, answer: str, source: str, aired_at: float
    ) -> None:
        """Record the answer that aired; the status becomes ``fallback`` or ``answered``.

        ``source`` is ``kb``, ``llm`` or ``fallback`` (the polite "staff will follow up"
        answer), so staff can list exactly the questions they still owe a reply.
        """
        status = "fallback" if source == "fallback" else "answered"

        def update(db: sqlite3.Connection) -> None:
            cursor = db.execute(
                "UPDATE questions SET answer = ?, source = ?, aired_at = ?, status = ?,"
                " reason = NULL, updated_at = ? WHERE id = ?",
                (answer, source, aired_at, status, self._clock(), question_id),
            )
            self._found(cursor, question_id)

        await self._run(update)

    async def requeue_interrupted(self) -> int:
        """Put questions left ``answering`` by a crash back to ``pending``; how many.

        The daemon calls this once at start, before it answers anything. It is not done on
        open because a second process (an export) may open the file while the show runs.
        """

        def update(db: sqlite3.Connection) -> int:
            return db.execute(
                "UPDATE questions SET status = 'pending', updated_at = ?"
                " WHERE status = 'answering'",
                (self._clock(),),
            ).rowcount

        return await self._run(update)

    async def record_aired(
        self,
        *,
        text: str,
        priority: str,
        segment: str | None,
        question_id: str | None,
        stream_time: float,
        aired_at: float,
    ) -> None:
        """Append one aired sentence to the as-run log (what went out, when, and why)."""

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO as_run ({_AS_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (aired_at, stream_time, priority, segment, question_id, text),
            )

        await self._run(insert)

    async def get_state(self, key: str) -> str | None:
        """A value the engine keeps across restarts (where the show stood), or None."""

        def select(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

        return await self._run(select, writes=False)

    async def set_state(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` (replacing any earlier one), durable at return."""

        def upsert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, self._clock()),
            )

        await self._run(upsert)

    async def record_command(
        self, *, at: float, by: str, via: str, cmd: str, detail: str, result: str
    ) -> None:
        """One operator command in the audit trail: who, how, what, and what became of it."""

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO audit (at, by, via, cmd, detail, result) VALUES (?, ?, ?, ?, ?, ?)",
                (at, by, via, cmd, detail, result),
            )

        await self._run(insert, what="cannot record the operator command")

    async def block(
        self, user: str, platform: str, *, by: str, reason: str = "", at: float | None = None
    ) -> None:
        """Block a viewer (``user`` as the platform names them, masked by the caller); blocking
        again replaces who, when and why. Raises BlockedListFull at `MAX_BLOCKED` viewers."""
        row = (user, platform, by, self._clock() if at is None else at, reason)

        def upsert(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            try:
                known = db.execute(
                    "SELECT 1 FROM blocked WHERE user = ? AND platform = ?", (user, platform)
                ).fetchone()
                if known is None:
                    (count,) = db.execute("SELECT count(*) FROM blocked").fetchone()
                    if count >= MAX_BLOCKED:
                        db.execute("ROLLBACK")
                        return False
                db.execute(
                    f"INSERT INTO blocked ({_BLOCKED_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (user, platform) DO UPDATE SET by = excluded.by,"
                    " at = excluded.at, reason = excluded.reason",
                    row,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return True

        if not await self._run(upsert, what="cannot block the viewer"):
            raise BlockedListFull(
                f"{self._path}: cannot block {user!r}: {MAX_BLOCKED} viewers are blocked"
                " already, the most the store keeps; unblock some first"
            )

    async def unblock(self, user: str, platform: str) -> bool:
        """Let a blocked viewer in again; False if they were not blocked."""

        def delete(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM blocked WHERE user = ? AND platform = ?", (user, platform)
            )
            return cursor.rowcount == 1

        return await self._run(delete, what="cannot unblock the viewer")

    async def blocked(self) -> list[BlockedViewer]:
        """Every blocked viewer (at most `MAX_BLOCKED`), newest first."""

        def select(db: sqlite3.Connection) -> list[BlockedViewer]:
            rows = db.execute(
                f"SELECT {_BLOCKED_COLUMNS} FROM blocked ORDER BY at DESC, rowid DESC"
            ).fetchall()
            return [BlockedViewer(*row) for row in rows]

        return await self._run(select, writes=False)

    async def add_schedule_version(
        self, name: str, source: str, *, by: str, at: float | None = None
    ) -> int:
        """Keep a schedule put on air with its YAML ``source``; its id.

        Only the newest `MAX_SCHEDULE_VERSIONS` are kept: older ones go in the same
        transaction. A source over `MAX_SCHEDULE_SOURCE_BYTES` is refused (ValueError).
        """
        size = len(source.encode("utf-8"))
        if size > MAX_SCHEDULE_SOURCE_BYTES:
            raise ValueError(
                f"schedule {name!r} is {size} bytes, more than the"
                f" {MAX_SCHEDULE_SOURCE_BYTES // 1024} KiB a schedule version may hold"
            )
        row = (name, source, self._clock() if at is None else at, by)

        def insert(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(
                    "INSERT INTO schedule_versions (name, source, activated_at, by)"
                    " VALUES (?, ?, ?, ?)",
                    row,
                )
                db.execute(
                    "DELETE FROM schedule_versions WHERE id NOT IN"
                    " (SELECT id FROM schedule_versions ORDER BY id DESC LIMIT ?)",
                    (MAX_SCHEDULE_VERSIONS,),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return int(cursor.lastrowid or 0)

        return await self._run(insert, what="cannot keep the schedule version")

    async def schedule_versions(self, limit: int = 20) -> list[ScheduleVersion]:
        """The schedules put on air, newest (last added) first, without their source."""
        limit, _ = _page(limit, 0)

        def select(db: sqlite3.Connection) -> list[ScheduleVersion]:
            rows = db.execute(
                f"SELECT {_SCHEDULE_VERSION_COLUMNS} FROM schedule_versions"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [ScheduleVersion(*row) for row in rows]

        return await self._run(select, writes=False)

    async def schedule_version(self, id: int) -> tuple[ScheduleVersion, str] | None:
        """One kept schedule with its YAML source, or None (never kept, or pruned)."""

        def select(db: sqlite3.Connection) -> tuple[ScheduleVersion, str] | None:
            row = db.execute(
                f"SELECT {_SCHEDULE_VERSION_COLUMNS}, source FROM schedule_versions WHERE id = ?",
                (id,),
            ).fetchone()
            return None if row is None else (ScheduleVersion(*row[:-1]), row[-1])

        return await self._run(select, writes=False)

    async def as_run_rows(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contains: str | None = None,
        segment: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AsRunRow]:
        """A page of the as-run log, newest first: aired in [since, until), text containing
        ``contains`` (a plain substring; ASCII letters match either case), from ``segment``."""
        where = _Where()
        where.between("aired_at", since, until)
        where.contains("text", contains)
        where.equals("segment", segment)
        return [
            AsRunRow(*row)
            for row in await self._page_of(
                f"SELECT {_AS_RUN_COLUMNS} FROM as_run", where, "aired_at", limit, offset
            )
        ]

    async def question_rows(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        contains: str | None = None,
        limit: int = 100,
        offset: int = 0,
        raw: bool = False,
    ) -> list[StoredQuestion]:
        """A page of questions, newest first: received in [since, until), in ``status``, with
        ``contains`` in the masked text (the original is never searched).

        ``text`` holds the masked text too unless ``raw`` asks for the original (staff only,
        where the channel keeps it), as in `export_csv`.
        """
        if status is not None:
            _check_status(status)
        where = _Where()
        where.equals("status", status)
        where.between("received_at", since, until)
        where.contains("masked_text", contains)
        columns = _QUESTION_COLUMNS if raw else _PAGE_QUESTION_COLUMNS
        return [
            StoredQuestion(*row)
            for row in await self._page_of(
                f"SELECT {columns} FROM questions", where, "received_at", limit, offset
            )
        ]

    async def audit_rows(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        cmd: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditRow]:
        """A page of the audit trail, newest first: recorded in [since, until), of ``cmd``."""
        where = _Where()
        where.between("at", since, until)
        where.equals("cmd", cmd)
        return [
            AuditRow(*row)
            for row in await self._page_of(
                f"SELECT {_AUDIT_COLUMNS} FROM audit", where, "at", limit, offset
            )
        ]

    async def _page_of(
        self, select: str, where: _Where, time_column: str, limit: int, offset: int
    ) -> list[Any]:
        """Rows of ``select`` (fixed SQL) matching ``where``, newest first, one bounded page."""
        limit, offset = _page(limit, offset)
        statement = (
            f"{select}{where.sql()} ORDER BY {time_column} DESC, rowid DESC LIMIT ? OFFSET ?"
        )
        parameters = [*where.parameters, limit, offset]

        def query(db: sqlite3.Connection) -> list[Any]:
            return db.execute(statement, parameters).fetchall()

        return await self._run(query, writes=False)

    async def replace_sites(self, sites: Sequence[SiteRow]) -> int:
        """Make ``sites`` the channel's service sites, in this order; how many.

        One transaction: the old list stays whole until the new one is committed, and a
        failure leaves it as it was. More than `MAX_SITES` is refused before anything changes.
        """
        if len(sites) > MAX_SITES:
            raise ValueError(f"{len(sites)} sites, more than the {MAX_SITES} a channel holds")
        rows = [
            (
                position,
                site.id,
                site.name,
                site.kind,
                site.town,
                site.address,
                site.lon,
                site.lat,
                site.hours,
                site.phone,
                json.dumps(list(site.services), ensure_ascii=False),
                int(site.sample),
                self._clock(),
            )
            for position, site in enumerate(sites)
        ]

        def replace(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM sites")
                db.executemany(
                    f"INSERT INTO sites (position, {_SITE_COLUMNS}, imported_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return len(rows)

        return await self._run(replace, what="cannot replace the sites")

    async def sites(self) -> list[SiteRow]:
        """The service sites as last imported, in the file's order (empty before any import)."""

        def select(db: sqlite3.Connection) -> list[SiteRow]:
            found = db.execute(f"SELECT {_SITE_COLUMNS} FROM sites ORDER BY position").fetchall()
            return [_site_of(row) for row in found]

        return await self._run(select, writes=False)

    async def counts(self) -> dict[str, int]:
        """Questions by status, every status present (zero when none)."""

        def select(db: sqlite3.Connection) -> dict[str, int]:
            found = dict(
                db.execute("SELECT status, count(*) FROM questions GROUP BY status").fetchall()
            )
            return {status: found.get(status, 0) for status in STATUSES}

        return await self._run(select, writes=False)

    async def prune(self, older_than_days: float, *, now: float | None = None) -> Pruned:
        """Delete as-run rows, finished questions and audit records older than
        ``older_than_days``.

        An as-run row goes when it aired before the cutoff; a question when its status is
        one of FINISHED and it was both received and last changed before the cutoff (a
        question that waited out a long stop and was answered today stays the full period).
        Pending and answering questions stay whatever their age. Each call on the store
        thread deletes at most `_CHUNK_ROWS` rows in its own transaction, so the thread is
        never held for long and a question arriving meanwhile is stored between two chunks.
        """
        if older_than_days < 0:
            raise ValueError(f"older_than_days must not be negative, got {older_than_days}")
        cutoff = (self._clock() if now is None else now) - older_than_days * DAY_SECONDS
        as_run = await self._delete_in_chunks(_PRUNE_AS_RUN, cutoff)
        questions = await self._delete_in_chunks(_PRUNE_QUESTIONS, cutoff)
        audit = await self._delete_in_chunks(_PRUNE_AUDIT, cutoff)
        return Pruned(as_run=as_run, questions=questions, audit=audit)

    async def purge_raw_text(self, older_than_days: float, *, now: float | None = None) -> int:
        """Replace the original text of questions received more than ``older_than_days`` ago
        by their masked text (0 days: every question); how many were replaced.

        Works in chunks like `prune`. Questions still waiting are purged too: they are
        answered from the masked text anyway.
        """
        if older_than_days < 0:
            raise ValueError(f"older_than_days must not be negative, got {older_than_days}")
        cutoff = (self._clock() if now is None else now) - older_than_days * DAY_SECONDS
        return await self._delete_in_chunks(_PURGE_RAW_TEXT, cutoff)

    async def _delete_in_chunks(self, statement: str, cutoff: float) -> int:
        """Run a ``:cutoff``/``:chunk`` DELETE (or the raw-text purge's UPDATE) until it
        finds nothing more; rows changed."""
        parameters = {"cutoff": cutoff, "chunk": _CHUNK_ROWS}

        def delete_chunk(db: sqlite3.Connection) -> int:
            return db.execute(statement, parameters).rowcount

        total = 0
        while (deleted := await self._run(delete_chunk, what="cannot prune")) > 0:
            total += deleted
        return total

    async def export_csv(
        self,
        table: Literal["questions", "as_run", "audit"],
        out: Path | str | TextIO,
        *,
        since: float | None = None,
        raw: bool = False,
    ) -> int:
        """Write ``table`` as CSV (header row, UTF-8 with BOM, ISO times); rows written.

        ``out`` is a file path (created or replaced) or an open text stream; a stream gets
        the BOM as its first character, so open it with plain ``utf-8``. ``since`` keeps
        rows received (questions), aired (as-run) or recorded (audit) at or after that time.
        Questions are written with their masked text only; ``raw`` adds the ``text`` column,
        the original where the channel keeps raw text. Audit details are staff's and viewers'
        words alike, so they get the same formula guard as every other cell.
        """
        if table not in _EXPORTS:
            raise ValueError(f"unknown table {table!r}: use questions, as_run or audit")
        columns, time_column, time_columns = _EXPORTS[table]
        if table == "questions" and not raw:
            columns = _MASKED_QUESTION_COLUMNS
        names = [name.strip() for name in columns.split(",")]
        time_indexes = {names.index(name) for name in time_columns}
        lower = -float("inf") if since is None else since

        def write(db: sqlite3.Connection, after: int | None) -> tuple[int, int]:
            """Write the header (``after`` None) or the next chunk of rows after that rowid."""
            with _csv_sink(out, fresh=after is None) as stream:
                writer = csv.writer(stream)
                if after is None:
                    writer.writerow(names)
                    return 0, 0
                rows = db.execute(
                    f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? AND {time_column} >= ?"
                    " ORDER BY rowid LIMIT ?",
                    (after, lower, _CHUNK_ROWS),
                ).fetchall()
                writer.writerows(_csv_row(row[1:], time_indexes) for row in rows)
                return len(rows), rows[-1][0] if rows else after

        what = "cannot write the CSV export"
        written, after = await self._run(
            functools.partial(write, after=None), what=what, writes=False
        )
        count = _CHUNK_ROWS
        while count == _CHUNK_ROWS:
            count, after = await self._run(
                functools.partial(write, after=after), what=what, writes=False
            )
            written += count
        return written

    async def close(self) -> None:
        """Finish the calls already made, then close the database and stop the thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            if self._db is not None:
                await loop.run_in_executor(self._executor, _disconnect, self._db)
        finally:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(
        self, job: Callable[[sqlite3.Connection], _T], *, what: str = "", writes: bool = True
    ) -> _T:
        """Run ``job`` on the store thread; SQLite and file errors become StoreError.

        A failure marks the store as having a problem; only a successful write clears it (a
        full disk still answers reads)."""
        if self._closed:
            raise StoreError(f"{self._path}: the store is closed")
        loop = asyncio.get_running_loop()
        async with self._slots:
            try:
                result = await loop.run_in_executor(self._executor, self._guarded, job, what)
            except StoreError as exc:
                if self.problem is None:
                    log.error("the store failed, the show goes on: %s", exc)
                self.problem = str(exc)
                raise
        if writes and self.problem is not None:
            log.info("%s: the store works again", self._path)
            self.problem = None
        return result

    def _guarded(self, job: Callable[[sqlite3.Connection], _T], what: str) -> _T:
        if self._db is None:
            if time.monotonic() < self._next_open:
                raise StoreError(self.problem or f"{self._path}: not open")
            self._next_open = time.monotonic() + REOPEN_EVERY_S
            self._path, self._db = _connect(self._path)
            log.info("%s: opened", self._path)
        with _explained(self._path, what):
            return job(self._db)

    def _found(self, cursor: sqlite3.Cursor, question_id: str) -> None:
        if cursor.rowcount == 0:
            raise UnknownQuestion(f"{self._path}: no question with id {question_id!r}")


def _site_of(row: tuple[object, ...]) -> SiteRow:
    id_, name, kind, town, address, lon, lat, hours, phone, services, sample = row
    return SiteRow(
        id=str(id_),
        name=str(name),
        kind=str(kind),
        town=str(town),
        address=str(address),
        lon=float(lon),  # type: ignore[arg-type]
        lat=float(lat),  # type: ignore[arg-type]
        hours=str(hours),
        phone=None if phone is None else str(phone),
        services=tuple(json.loads(str(services))),
        sample=bool(sample),
    )


class _Where:
    """The WHERE clause of a console page: column names come from the code, values only ever
    travel as bound parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.parameters: list[object] = []

    def between(self, column: str, since: float | None, until: float | None) -> None:
        if since is not None:
            self._add(f"{column} >= ?", since)
        if until is not None:
            self._add(f"{column} < ?", until)

    def equals(self, column: str, value: str | None) -> None:
        if value is not None:
            self._add(f"{column} = ?", value)

    def contains(self, column: str, text: str | None) -> None:
        """A substring match: LIKE's own wildcards in ``text`` are escaped, so ``50%`` and
        ``a_b`` match only themselves."""
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            self._add(f"{column} LIKE ? ESCAPE '\\'", f"%{escaped}%")

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""

    def _add(self, condition: str, value: object) -> None:
        self.conditions.append(condition)
        self.parameters.append(value)


def _page(limit: int, offset: int) -> tuple[int, int]:
    """``limit`` capped at `MAX_PAGE_ROWS`; a negative limit or offset is refused (SQLite
    would read a negative limit as no limit at all)."""
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must not be negative, got {limit} and {offset}")
    return min(limit, MAX_PAGE_ROWS), offset


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown question status {status!r}: use one of {', '.join(STATUSES)}")


@contextmanager
def _explained(path: Path, what: str = "") -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {what or 'database error'}: {exc}") from exc
    except OSError as exc:
        culprit = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise StoreError(f"{path}: {what or 'file error'}: {exc.strerror or exc}{culprit}") from exc


def _connect(path: Path) -> tuple[Path, sqlite3.Connection]:
    """Open on the store thread: folder, connection, durability settings, schema."""
    path = path.expanduser()
    with _explained(path, "cannot create the folder for it"):
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise StoreUnusable(f"{path}: is a folder, not a database file")
    with _explained(path, "cannot open the database"):
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        with _explained(path, "cannot use it as the anchor database"):
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot use write-ahead logging (journal mode {mode})")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA secure_delete = ON")  # purged and pruned text leaves the disk
            db.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
            _migrate(db, path)
    except BaseException:
        db.close()
        raise
    return path, db


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION in one write transaction (two openers: one wins)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreUnusable(
                f"{path}: written by a newer anchor (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade anchor or use another file"
            )
        if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreUnusable(f"{path}: is an SQLite database of another program, not anchor's")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _disconnect(db: sqlite3.Connection) -> None:
    with suppress(sqlite3.Error):
        db.execute("PRAGMA optimize")
    db.close()


@contextmanager
def _csv_sink(out: Path | str | TextIO, *, fresh: bool) -> Iterator[TextIO]:
    """The export target for one chunk: a file is reopened per chunk, so no handle outlives it.

    The first chunk creates the file with a BOM (``utf-8-sig``) and later chunks append plain
    UTF-8; a caller's stream is written as is, the BOM as its first character.
    """
    if not isinstance(out, Path | str):
        if fresh:
            out.write("\ufeff")
        yield out
        out.flush()
        return
    mode: Literal["w", "a"] = "w" if fresh else "a"
    encoding = "utf-8-sig" if fresh else "utf-8"
    try:
        with Path(out).open(mode, encoding=encoding, newline="") as stream:
            yield stream
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the CSV export: {exc.strerror or exc}") from exc


def _csv_row(values: tuple[object, ...], time_indexes: set[int]) -> list[object]:
    row: list[object] = []
    for index, value in enumerate(values):
        if value is None:
            row.append("")
        elif index in time_indexes and isinstance(value, int | float):
            row.append(_iso(value))
        elif isinstance(value, str) and value.startswith(_FORMULA_STARTS):
            row.append("'" + value)
        else:
            row.append(value)
    return row


def _iso(timestamp: float) -> str | float:
    """Local time with its offset, e.g. 2026-05-09T15:04:05.123+08:00 (unambiguous, sortable)."""
    try:
        moment = datetime.fromtimestamp(timestamp, tz=UTC).astimezone()
    except (OverflowError, OSError, ValueError):
        return timestamp
    return moment.isoformat(timespec="milliseconds")
