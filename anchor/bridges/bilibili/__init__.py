"""Bilibili live chat for a bridge: the open platform (preferred) and the web protocol.

`OpenPlatformClient` needs the streamer's 身份码 and an open-platform app's keys and gives
real names; `WebRoomClient` needs only a room number and sees masked names. Both map what
they receive to `anchor.bridges.chat.ChatEvent`, await it into the bridge's sink, reconnect
with capped back-off, and are stopped by cancelling ``run()``.
"""

from anchor.bridges.bilibili.errors import BilibiliError, SettingError
from anchor.bridges.bilibili.live_socket import Timings
from anchor.bridges.bilibili.openplatform import OpenPlatformClient
from anchor.bridges.bilibili.webroom import WebRoomClient

__all__ = ["BilibiliError", "OpenPlatformClient", "SettingError", "Timings", "WebRoomClient"]
