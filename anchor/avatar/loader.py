"""Loading an avatar pack from its folder: the manifest picks the reader by its `kind`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from anchor.avatar.layout import declared_sizes
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
    fields, kind = _manifest(directory)
    return _READERS[kind](directory, fields)


def pack_layout_sizes(directory: str | Path) -> list[tuple[str, tuple[int, int]]]:
    """(name, canvas size) of each of the pack's layouts, from its manifest alone: quick."""
    fields, kind = _manifest(Path(directory))
    return declared_sizes(fields, kind)


def _manifest(directory: Path) -> tuple[ManifestFields, str]:
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
    if kind not in _READERS:
        raise AvatarError(
            f"{manifest_path}: kind: unknown kind {kind!r} (supported: {', '.join(_READERS)})"
        )
    return fields, kind
