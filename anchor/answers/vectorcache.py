"""Vectors of a knowledge base kept on disk, so a restart does not embed it again.

Embedding a FAQ costs about 10 ms per written question and 45 ms per answer on one core:
seconds for a union's FAQ, a minute for a thousand entries. The vectors depend only on the
texts and the model, so they are filed under a hash of both: an edited entry, a new model
version or another knowledge base gets a new file, and a stale one is never read.

The folder is bounded: after each write the least recently used files go until it fits.
A file that cannot be read (a crash mid-write, a disk error, someone's edit) is deleted and
the vectors are made again: the cache may only ever cost time, never an answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_SUFFIX = ".npz"


def content_key(model: str, kind: str, texts: Sequence[str]) -> str:
    """The file name stem for these texts embedded by ``model`` as ``kind``."""
    digest = hashlib.sha256()
    for part in (model, kind, *texts):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


class VectorCache:
    """Arrays by content key in one folder of at most ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def holds(self, key: str) -> bool:
        """Whether vectors are filed under ``key`` (they may still prove unreadable)."""
        return (self.directory / f"{key}{_SUFFIX}").is_file()

    def get(self, key: str, rows: int, dim: int) -> np.ndarray | None:
        """The stored vectors, or None when absent or unusable (then the file is removed)."""
        path = self.directory / f"{key}{_SUFFIX}"
        try:
            with np.load(path, allow_pickle=False) as stored:
                vectors = np.asarray(stored["vectors"], dtype=np.float32)
        except FileNotFoundError:
            return None
        except Exception as exc:
            log.warning("vector cache file %s is unreadable (%s); embedding again", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        if vectors.shape != (rows, dim) or not np.isfinite(vectors).all():
            log.warning("vector cache file %s does not fit its texts; embedding again", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept longest
        return vectors

    def put(self, key: str, vectors: np.ndarray) -> None:
        """Store ``vectors`` atomically (write, then rename); a failure is only logged."""
        path = self.directory / f"{key}{_SUFFIX}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    np.savez(out, vectors=np.asarray(vectors, dtype=np.float32))
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            log.warning("cannot keep vectors in %s (%s); they are made again next start", path, exc)
            return
        self._trim(keep=path)

    def _trim(self, keep: Path) -> None:
        """Remove the least recently used files until the folder fits in ``max_bytes``."""
        files: list[tuple[float, int, Path]] = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                info = path.stat()
            except OSError:
                continue
            files.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
