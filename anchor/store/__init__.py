"""The store: one SQLite file (WAL) with the questions, answers, as-run log and show state.

Every call runs on the store's own thread; the event loop never waits on the disk.
`Retention` deletes what is older than the configured retention period, on a timer.
"""

from anchor.store.database import Pruned, Store, StoredQuestion, StoreError
from anchor.store.retention import Retention

__all__ = ["Pruned", "Retention", "Store", "StoreError", "StoredQuestion"]
