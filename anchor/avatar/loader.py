"""Loading an avatar pack from its folder: the manifest picks the reader by its `kind`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from anchor.avatar.manifest import ManifestFields, kind_of
from anchor.avatar.pack import MANIFEST, AvatarError, AvatarPack
from anchor.avatar.photo import load_photo_pack
from anchor.avatar.sprite import load_sprite_pack

_READERS: dict[str, Callable[[Path, ManifestFields], AvatarPack]] = {
    "sprite": load_sprite_pack,
    "photo": load_photo_pack,
}


def load_pack(directory: str | Path) -> AvatarPack:
    """Read and validate the pack in `directory`; raise `AvatarError` on any defect."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise AvatarError(f"{manifest_path}: no such file (an avatar pack needs {MANIFEST})")
    try:
        data = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AvatarError(f"{manifest_path}: cannot read manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise AvatarError(f"{manifest_path}: expected a mapping of keys, got {kind_of(data)}")
    fields = ManifestFields(manifest_path, data)
    kind = fields.text("kind")
    reader = _READERS.get(kind)
    if reader is None:
        raise AvatarError(
            f"{manifest_path}: kind: unknown kind {kind!r} (supported: {', '.join(_READERS)})"
        )
    return reader(directory, fields)
