"""The store: one SQLite file (WAL) with the questions, answers, as-run log and show state.

Every call runs on the store's own thread; the event loop never waits on the disk.
`Retention` deletes what is older than the configured retention period, on a timer.
"""

from anchor.store.database import (
    MAX_BLOCKED,
    MAX_PAGE_ROWS,
    MAX_SCHEDULE_SOURCE_BYTES,
    MAX_SCHEDULE_VERSIONS,
    AsRunRow,
    AuditRow,
    BlockedListFull,
    BlockedViewer,
    Pruned,
    ScheduleVersion,
    Store,
    StoredQuestion,
    StoreError,
)
from anchor.store.retention import Retention

__all__ = [
    "MAX_BLOCKED",
    "MAX_PAGE_ROWS",
    "MAX_SCHEDULE_SOURCE_BYTES",
    "MAX_SCHEDULE_VERSIONS",
    "AsRunRow",
    "AuditRow",
    "BlockedListFull",
    "BlockedViewer",
    "Pruned",
    "Retention",
    "ScheduleVersion",
    "Store",
    "StoreError",
    "StoredQuestion",
]
