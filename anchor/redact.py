"""Secrets out of what is printed: URLs are logged and shown only with their secrets masked.

A stream key in an RTMP path, a password in a URL's user part or an SRT passphrase in its query
would otherwise reach the log, the status topic and the operator's screen.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_QUERY_KEYS = {"passphrase", "streamid", "key", "token", "password", "secret", "auth"}


def redact_url(url: str) -> str:
    """The URL with passwords, RTMP stream keys and secret parameters masked, safe to log."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    path = parts.path
    if parts.scheme.startswith("rtmp") and path.count("/") >= 2:
        path = path.rsplit("/", 1)[0] + "/***"
    query = urlencode(
        [
            (key, "***" if key.lower() in _SECRET_QUERY_KEYS else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))
