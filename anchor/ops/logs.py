"""Where the daemon's log goes: a readable console, and optionally a bounded, rotated file.

A channel runs for months, so a log file must never grow without bound: the file rotates at
`max_mb` and keeps `backups` old files. JSON lines suit a log shipper (one object per line:
ts, level, logger, message, and any `extra=` fields a call added); text suits a person reading
the file directly. The console is always text. Secrets never reach the log in the first place:
URLs are masked where they are logged (`anchor.redact.redact_url`).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_MB = 1024 * 1024
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per record: ts (ISO 8601 UTC), level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(
    level: str = "INFO",
    *,
    file: Path | None = None,
    file_format: Literal["text", "json"] = "text",
    max_mb: float = 20.0,
    backups: int = 5,
    console: bool = True,
) -> None:
    """Configure the root logger: console text, plus a rotating file when `file` is given."""
    root = logging.getLogger()
    # Handlers added by an earlier call are replaced, not doubled (tests, a reloaded config).
    for handler in list(root.handlers):
        if getattr(handler, "_anchor_installed", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    handlers: list[logging.Handler] = []
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(TEXT_FORMAT))
        handlers.append(stream)
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            file, maxBytes=max(1, int(max_mb * _MB)), backupCount=backups, encoding="utf-8"
        )
        json_lines = file_format == "json"
        rotating.setFormatter(JsonLines() if json_lines else logging.Formatter(TEXT_FORMAT))
        handlers.append(rotating)
    for handler in handlers:
        handler._anchor_installed = True  # type: ignore[attr-defined]
        root.addHandler(handler)
