"""`anchor` on the command line: run the channel, check schedules, diagnose the machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
from pathlib import Path

from anchor.config import Config, ConfigError, load_config
from anchor.output import OutputError, OutputTarget
from anchor.schedule import ScheduleError, check_schedule_file, load_schedule

log = logging.getLogger("anchor")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

_SPAN = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s?)?")


def parse_span(text: str) -> float:
    """'60s', '90', '2h', '1h30m', '1.5m' → seconds."""
    match = _SPAN.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 60s, 5m, 2h, 1h30m)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive: {text!r}")
    return total


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anchor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the channel: schedule → speech → avatar → stream")
    run.add_argument("--config", type=Path, help="config file (default: the project's config.yaml)")
    run.add_argument("--schedule", type=Path, help="schedule file (default: from the config)")
    run.add_argument("--out", help="file (.ts/.mp4/.mkv/.flv) or udp:// srt:// rtmp:// URL")
    run.add_argument(
        "--duration", type=parse_span, help="stop after this much stream time (60s, 2h)"
    )
    run.add_argument("--fast", action="store_true", help="render as fast as possible (no pacing)")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--question",
        action="append",
        default=[],
        metavar="TEXT",
        help="a viewer question to answer on air (repeatable)",
    )
    run.add_argument("--console", action="store_true", help="questions typed on stdin go on air")

    ask = commands.add_parser("ask", help="answer one question offline, as the host would")
    ask.add_argument("question")
    ask.add_argument("--kb", type=Path, help="knowledge base file (default: from the config)")
    ask.add_argument("--config", type=Path)
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")

    logs = commands.add_parser("log", help="the record of questions and of what aired")
    log_commands = logs.add_subparsers(dest="log_command", required=True)
    export = log_commands.add_parser("export", help="write questions or the as-run log as CSV")
    export.add_argument("--table", choices=["questions", "as_run"], default="questions")
    export.add_argument("--out", type=Path, help="CSV file (default: standard output)")
    export.add_argument("--config", type=Path)

    schedule = commands.add_parser("schedule", help="work with show schedules")
    schedule_commands = schedule.add_subparsers(dest="schedule_command", required=True)
    check = schedule_commands.add_parser("check", help="report every error with file:line")
    check.add_argument("files", type=Path, nargs="+")

    doctor = commands.add_parser(
        "doctor", help="what is installed and reachable, and how to fix it"
    )
    doctor.add_argument("--config", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "schedule":
        return _check_schedules(args.files)
    if args.command == "ask":
        return _ask(args)
    if args.command == "log":
        return _export_log(args)
    if args.command == "doctor":
        from anchor.doctor import run_doctor

        try:
            config = _load_config(args.config)
        except ConfigError as exc:
            print(f"anchor: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return run_doctor(config)
    return EXIT_BAD_INPUT


def _check_schedules(files: list[Path]) -> int:
    failed = False
    for path in files:
        errors = check_schedule_file(path)
        for error in errors:
            print(error, file=sys.stderr)
        if errors:
            failed = True
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def _load_config(path: Path | None) -> Config:
    if path is not None:
        return load_config(path)
    default = PROJECT_ROOT / "config.yaml"
    return load_config(default) if default.is_file() else Config.default(PROJECT_ROOT)


def _run(args: argparse.Namespace) -> int:
    try:
        config = _load_config(args.config)
        schedule = load_schedule(args.schedule or config.schedule)
        target = OutputTarget.parse(args.out or config.output.url)
    except (ConfigError, ScheduleError, OutputError) as exc:
        print(f"anchor: cannot start:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(
        level=args.log_level or config.log.level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    from anchor.daemon import Channel, RunOptions

    options = RunOptions(
        output=target,
        fast=args.fast,
        duration_s=args.duration,
        questions=tuple(args.question),
        console=args.console,
    )
    return asyncio.run(_serve(Channel(config, schedule, options)))


def _ask(args: argparse.Namespace) -> int:
    from anchor.knowledge import KnowledgeBase, KnowledgeError

    try:
        config = _load_config(args.config)
        knowledge = KnowledgeBase.load(args.kb or config.knowledge.path)
    except (ConfigError, KnowledgeError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    answer = asyncio.run(_answer_once(config, knowledge, args.question))
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        print(answer.answer)
        where = f"{answer.source}, {answer.id}" if answer.id else answer.source
        print(f"({where}, score {answer.score:.2f})", file=sys.stderr)
    return 0


async def _answer_once(config: Config, knowledge, question: str):
    from anchor.answerer import Answerer

    answerer = Answerer.from_config(knowledge, config.knowledge, config.llm)
    try:
        return await answerer.answer(question)
    finally:
        await answerer.aclose()


def _export_log(args: argparse.Namespace) -> int:
    from anchor.store import Store

    try:
        config = _load_config(args.config)
    except ConfigError as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    async def export() -> int:
        store = await Store.open(config.store.path)
        try:
            return await store.export_csv(args.table, args.out or sys.stdout)
        finally:
            await store.close()

    rows = asyncio.run(export())
    print(f"{rows} rows exported", file=sys.stderr)
    return 0


async def _serve(channel) -> int:
    """Run until done; the first SIGINT/SIGTERM stops gracefully, a second one at once."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    received = 0

    def on_signal() -> None:
        nonlocal received
        received += 1
        if received == 1:
            log.info("stopping after the sentence on air (signal again to exit at once)")
            channel.request_stop()
        else:
            log.warning("exiting at once")
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except NotImplementedError:  # Windows: no loop signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(on_signal))
    from anchor.daemon import StartupError

    try:
        await channel.run()
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    except StartupError as exc:
        print(f"anchor: cannot start:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
