"""Optional authentication of ``/metrics`` (and the internal routes): basic auth or a bearer
token, compared in constant time, the secrets read from files."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field, replace
from pathlib import Path


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
