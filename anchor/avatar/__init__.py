"""The host's picture: avatar packs on disk and the renderer that animates them."""

from anchor.avatar.pack import AvatarError, AvatarPack
from anchor.avatar.renderer import AvatarRenderer

__all__ = ["AvatarError", "AvatarPack", "AvatarRenderer"]
