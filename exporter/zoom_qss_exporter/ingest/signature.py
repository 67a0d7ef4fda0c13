"""Zoom webhook signatures: ``x-zm-signature: v0=hex(HMAC-SHA256(token, "v0:ts:body"))``.

Zoom signs the raw request bytes, so verification must run on the body exactly as received,
before anything parses it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"


class SignatureError(Exception):
    """The request is not provably from Zoom; the message says why (safe to show the client)."""


def compute_signature(token: str, timestamp: str, body: bytes) -> str:
    message = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(token.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_headers(token: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers Zoom would send with ``body``; used by the simulator and the tests."""
    ts = str(timestamp)
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: compute_signature(token, ts, body)}


def verify_signature(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    tokens: Sequence[str],
    now: float,
    window: float,
) -> str:
    """Return the secret token that signed ``body``, or raise :class:`SignatureError`.

    Every token is tried (rotation) and each comparison is constant-time, so neither the
    answer nor its timing tells an attacker how close a guess was.
    """
    timestamp, signature = check_headers(timestamp, signature, now, window)
    given = signature.encode("ascii")
    matched: str | None = None
    for token in tokens:
        expected = compute_signature(token, timestamp, body).encode("ascii")
        if hmac.compare_digest(expected, given) and matched is None:
            matched = token
    if matched is None:
        raise SignatureError("signature does not match")
    return matched


def check_headers(
    timestamp: str | None, signature: str | None, now: float, window: float
) -> tuple[str, str]:
    """What can be refused from the headers alone, before the body is read: missing or
    malformed headers, and a timestamp outside the replay window."""
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a Unix time in seconds")
    if abs(now - int(timestamp)) > window:
        raise SignatureError(f"{TIMESTAMP_HEADER} is outside the replay window of {window:g} s")
    if not signature.isascii() or len(signature) != _SIGNATURE_LENGTH:
        raise SignatureError("signature does not match")
    return timestamp, signature


_SIGNATURE_LENGTH = len("v0=") + 64  # hex of SHA-256


def url_validation_token(token: str, plain_token: str) -> str:
    """``encryptedToken`` of the ``endpoint.url_validation`` challenge."""
    return hmac.new(token.encode("utf-8"), plain_token.encode("utf-8"), hashlib.sha256).hexdigest()
