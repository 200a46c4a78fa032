"""The open platform's request signature.

Each request carries six ``x-bili-*`` headers; sorted by name and written ``name:value``, one
per line, they are the string that HMAC-SHA256 signs with the access key secret. The hex digest
goes in ``Authorization``. The content MD5 binds the signature to the exact body bytes, so the
caller must send the very bytes it signed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNED_HEADERS = (
    "x-bili-accesskeyid",
    "x-bili-content-md5",
    "x-bili-signature-method",
    "x-bili-signature-nonce",
    "x-bili-signature-version",
    "x-bili-timestamp",
)


def string_to_sign(headers: dict[str, str]) -> str:
    """The six signed headers, sorted by name, as ``name:value`` lines joined by newlines."""
    return "\n".join(f"{name}:{headers[name]}" for name in sorted(SIGNED_HEADERS))


def sign(
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Every header a signed request needs (nonce and timestamp are fixed only in tests)."""
    headers = {
        "x-bili-accesskeyid": access_key_id,
        "x-bili-content-md5": hashlib.md5(body).hexdigest(),
        "x-bili-signature-method": "HMAC-SHA256",
        "x-bili-signature-nonce": nonce if nonce is not None else secrets.token_hex(16),
        "x-bili-signature-version": "1.0",
        "x-bili-timestamp": str(timestamp if timestamp is not None else int(time.time())),
    }
    signature = hmac.new(
        access_key_secret.encode(), string_to_sign(headers).encode(), hashlib.sha256
    ).hexdigest()
    return {
        **headers,
        "Authorization": signature,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
