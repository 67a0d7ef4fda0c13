"""How the exporter talks to a remote-write receiver: its settings, credentials and TLS, and
how a refusal is told apart (retry, or count by reason).

Credentials are read from their files on every request (a rotated Secret takes effect
without a restart, as in Prometheus) and never appear in a repr or a log line.
"""

from __future__ import annotations

import ssl
from collections.abc import Generator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from zoom_qss_exporter import __version__
from zoom_qss_exporter.remote.protocol import HEADERS

# Headers the protocol or the auth flags own (Prometheus refuses the same in its config).
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        *HEADERS,
        "Authorization",
        "Host",
        "Content-Length",
        "User-Agent",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "Transfer-Encoding",
    )
)


class ParticipantInfo(Enum):
    """``--remote-write.participant-info``: how ``zoom_participant_info`` is written
    (:mod:`.sink`, docs/remote-write.md)."""

    # The default: merged per replica as in the pull mode and refreshed by every event about
    # the participant, as the joins of the dashboards and rules need. Several replicas may
    # write differing label sets for one participant (each merges only what it received).
    MERGED = "merged"
    # Opt-in: each *_data / *_data_summary event's own metadata, written only at those events:
    # any number of replicas write exactly the same series.
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class RemoteWriteOptions:
    url: str
    bearer_token_file: str = ""
    basic_auth_username: str = ""
    basic_auth_password_file: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_insecure_skip_verify: bool = False
    timeout: float = 30.0
    queue_capacity: int = 500_000
    batch_size: int = 2000
    flush_interval: float = 1.0
    min_backoff: float = 0.25
    max_backoff: float = 10.0
    shutdown_timeout: float = 15.0
    retry_budget: float = 300.0  # seconds a batch answered 500 (and the like) is retried
    participant_info: ParticipantInfo = ParticipantInfo.MERGED

    def __repr__(self) -> str:  # no credentials or headers in logs and tracebacks
        return f"RemoteWriteOptions(url={redact(self.url)!r}, ...)"


class RemoteWriteError(Exception):
    """The remote-write settings cannot work (a credential file is unreadable, ...)."""


class _Credentials(httpx.Auth):
    """Bearer token or basic auth, read from their files on every request so that a rotated
    Secret takes effect without a restart (as Prometheus does)."""

    def __init__(self, options: RemoteWriteOptions) -> None:
        self.options = options

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        o = self.options
        if o.bearer_token_file:
            request.headers["Authorization"] = f"Bearer {_read(o.bearer_token_file)}"
        elif o.basic_auth_username:
            password = _read(o.basic_auth_password_file) if o.basic_auth_password_file else ""
            yield from httpx.BasicAuth(o.basic_auth_username, password).auth_flow(request)
            return
        yield request


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig").strip()  # with a BOM or without
    except OSError as error:
        raise RemoteWriteError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise RemoteWriteError(f"cannot read {path}: not UTF-8 text") from None


def check_options(options: RemoteWriteOptions) -> None:
    """Fail at start, with a message, on what would fail every request later."""
    for path in (options.bearer_token_file, options.basic_auth_password_file):
        if path:
            _read(path)
    if options.bearer_token_file and options.basic_auth_username:
        raise RemoteWriteError("give either a bearer token file or basic auth, not both")
    _ssl_context(options)


def _ssl_context(options: RemoteWriteOptions) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=options.tls_ca_file or None)
        if options.tls_cert_file:
            context.load_cert_chain(options.tls_cert_file, options.tls_key_file or None)
    except (OSError, ssl.SSLError) as error:
        raise RemoteWriteError(f"TLS settings: {error}") from None
    if options.tls_insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def redact(url: str) -> str:
    """The URL without user info or query (either may hold a credential)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def failure_reason(status: int, text: str) -> str:
    """A bounded label for a refusal no retry would change, from the receiver's answer
    (Prometheus, Mimir and Thanos spell these differently)."""
    lowered = text.lower().replace("-", " ").replace("_", " ")
    if status in (401, 403):
        return "unauthorized"
    if "out of order" in lowered:
        return "out_of_order"
    if "out of bounds" in lowered or "too old" in lowered:
        return "too_old"
    if "duplicate" in lowered or "same timestamp" in lowered:
        return "duplicate_timestamp"
    return "rejected"


# 5xx that mean "the engine is not there right now" (a proxy or load balancer in front of it,
# or the engine's own backpressure): retried without limit, like 429 and transport errors.
UNAVAILABLE = frozenset((502, 503, 504))


def hopeless(status: int, text: str) -> bool:
    """A 5xx that no retry can change: Prometheus answers 500 "too old sample" for samples
    older than its out-of-order window, and would answer it again forever."""
    return status >= 500 and failure_reason(status, text) == "too_old"


def new_client(options: RemoteWriteOptions) -> httpx.AsyncClient:
    headers = {**dict(options.headers), **HEADERS, "User-Agent": f"zoom-qss-exporter/{__version__}"}
    return httpx.AsyncClient(
        auth=_Credentials(options),
        headers=headers,
        timeout=options.timeout,
        verify=_ssl_context(options),
    )


def retry_after(response: httpx.Response, limit: float) -> float:
    """The receiver's ``Retry-After`` in seconds (not its date form), at most ``limit``."""
    raw = response.headers.get("retry-after", "")
    try:
        return min(max(float(raw), 0.0), limit)
    except ValueError:
        return 0.0
