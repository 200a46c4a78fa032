"""`anchor` on the command line: run the channel, check schedules, diagnose the machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from anchor.config import Config, ConfigError, load_config
from anchor.media.output import OutputError, OutputTarget
from anchor.show.schedule import (
    DEFAULT_TIMEZONE,
    ScheduleError,
    check_schedule_file,
    load_schedule,
)

if TYPE_CHECKING:
    from anchor.answers.retrieval import Retriever
    from anchor.daemon import Channel
    from anchor.messages import Answer
    from anchor.sites.dataset import SitesFile

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

    kb = commands.add_parser("kb", help="try a knowledge base before it goes on air")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    kb_eval = kb_commands.add_parser(
        "eval", help="how test questions are answered: accuracy, refusals, each confusion"
    )
    kb_eval.add_argument("kb", type=Path, help="knowledge base file (.yaml)")
    kb_eval.add_argument("questions", type=Path, help="question<TAB>entry id (or -) per line")
    kb_eval.add_argument("--threshold", type=float, help="default: knowledge.min_score")
    kb_eval.add_argument("--config", type=Path)
    kb_check = kb_commands.add_parser(
        "check", help="duplicate entries, and entries retrieval will confuse (file:line)"
    )
    kb_check.add_argument("kb", type=Path, help="knowledge base file (.yaml)")
    kb_check.add_argument(
        "--level",
        type=float,
        default=0.9,
        help="report a pair when one's own question gives the other at least this score "
        "(default 0.9), or ranks it first",
    )
    kb_check.add_argument("--config", type=Path)

    logs = commands.add_parser("log", help="the record of questions and of what aired")
    log_commands = logs.add_subparsers(dest="log_command", required=True)
    export = log_commands.add_parser("export", help="write questions or the as-run log as CSV")
    export.add_argument("--table", choices=["questions", "as_run", "audit"], default="questions")
    export.add_argument("--out", type=Path, help="CSV file (default: standard output)")
    export.add_argument("--config", type=Path)
    export.add_argument(
        "--raw",
        action="store_true",
        help="questions: add the original text (kept only with store.keep_raw_text)",
    )

    schedule = commands.add_parser("schedule", help="work with show schedules")
    schedule_commands = schedule.add_subparsers(dest="schedule_command", required=True)
    check = schedule_commands.add_parser("check", help="report every error with file:line")
    check.add_argument("files", type=Path, nargs="+")

    sites = commands.add_parser("sites", help="the union's service sites (CSV or GeoJSON)")
    sites_commands = sites.add_subparsers(dest="sites_command", required=True)
    sites_check = sites_commands.add_parser("check", help="report every error with file:line")
    sites_import = sites_commands.add_parser(
        "import", help="check a sites file, then make it the channel's sites"
    )
    sites_check.add_argument("files", type=Path, nargs="+")
    sites_import.add_argument("file", type=Path)
    for sites_parser in (sites_check, sites_import):
        sites_parser.add_argument("--config", type=Path)
        sites_parser.add_argument(
            "--datum",
            choices=["wgs84", "gcj02"],
            help="datum of files that do not state theirs (default: sites.datum in the config)",
        )

    soak = commands.add_parser(
        "soak", help="many hours of stream time in compressed time, with faults, and a report"
    )
    soak.add_argument("--hours", type=float, default=26.0, help="stream hours to air")
    soak.add_argument("--width", type=int, default=256)
    soak.add_argument("--height", type=int, default=144)
    soak.add_argument("--report", type=Path, help="folder for report.md, report.json, soak.png")
    soak.add_argument(
        "--start-at", type=parse_span, default=0.0, help="stream time the clock starts at (26.4h)"
    )
    soak.add_argument("--faults", choices=["default", "none"], default="default")
    soak.add_argument("--keep-stream", action="store_true", help="keep the .ts (it is large)")

    doctor = commands.add_parser(
        "doctor", help="what is installed and reachable, and how to fix it"
    )
    doctor.add_argument("--config", type=Path)

    broker = commands.add_parser("broker", help="the MQTT broker's users, secrets and ACL")
    broker_commands = broker.add_subparsers(dest="broker_command", required=True)
    secrets = broker_commands.add_parser(
        "secrets",
        help="write passwd, acl and one env file (0600) per user; secrets kept unless --rotate",
    )
    secrets.add_argument("--dir", type=Path, required=True, help="folder for the files (0700)")
    secrets.add_argument("--channel", help="default: the channel in the config")
    secrets.add_argument("--config", type=Path)
    secrets.add_argument(
        "--bridge", action="append", default=[], metavar="NAME", help="user bridge-NAME (repeat)"
    )
    secrets.add_argument(
        "--operator", action="append", default=[], metavar="NAME", help="user operator-NAME"
    )
    secrets.add_argument("--rotate", action="store_true", help="new secrets for every user")

    channels = commands.add_parser("channels", help="several channels on one machine")
    channels_commands = channels.add_subparsers(dest="channels_command", required=True)
    channels_list = channels_commands.add_parser(
        "list", help="the channels in a folder and what each running engine says"
    )
    channels_list.add_argument("--dir", type=Path, default=PROJECT_ROOT / "channels")
    channels_new = channels_commands.add_parser(
        "new", help="write a channel's config with ports no other channel in the folder uses"
    )
    channels_new.add_argument("name")
    channels_new.add_argument("--dir", type=Path, default=PROJECT_ROOT / "channels")
    channels_new.add_argument("--from", dest="base", type=Path, help="default: config.yaml")
    channels_new.add_argument(
        "--data-dir", type=Path, default=PROJECT_ROOT / "data", help="stores go in DIR/NAME/"
    )

    bridge = commands.add_parser(
        "bridge", help="carry one platform account's live chat to the channel (see README)"
    )
    bridge_commands = bridge.add_subparsers(dest="bridge_command", required=True)
    bridge_run = bridge_commands.add_parser("run", help="run a bridge until Ctrl-C or SIGTERM")
    bridge_run.add_argument("--config", type=Path, required=True, help="the bridge's YAML file")
    bridge_run.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    bridge_check = bridge_commands.add_parser("check", help="report every error with file:line")
    bridge_check.add_argument("--config", type=Path, required=True)

    voice = commands.add_parser("voice", help="voice models the operator installs (sherpa-onnx)")
    voice_commands = voice.add_subparsers(dest="voice_command", required=True)
    voice_install = voice_commands.add_parser(
        "install",
        help="check a model archive (.tar.bz2, .tar.gz, .zip), unpack it into the voices "
        "folder, write its profile and make it say a test sentence",
    )
    voice_install.add_argument("archive", type=Path, help="a sherpa-onnx TTS model archive")
    voice_install.add_argument("--name", help="voice name (default: the archive's folder name)")
    voice_install.add_argument("--force", action="store_true", help="replace a voice of that name")
    voice_install.add_argument("--voices-dir", type=Path, help="default: voices_dir in the config")
    voice_install.add_argument("--config", type=Path)

    avatar = commands.add_parser("avatar", help="make and inspect avatar packs")
    avatar_commands = avatar.add_subparsers(dest="avatar_command", required=True)
    build = avatar_commands.add_parser("build", help="rig a face photo into an avatar pack")
    build.add_argument("photo", type=Path)
    build.add_argument("--name", required=True, help="pack name (folder under the avatars dir)")
    build.add_argument("--avatars-dir", type=Path, help="default: the project's avatars/")
    build.add_argument("--force", action="store_true", help="replace an existing pack")
    preview = avatar_commands.add_parser(
        "preview", help="contact sheet (.png) or short clip (.mp4/.ts) of a pack"
    )
    preview.add_argument("name")
    preview.add_argument("--out", type=Path, required=True)
    preview.add_argument("--avatars-dir", type=Path, help="default: the project's avatars/")
    preview.add_argument(
        "--layouts",
        action="store_true",
        help="a .png of every layout with the areas each platform's app covers drawn in",
    )
    preview.add_argument(
        "--safe-area",
        action="append",
        default=[],
        metavar="PLATFORM",
        help="with --layouts: only these platforms (none, douyin, wechat_channels, kuaishou, "
        "bilibili_portrait, bilibili; repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "schedule":
        return _check_schedules(args.files)
    if args.command == "sites":
        return _sites(args)
    if args.command == "ask":
        return _ask(args)
    if args.command == "kb":
        return _kb(args)
    if args.command == "log":
        return _export_log(args)
    if args.command == "soak":
        return _soak(args, argv)
    if args.command == "avatar":
        return _avatar(args)
    if args.command == "voice":
        return _voice_install(args)
    if args.command == "broker":
        return _broker_secrets(args)
    if args.command == "bridge":
        return _bridge(args)
    if args.command == "channels":
        return _channels(args)
    if args.command == "doctor":
        from anchor.ops.doctor import run_doctor

        try:
            config = _load_config(args.config)
        except ConfigError as exc:
            print(f"anchor: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return run_doctor(config)
    return EXIT_BAD_INPUT


def _channels(args: argparse.Namespace) -> int:
    from anchor.ops.channels import channel_states, new_channel_text, siblings

    folder: Path = args.dir
    if args.channels_command == "list":
        states = channel_states(folder) if folder.is_dir() else []
        if not states:
            print(f"no channel configs in {folder} (anchor channels new NAME --dir {folder})")
            return 0
        print(f"{'channel':<16} {'state':<12} {'stream':>10}  console / output / config")
        for state in states:
            stream = "" if state.stream_s is None else f"{state.stream_s:.0f} s"
            print(
                f"{state.name:<16} {state.state:<12} {stream:>10}  {state.console or '-'}  "
                f"{state.output}  {state.path}"
            )
        return 0
    try:
        name = _channel_name(args.name)
        base = _load_config(args.base)
    except ConfigError as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    target = folder / f"{name}.yaml"
    if target.exists():
        print(f"anchor: {target} exists; edit it, or choose another name", file=sys.stderr)
        return EXIT_BAD_INPUT
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".new-channel.yaml"
    taken = [config for _, config in siblings(probe)]
    if any(config.channel == name for config in taken):
        print(f"anchor: a channel named {name!r} is already in {folder}", file=sys.stderr)
        return EXIT_BAD_INPUT
    target.write_text(
        new_channel_text(name, base, taken, args.data_dir.resolve()), encoding="utf-8"
    )
    print(f"{target}: channel {name!r} (edit it, then: anchor run --config {target})")
    return 0


def _channel_name(name: str) -> str:
    from anchor.config import Config

    try:
        return Config.model_validate({"channel": name}, context={"base_dir": PROJECT_ROOT}).channel
    except ValueError as exc:
        raise ConfigError(
            [f"channel name {name!r}: use lowercase letters, digits, - or _"]
        ) from exc


def _bridge(args: argparse.Namespace) -> int:
    from anchor.bridges.bilibili import SettingError
    from anchor.bridges.config import load_bridge_config
    from anchor.bridges.intake import IntakeConfigError
    from anchor.bridges.runner import BridgeSetupError, run_bridge
    from anchor.bridges.spool import SpoolError
    from anchor.ops.logs import setup_logging

    try:
        config = load_bridge_config(args.config)
    except ConfigError as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.bridge_command == "check":
        print(f"{args.config}: ok (bridge {config.name}, {config.platform.kind})")
        return 0
    setup_logging(args.log_level or "INFO")
    try:
        asyncio.run(run_bridge(config))
    except (BridgeSetupError, SettingError, IntakeConfigError, SpoolError) as exc:
        print(f"anchor: bridge {config.name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        pass
    return 0


def _avatar(args: argparse.Namespace) -> int:
    from anchor.avatar.loader import load_pack
    from anchor.avatar.pack import AvatarError

    avatars_dir = args.avatars_dir or PROJECT_ROOT / "avatars"
    try:
        if args.avatar_command == "build":
            from anchor.avatar.rig import build_photo_pack

            made = build_photo_pack(args.photo, args.name, avatars_dir, force=args.force)
            print(f"{made}: ready (see it with: anchor avatar preview {args.name} --out face.png)")
        elif args.layouts:
            from anchor.avatar.layoutsheet import write_layout_sheet

            pack = load_pack(avatars_dir / args.name)
            print(f"{write_layout_sheet(pack, args.out, args.safe_area)}: written")
        else:
            from anchor.avatar.preview import write_preview

            print(f"{write_preview(load_pack(avatars_dir / args.name), args.out)}: written")
    except (AvatarError, ValueError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return 1
    return 0


def _voice_install(args: argparse.Namespace) -> int:
    from anchor.speech.install import InstallError, install_archive

    try:
        voices_dir = args.voices_dir or _load_config(args.config).voices_dir
        done = install_archive(args.archive, voices_dir, name=args.name, force=args.force)
    except (ConfigError, InstallError, OSError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return 1
    info = done.info
    print(
        f"{done.folder}: {info.files.family} model, {info.sample_rate} Hz, "
        f"said a {done.test_seconds:.1f} s test sentence in {done.elapsed:.1f} s"
    )
    print(f"{done.profile}: written; to air it, set `voice: {done.name}` in the config")
    print("check the model's licence and its training data's before airing it (README)")
    return 0


def _broker_secrets(args: argparse.Namespace) -> int:
    from anchor.ops.broker_access import BrokerAccessError, write_secrets

    try:
        channel = args.channel or _load_config(args.config).channel
        report = write_secrets(
            args.dir, channel, bridges=args.bridge, operators=args.operator, rotate=args.rotate
        )
    except (ConfigError, BrokerAccessError, OSError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines))
    print("next: passwd and acl to mosquitto, engine.env to the engine (README: Broker security)")
    return 0


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


def _sites(args: argparse.Namespace) -> int:
    """Check sites files, or import one: an invalid file changes nothing in the store."""
    from anchor.sites.dataset import SitesError, load_configured

    try:
        config = _load_config(args.config)
    except ConfigError as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    checked: list[SitesFile] = []
    failed = False
    for path in args.files if args.sites_command == "check" else [args.file]:
        try:
            checked.append(load_configured(config.sites, path, datum=args.datum))
        except SitesError as exc:
            print(exc, file=sys.stderr)
            failed = True
    if args.sites_command == "check":
        for good in checked:
            print(good.summary())
        return 1 if failed else 0
    if failed:
        return 1
    return asyncio.run(_import_sites(config, checked[0]))


async def _import_sites(config: Config, checked: SitesFile) -> int:
    from anchor.sites.dataset import store_sites
    from anchor.store.database import Store, StoreError

    try:
        async with await Store.open(config.store.path) as store:
            before = len(await store.sites())
            count = await store_sites(store, checked.sites)
    except (StoreError, ValueError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return 1
    print(f"{checked.summary()}\n{count} sites imported into {config.store.path} (was {before})")
    return 0


def _load_config(path: Path | None) -> Config:
    source = _config_source(path)
    return load_config(source) if source is not None else Config.default(PROJECT_ROOT)


def _config_source(path: Path | None) -> Path | None:
    if path is not None:
        return path
    default = PROJECT_ROOT / "config.yaml"
    return default if default.is_file() else None


def _check_config(config: Config, path: Path | None, output_url: str | None = None) -> None:
    """What the config names must fit together: the picture size and the avatar's layouts,
    and nothing another channel (or program) on this machine already holds."""
    from anchor import build
    from anchor.avatar.pack import AvatarError
    from anchor.ops.channels import clashes

    source = _config_source(path)
    try:
        build.check_avatar_fits(config, source)
    except AvatarError as exc:
        raise ConfigError([str(exc)]) from None
    problems = clashes(config, source, output_url)
    if problems:
        raise ConfigError(problems)


def _run(args: argparse.Namespace) -> int:
    try:
        config = _load_config(args.config)
        _check_config(config, args.config, args.out)
        schedule = load_schedule(args.schedule or config.schedule)
        target = OutputTarget.parse(args.out or config.output.url)
    except (ConfigError, ScheduleError, OutputError) as exc:
        print(f"anchor: cannot start:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from anchor.ops.logs import setup_logging

    try:
        setup_logging(
            args.log_level or config.log.level,
            file=config.log.file,
            file_format=config.log.format,
            max_mb=config.log.max_mb,
            backups=config.log.backups,
        )
    except OSError as exc:
        print(f"anchor: cannot start: log file {config.log.file}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        log.warning(
            "running as root: a service should run as its own user (deploy/anchor.service runs "
            "as 'anchor'), so a fault in the engine cannot take over the machine"
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


def _soak(args: argparse.Namespace, argv: list[str] | None) -> int:
    from anchor.soak.runner import SoakPlan, run_soak

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(message)s")
    plan = SoakPlan(
        hours=args.hours,
        width=args.width,
        height=args.height,
        start_at_s=args.start_at,
        faults=args.faults,
        report_dir=args.report,
        keep_stream=args.keep_stream,
        command=" ".join(["anchor", *(sys.argv[1:] if argv is None else argv)]),
    )
    from anchor.avatar.layout import describe_sizes, fits
    from anchor.avatar.loader import pack_layout_sizes

    sizes = pack_layout_sizes(PROJECT_ROOT / "avatars" / "default")
    if not any(fits(size, args.width, args.height) for _, size in sizes):
        print(
            f"anchor: --width/--height: {args.width}x{args.height} has no layout in the default "
            f"avatar; sizes that work: {describe_sizes(sizes)}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    # SIGTERM unwinds like Ctrl-C, so OBS, the broker and the recordings mount are cleaned up.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        report = asyncio.run(run_soak(plan))
    except KeyboardInterrupt:
        print("anchor: soak interrupted; no report written", file=sys.stderr)
        return 130
    stream, questions = report["stream"], report["questions"]
    print(
        f"{report['stream_s'] / 3600:.2f} h aired in {report['wall_s'] / 60:.1f} min; "
        f"continuous: {stream['continuous']}; wraps: {stream['wraps']}; "
        f"questions lost: {len(questions['never_stored'])}; "
        f"faults: {', '.join(f['name'] + ' ' + f['status'] for f in report['faults']) or 'none'}"
    )
    ok = stream["continuous"] and not questions["never_stored"] and not questions["unsettled"]
    return 0 if ok else 1


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ask(args: argparse.Namespace) -> int:
    from anchor.answers.knowledge import KnowledgeError
    from anchor.answers.retrieval import RetrieverFactory

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = _load_config(args.config)
        knowledge = RetrieverFactory.from_config(config).load(args.kb or config.knowledge.path)
    except (ConfigError, KnowledgeError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    answer = asyncio.run(_answer_once(config, knowledge, args.question))
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        print(answer.answer)
        where = f"{answer.source}, {answer.id}" if answer.id else answer.source
        print(f"({where}, score {answer.score:.2f})", file=sys.stderr)
    return 0


def _kb(args: argparse.Namespace) -> int:
    """`anchor kb eval` / `anchor kb check`: retrieval as the live engine does it."""
    from anchor.answers import evaluation
    from anchor.answers.knowledge import KnowledgeError
    from anchor.answers.retrieval import RetrieverFactory

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = _load_config(args.config)
        factory = RetrieverFactory.from_config(config)
        retriever = factory.load(args.kb)
        if args.kb_command == "eval":
            questions = evaluation.read_questions(args.questions, retriever.knowledge)
    except (ConfigError, KnowledgeError, evaluation.QuestionsError) as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{args.kb}: {len(retriever.knowledge)} entries, {factory.kind} retrieval")
    if args.kb_command == "eval":
        threshold = config.knowledge.min_score if args.threshold is None else args.threshold
        outcomes = evaluation.evaluate(retriever, questions)
        print("\n".join(evaluation.report(outcomes, threshold, args.questions)))
        return 0
    findings = evaluation.check(retriever, args.level)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} problems" if findings else "no duplicates or confusable entries")
    return 1 if findings else 0


async def _answer_once(config: Config, knowledge: Retriever, question: str) -> Answer:
    from anchor import build
    from anchor.answers.answerer import Answerer

    try:  # "open now" is read in the schedule's time zone, when there is a schedule to read
        timezone = load_schedule(config.schedule).timezone
    except ScheduleError:
        timezone = ZoneInfo(DEFAULT_TIMEZONE)
    sites = await build.sites(config, None, timezone)
    answerer = Answerer.from_config(
        knowledge, config.knowledge, config.llm, sites=None if sites is None else sites.desk
    )
    try:
        return await answerer.answer(question)
    finally:
        await answerer.aclose()


def _export_log(args: argparse.Namespace) -> int:
    from anchor.store.database import Store

    try:
        config = _load_config(args.config)
    except ConfigError as exc:
        print(f"anchor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    async def export() -> int:
        store = await Store.open(config.store.path)
        try:
            return await store.export_csv(args.table, args.out or sys.stdout, raw=args.raw)
        finally:
            await store.close()

    if args.raw and not config.store.keep_raw_text:
        print(
            "anchor: store.keep_raw_text is false: the text column holds the masked text",
            file=sys.stderr,
        )
    rows = asyncio.run(export())
    print(f"{rows} rows exported", file=sys.stderr)
    return 0


async def _serve(channel: Channel) -> int:
    """Run until done; the first SIGINT/SIGTERM stops gracefully, a second one at once."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None  # asyncio.run runs this coroutine as a task
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
