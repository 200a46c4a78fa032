"""The engine's scene in OBS: a Media Source reading the stream, a caption, a lower third.

`SceneKeeper.ensure` is idempotent and cheap when nothing is missing (two requests), so it
runs on every stats poll: whatever a person deleted (the scene, an input, an item) comes back,
and duplicates of our items in the scene are removed. Inputs are found by name across all of
OBS, so an input a person moved to another scene is added to ours, never created twice.

Text sources differ by platform (FreeType on Linux and macOS, GDI+ on Windows); the kind is
chosen from what this OBS offers, with a font that has Chinese glyphs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from anchor.config import ObsConfig
from anchor.media.safearea import SafeArea
from anchor.obs.session import ObsError, ObsSession

log = logging.getLogger(__name__)

MEDIA_KIND = "ffmpeg_source"
MEDIA_FFMPEG_OPTIONS = "fpsprobesize=0"
IMAGE_KIND = "image_source"
FREETYPE_TEXT = "text_ft2_source"
GDIPLUS_TEXT = "text_gdiplus"
FREETYPE_FACE = "WenQuanYi Micro Hei"
GDIPLUS_FACE = "Microsoft YaHei"
ALREADY_EXISTS = 601  # obs-websocket RequestStatus::ResourceAlreadyExists
ALIGN_TOP_LEFT = 5  # OBS_ALIGN_LEFT | OBS_ALIGN_TOP
ALIGN_BOTTOM_CENTER = 8  # OBS_ALIGN_BOTTOM, centred horizontally
WHITE = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Canvas:
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Wanted:
    """One input our scene must hold, how to create it and where it sits."""

    name: str
    kind: str
    settings: dict[str, Any]
    transform: dict[str, Any]
    bottom: bool = False  # the picture goes under the texts
    enabled: bool = True  # a card appears only while its answer airs


class SceneKeeper:
    """Makes OBS hold the engine's scene; call `prepare` once per connection, then `ensure`."""

    def __init__(
        self, config: ObsConfig, media_url: str, safe_area: SafeArea | None = None
    ) -> None:
        self._config = config
        self._media_url = media_url
        self._safe = safe_area if safe_area is not None and safe_area.covered else None
        # Where the renderer's card area is, as (x, y, w, h) of a stream of (width, height).
        self.card_area: tuple[tuple[int, int, int, int], tuple[int, int]] | None = None
        self._canvas = Canvas(1280, 720)
        self._text_kind = f"{FREETYPE_TEXT}_v2"

    async def prepare(self, session: ObsSession) -> None:
        """Learn this OBS's canvas and text kind; make the media input (re)open our stream."""
        video = await session.request("GetVideoSettings")
        self._canvas = Canvas(int(video["baseWidth"]), int(video["baseHeight"]))
        kinds = (await session.request("GetInputKindList"))["inputKinds"]
        self._text_kind = pick_text_kind(kinds)
        await self._reopen_media(session)

    @property
    def media_settings(self) -> dict[str, Any]:
        """Our MPEG-TS, read live: reconnect quickly, buffer little, keep the last frame.

        OBS's player starts on the first keyframe and then plays, in real time, everything it
        read since it opened the stream, so whatever delays its start stays as a delay. Two
        settings keep that short: FFmpeg's stream analysis stops as soon as both codecs are
        known (``fpsprobesize=0``: no 20 frames, ~0.7 s, counted to guess a frame rate that
        OBS does not use, since it plays by timestamps), and the source keeps playing when
        its scene is hidden (``restart_on_activate`` off), so showing the scene again neither
        blanks the picture nor replays what waited in the socket meanwhile."""
        return {
            "is_local_file": False,
            "input": self._media_url,
            "input_format": "mpegts",
            "ffmpeg_options": MEDIA_FFMPEG_OPTIONS,
            "restart_on_activate": False,
            "reconnect_delay_sec": 1,
            "buffering_mb": 1,
            "hw_decode": False,
            "close_when_inactive": False,
            "clear_on_media_end": False,
        }

    async def ensure(self, session: ObsSession, texts: dict[str, str]) -> list[str]:
        """Create what is missing, drop duplicate items; returns the names of inputs created.

        `texts` gives the text a text input is created with (input name → text).
        """
        config = self._config
        scenes = (await session.request("GetSceneList"))["scenes"]
        if config.scene not in {scene["sceneName"] for scene in scenes}:
            log.info("creating the OBS scene %r", config.scene)
            await _ignore_existing(session.request("CreateScene", {"sceneName": config.scene}))
        items = (await session.request("GetSceneItemList", {"sceneName": config.scene}))[
            "sceneItems"
        ]
        inputs: dict[str, str] | None = None
        created: list[str] = []
        for wanted in self._wanted(texts):
            ours = [item for item in items if item["sourceName"] == wanted.name]
            for duplicate in ours[1:]:
                log.info("removing a duplicate of %r from the OBS scene", wanted.name)
                await session.request(
                    "RemoveSceneItem",
                    {"sceneName": config.scene, "sceneItemId": duplicate["sceneItemId"]},
                )
            if ours:
                continue
            if inputs is None:
                listed = (await session.request("GetInputList"))["inputs"]
                inputs = {entry["inputName"]: entry["inputKind"] for entry in listed}
            if await self._place(session, wanted, inputs.get(wanted.name)):
                created.append(wanted.name)
        return created

    async def show_program(self, session: ObsSession) -> None:
        await session.request("SetCurrentProgramScene", {"sceneName": self._config.scene})

    async def _place(self, session: ObsSession, wanted: Wanted, existing_kind: str | None) -> bool:
        """Put `wanted` in our scene; True when the input itself was created."""
        scene = self._config.scene
        if existing_kind is None:
            log.info("creating the OBS input %r (%s)", wanted.name, wanted.kind)
            data = await session.request(
                "CreateInput",
                {
                    "sceneName": scene,
                    "inputName": wanted.name,
                    "inputKind": wanted.kind,
                    "inputSettings": wanted.settings,
                    "sceneItemEnabled": wanted.enabled,
                },
            )
        elif not _same_kind(existing_kind, wanted.kind):
            raise ObsError(
                "CreateSceneItem",
                None,
                f"an input named {wanted.name!r} exists with kind {existing_kind!r}, "
                f"not {wanted.kind!r}; rename it or change the name in the config",
            )
        else:
            log.info("adding the existing OBS input %r to the scene %r", wanted.name, scene)
            data = await session.request(
                "CreateSceneItem",
                {"sceneName": scene, "sourceName": wanted.name, "sceneItemEnabled": wanted.enabled},
            )
        item = {"sceneName": scene, "sceneItemId": data["sceneItemId"]}
        await session.request(
            "SetSceneItemTransform", {**item, "sceneItemTransform": wanted.transform}
        )
        if wanted.bottom:
            await session.request("SetSceneItemIndex", {**item, "sceneItemIndex": 0})
        return existing_kind is None

    async def _reopen_media(self, session: ObsSession) -> None:
        """Make an existing media input read our stream, and open it anew.

        New settings (even the same ones) make OBS reopen the Media Source, which then starts
        on the keyframe the engine sends when OBS says it opened (see `ObsController`), rather
        than keeping the delay it had when it opened the stream before we were connected.
        """
        try:
            current = (
                await session.request("GetInputSettings", {"inputName": self._config.media_input})
            )["inputSettings"]
        except ObsError as exc:
            if exc.code == 600:  # ResourceNotFound: ensure() creates it
                return
            raise
        wanted = self.media_settings
        if any(current.get(key) != value for key, value in wanted.items()):
            log.info("pointing the OBS input %r at the engine's stream", self._config.media_input)
        await session.request(
            "SetInputSettings",
            {"inputName": self._config.media_input, "inputSettings": wanted, "overlay": True},
        )

    def _wanted(self, texts: dict[str, str]) -> list[Wanted]:
        config, canvas = self._config, self._canvas
        wanted = [
            Wanted(
                config.media_input,
                MEDIA_KIND,
                self.media_settings,
                {
                    "positionX": 0.0,
                    "positionY": 0.0,
                    "alignment": ALIGN_TOP_LEFT,
                    "boundsType": "OBS_BOUNDS_SCALE_INNER",
                    "boundsAlignment": 0,
                    "boundsWidth": float(canvas.width),
                    "boundsHeight": float(canvas.height),
                },
                bottom=True,
            ),
            Wanted(
                config.caption_input,
                self._text_kind,
                self._text_settings(texts.get(config.caption_input, ""), 0.055, 0.9, "center"),
                self._bottom_centre(*self._clear(0.03, 0.66, 0.94, 0.30, 0.16)),
            ),
        ]
        if config.lower_third_input:
            wanted.append(
                Wanted(
                    config.lower_third_input,
                    self._text_kind,
                    self._text_settings(texts.get(config.lower_third_input, ""), 0.04, 0.6, "left"),
                    self._top_left(*self._clear(0.03, 0.04, 0.62, 0.20, 0.10)),
                )
            )
        if config.card_input:
            wanted.append(
                Wanted(
                    config.card_input,
                    IMAGE_KIND,
                    {"file": "", "unload": False},
                    self._card_transform(),
                    enabled=False,
                )
            )
        return wanted

    async def set_card(self, session: ObsSession, path: str) -> None:
        """Show the card image at `path` ("" hides the card)."""
        name, scene = self._config.card_input, self._config.scene
        assert name is not None  # called only with a card input configured
        if path:
            await session.request(
                "SetInputSettings",
                {"inputName": name, "inputSettings": {"file": path}, "overlay": True},
            )
        item = await session.request("GetSceneItemId", {"sceneName": scene, "sourceName": name})
        await session.request(
            "SetSceneItemEnabled",
            {
                "sceneName": scene,
                "sceneItemId": item["sceneItemId"],
                "sceneItemEnabled": bool(path),
            },
        )

    def _card_transform(self) -> dict[str, Any]:
        """Over the card area of the picture, as OBS scales the stream onto its canvas."""
        canvas = self._canvas
        if self.card_area is None:  # no card area known: the right half, as in 16:9
            box, stream = (742, 196, 470, 364), (1280, 720)
        else:
            box, stream = self.card_area
        scale = min(canvas.width / stream[0], canvas.height / stream[1])
        x, y, w, h = box
        return {
            "positionX": x * scale,
            "positionY": y * scale,
            "alignment": ALIGN_TOP_LEFT,
            "boundsType": "OBS_BOUNDS_SCALE_INNER",
            "boundsAlignment": ALIGN_TOP_LEFT,
            "boundsWidth": w * scale,
            "boundsHeight": h * scale,
        }

    def _clear(
        self, x: float, y: float, w: float, h: float, tight_h: float
    ) -> tuple[float, float, float, float]:
        """A text's area (fractions of the canvas) in canvas pixels, clear of what the
        platform's app covers. With covered areas the area is only as tall as two lines
        (`tight_h`), so it fits between them; it stays where it was when nothing covers it."""
        width, height = self._canvas.width, self._canvas.height
        if self._safe is None:
            return x * width, y * height, w * width, h * height
        bottom = y + h
        box = (round(x * width), round((bottom - tight_h) * height))
        fitted = self._safe.fit(
            (box[0], box[1], round(w * width), round(tight_h * height)), width, height
        )
        return float(fitted[0]), float(fitted[1]), float(fitted[2]), float(fitted[3])

    @staticmethod
    def _bottom_centre(x: float, y: float, w: float, h: float) -> dict[str, Any]:
        return {
            "positionX": x + w / 2,
            "positionY": y + h,
            "alignment": ALIGN_BOTTOM_CENTER,
            "boundsType": "OBS_BOUNDS_MAX_ONLY",
            "boundsAlignment": ALIGN_BOTTOM_CENTER,
            "boundsWidth": w,
            "boundsHeight": h,
        }

    @staticmethod
    def _top_left(x: float, y: float, w: float, h: float) -> dict[str, Any]:
        return {
            "positionX": x,
            "positionY": y,
            "alignment": ALIGN_TOP_LEFT,
            "boundsType": "OBS_BOUNDS_MAX_ONLY",
            "boundsAlignment": ALIGN_TOP_LEFT,
            "boundsWidth": w,
            "boundsHeight": h,
        }

    def _text_settings(self, text: str, size: float, width: float, align: str) -> dict[str, Any]:
        """Legible over any picture: white with a dark outline (and a shadow or a backdrop)."""
        canvas = self._canvas
        font_size = max(12, round(canvas.height * size))
        wrap_width = round(canvas.width * width)
        if self._text_kind.startswith(GDIPLUS_TEXT):
            return {
                "text": text,
                "font": {"face": GDIPLUS_FACE, "size": font_size, "style": "Regular", "flags": 0},
                "outline": True,
                "outline_size": max(2, font_size // 12),
                "outline_color": 0xFF000000,
                "bk_color": 0xFF000000,
                "bk_opacity": 40,
                "align": align,
                "extents": True,
                "extents_cx": wrap_width,
                "extents_cy": font_size * 3,
                "extents_wrap": True,
            }
        return {
            "text": text,
            "font": {"face": FREETYPE_FACE, "size": font_size, "style": "Regular", "flags": 0},
            "outline": True,
            "drop_shadow": True,
            "color1": WHITE,
            "color2": WHITE,
            "antialiasing": True,
            "word_wrap": True,
            "custom_width": wrap_width,
        }


def pick_text_kind(kinds: list[str]) -> str:
    """The newest FreeType text kind if this OBS has one, else the newest GDI+ one."""
    for family in (FREETYPE_TEXT, GDIPLUS_TEXT):
        versions = sorted(kind for kind in kinds if kind.startswith(family))
        if versions:
            return versions[-1]
    raise ObsError("GetInputKindList", None, "this OBS has no FreeType or GDI+ text source")


def _same_kind(existing: str, wanted: str) -> bool:
    """``text_ft2_source_v2`` and ``text_ft2_source`` are the same source, other versions."""
    return existing.rsplit("_v", 1)[0] == wanted.rsplit("_v", 1)[0]


async def _ignore_existing(request: Awaitable[object]) -> None:
    try:
        await request
    except ObsError as exc:
        if exc.code != ALREADY_EXISTS:
            raise
