"""The faults a soak injects, each at a set stream time, each with its own recovery check.

A fault breaks one thing the engine depends on (OBS, the broker, the TTS server, the LLM, the
recording disk, the operator's schedule), then the soak waits for the engine to show, by
itself, that it is whole again. Recovery is judged from what can be seen: OBS's own answers,
the broker, the answers and events the engine publishes, the store, what the stand-in servers
were asked, and the voice chain's health as the operator's status shows it. A fault whose
prerequisite is missing is reported as "not run" with the reason, never faked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchor.soak.context import SoakContext, present

log = logging.getLogger(__name__)

RECOVERY_TIMEOUT_S = 45.0  # wall time (about 15 min of stream at full speed)
POLL_S = 0.25
BROKEN_SCHEDULE = "name: broken on purpose\nsegments:\n  - id: empty\n    points: []\n"


@dataclass(slots=True)
class FaultResult:
    name: str
    what: str
    status: str = "pending"  # "recovered", "not recovered", "not run"
    reason: str = ""
    injected_at_s: float | None = None  # stream time
    recovered_at_s: float | None = None
    recovery_wall_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def recovery_stream_s(self) -> float | None:
        if self.injected_at_s is None or self.recovered_at_s is None:
            return None
        return self.recovered_at_s - self.injected_at_s


@dataclass(slots=True)
class Fault:
    """`inject` breaks it (and repairs what an operator would repair); `recovered` is polled
    until the engine shows it is whole again. `unavailable` says why it cannot run, if so."""

    name: str
    what: str
    inject: Callable[[SoakContext, FaultResult], Awaitable[None]]
    recovered: Callable[[SoakContext, FaultResult], Awaitable[bool]]
    unavailable: Callable[[SoakContext], str | None] = lambda ctx: None


async def run_fault(fault: Fault, ctx: SoakContext, result: FaultResult) -> FaultResult:
    """Inject `fault` and judge the recovery into `result` (filled in as it goes, so a run
    that ends mid-fault still reports what was seen)."""
    reason = fault.unavailable(ctx)
    if reason:
        result.status, result.reason = "not run", reason
        log.warning("fault %s not run: %s", fault.name, reason)
        return result
    result.injected_at_s = ctx.stream_s()
    started = time.monotonic()
    log.warning("fault %s injected at stream %.0f s", fault.name, result.injected_at_s)
    await fault.inject(ctx, result)
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline and not ctx.finished():
        if await fault.recovered(ctx, result):
            result.status = "recovered"
            result.recovered_at_s = ctx.stream_s()
            result.recovery_wall_s = time.monotonic() - started
            log.warning("fault %s: recovered after %.1f s", fault.name, result.recovery_wall_s)
            return result
        await asyncio.sleep(POLL_S)
    result.status = "not recovered"
    result.reason = result.reason or f"no recovery within {RECOVERY_TIMEOUT_S:g} s of wall time"
    return result


# --- OBS killed and restarted ----------------------------------------------------------------


def _no_obs(ctx: SoakContext) -> str | None:
    return ctx.obs_problem if ctx.obs is None else None


async def _kill_obs(ctx: SoakContext, result: FaultResult) -> None:
    obs = present(ctx.obs, "OBS")
    await asyncio.to_thread(obs.kill)
    await ctx.wait_until(lambda: not ctx.channel.gauges().get("obs_connected"), 30)
    result.detail["engine_saw_obs_gone"] = not ctx.channel.gauges().get("obs_connected")
    await asyncio.to_thread(obs.start)


async def _obs_back(ctx: SoakContext, result: FaultResult) -> bool:
    if not ctx.channel.gauges().get("obs_connected"):
        return False
    scenes = await asyncio.to_thread(present(ctx.obs, "OBS").request, "GetSceneList")
    names = {scene["sceneName"] for scene in scenes.get("scenes", [])}
    rebuilt = ctx.config.obs.scene in names
    result.detail["scene_rebuilt"] = rebuilt
    return rebuilt


# --- broker killed and restarted -------------------------------------------------------------


async def _kill_broker(ctx: SoakContext, result: FaultResult) -> None:
    await asyncio.to_thread(ctx.broker.kill)
    await ctx.wait_until(lambda: not ctx.channel.gauges().get("mqtt_connected"), 30)
    result.detail["engine_saw_broker_gone"] = not ctx.channel.gauges().get("mqtt_connected")
    await asyncio.sleep(2.0)
    await asyncio.to_thread(ctx.broker.start)
    result.detail["probe_question"] = await ctx.audience.ask_probe("broker")


async def _broker_back(ctx: SoakContext, result: FaultResult) -> bool:
    probe = result.detail.get("probe_question")
    if probe is None:  # the broker was back but the probe could not be sent yet: send again
        result.detail["probe_question"] = await ctx.audience.ask_probe("broker")
        return False
    connected = bool(ctx.channel.gauges().get("mqtt_connected"))
    return connected and probe in await ctx.stored_ids()


# --- the voice backend failing -----------------------------------------------------------------

# Questions nobody asked before. With the synthesis cache on (as in production) a line aired
# before comes from disk whatever the TTS server does, so a server outage meets new text: a
# viewer's question read out. Each of these makes at least one sentence no cache holds.
VOICE_FAULT_QUESTIONS = (
    "夜班的加班费应该怎么算？",
    "试用期被辞退有没有经济补偿？",
    "高温津贴每个月能拿多少？",
    "Can my employer cut my pay while I am on sick leave?",
    "产假期间的工资由谁来发？",
    "年休假没休完单位要补钱吗？",
    "派遣工和正式工同工同酬吗？",
    "Who pays for my training if I quit early?",
)
QUESTIONS_WHILE_FAILING = 2


def _no_voice_chain(ctx: SoakContext) -> str | None:
    if ctx.tts is None:
        return "the TTS stand-in is not running"
    chain = ctx.channel.voice
    if chain is None or len(chain.health) < 2:
        return "the channel's voice has no fallback to speak while its TTS server fails"
    return None


async def _fail_voice(ctx: SoakContext, result: FaultResult) -> None:
    """The TTS server answers 500 while viewers ask new questions; then it is repaired.

    The first question is asked at once; the next one after the chain's retry time, so its
    sentence probes the still-failing server. Every question must still be read out."""
    chain = present(ctx.channel.voice, "the voice chain")
    tts, detail = present(ctx.tts, "the TTS stand-in"), result.detail
    primary = chain.health[0]
    before = (chain.fallbacks, primary.failures, tts.refused, ctx.audience.spoken)
    underruns = ctx.channel.gauges().get("underrun_frames", 0)
    detail["voice_chain"] = chain.name
    tts.failing = True
    asked: list[str] = []
    for index, text in enumerate(VOICE_FAULT_QUESTIONS[:QUESTIONS_WHILE_FAILING]):
        if index:
            await ctx.wait_until(lambda: time.monotonic() >= primary.retry_at, 30)
        question_id = await ctx.audience.ask_probe(f"voice-{index}", text)
        if question_id is not None:
            asked.append(question_id)
            await ctx.wait_aired(question_id, 60)
    detail["questions_while_failing"] = len(asked)
    detail["read_out_while_failing"] = sum(q in ctx.audience.aired_questions for q in asked)
    detail["server_refusals"] = tts.refused - before[2]
    detail["primary_failures"] = primary.failures - before[1]
    detail["fallback_sentences"] = chain.fallbacks - before[0]
    detail["lines_aired_while_failing"] = ctx.audience.spoken - before[3]
    detail["underrun_frames_while_failing"] = (
        ctx.channel.gauges().get("underrun_frames", 0) - underruns
    )
    detail["primary_state_at_repair"] = primary.state
    tts.failing = False
    detail["repaired_at_s"] = ctx.stream_s()
    detail["mark"] = {
        "successes": primary.successes,
        "served": tts.served,
        "wall": time.monotonic(),
        "first_question": len(asked),
        "next_question": len(asked),
    }


async def _voice_back(ctx: SoakContext, result: FaultResult) -> bool:
    """The chain speaks through the repaired server again: the http voice is up and has
    spoken sentences the server really answered since the repair. Whenever the chain is due
    to probe the server, a new question is asked (one at a time), since a line the cache
    holds never reaches the server."""
    detail, tts = result.detail, present(ctx.tts, "the TTS stand-in")
    unseen = _outage_unseen(detail)
    if unseen:
        result.reason = unseen
        return False
    primary = present(ctx.channel.voice, "the voice chain").health[0]
    mark = detail["mark"]
    served = tts.served - mark["served"]
    if primary.up and primary.successes > mark["successes"] and served > 0:
        detail["probe_back_wall_s"] = round(time.monotonic() - mark["wall"], 2)
        detail["probe_back_stream_s"] = round(ctx.stream_s() - detail["repaired_at_s"], 1)
        detail["server_answers_since_repair"] = served
        detail["questions_after_repair"] = mark["next_question"] - mark["first_question"]
        return True
    last = mark.get("last_question")
    probe_due = primary.up or time.monotonic() >= primary.retry_at
    if probe_due and (last is None or last in ctx.audience.aired_questions):
        index = mark["next_question"]
        text = VOICE_FAULT_QUESTIONS[index % len(VOICE_FAULT_QUESTIONS)]
        mark["last_question"] = await ctx.audience.ask_probe(f"voice-{index}", text)
        mark["next_question"] = index + 1
    return False


def _outage_unseen(detail: dict[str, Any]) -> str | None:
    """Why the failing server did not show as a degraded but uninterrupted show, or None."""
    if not detail["questions_while_failing"]:
        return "no question could be asked while the TTS server failed"
    if detail["read_out_while_failing"] < detail["questions_while_failing"]:
        return "a question asked while the TTS server failed was not read out"
    if not detail["server_refusals"] or not detail["primary_failures"]:
        return "no sentence reached the failing TTS server"
    if not detail["fallback_sentences"]:
        return "no sentence was spoken by the fallback voice"
    return None


# --- the LLM endpoint hanging ------------------------------------------------------------------


def _no_llm(ctx: SoakContext) -> str | None:
    return None if ctx.llm is not None else "the LLM stand-in is not running"


async def _hang_llm(ctx: SoakContext, result: FaultResult) -> None:
    llm = present(ctx.llm, "the LLM stand-in")
    llm.hanging = True
    mark = len(ctx.audience.answers)
    probe = await ctx.audience.ask_probe("llm", text="工会会员有哪些权益？")
    result.detail["probe_question"] = probe
    # While it hangs, the probe must still be answered on air, from the knowledge base.
    answered = probe is not None and await ctx.wait_until(
        lambda: ctx.audience.answer_for(probe) is not None, 90
    )
    during = [a["source"] for a in ctx.audience.answers[mark:]]
    result.detail["sources_while_hanging"] = sorted(set(during))
    result.detail["probe_answered_while_hanging"] = answered
    llm.hanging = False
    result.detail["mark"] = len(ctx.audience.answers)


async def _llm_back(ctx: SoakContext, result: FaultResult) -> bool:
    if not result.detail.get("probe_answered_while_hanging"):
        result.reason = "the question asked while the LLM hung was not answered"
        return False
    later = ctx.audience.answers[result.detail["mark"] :]
    if not later and not result.detail.get("asked_after"):
        result.detail["asked_after"] = await ctx.audience.ask_probe("llm-after")
    return any(answer["source"] == "llm" for answer in later)


# --- the recordings disk filling up ------------------------------------------------------------


def _no_small_disk(ctx: SoakContext) -> str | None:
    if ctx.obs is None:
        return ctx.obs_problem
    return ctx.recordings_problem


async def _fill_disk(ctx: SoakContext, result: FaultResult) -> None:
    record_dir = Path(present(ctx.obs, "OBS").record_dir)
    await ctx.wait_until(lambda: _recording(ctx), 10)
    result.detail["recording_before"] = _recording(ctx)
    filler = record_dir / "filler.bin"
    await asyncio.to_thread(_fill, filler)
    stopped = await ctx.wait_until(lambda: not _recording(ctx), 20)
    result.detail["obs_stopped_recording_when_full"] = stopped
    await asyncio.to_thread(_make_room, record_dir)


async def _recording_again(ctx: SoakContext, result: FaultResult) -> bool:
    return bool(ctx.channel.gauges().get("obs_connected")) and _recording(ctx)


def _recording(ctx: SoakContext) -> bool:
    with contextlib.suppress(Exception):
        return bool(present(ctx.obs, "OBS").request("GetRecordStatus").get("outputActive"))
    return False


def _make_room(record_dir: Path) -> None:
    """What the operator does: delete the filler and the old recordings."""
    for old in (*record_dir.glob("*.mkv"), record_dir / "filler.bin"):
        old.unlink(missing_ok=True)


def _fill(path: Path) -> None:
    """Write until the file system refuses (ENOSPC)."""
    block = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), path.open("wb") as out:
        while True:
            out.write(block)
            out.flush()
            os.fsync(out.fileno())


def mount_tmpfs(where: Path, size_mb: int) -> str | None:
    """Mount a small tmpfs for OBS's recordings; the reason it cannot, or None."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs for recordings needs root"
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "anchor-soak", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"mount tmpfs failed: {done.stderr.strip() or done.returncode}"
    return None


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


# --- a broken schedule loaded by the operator --------------------------------------------------


async def _load_broken_schedule(ctx: SoakContext, result: FaultResult) -> None:
    result.detail["mark"] = ctx.audience.spoken
    result.detail["rejections_before"] = len(ctx.audience.schedule_rejections)
    payload = json.dumps({"cmd": "load_schedule", "yaml": BROKEN_SCHEDULE})
    result.detail["sent"] = await ctx.audience.control(payload)


async def _old_schedule_airs(ctx: SoakContext, result: FaultResult) -> bool:
    rejections = ctx.audience.schedule_rejections[result.detail["rejections_before"] :]
    if not rejections:
        return False
    result.detail["errors"] = rejections[0][:3]
    # Lines keep airing after the refusal, from the schedule that was on air.
    return ctx.audience.spoken > result.detail["mark"] + 2 and ctx.audience.last_segment in (
        ctx.segment_ids
    )


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("obs_killed", "OBS killed (SIGKILL) and restarted", _kill_obs, _obs_back, _no_obs),
        Fault("broker_killed", "broker killed (SIGKILL) and restarted", _kill_broker, _broker_back),
        Fault(
            "voice_failing",
            "the voice backend (a local TTS server) answering HTTP 500 for a while",
            _fail_voice,
            _voice_back,
            _no_voice_chain,
        ),
        Fault(
            "llm_hanging",
            "the LLM endpoint hanging (accepts, never answers)",
            _hang_llm,
            _llm_back,
            _no_llm,
        ),
        Fault(
            "recordings_disk_full",
            "the disk for OBS's recordings filling up",
            _fill_disk,
            _recording_again,
            _no_small_disk,
        ),
        Fault(
            "broken_schedule",
            "a broken schedule loaded over the control topic",
            _load_broken_schedule,
            _old_schedule_airs,
        ),
    )
}
