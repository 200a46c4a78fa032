"""The platform-independent part of a bridge process: sink → screening → spool → broker.

A platform client hands each `ChatEvent` to `Bridge.sink`. Comments that pass screening
become questions (``anchor/<channel>/questions``, QoS 1); other kinds, when
``questions.audience`` is on, audience events (``anchor/<channel>/audience``, QoS 0). Both
go through the on-disk spool, so a broker outage during a burst loses nothing that was
accepted, and a message is accepted once per key (`ChatEvent.key`), across restarts.

The sink queues (bounded: when ``INTAKE_BACKLOG`` events wait for the disk, the client's
next call waits too, which slows its reading rather than losing what it read), one writer
task commits whatever has queued up in one transaction, and the outlet publishes.

Counters (received, questions, audience, dropped by reason, duplicates, spooled, refused
because the spool is full, published, refused by the broker) are logged once a minute,
without any viewer's text or name.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anchor.bridges.chat import MAX_NAME_CHARS, ChatEvent, clip
from anchor.bridges.config import BridgeConfig
from anchor.bridges.outlet import Outlet
from anchor.bridges.screening import Screening
from anchor.bridges.spool import Outgoing, Spool
from anchor.links.payloads import MAX_ID_CHARS, clean_text, encode

log = logging.getLogger(__name__)

INTAKE_BACKLOG = 2_000  # events handed over and not yet on disk
WRITE_BATCH = 500  # events committed in one transaction at most
FLUSH_SECONDS = 3.0  # on shutdown: how long the spool may keep draining to the broker
REPORT_SECONDS = 60.0
ANONYMOUS = "观众"  # the engine refuses a question without a user; some platforms hide names


@dataclass(slots=True)
class BridgeCounters:
    """Since the process started. ``dropped`` is by reason code (see anchor.bridges.screening,
    plus ``audience_off`` and ``closing``)."""

    received: int = 0
    questions: int = 0
    audience: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    spooled: int = 0
    spool_full: int = 0

    def summary(self, *, published: int, refused: int, pending: int) -> dict[str, Any]:
        return {
            "received": self.received,
            "questions": self.questions,
            "audience": self.audience,
            "dropped": dict(sorted(self.dropped.items())),
            "duplicates": self.duplicates,
            "spooled": self.spooled,
            "spool_full": self.spool_full,
            "published": published,
            "refused_by_broker": refused,
            "pending": pending,
        }


def question_payload(event: ChatEvent, now: float) -> dict[str, Any]:
    """The questions-topic message (anchor.links.payloads.parse_question reads it)."""
    return {
        "id": message_id(event),
        "user": _user(event),
        "text": clean_text(event.text),
        "platform": event.platform,
        "ts": event.ts or now,
    }


def audience_payload(event: ChatEvent, now: float) -> dict[str, Any]:
    """The audience-topic message: someone entered, liked, followed or sent a gift."""
    return {
        "id": message_id(event),
        "platform": event.platform,
        "kind": event.kind,
        "user": _user(event),
        "count": event.count,
        "gift": clip(clean_text(event.gift), MAX_NAME_CHARS),
        "ts": event.ts or now,
    }


def message_id(event: ChatEvent) -> str:
    """``event.key``, or a digest of it when it is longer than the engine takes as an id."""
    key = event.key
    if len(key) <= MAX_ID_CHARS:
        return key
    return f"{event.platform[:32]}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _user(event: ChatEvent) -> str:
    return clip(clean_text(event.user), MAX_NAME_CHARS) or ANONYMOUS


class Bridge:
    """One bridge: give `sink` to the platform client and run `run()`.

    ``password`` None reads it from ``config.mqtt.password_env`` when `run` starts.
    ``report_seconds`` is how often the counters are logged."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        password: str | None = None,
        report_seconds: float = REPORT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.counters = BridgeCounters()
        self._password = password
        self._report_seconds = report_seconds
        self._wall_clock = wall_clock
        self._screening = Screening(config.questions, clock=clock)
        self._intake: asyncio.Queue[Outgoing] = asyncio.Queue(INTAKE_BACKLOG)
        self._spool: Spool | None = None
        self._outlet: Outlet | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Messages accepted and not yet acknowledged by the broker (in the queue or spool)."""
        spooled = self._spool.pending if self._spool is not None else 0
        return spooled + self._intake.qsize()

    @property
    def connected(self) -> bool:
        return self._outlet is not None and self._outlet.connected

    async def sink(self, event: ChatEvent) -> None:
        """Where the platform client hands its events (the `Sink` of anchor.bridges.chat)."""
        self.counters.received += 1
        if self._closing:
            self.counters.dropped["closing"] += 1
            return
        now = self._wall_clock()
        if event.kind == "comment":
            reason = self._screening.reason(event)
            if reason is not None:
                self.counters.dropped[reason] += 1
                return
            self.counters.questions += 1
            payload = question_payload(event, now)
            message = Outgoing(self.config.questions_topic, encode(payload), event.key, qos=1)
        elif self.config.questions.audience:
            self.counters.audience += 1
            payload = audience_payload(event, now)
            message = Outgoing(self.config.audience_topic, encode(payload), event.key, qos=0)
        else:
            self.counters.dropped["audience_off"] += 1
            return
        await self._intake.put(message)

    async def run(self) -> None:
        """Spool and publish until cancelled; then flush what can go within FLUSH_SECONDS,
        and close. Raises SpoolError at start when the spool cannot be used."""
        config = self.config
        password = self._password if self._password is not None else config.mqtt_password()
        spool = await Spool.open(config.spool_path, max_bytes=config.spool.max_bytes)
        self._spool = spool
        client_id = config.mqtt.username or f"bridge-{config.name}"
        outlet = Outlet(config.mqtt, spool, password=password, client_id=client_id)
        self._outlet = outlet
        if spool.pending:
            log.info("%d messages from an earlier run wait in the spool", spool.pending)
        writer = asyncio.create_task(self._write(spool, outlet), name="bridge-spool-writer")
        sender = asyncio.create_task(outlet.run(), name="bridge-outlet")
        reporter = asyncio.create_task(self._report(), name="bridge-counters")
        tasks = (writer, sender, reporter)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a part that ends on its own has failed: raise its error
            raise RuntimeError("a bridge task ended")
        finally:
            await self._shut_down(spool, writer, sender, reporter)

    async def _shut_down(self, spool: Spool, *tasks: asyncio.Task[None]) -> None:
        """Accept nothing more, commit what was handed over, let the outlet drain the spool
        for up to FLUSH_SECONDS, then stop everything and close the spool."""
        self._closing = True
        writer, sender, reporter = tasks
        deadline = time.monotonic() + FLUSH_SECONDS
        while time.monotonic() < deadline and not writer.done():
            if self._intake.empty() and (spool.pending == 0 or not self.connected):
                break
            await asyncio.sleep(0.05)
        for task in (reporter, sender, writer):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._log_counters("stopped")
        await spool.aclose()

    async def _write(self, spool: Spool, outlet: Outlet) -> None:
        """Commit queued messages to the spool, as many per transaction as have queued up."""
        while True:
            batch = [await self._intake.get()]
            while len(batch) < WRITE_BATCH and not self._intake.empty():
                batch.append(self._intake.get_nowait())
            outcomes = await spool.put_many(batch)
            for outcome in outcomes:
                if outcome == "spooled":
                    self.counters.spooled += 1
                elif outcome == "duplicate":
                    self.counters.duplicates += 1
                else:
                    self.counters.spool_full += 1
                    if self.counters.spool_full == 1:
                        log.warning(
                            "the spool is full (%g MB); new messages are refused and counted "
                            "until the broker takes what waits",
                            self.config.spool.max_mb,
                        )
            if "spooled" in outcomes:
                outlet.wake()

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self._report_seconds)
            self._log_counters("running")

    def _log_counters(self, state: str) -> None:
        outlet, spool = self._outlet, self._spool
        summary = self.counters.summary(
            published=outlet.published if outlet is not None else 0,
            refused=sum(outlet.refused.values()) if outlet is not None else 0,
            pending=spool.pending if spool is not None else 0,
        )
        log.info("bridge %s %s: %s", self.config.name, state, summary)
