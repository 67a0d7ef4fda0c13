"""Zoom's signature scheme, checked against an independent HMAC computation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from zoom_qss_exporter.ingest.signature import (
    SignatureError,
    sign_headers,
    url_validation_token,
    verify_signature,
)

BODY = b'{"event":"meeting.participant_qos"}'


def zoom_signature(token: str, ts: str, body: bytes) -> str:
    message = f"v0:{ts}:".encode() + body
    return "v0=" + hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def test_sign_headers_matches_zoom_scheme() -> None:
    headers = sign_headers("secret", 1700000000, BODY)
    assert headers["x-zm-request-timestamp"] == "1700000000"
    assert headers["x-zm-signature"] == zoom_signature("secret", "1700000000", BODY)


def test_verify_returns_the_matching_token() -> None:
    sig = zoom_signature("b", "1700000000", BODY)
    assert verify_signature(BODY, "1700000000", sig, ["a", "b"], 1700000000, 300) == "b"


@pytest.mark.parametrize(
    ("ts", "sig", "message"),
    [
        (None, "v0=00", "missing x-zm-request-timestamp"),
        ("1700000000", None, "missing x-zm-signature"),
        ("17e8", "v0=00", "not a Unix time"),
        ("1699999000", zoom_signature("a", "1699999000", BODY), "replay window"),
        ("1700000000", "v0=" + "0" * 64, "does not match"),
        ("1700000000", "v0=ünïcode", "does not match"),
    ],
)
def test_refusals_say_why(ts: str | None, sig: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_signature(BODY, ts, sig, ["a"], 1700000000, 300)


def test_url_validation_token() -> None:
    expected = hmac.new(b"tok", b"plain", hashlib.sha256).hexdigest()
    assert url_validation_token("tok", "plain") == expected
