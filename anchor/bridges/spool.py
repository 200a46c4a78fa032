"""The bridge's outgoing messages on disk, until the broker has acknowledged them.

A viewer's question is accepted once it is here, and from then on it is never lost: the spool
is SQLite in WAL mode with ``synchronous=FULL`` (a committed row survives ``kill -9`` and a
power cut), it is read in order (FIFO by sequence number), and a row is deleted only when
the broker's PUBACK for it has come. The same key is accepted once (a ``seen`` table of the
last ``MAX_SEEN`` keys or ``SEEN_DAYS`` days), so a platform that sends a message twice, or a
bridge restarted mid-burst, asks the question once.

Bounded: at ``max_bytes`` of spooled messages new ones are refused and counted, and what is
already in stays; best-effort messages (QoS 0, the audience events) may fill only
``best_effort_share`` of it, so a storm of likes during a broker outage never crowds out
questions. Sizes count payload, topic and key plus a fixed overhead per row, not the file.

All SQLite work runs on one worker thread of the spool's own, so the event loop never waits
for a disk. The database is opened in exclusive locking mode: a second bridge pointed at the
same spool fails at start instead of sending everything twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

ROW_OVERHEAD = 64
MAX_SEEN = 100_000
SEEN_DAYS = 7.0
_SEEN_SLACK = 1_000  # prune the seen table in batches, not on every message
_BUSY_TIMEOUT_MS = 1000
T = TypeVar("T")

Outcome = Literal["spooled", "duplicate", "full"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    key TEXT NOT NULL,
    qos INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
"""


class SpoolError(RuntimeError):
    """The spool cannot be opened (in use by another bridge, unreadable, not a database)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for the broker. ``key`` is the de-duplication key (ChatEvent.key)."""

    topic: str
    payload: bytes
    key: str
    qos: int = 1

    @property
    def size(self) -> int:
        return len(self.payload) + len(self.topic.encode()) + len(self.key.encode()) + ROW_OVERHEAD


@dataclass(frozen=True, slots=True)
class Spooled:
    """A message read back from the spool, with its place in line."""

    seq: int
    topic: str
    payload: bytes
    qos: int


class Spool:
    """Messages waiting for the broker; open with `Spool.open`, end with `aclose`."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        best_effort_share: float = 0.5,
        max_seen: int = MAX_SEEN,
        seen_seconds: float = SEEN_DAYS * 86400,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._best_effort_max = int(max_bytes * best_effort_share)
        self._max_seen = max_seen
        self._seen_seconds = seen_seconds
        self._clock = wall_clock
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="bridge-spool")
        self._db: sqlite3.Connection | None = None
        self.bytes = 0  # bytes of spooled messages (the figure max_bytes limits)
        self.best_effort_bytes = 0
        self.pending = 0  # messages spooled and not yet acknowledged
        self._seen_count = 0

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        max_bytes: int,
        best_effort_share: float = 0.5,
        max_seen: int = MAX_SEEN,
        seen_seconds: float = SEEN_DAYS * 86400,
    ) -> Spool:
        """Open (or create) the spool at ``path``; SpoolError when that is impossible."""
        spool = cls(
            path,
            max_bytes=max_bytes,
            best_effort_share=best_effort_share,
            max_seen=max_seen,
            seen_seconds=seen_seconds,
        )
        try:
            await spool._call(spool._open)
        except BaseException:
            spool._executor.shutdown(wait=False)
            raise
        return spool

    async def put(self, message: Outgoing) -> Outcome:
        """Accept one message (committed to disk when this returns "spooled")."""
        return (await self.put_many([message]))[0]

    async def put_many(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        """Accept several in one transaction (one disk flush); an outcome for each, in order."""
        if not messages:
            return []
        return await self._call(self._put_many, list(messages))

    async def peek(self, limit: int) -> list[Spooled]:
        """The oldest ``limit`` messages, oldest first; they stay until `remove`."""
        return await self._call(self._peek, limit)

    async def remove(self, seqs: Iterable[int]) -> int:
        """Delete messages the broker has acknowledged; how many were deleted."""
        chosen = list(seqs)
        if not chosen:
            return 0
        return await self._call(self._remove, chosen)

    async def aclose(self) -> None:
        """Close the database and stop the worker thread (what was committed stays)."""
        if self._db is not None:
            await self._call(self._close)
        self._executor.shutdown(wait=True)

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    # --- on the worker thread -------------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolError(f"the spool {self.path} cannot use WAL (journal mode {mode})")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, not at the first put
            db.executescript(_SCHEMA)  # commits
            total, best_effort, pending = db.execute(
                "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(CASE WHEN qos = 0 THEN size END), 0),"
                " COUNT(*) FROM outbox"
            ).fetchone()
            self._seen_count = db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc):
                raise SpoolError(
                    f"the spool {self.path} is in use by another bridge process"
                ) from None
            raise SpoolError(f"cannot use the spool {self.path}: {exc}") from None
        except (sqlite3.Error, SpoolError) as exc:
            db.close()
            if isinstance(exc, SpoolError):
                raise
            raise SpoolError(f"cannot use the spool {self.path}: {exc}") from None
        self.bytes, self.best_effort_bytes, self.pending = total, best_effort, pending
        self._db = db

    def _put_many(self, messages: list[Outgoing]) -> list[Outcome]:
        db = self._connection()
        now = self._clock()
        outcomes: list[Outcome] = []
        added = added_best_effort = count = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for message in messages:
                if db.execute("SELECT 1 FROM seen WHERE key = ?", (message.key,)).fetchone():
                    outcomes.append("duplicate")
                    continue
                size = message.size
                if self.bytes + added + size > self.max_bytes or (
                    message.qos == 0
                    and self.best_effort_bytes + added_best_effort + size > self._best_effort_max
                ):
                    outcomes.append("full")
                    continue
                db.execute(
                    "INSERT INTO outbox (topic, payload, key, qos, size) VALUES (?, ?, ?, ?, ?)",
                    (message.topic, message.payload, message.key, message.qos, size),
                )
                db.execute("INSERT INTO seen (key, at) VALUES (?, ?)", (message.key, now))
                added += size
                added_best_effort += size if message.qos == 0 else 0
                count += 1
                outcomes.append("spooled")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.bytes += added
        self.best_effort_bytes += added_best_effort
        self.pending += count
        self._seen_count += count
        if self._seen_count > self._max_seen + _SEEN_SLACK:
            self._prune_seen(now)
        return outcomes

    def _prune_seen(self, now: float) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM seen WHERE at < ?", (now - self._seen_seconds,))
        excess = db.execute("SELECT COUNT(*) FROM seen").fetchone()[0] - self._max_seen
        if excess > 0:
            db.execute(
                "DELETE FROM seen WHERE key IN (SELECT key FROM seen ORDER BY at LIMIT ?)",
                (excess,),
            )
        db.execute("COMMIT")
        self._seen_count = db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]

    def _peek(self, limit: int) -> list[Spooled]:
        rows = self._connection().execute(
            "SELECT seq, topic, payload, qos FROM outbox ORDER BY seq LIMIT ?", (limit,)
        )
        return [Spooled(seq, topic, bytes(payload), qos) for seq, topic, payload, qos in rows]

    def _remove(self, seqs: list[int]) -> int:
        db = self._connection()
        marks = ",".join("?" * len(seqs))
        db.execute("BEGIN IMMEDIATE")
        try:
            total, best_effort, count = db.execute(
                "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(CASE WHEN qos = 0 THEN size END), 0),"
                f" COUNT(*) FROM outbox WHERE seq IN ({marks})",
                seqs,
            ).fetchone()
            db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", seqs)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.bytes -= total
        self.best_effort_bytes -= best_effort
        self.pending -= count
        return int(count)

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError("the spool is closed")
        return self._db
