"""The store: one SQLite file (WAL) with the questions, answers, as-run log and show state.

Every call runs on the store's own thread; the event loop never waits on the disk.
"""

from anchor.store.database import Store, StoredQuestion, StoreError

__all__ = ["Store", "StoreError", "StoredQuestion"]
