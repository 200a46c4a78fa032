"""The soak: the whole engine, in-process and in fast mode, for many hours of stream time.

Real peers around it: a mosquitto broker of its own, a loopback LLM stand-in, a loopback TTS
server that the channel's voice speaks through (with the offline voice as its fallback), and
OBS under Xvfb when the faults need it. While the channel airs, viewers ask questions, faults
are injected at set stream times, and the process is sampled; afterwards the stream file is
analysed packet by packet, the store is checked for lost questions, and the report is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anchor.config import DEFAULT_WORDLISTS, Config, load_config
from anchor.daemon import Channel, RunOptions
from anchor.harness.mosquitto import Broker
from anchor.harness.obs_studio import ObsHarnessError, ObsStudio
from anchor.harness.standins import OpenAiStub, Reply, TtsStandIn
from anchor.media.output import OutputTarget
from anchor.show.schedule import load_schedule
from anchor.soak.audience import Audience
from anchor.soak.context import SoakContext, stored_questions
from anchor.soak.faults import FAULTS, FaultResult, mount_tmpfs, run_fault, unmount
from anchor.soak.sampling import Sampler
from anchor.soak.stream import analyse

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
CHANNEL = "soak"
OBS_PASSWORD_ENV = "ANCHOR_SOAK_OBS_PASSWORD"
RECORDINGS_TMPFS_MB = 160  # OBS refuses to record with less than about 50 MB free
FINAL_STATES = {"answered", "fallback", "merged", "expired", "rejected"}
# Where in the run each fault happens, as a fraction of its stream time.
FAULT_AT = {
    "obs_killed": 0.15,
    "broker_killed": 0.30,
    "recordings_disk_full": 0.40,
    "voice_failing": 0.45,
    "llm_hanging": 0.55,
    "broken_schedule": 0.70,
}
LLM_ANSWER = ("工会一直在您身边。", "具体情况可以拨打12351职工服务热线咨询。")
VOICE = "union-tts"  # the channel's voice profile: the TTS stand-in, falling back to offline
# Wall seconds before a failed voice is probed again: short, so a probe-back falls inside the
# voice fault's window (stream time runs about 30 times faster than the wall clock).
VOICE_RETRY_S = 2.0
PROGRESS_EVERY_S = 60.0  # wall time between progress lines


@dataclass(frozen=True, slots=True)
class SoakPlan:
    hours: float
    width: int = 256
    height: int = 144
    start_at_s: float = 0.0
    faults: str = "default"  # "default": all of FAULTS; "none"
    report_dir: Path | None = None
    keep_stream: bool = False
    sample_every_s: float = 2.0  # wall time
    question_every_s: float = 180.0  # stream time
    command: str = ""

    @property
    def duration_s(self) -> float:
        return self.hours * 3600


async def run_soak(plan: SoakPlan, workdir: Path | None = None) -> dict[str, Any]:
    """Run the plan; the report as a dict (also written to plan.report_dir when given)."""
    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="anchor-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stream_file = workdir / "soak.ts"
    broker = Broker(workdir / "mosquitto")
    broker.start()
    obs: ObsStudio | None = None
    obs_problem, recordings_problem = "", None
    fault_names = list(FAULTS) if plan.faults == "default" else []
    try:
        if {"obs_killed", "recordings_disk_full"} & set(fault_names):
            obs, obs_problem, recordings_problem = await _start_obs(workdir / "obs", plan)
        # The model rewords the entry it is given, as a grounded model does (the answerer's
        # guard would hold back anything else); LLM_ANSWER when the prompt has no entry.
        async with OpenAiStub(Reply(deltas=LLM_ANSWER, grounded=True)) as llm, TtsStandIn() as tts:
            config = _write_config(workdir, plan, broker, llm.base_url, tts.url, obs, stream_file)
            report = await _air(
                plan, config, broker, llm, tts, obs, stream_file, fault_names, workdir
            )
            if obs is None and obs_problem:
                report["obs_problem"] = obs_problem
            if recordings_problem:
                report["recordings_problem"] = recordings_problem
    finally:
        if obs is not None:
            await asyncio.to_thread(obs.close)
            unmount(obs.record_dir)
        broker.kill()
    report["stream"] = (await asyncio.to_thread(analyse, stream_file)).to_json()
    if not plan.keep_stream:
        stream_file.unlink(missing_ok=True)
    else:
        report["stream_file"] = str(stream_file)
    if plan.report_dir is not None:
        from anchor.soak.report import write_report

        write_report(report, Path(plan.report_dir))
    if own_workdir and not plan.keep_stream:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


async def _air(
    plan: SoakPlan,
    config: Config,
    broker: Broker,
    llm: OpenAiStub,
    tts: TtsStandIn,
    obs: ObsStudio | None,
    stream_file: Path,
    fault_names: list[str],
    workdir: Path,
) -> dict[str, Any]:
    schedule = load_schedule(config.schedule)
    options = RunOptions(
        output=OutputTarget.parse(str(stream_file)),
        fast=True,
        duration_s=plan.duration_s,
        start_time=datetime.now(UTC) - timedelta(seconds=plan.start_at_s),
        start_at_s=plan.start_at_s,
    )
    channel = Channel(config, schedule, options)
    audience = Audience(
        broker.host, broker.port, CHANNEL, lambda: channel.gauges().get("stream_s", 0.0)
    )
    ctx = SoakContext(
        channel=channel,
        config=config,
        broker=broker,
        audience=audience,
        store_path=config.store.path,
        segment_ids={segment.id for segment in schedule.segments},
        llm=llm,
        tts=tts,
        obs=obs,
        obs_problem="OBS is not running" if obs is None else "",
    )
    sampler = Sampler(channel, config.store.path, warmup_s=_warmup(plan) + plan.start_at_s)
    end_s = plan.start_at_s + plan.duration_s
    started = time.monotonic()
    air = asyncio.create_task(channel.run(), name="soak-channel")
    fault_results: list[FaultResult] = []
    helpers = [
        asyncio.create_task(audience.listen(), name="soak-listener"),
        asyncio.create_task(sampler.run(plan.sample_every_s), name="soak-sampler"),
        asyncio.create_task(_progress(sampler, plan, fault_results), name="soak-progress"),
        asyncio.create_task(
            audience.trickle(plan.question_every_s, end_s - 240), name="soak-questions"
        ),
    ]
    faults = asyncio.create_task(_inject(ctx, plan, fault_names, fault_results), name="soak-faults")
    try:
        stats = await air
    finally:
        ctx.done.set()
        for task in (*helpers, faults):
            task.cancel()
        await asyncio.gather(faults, *helpers, return_exceptions=True)
    wall_s = time.monotonic() - started
    return {
        "command": plan.command,
        "plan": {
            "hours": plan.hours,
            "width": plan.width,
            "height": plan.height,
            "start_at_s": plan.start_at_s,
            "faults": plan.faults,
        },
        "wall_s": wall_s,
        "stream_s": stats.frames / config.video.fps,
        "speed": stats.frames / config.video.fps / wall_s if wall_s else 0.0,
        "playout": {
            "frames": stats.frames,
            "renders_skipped": stats.renders_skipped,
            "underrun_frames": stats.underrun_frames,
            "lines_aired": stats.lines_aired,
            "max_lateness_s": stats.max_lateness_s,
        },
        "faults": [_fault_json(result) for result in fault_results],
        "questions": _question_check(audience, config.store.path),
        "memory": sampler.trend(),
        "samples": sampler.samples,
        "machine": _machine(),
    }


async def _inject(
    ctx: SoakContext, plan: SoakPlan, names: list[str], results: list[FaultResult]
) -> None:
    """Each fault in turn at its stream time; a fault still open when the run ends is
    reported as such, and so is every fault the run ended before."""
    pending = sorted(names, key=lambda n: FAULT_AT[n])
    try:
        while pending:
            name = pending[0]
            at = plan.start_at_s + FAULT_AT[name] * plan.duration_s
            await ctx.wait_for_stream_time(at)
            if ctx.finished():
                break
            result = FaultResult(name, FAULTS[name].what)
            results.append(result)
            pending.pop(0)
            try:
                await run_fault(FAULTS[name], ctx, result)
            except Exception as exc:  # one broken fault must not end the soak; it is reported
                log.exception("fault %s failed", name)
                result.status, result.reason = "not recovered", repr(exc)
    finally:
        for result in results:
            if result.status == "pending":
                result.status, result.reason = "not finished", "the run ended while it was open"
        for name in pending:
            results.append(FaultResult(name, FAULTS[name].what, "not finished", "run ended first"))


async def _progress(sampler: Sampler, plan: SoakPlan, faults: list[FaultResult]) -> None:
    """A line on stderr every minute, so whoever started an hour-long soak sees it move."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        if not sampler.samples:
            continue
        last = sampler.samples[-1]
        aired_h = (last["stream_s"] - plan.start_at_s) / 3600
        speed = (last["stream_s"] - plan.start_at_s) / max(last["wall_s"], 1e-9)
        done = ", ".join(f"{f.name} {f.status}" for f in faults if f.status != "pending")
        print(
            f"soak: {aired_h:.2f} of {plan.hours:g} h aired ({speed:.0f}x real time), "
            f"RSS {last['rss_mib']:.0f} MiB, {last['open_fds']} fds, {last['threads']} threads"
            + (f"; faults: {done}" if done else ""),
            file=sys.stderr,
            flush=True,
        )


def _warmup(plan: SoakPlan) -> float:
    """Stream time after which memory should be flat: caches and lookahead are full."""
    return min(1800.0, plan.duration_s * 0.2)


async def _start_obs(workdir: Path, plan: SoakPlan) -> tuple[ObsStudio | None, str, str | None]:
    try:
        studio = ObsStudio(workdir, width=plan.width, height=plan.height)
    except ObsHarnessError as exc:
        return None, str(exc), None
    recordings = mount_tmpfs(studio.record_dir, RECORDINGS_TMPFS_MB)
    try:
        await asyncio.to_thread(studio.start)
    except ObsHarnessError as exc:
        unmount(studio.record_dir)
        return None, str(exc), recordings
    return studio, "", recordings


def _write_config(
    workdir: Path,
    plan: SoakPlan,
    broker: Broker,
    llm_url: str,
    tts_url: str,
    obs: ObsStudio | None,
    stream_file: Path,
) -> Config:
    voices_dir = _write_voices(workdir / "voices", tts_url)
    lines = [
        f"channel: {CHANNEL}",
        f"schedule: {ROOT / 'schedules' / 'union-demo.yaml'}",
        f"avatars_dir: {ROOT / 'avatars'}",
        f"voices_dir: {voices_dir}",
        f"voice: {VOICE}",
        # The synthesis cache stays on, as in production: a line said before comes from disk
        # even while the TTS server is down, so what meets a failing server is new text.
        f"speech: {{voice_retry_seconds: {VOICE_RETRY_S:g}}}",
        f"knowledge: {{path: {ROOT / 'knowledge' / 'union-faq.yaml'}}}",
        f"moderation: {{wordlists: [{', '.join(str(ROOT / p) for p in DEFAULT_WORDLISTS)}]}}",
        f"store: {{path: {workdir / 'anchor.db'}}}",
        f"video: {{width: {plan.width}, height: {plan.height}, fps: 30, bitrate_kbps: 150,"
        " preset: ultrafast}",
        "audio: {bitrate_kbps: 96}",
        "log: {level: WARNING}",
        "console: {listen: '127.0.0.1:0'}",  # on air as in production, on a free port
        f"mqtt: {{host: {broker.host}, port: {broker.port}, max_reconnect_seconds: 2}}",
        "questions: {per_viewer: 10}",
        f"llm: {{enabled: true, base_url: '{llm_url}', first_token_seconds: 3, total_seconds: 10}}",
    ]
    if obs is not None:
        os.environ[OBS_PASSWORD_ENV] = obs.password
        lines.append(
            f"obs: {{enabled: true, port: {obs.port}, password_env: {OBS_PASSWORD_ENV},"
            f" media_url: '{stream_file}', start_recording: true, stats_every_seconds: 2,"
            " max_reconnect_seconds: 2}"
        )
    path = workdir / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


def _write_voices(voices_dir: Path, tts_url: str) -> Path:
    """The channel's voices: the union's own TTS server (the stand-in), with the shipped
    offline voice as its fallback, as an operator with a local TTS server sets it up."""
    voices_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "voices" / "offline.yaml", voices_dir / "offline.yaml")
    profile = "\n".join(
        [
            "engine: http",
            "voices: {zh: union-zh-female, en: union-en-female}",
            "default_language: zh",
            "timeout_seconds: 5",
            "fallback: offline",
            "http:",
            f"  url: {tts_url}",
            "  json: {text: '{text}', voice: '{voice}', language: '{language}'}",
            "  format: wav",
        ]
    )
    (voices_dir / f"{VOICE}.yaml").write_text(profile + "\n", encoding="utf-8")
    return voices_dir


def _question_check(audience: Audience, store_path: Path) -> dict[str, Any]:
    """Every question the broker acknowledged reached the store, and every accepted one was
    answered (or otherwise settled) by the end."""
    status = dict(stored_questions(store_path))
    sent = set(audience.sent)
    never_stored = sorted(sent - set(status))
    unsettled = sorted(q for q in sent if status.get(q) not in FINAL_STATES | {None})
    by_status: dict[str, int] = {}
    for question_id in sent:
        key = status.get(question_id, "never stored")
        by_status[key] = by_status.get(key, 0) + 1
    sources: dict[str, int] = {}
    for answer in audience.answers:
        sources[answer["source"]] = sources.get(answer["source"], 0) + 1
    return {
        "sent": len(sent),
        "not_sent_broker_down": audience.unsent,
        "stored": len(sent) - len(never_stored),
        "by_status": by_status,
        "never_stored": never_stored,
        "unsettled": unsettled,
        "answers_published": len(audience.answers),
        "answer_sources": sources,
    }


def _fault_json(result: FaultResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "what": result.what,
        "status": result.status,
        "reason": result.reason,
        "injected_at_s": result.injected_at_s,
        "recovered_at_s": result.recovered_at_s,
        "recovery_stream_s": result.recovery_stream_s,
        "recovery_wall_s": result.recovery_wall_s,
        "detail": {k: v for k, v in result.detail.items() if k != "mark"},
    }


def _machine() -> dict[str, Any]:
    import platform

    import av

    with contextlib.suppress(Exception):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu": locals().get("model", platform.processor()),
        "cores": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "libavformat": ".".join(map(str, av.library_versions["libavformat"])),
    }
