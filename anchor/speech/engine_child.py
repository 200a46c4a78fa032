"""The child's side of a model voice's engine process (see `engine_process`).

A child ignores SIGINT: a Ctrl-C in the terminal reaches the whole process group, and it is
the daemon's to handle (it finishes the sentence on air, then closes its voices, and so this
process). The parent blocks SIGINT while it starts the child, so one that arrives during the
imports waits for `ignore_interrupts` and is then dropped. After its ("ready", ...) message the
child answers one request at a time until it is sent None or its pipe closes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

_IGNORED_SIGNALS = {signal.SIGINT}


def ignore_interrupts() -> None:
    for signum in _IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _IGNORED_SIGNALS)  # what arrived is dropped


def answer_requests(conn: Connection, handle: Callable[..., tuple[Any, ...]]) -> None:
    """Each request (a tuple of arguments) is answered ("ok", *handle(*request)), or
    ("error", "synthesis failed: ...") when `handle` raises; the engine stays up."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            conn.send(("ok", *handle(*request)))
        except Exception as exc:
            conn.send(("error", f"synthesis failed: {exc}"))
