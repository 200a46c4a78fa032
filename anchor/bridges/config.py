"""One bridge's configuration: a YAML file per bridge process, validated once at start.

A bridge is one platform account carrying its chat to one channel, as its own broker user
(``bridge-<name>``, written by ``anchor broker secrets --bridge <name>``). The ``platform``
block says which client reads the chat; it is kept here as plain validated data, and the
platform's client builds itself from it. Everything after the client (screening, the spool,
the broker) is the same for every platform and configured by the other blocks.

Secrets are never written in the file: each ``*_env`` key names the environment variable
that holds the secret, read at start by whatever needs it (`secret_from_env`).

Errors name the file and line (``bridge.yaml:9: platform.bilibili_open.app_id: ...``); for
the platform block the location includes its kind, which says which set of keys applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from anchor.config import ConfigError, ConfigPath, MqttTlsConfig, _Section, secret_from_env
from anchor.yamlsource import Loc, SourceError, YamlDocument, load_yaml, validate

# The broker user names' rule (anchor.ops.broker_access): the name becomes `bridge-<name>`.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_PATTERN_CHARS = 200
MAX_PATTERNS = 100
MAX_GREETINGS = 200
DEFAULT_GREETINGS = (
    "你好", "您好", "大家好", "主播好", "主播你好", "主播您好", "老师好", "晚上好", "早上好",
    "下午好", "中午好", "来了", "我来了", "来啦", "报到", "打卡", "hello", "hi", "hey",
)  # fmt: skip


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: 1-32 lowercase letters, digits, - or _, "
            "starting with a letter or digit"
        )
    return value


def _env_name(value: str) -> str:
    if not _ENV.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits, _)")
    return value


def _http_url(value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ValueError(f"{value!r} is not a {' or '.join(s + '://' for s in schemes)} URL")
    return value


def _host_port(value: str) -> str:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (for example 127.0.0.1:8090)")
    return f"{host}:{int(port)}"


def _resolve(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    return (Path(base) / value).resolve()


class BilibiliOpenConfig(_Section):
    """Bilibili's open platform (直播开放平台): an app's keys and the streamer's 身份码."""

    kind: Literal["bilibili_open"]
    app_id: int = Field(ge=1)
    access_key_id_env: str = "BILIBILI_ACCESS_KEY_ID"
    access_key_secret_env: str = "BILIBILI_ACCESS_KEY_SECRET"
    auth_code_env: str = "BILIBILI_AUTH_CODE"
    api_base: str | None = None

    @field_validator("access_key_id_env", "access_key_secret_env", "auth_code_env")
    @classmethod
    def _envs(cls, value: str) -> str:
        return _env_name(value)

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value, ("https", "http"))


class BilibiliWebConfig(_Section):
    """A Bilibili live room read through the web's own danmaku protocol, by room id."""

    kind: Literal["bilibili_web"]
    room_id: int = Field(ge=1)
    api_base: str | None = None

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value, ("https", "http"))


class IntakeSource(_Section):
    """One capture helper allowed to post to the intake: who it is, what it sends (``format``,
    a mapper of anchor.bridges.helpers), as which platform, the environment variable with its
    shared secret, and its token bucket (``rate`` a second, up to ``burst``)."""

    name: str
    format: str
    platform: str
    secret_env: str
    rate: float = Field(default=20.0, gt=0, le=10_000)
    burst: int = Field(default=100, ge=1, le=100_000)

    @field_validator("name", "format", "platform")
    @classmethod
    def _names(cls, value: str) -> str:
        return _name(value, "name")

    @field_validator("secret_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value)


class IntakeConfig(_Section):
    """An HTTP intake on this machine where capture helpers (browser extensions, scripts for
    platforms without an open API) post the chat they see, each with its own secret."""

    kind: Literal["intake"]
    listen: str = "127.0.0.1:8090"
    sources: tuple[IntakeSource, ...] = Field(min_length=1, max_length=64)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _host_port(value)

    @model_validator(mode="after")
    def _unique_sources(self) -> IntakeConfig:
        names = [source.name for source in self.sources]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"source names must be unique: {', '.join(twice)} given twice")
        return self


class BarrageGrabConfig(_Section):
    """A barrage-grab style forwarder: a WebSocket that pushes the chat it captures."""

    kind: Literal["barrage_grab"]
    url: str
    secret_env: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        checked = _http_url(value, ("ws", "wss"))
        assert checked is not None
        return checked

    @field_validator("secret_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return None if value is None else _env_name(value)


PlatformConfig = Annotated[
    BilibiliOpenConfig | BilibiliWebConfig | IntakeConfig | BarrageGrabConfig,
    Field(discriminator="kind"),
]
PLATFORM_KINDS = ("bilibili_open", "bilibili_web", "intake", "barrage_grab")


class BridgeMqttConfig(_Section):
    """The channel's broker, reached as the bridge's own user (default ``bridge-<name>``).

    The password comes from the environment variable ``password_env`` (the env file that
    ``anchor broker secrets`` writes sets ``ANCHOR_MQTT_PASSWORD``). ``tls`` as the engine's
    ``mqtt.tls``; null means plain MQTT, for a broker on this machine."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None  # filled in as bridge-<name> when absent
    password_env: str = "ANCHOR_MQTT_PASSWORD"
    keepalive_seconds: int = Field(default=30, ge=5, le=600)
    max_reconnect_seconds: float = Field(default=30.0, ge=1, le=600)
    tls: MqttTlsConfig | None = None

    @field_validator("password_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value)


class SpoolConfig(_Section):
    """The on-disk spool of messages not yet acknowledged by the broker (SQLite).

    ``path`` defaults to ``bridge-<name>.spool`` beside this file. When ``max_mb`` is reached
    new comments are refused (and counted); what was accepted is never dropped."""

    path: ConfigPath | None = None
    max_mb: float = Field(default=64.0, gt=0, le=100_000)

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)


class BridgeQuestionsConfig(_Section):
    """Which comments go to the channel as questions, and how many per viewer.

    A comment is dropped when it is empty, only emoji, symbols or punctuation, only digits or
    one or two characters repeated (666, 哈哈哈哈), one of ``greetings`` (the whole message,
    punctuation and case aside), shorter than ``min_chars`` letters or digits, longer than
    ``max_chars``, or matched by one of the ``ignore`` regular expressions. Each viewer may
    ask ``per_viewer_per_minute`` (a token bucket). ``audience``: publish entering, likes,
    follows and gifts to the audience topic."""

    min_chars: int = Field(default=2, ge=1, le=100)
    max_chars: int = Field(default=300, ge=10, le=2000)
    ignore: tuple[str, ...] = Field(default=(), max_length=MAX_PATTERNS)
    greetings: tuple[str, ...] = Field(default=DEFAULT_GREETINGS, max_length=MAX_GREETINGS)
    per_viewer_per_minute: float = Field(default=3.0, gt=0, le=600)
    audience: bool = True

    @field_validator("ignore")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise ValueError(
                    f"a pattern has {len(pattern)} characters, the limit is {MAX_PATTERN_CHARS}"
                )
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("greetings")
    @classmethod
    def _short_greetings(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for greeting in value:
            if not greeting.strip() or len(greeting) > 50:
                raise ValueError(f"{greeting!r}: a greeting has 1 to 50 characters")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> BridgeQuestionsConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars {self.min_chars} is above max_chars {self.max_chars}")
        return self


class BridgeConfig(_Section):
    """One bridge process: its name (broker user ``bridge-<name>``), the channel it asks, the
    platform it reads, and the broker, spool and screening settings."""

    name: str
    channel: str = "default"
    platform: PlatformConfig
    mqtt: BridgeMqttConfig = Field(default_factory=BridgeMqttConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    questions: BridgeQuestionsConfig = Field(default_factory=BridgeQuestionsConfig)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_name(cls, data: Any) -> Any:
        """``mqtt.username`` and ``spool.path`` follow the name unless given; missing blocks
        are validated as empty ones so relative paths are anchored like the rest."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        name = data.get("name")
        for block in ("mqtt", "spool", "questions"):
            if data.get(block) is None:
                data[block] = {}
        if isinstance(name, str) and _NAME.fullmatch(name):
            mqtt, spool = data["mqtt"], data["spool"]
            if isinstance(mqtt, dict) and mqtt.get("username") is None:
                data["mqtt"] = {**mqtt, "username": f"bridge-{name}"}
            if isinstance(spool, dict) and spool.get("path") is None:
                data["spool"] = {**spool, "path": f"bridge-{name}.spool"}
        return data

    @field_validator("name")
    @classmethod
    def _bridge_name(cls, value: str) -> str:
        return _name(value, "bridge name (the broker user is bridge-<name>)")

    @field_validator("channel")
    @classmethod
    def _channel_name(cls, value: str) -> str:
        return _name(value, "channel name (it is part of MQTT topics)")

    @property
    def questions_topic(self) -> str:
        return f"anchor/{self.channel}/questions"

    @property
    def audience_topic(self) -> str:
        return f"anchor/{self.channel}/audience"

    @property
    def spool_path(self) -> Path:
        return self.spool.path or Path(f"bridge-{self.name}.spool")

    def mqtt_password(self) -> str | None:
        """The broker password, from the environment; never stored on the config."""
        return secret_from_env(self.mqtt.password_env)


def load_bridge_config(path: Path) -> BridgeConfig:
    """Read and validate one bridge's YAML file; ConfigError lists every problem, file:line."""
    path = Path(path)
    try:
        doc = load_yaml(path)
        return validate(
            BridgeConfig, _with_platform_kind(doc), context={"base_dir": path.parent.resolve()}
        )
    except SourceError as exc:
        raise ConfigError(exc.errors) from None


def parse_bridge_config(data: Mapping[str, Any], base_dir: Path | None = None) -> BridgeConfig:
    """A config from data already in hand (tests, tools); relative paths anchor at base_dir."""
    context = None if base_dir is None else {"base_dir": Path(base_dir)}
    return BridgeConfig.model_validate(dict(data), context=context)


def _with_platform_kind(doc: YamlDocument) -> YamlDocument:
    """Let errors inside the platform block find their line: pydantic puts the union's tag in
    the location (``platform.bilibili_open.app_id``), which is not a key of the file."""
    platform = doc.data.get("platform")
    kind = platform.get("kind") if isinstance(platform, dict) else None
    if not isinstance(kind, str):
        return doc
    lines: dict[Loc, int] = dict(doc.lines)
    for loc, line in doc.lines.items():
        if loc[:1] == ("platform",):
            lines[("platform", kind, *loc[1:])] = line
    return YamlDocument(path=doc.path, data=doc.data, lines=lines)
