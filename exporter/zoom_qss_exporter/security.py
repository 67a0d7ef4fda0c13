"""Defences of the HTTP interface: a rate limit on requests that fail the signature check, and
optional authentication of ``/metrics``.

The rate limit counts only *failures*, per client address, so Zoom's genuine deliveries are
never refused because of someone else's guesses: a request over the limit is still verified
and, when its signature holds, handled as usual.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field, replace
from pathlib import Path

MAX_CLIENTS = 65_536  # buckets kept at once; past it full ones go, then all (memory first)
KEY_LENGTH = 64  # characters of a client address kept: X-Forwarded-For may hold any text


class RateLimiter:
    """A token bucket per client address: ``rate`` failures per second, ``burst`` at once."""

    __slots__ = ("_buckets", "burst", "max_clients", "rate")

    def __init__(self, rate: float, burst: float = 0.0, max_clients: int = MAX_CLIENTS) -> None:
        self.rate = rate
        self.burst = burst or max(1.0, 2.0 * rate)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def _tokens(self, client: str, now: float) -> float:
        bucket = self._buckets.get(client)
        if bucket is None:
            return self.burst
        tokens, when = bucket
        return min(self.burst, tokens + max(0.0, now - when) * self.rate)

    def exhausted(self, client: str, now: float) -> bool:
        """Whether ``client`` has used up its failures for now."""
        return self._tokens(client[:KEY_LENGTH], now) < 1.0

    def charge(self, client: str, now: float) -> None:
        """Record one failure of ``client``."""
        client = client[:KEY_LENGTH]
        tokens = max(0.0, self._tokens(client, now) - 1.0)
        bucket = self._buckets.get(client)
        if bucket is None and len(self._buckets) >= self.max_clients:
            self._prune(now)
        # a charge dated before the bucket's last one must not move its clock back: the
        # refill since then would be granted twice
        self._buckets[client] = (tokens, now if bucket is None else max(now, bucket[1]))

    def _prune(self, now: float) -> None:
        full = [c for c in self._buckets if self._tokens(c, now) >= self.burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:  # addresses sprayed faster than they refill
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


class MetricsAuthError(ValueError):
    """A credentials file of /metrics cannot be read or is empty."""


@dataclass(frozen=True, slots=True)
class MetricsAuth:
    """Credentials ``/metrics`` accepts: a bearer token, a user name and password, or both.
    The settings name the files; :meth:`load` reads them when the app is built."""

    bearer_token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    bearer_token_file: str = ""
    password_file: str = ""

    def load(self) -> MetricsAuth:
        """These credentials with the files' contents read in."""
        return replace(
            self,
            bearer_token=_read_secret(self.bearer_token_file) or self.bearer_token,
            password=_read_secret(self.password_file) or self.password,
        )

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of a refusal."""
        scheme = "Basic" if self.username else "Bearer"
        return f'{scheme} realm="zoom-qss-exporter"'

    def allows(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value carries valid credentials; every
        comparison is constant-time."""
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "bearer" and self.bearer_token:
            return _same(credentials, self.bearer_token)
        if scheme == "basic" and self.username:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
                return False
            user, sep, password = decoded.partition(":")
            # both compared, always, so the time taken does not tell which one was wrong
            same_user = _same(user, self.username)
            same_password = _same(password, self.password)
            return bool(sep) and same_user and same_password
        return False


def _read_secret(path: str) -> str:
    if not path:
        return ""
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise MetricsAuthError(f"cannot read a credentials file of /metrics: {error}") from None
    if not secret:
        raise MetricsAuthError(f"credentials file {path} of /metrics is empty")
    return secret


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
