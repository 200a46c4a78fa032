"""Where the stream goes: a file, or a URL that OBS or a server reads.

One place decides the container for a destination, so the encoder never guesses: MPEG-TS for
files ending in .ts and for udp:// and srt:// (what OBS's Media Source reads), FLV for rtmp://,
MP4 and Matroska for those file types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from anchor.redact import redact_url

_FILE_FORMATS = {
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".mp4": "mp4",
    ".mkv": "matroska",
    ".flv": "flv",
}
_URL_FORMATS = {"udp": "mpegts", "srt": "mpegts", "rtmp": "flv", "rtmps": "flv"}


class OutputError(ValueError):
    """A destination the engine cannot stream to."""


@dataclass(frozen=True, slots=True)
class OutputTarget:
    url: str
    container: str
    is_file: bool

    @property
    def path(self) -> Path | None:
        return Path(self.url) if self.is_file else None

    def describe(self) -> str:
        """A line for the operator saying where to look at the stream."""
        if self.is_file:
            where = Path(self.url).resolve()
            return f"writing {self.container} to {where} (play it with ffplay or VLC)"
        scheme = urlsplit(self.url).scheme
        if scheme == "udp":
            return (
                f"streaming MPEG-TS to {self.url}: watch with `ffplay {self.url.split('?')[0]}` or "
                "an OBS Media Source (untick 'Local File', Input = this URL, Input Format = mpegts)"
            )
        return f"streaming {self.container} to {redact_url(self.url)}"

    @classmethod
    def parse(cls, destination: str) -> OutputTarget:
        text = destination.strip()
        if not text:
            raise OutputError("output: empty destination")
        parts = urlsplit(text)
        if parts.scheme and len(parts.scheme) > 1:  # a one-letter scheme is a Windows drive
            container = _URL_FORMATS.get(parts.scheme.lower())
            if container is None:
                known = ", ".join(f"{s}://" for s in _URL_FORMATS)
                raise OutputError(f"output: unsupported URL scheme {parts.scheme!r} (use {known})")
            if not parts.hostname:
                raise OutputError(f"output: {text!r} has no host")
            return cls(url=text, container=container, is_file=False)
        suffix = Path(text).suffix.lower()
        container = _FILE_FORMATS.get(suffix)
        if container is None:
            known = ", ".join(_FILE_FORMATS)
            raise OutputError(f"output: unsupported file type {suffix or '(none)'!r} (use {known})")
        return cls(url=text, container=container, is_file=True)
