"""Pick a voice backend by the engine name a voice profile gives.

Backends are imported only when chosen, so an optional engine's missing dependency only
matters to the channels that ask for it. Each backend class builds itself from the profile
with a `from_profile(profile)` classmethod, because each engine reads different fields.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Any

from anchor.speech.base import Voice

ENGINES = MappingProxyType(
    {
        "pyttsx3": "anchor.speech.pyttsx3_voice:Pyttsx3Voice",
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
    voice_class = getattr(importlib.import_module(module_name), class_name)
    return voice_class.from_profile(profile)
