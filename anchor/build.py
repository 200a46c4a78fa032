"""Building a channel's parts from its config: each builder takes what it needs and no more.

The daemon decides the order and owns the parts; here is only how each one is made: where the
speech cache lives, which encoder a destination gets, what OBS's Media Source opens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from anchor.avatar.captions import CaptionFontError, find_cjk_font
from anchor.avatar.layout import describe_sizes, fits, layout_name
from anchor.avatar.loader import load_pack, pack_layout_sizes
from anchor.avatar.renderer import AvatarRenderer
from anchor.config import Config, ConfigError, secret_from_env
from anchor.links.mqtt import MqttLink
from anchor.media.clock import MediaClock
from anchor.media.encoder import EncoderSettings, ReconnectingEncoder, StreamEncoder
from anchor.media.output import OutputTarget
from anchor.media.safearea import SafeArea
from anchor.moderation import Moderator, PublicData
from anchor.obs.controller import ObsController
from anchor.redact import redact_url
from anchor.sites.card import CardPainter
from anchor.sites.dataset import load_configured, seed_sites, stored_sites
from anchor.sites.desk import SiteDesk
from anchor.sites.gazetteer import load_gazetteer
from anchor.sites.model import Site
from anchor.sites.outline import load_outline
from anchor.speech.cache import SynthesisCache
from anchor.speech.chain import VoiceChain
from anchor.speech.registry import build_voice
from anchor.speech.speaker import Speaker
from anchor.store.database import Store
from anchor.yamlsource import SourceError, load_yaml

log = logging.getLogger(__name__)


def link(config: Config, status: Callable[[], dict[str, Any]]) -> MqttLink | None:
    """The broker link, or None when the config names no broker."""
    mqtt = config.mqtt
    if not mqtt.host:
        return None
    return MqttLink(
        mqtt, config.channel, password=secret_from_env(mqtt.password_env), status=status
    )


def obs(config: Config, output: OutputTarget) -> ObsController | None:
    settings = config.obs
    if not settings.enabled:
        return None
    return ObsController(
        settings,
        password=secret_from_env(settings.password_env),
        media_url=media_url_for_obs(config, output),
        safe_area=safe_area(config),
    )


def media_url_for_obs(config: Config, output: OutputTarget) -> str:
    """What OBS's Media Source opens: the engine's own UDP destination without its options,
    unless the config names it (an SRT listener, another machine)."""
    if config.obs.media_url:
        return config.obs.media_url
    url = output.url
    return url.split("?", 1)[0] if url.startswith("udp://") else url


def speech_cache(config: Config) -> SynthesisCache | None:
    """Sentences already synthesized, kept next to the store unless the config says where."""
    speech = config.speech
    if speech.cache_max_mb == 0:
        return None
    directory = speech.cache_dir or Path(config.store.path).parent / "speech-cache"
    return SynthesisCache(directory, speech.cache_max_mb * 1024 * 1024)


async def voice(config: Config, cache: SynthesisCache | None) -> VoiceChain:
    """The configured voice and its fallbacks; raises ConfigError naming the profile's file."""
    return await build_voice(
        config.voices_dir, config.voice, cache, retry_after=config.speech.voice_retry_seconds
    )


def speaker(config: Config, voice: VoiceChain) -> Speaker:
    speech = config.speech
    return Speaker(
        voice,
        sample_rate=config.audio.sample_rate,
        sentence_gap=speech.sentence_gap,
        max_sentence_seconds=speech.max_sentence_seconds,
        loudness_lufs=speech.loudness_lufs,
    )


def renderer(config: Config) -> AvatarRenderer:
    """Blocking (decodes and precomposes the pack's images): call it off the event loop."""
    pack = load_pack(Path(config.avatars_dir) / config.avatar)
    return AvatarRenderer(
        pack,
        config.video.width,
        config.video.height,
        fps=config.video.fps,
        caption_font=str(config.captions.font) if config.captions.font else None,
        captions=config.captions.enabled,
        safe_area=safe_area(config),
    )


def safe_area(config: Config) -> SafeArea:
    return SafeArea.preset(config.video.safe_area, config.video.covered)


def check_avatar_fits(config: Config, source: Path | None) -> None:
    """Refuse a picture size the avatar pack has no layout for, naming the keys to change.

    Reads only the pack's manifest, so `anchor run` fails in a moment with a message rather
    than after the voice and the store have started."""
    sizes = pack_layout_sizes(Path(config.avatars_dir) / config.avatar)
    width, height = config.video.width, config.video.height
    if any(fits(size, width, height) for _, size in sizes):
        return
    message = (
        f"{width}x{height} ({layout_name(width, height)}): the avatar pack "
        f"{config.avatar!r} has no layout for this shape; sizes that work: "
        f"{describe_sizes(sizes)}"
    )
    if source is None:
        raise ConfigError([f"video.width, video.height: {message}"])
    document = load_yaml(source)
    raise ConfigError([document.error(("video", "width"), f"(and video.height) {message}")])


def encoder(
    config: Config, output: OutputTarget, clock: MediaClock
) -> StreamEncoder | ReconnectingEncoder:
    """Files fail loudly; a network peer may come and go, so its output reconnects."""
    settings = EncoderSettings.from_config(config.video, config.audio)

    def make() -> StreamEncoder:
        return StreamEncoder(output, clock, settings)

    if output.is_file:
        return make()
    return ReconnectingEncoder(make, label=redact_url(output.url))


@dataclass(frozen=True, slots=True)
class SitesOnAir:
    """What answering "where is the nearest 驿站" needs: the desk that reads and answers the
    question, the painter of its map card, and what the sites publish (phones, addresses)."""

    desk: SiteDesk
    painter: CardPainter
    public: PublicData


async def sites(
    config: Config,
    store: Store | None,
    timezone: ZoneInfo,
    moderator: Moderator | None = None,
) -> SitesOnAir | None:
    """The channel's service sites, or None (turned off, or none to name: said in the log).

    At start the configured file is imported when the store holds no sites yet; a broken file
    or gazetteer is reported and the show goes on without sites (the knowledge base still
    answers), rather than not starting at all. Without a store (`anchor ask`), the sites are
    the ones last imported into the channel's store if it has any, else the configured file.

    With a `moderator`, the sites' phones and addresses are published to it (read out, not
    masked), and a site whose name or address it would not let on air is left out: the map
    card shows names without passing the line-by-line screening that speech does."""
    settings = config.sites
    if not settings.enabled:
        return None
    try:
        if store is None:
            on_air = await _sites_offline(config)
        else:
            imported = await seed_sites(store, settings)
            if imported:
                log.info("sites: %d imported from %s", imported, settings.path)
            on_air = await stored_sites(store)
        gazetteer = await asyncio.to_thread(load_gazetteer, settings.gazetteer)
        outline = (
            []
            if settings.outline is None
            else await asyncio.to_thread(load_outline, settings.outline, settings.datum)
        )
    except SourceError as exc:
        log.error("sites are off the air: %s", exc)
        return None
    if not on_air:
        log.warning("sites: none in the store; import some with: anchor sites import FILE")
        return None
    try:
        font = Path(config.captions.font) if config.captions.font else find_cjk_font()
    except CaptionFontError as exc:
        log.error("sites are off the air: %s", exc)
        return None
    if any(site.sample for site in on_air):
        log.warning("sites: %d sites on air are SAMPLE data (fictional)", len(on_air))
    public = PublicData.of(
        (site.phone for site in on_air if site.phone), (site.address for site in on_air)
    )
    if moderator is not None:
        moderator.publish(public)
        on_air = await asyncio.to_thread(_screened, moderator, on_air)
        if not on_air:
            return None
    painter = CardPainter(font, towns=gazetteer.towns, outline=outline)
    return SitesOnAir(SiteDesk(on_air, gazetteer, timezone), painter, public)


def _screened(moderator: Moderator, sites: list[Site]) -> list[Site]:
    """The sites whose name, town and address pass moderation unchanged; the rest logged."""
    kept = []
    for site in sites:
        text = f"{site.name}，{site.town}，{site.address}"
        screening = moderator.screen(text)
        if screening.allowed and screening.text == text:
            kept.append(site)
        else:
            log.warning(
                "site %s left off the air: its name or address %s",
                site.id,
                "holds a listed word" if not screening.allowed else "holds personal data",
            )
    return kept


async def _sites_offline(config: Config) -> list[Site]:
    path = Path(config.store.path)
    if await asyncio.to_thread(path.is_file):
        async with await Store.open(path) as store:
            found = await stored_sites(store)
        if found:
            return found
    return list(await asyncio.to_thread(lambda: load_configured(config.sites).sites))
