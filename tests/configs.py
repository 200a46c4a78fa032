"""Channel configs for tests: the project's own schedule, avatar, voice, knowledge and word list,
with the store and anything extra in the test's temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from anchor.config import DEFAULT_WORDLISTS

ROOT = Path(__file__).resolve().parent.parent
# One vector cache for every engine the tests start: the shipped FAQ is embedded once per
# machine, not once per test (the cache is keyed by content, so sharing it is safe).
KB_VECTORS = Path(tempfile.gettempdir()) / "anchor-tests-kb-vectors"


def write_config(
    tmp_path: Path,
    *,
    width: int = 320,
    height: int = 180,
    schedule: Path | None = None,
    avatars_dir: Path | None = None,
    safe_area: str = "none",
    console: str = "{listen: '127.0.0.1:0'}",
    knowledge: Path | None = None,
    extra: str = "",
) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"schedule: {schedule or ROOT / 'schedules' / 'union-demo.yaml'}\n"
        f"avatars_dir: {avatars_dir or ROOT / 'avatars'}\n"
        f"voices_dir: {ROOT / 'voices'}\n"
        f"knowledge: {{path: {knowledge or ROOT / 'knowledge' / 'union-faq.yaml'}, "
        f"vector_cache_dir: {KB_VECTORS}}}\n"
        f"sites: {{path: {ROOT / 'sites' / 'sample-zhongshan.csv'}}}\n"
        f"moderation: {{wordlists: [{', '.join(str(ROOT / p) for p in DEFAULT_WORDLISTS)}]}}\n"
        f"store: {{path: {tmp_path / 'anchor.db'}}}\n"
        f"console: {console}\n"
        f"video: {{width: {width}, height: {height}, fps: 30, safe_area: {safe_area}}}\n" + extra,
        encoding="utf-8",
    )
    return config
