"""Several channels on one machine: clashes found before a start, and the channels listed.

Each channel is one config file in a channels folder (`anchor@NAME.service` runs
`channels/NAME.yaml`). Two channels must not share what only one can have: a listening port
(the console, the signals), a stream destination (two streams into one OBS input make
garbage), an OBS scene, a store file, or a channel name (its MQTT topics). `clashes` finds
these against the other configs in the same folder, and finds a listening port already taken
by any program, so `anchor run` refuses to start with the key and the other channel named,
instead of airing a broken picture or a console that never comes up.
"""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from anchor.config import Config, ConfigError, load_config
from anchor.yamlsource import Loc, SourceError, load_yaml

PROBE_TIMEOUT_S = 2.0
MAX_SIBLINGS = 200


@dataclass(frozen=True, slots=True)
class Claim:
    """Something a channel holds alone: what it is, where in the config it is set, its value."""

    what: str
    loc: Loc
    value: str


def claims(config: Config, output_url: str | None = None) -> list[Claim]:
    """What this channel holds alone, as comparable values."""
    found = [Claim("channel name", ("channel",), config.channel)]
    for what, loc, address in (
        ("console port", ("console", "listen"), config.console.address),
        ("signals port", ("health", "listen"), config.health.address),
    ):
        if address is not None and address[1] != 0:
            found.append(Claim(what, loc, f"{_host(address[0])}:{address[1]}"))
    url = output_url or config.output.url
    parts = urlsplit(url)
    if parts.scheme in ("udp", "srt") and parts.port:
        found.append(
            Claim(
                "stream destination",
                ("output", "url"),
                f"{parts.scheme}://{_host(parts.hostname or '')}:{parts.port}",
            )
        )
    elif "://" not in url:
        found.append(Claim("output file", ("output", "url"), str(Path(url).resolve())))
    if config.obs.enabled:
        obs = f"{_host(config.obs.host)}:{config.obs.port}"
        found.append(Claim("OBS scene", ("obs", "scene"), f"{obs} {config.obs.scene}"))
        found.append(
            Claim("OBS media input", ("obs", "media_input"), f"{obs} {config.obs.media_input}")
        )
    found.append(Claim("store", ("store", "path"), str(Path(config.store.path).resolve())))
    return found


def _host(host: str) -> str:
    """Addresses that mean this machine compare equal."""
    return "localhost" if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "") else host


def siblings(source: Path) -> Iterator[tuple[Path, Config]]:
    """The other channel configs in `source`'s folder (files that are not one are skipped)."""
    folder = source.resolve().parent
    for count, path in enumerate(sorted(folder.glob("*.yaml"))):
        if count >= MAX_SIBLINGS:
            return
        if path.resolve() == source.resolve():
            continue
        with contextlib.suppress(ConfigError, SourceError, OSError, ValueError):
            yield path, load_config(path)


def clashes(config: Config, source: Path | None, output_url: str | None = None) -> list[str]:
    """Every clash, one line each in the `file:line: key: message` form, naming the other."""
    document = None
    if source is not None:
        with contextlib.suppress(SourceError, OSError):
            document = load_yaml(source)
    mine = claims(config, output_url)
    problems: list[str] = []

    def say(claim: Claim, message: str) -> None:
        if document is not None:
            problems.append(document.error(claim.loc, message))
        else:
            problems.append(f"{'.'.join(map(str, claim.loc))}: {message}")

    if source is not None:
        for path, other in siblings(source):
            theirs = {(c.what, c.value) for c in claims(other)}
            for claim in mine:
                if (claim.what, claim.value) in theirs:
                    say(
                        claim,
                        f"{claim.value}: the {claim.what} of channel {other.channel!r} "
                        f"({path}) too; give each channel its own",
                    )
    for claim, address in (
        (c, a)
        for c, a in (
            (_find(mine, "console port"), config.console.address),
            (_find(mine, "signals port"), config.health.address),
        )
        if c is not None and a is not None
    ):
        if not _free(*address):
            say(claim, f"{claim.value} is in use (another channel or program is listening)")
    return problems


def _find(found: list[Claim], what: str) -> Claim | None:
    return next((claim for claim in found if claim.what == what), None)


def _free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class ChannelState:
    name: str
    path: Path
    console: str | None
    output: str
    state: str  # ok, degraded, stalled, not running, no console
    stream_s: float | None


def channel_states(folder: Path) -> list[ChannelState]:
    """Each channel config in `folder` and what its running engine says (by `/healthz`)."""
    states = []
    for path in sorted(folder.glob("*.yaml"))[:MAX_SIBLINGS]:
        try:
            config = load_config(path)
        except (ConfigError, SourceError, OSError, ValueError):
            continue
        address = config.console.address or config.health.address
        console = None if address is None else f"http://{address[0]}:{address[1]}/"
        state, stream_s = ("no console", None) if console is None else _probe(console)
        states.append(
            ChannelState(config.channel, path, console, config.output.url, state, stream_s)
        )
    return states


def _probe(base: str) -> tuple[str, float | None]:
    try:
        with urllib.request.urlopen(base + "healthz", timeout=PROBE_TIMEOUT_S) as answer:
            verdict = json.loads(answer.read(65536))
    except urllib.error.HTTPError as exc:  # 503: stalled, still running
        with contextlib.suppress(ValueError, OSError):
            return str(json.loads(exc.read(65536)).get("status", "stalled")), None
        return "stalled", None
    except (OSError, ValueError):
        return "not running", None
    stream_s = None
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(base + "metrics", timeout=PROBE_TIMEOUT_S) as answer,
    ):
        for line in answer.read(1 << 20).decode("utf-8", "replace").splitlines():
            if line.startswith("anchor_stream_time_seconds "):
                stream_s = float(line.split()[1])
    return str(verdict.get("status", "?")), stream_s


def new_channel_text(name: str, base: Config, taken: list[Config], data_dir: Path) -> str:
    """A channel's config, next free ports chosen, every path absolute (so it works from any
    folder); the operator edits the rest (schedule, avatar, OBS) in the file."""
    used_ports = {
        address[1]
        for other in taken
        for address in (other.console.address, other.health.address)
        if address is not None
    }
    used_streams = {urlsplit(other.output.url).port for other in taken}
    console_port = _next_free(8080, used_ports, listening=True)
    stream_port = _next_free(5600, {p for p in used_streams if p is not None})
    wordlists = ", ".join(json.dumps(str(p)) for p in base.moderation.wordlists)
    store = data_dir / name / "anchor.db"
    return "\n".join(
        [
            f"# Channel {name!r}: run it with `anchor run --config THIS-FILE`, or as the",
            f"# systemd service anchor@{name} (deploy/anchor@.service). Written by",
            "# `anchor channels new`; ports are the next ones no other channel here uses.",
            f"channel: {name}",
            f"schedule: {json.dumps(str(base.schedule))}",
            f"avatar: {base.avatar}",
            f"avatars_dir: {json.dumps(str(base.avatars_dir))}",
            f"voices_dir: {json.dumps(str(base.voices_dir))}",
            f"voice: {base.voice}",
            f"video: {{width: {base.video.width}, height: {base.video.height}, "
            f"fps: {base.video.fps}}}",
            f"output: {{url: 'udp://127.0.0.1:{stream_port}?pkt_size=1316'}}",
            f"console: {{listen: '127.0.0.1:{console_port}'}}",
            f"knowledge: {{path: {json.dumps(str(base.knowledge.path))}}}",
            f"moderation: {{wordlists: [{wordlists}]}}",
            f"sites: {{path: {json.dumps(str(base.sites.path))}}}",
            *(
                [f"mqtt: {{host: {base.mqtt.host}, port: {base.mqtt.port}}}  # one broker for all"]
                if base.mqtt.host
                else []
            ),
            f"store: {{path: {json.dumps(str(store))}}}",
            f"obs: {{scene: {json.dumps(f'Anchor {name}')}, "
            f"media_input: {json.dumps(f'Anchor stream {name}')}, "
            f"caption_input: {json.dumps(f'Anchor captions {name}')}, lower_third_input: null}}",
            "",
        ]
    )


def _next_free(start: int, used: set[int], *, listening: bool = False) -> int:
    """The first port from `start` no other channel uses (and, for a port to listen on, no
    program holds now)."""
    port = start
    while port in used or (listening and not _free("127.0.0.1", port)):
        port += 1
    return port
