"""The host's picture: avatar packs on disk and the renderer that animates them.

`load_pack` reads a pack folder (sprite or photo kind) into an `AvatarPack`; `AvatarRenderer`
draws frame n of it with a given mouth; `captions` draws the subtitle band; `rig` turns a face
photo into a pack (optional extra `[rig]`); `preview` renders a contact sheet or a clip.
"""

from anchor.avatar.loader import load_pack
from anchor.avatar.pack import AvatarError, AvatarPack
from anchor.avatar.renderer import AvatarRenderer

__all__ = ["AvatarError", "AvatarPack", "AvatarRenderer", "load_pack"]
