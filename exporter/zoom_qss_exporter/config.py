"""Settings of ``zoom-qss-exporter serve``: flags in the Prometheus exporter style, each with an
environment variable ``ZOOM_QSS_<FLAG>`` (upper case, dots and dashes as underscores)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .archive import ArchiveOptions
from .convert import ConvertOptions, UserNameMode
from .remote_client import RESERVED_HEADERS, ParticipantInfo, RemoteWriteOptions
from .security import MetricsAuth

TOKEN_ENV = "ZOOM_WEBHOOK_SECRET_TOKEN"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(Exception):
    """A setting is missing or wrong; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 9981
    telemetry_path: str = "/metrics"
    webhook_path: str = "/webhook"
    secret_tokens: tuple[str, ...] = field(default=(), repr=False)  # never in logs or tracebacks
    skip_signature_verification: bool = False
    replay_window: float = 300.0
    max_request_bytes: int = 1 << 20
    ttl: float = 300.0
    summary_ttl: float = 3600.0
    max_series: int = 1_000_000
    per_participant: bool = True
    dedup_window: float = 5400.0
    expiry_interval: float = 10.0
    metrics_cache: float = 1.0
    convert: ConvertOptions = field(default_factory=ConvertOptions)
    log_level: str = "info"
    remote_write: RemoteWriteOptions | None = None  # None: pull only
    archive: ArchiveOptions | None = None
    internal_listen: tuple[str, int] | None = None  # metrics and probes there; None: one address
    metrics_auth: MetricsAuth | None = None
    unauthenticated_rate_limit: float = 10.0  # signature failures per second per client; 0: off
    read_timeout: float = 10.0
    log_format: str = "logfmt"


def parse_duration(text: str) -> float:
    """Prometheus-style durations: ``300s``, ``5m``, ``1h30m``, or plain seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or pos == 0:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r} (use e.g. 30s, 5m, 1h30m)"
            ) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must not be negative")
    return seconds


def parse_listen_address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port`` (all interfaces) or ``[v6]:port``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid listen address {text!r} (use host:port)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"path {text!r} must start with '/'")
    return text


def env_name(flag: str) -> str:
    return "ZOOM_QSS_" + re.sub(r"[.\-]", "_", flag.lstrip("-")).upper()


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")


def env_flag(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    name: str,
    convert: Callable[[str], Any],
    default: str | None,
    help: str,
    **kw: Any,
) -> None:
    """A flag whose default comes from its environment variable when that is set."""
    env = env_name(name)
    raw = environ.get(env, default)
    try:
        value = convert(raw) if raw is not None else None
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise ConfigError(f"{env}={raw!r}: {error}") from None
    parser.add_argument(
        name,
        type=convert,
        default=value,
        help=f"{help} [env {env}] (default: {default})",
        **kw,
    )


def env_switch(
    parser: argparse.ArgumentParser, environ: Mapping[str, str], name: str, default: bool, help: str
) -> None:
    env = env_name(name)
    try:
        value = _bool(environ[env]) if env in environ else default
    except argparse.ArgumentTypeError as error:
        raise ConfigError(f"{env}: {error}") from None
    parser.add_argument(
        name,
        action=argparse.BooleanOptionalAction,
        default=value,
        help=f"{help} [env {env}] (default: {'on' if default else 'off'})",
    )


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Every flag takes its default from its environment variable when that is set."""

    def flag(
        name: str, convert: Callable[[str], Any], default: str | None, help: str, **kw: Any
    ) -> None:
        env_flag(parser, environ, name, convert, default, help, **kw)

    def switch(name: str, default: bool, help: str) -> None:
        env_switch(parser, environ, name, default, help)

    flag("--web.listen-address", parse_listen_address, ":9981", "Address to listen on.")
    flag("--web.telemetry-path", _path, "/metrics", "Path of the metrics.")
    flag("--web.webhook-path", _path, "/webhook", "Path Zoom POSTs its events to.")
    flag(
        "--web.max-request-bytes",
        _positive_int,
        str(1 << 20),
        "Largest webhook body accepted (larger: 413).",
    )
    flag(
        "--web.metrics-cache",
        parse_duration,
        "1s",
        "How long a rendered /metrics body may be served again (at most 1s is sensible: "
        "enough for an HA pair of Prometheus servers scraping together).",
    )
    flag(
        "--web.internal-listen-address",
        _optional_listen_address,
        "",
        "host:port for the metrics, the probes and the landing page; when set, the "
        "--web.listen-address serves only the webhook and /openapi.json (recommended in "
        "production: expose only the webhook). Empty: one address serves everything.",
    )
    flag(
        "--web.metrics-bearer-token-file",
        str,
        "",
        "File with a bearer token that scrapes of the metrics must present.",
    )
    flag(
        "--web.metrics-basic-auth-username",
        str,
        "",
        "User name that scrapes of the metrics must present (basic auth).",
    )
    flag(
        "--web.metrics-basic-auth-password-file",
        str,
        "",
        "File with the basic auth password of --web.metrics-basic-auth-username.",
    )
    flag(
        "--web.unauthenticated-rate-limit",
        _non_negative_float,
        "10",
        "Requests per second per client address that may fail the signature check; past "
        "it (burst: twice as many) they are answered 429. 0: no limit.",
    )
    flag(
        "--web.read-timeout",
        parse_duration,
        "10s",
        "Longest time to receive a webhook body (slower: 408); 0: no limit.",
    )
    flag(
        "--zoom.secret-token-file",
        str,
        None,
        f"File holding the app's secret token(s), one per line or comma-separated; "
        f"added to those in {TOKEN_ENV}.",
    )
    switch(
        "--zoom.skip-signature-verification",
        False,
        "Accept unsigned requests. Local demos only: anyone could write metrics.",
    )
    flag(
        "--zoom.replay-window",
        parse_duration,
        "5m",
        "Oldest (and furthest future) x-zm-request-timestamp accepted.",
    )
    flag("--store.ttl", parse_duration, "5m", "Lifetime of per-minute and phone per-sample series.")
    flag(
        "--store.summary-ttl",
        parse_duration,
        "1h",
        "Lifetime of participation, whole-call and info series.",
    )
    flag(
        "--store.max-series", _positive_int, "1000000", "Cap on live series; past it new ones drop."
    )
    switch("--store.per-participant", True, "Per-participant series (off: fleet metrics only).")
    flag(
        "--store.dedup-window",
        parse_duration,
        "90m",
        "How long the newest counted sample time per stream is remembered, so that Zoom's "
        "redeliveries (up to ~85 min late) are not counted twice in the fleet metrics.",
    )
    flag(
        "--privacy.user-name",
        UserNameMode,
        "plain",
        "user_name label of zoom_participant_info: plain, hash (salted SHA-256) or off.",
        choices=list(UserNameMode),
    )
    flag("--privacy.hash-salt", str, "", "Salt for --privacy.user-name=hash.")
    flag(
        "--log.level",
        str,
        "info",
        "Log level.",
        choices=["debug", "info", "warning", "error"],
    )
    flag("--log.format", str, "logfmt", "Log line format.", choices=["logfmt", "json"])
    add_remote_write_arguments(parser, environ)
    add_archive_arguments(parser, environ)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    tokens = _tokens(environ.get(TOKEN_ENV, ""))
    token_file = getattr(args, "zoom.secret_token_file")
    if token_file:
        try:
            tokens += _tokens(Path(token_file).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"cannot read --zoom.secret-token-file: {error}") from None
    skip = getattr(args, "zoom.skip_signature_verification")
    if not tokens and not skip:
        raise ConfigError(
            f"no Zoom secret token: set {TOKEN_ENV} to your Zoom app's secret token "
            "(Marketplace > your app > Features > Secret Token; comma-separate several to "
            "rotate), or pass --zoom.secret-token-file FILE. For a local demo without "
            "signatures, pass --zoom.skip-signature-verification."
        )
    host, port = getattr(args, "web.listen_address")
    return Settings(
        host=host,
        port=port,
        telemetry_path=getattr(args, "web.telemetry_path"),
        webhook_path=getattr(args, "web.webhook_path"),
        secret_tokens=tuple(dict.fromkeys(tokens)),
        skip_signature_verification=skip,
        replay_window=getattr(args, "zoom.replay_window"),
        max_request_bytes=getattr(args, "web.max_request_bytes"),
        metrics_cache=getattr(args, "web.metrics_cache"),
        ttl=getattr(args, "store.ttl"),
        summary_ttl=getattr(args, "store.summary_ttl"),
        max_series=getattr(args, "store.max_series"),
        per_participant=getattr(args, "store.per_participant"),
        dedup_window=getattr(args, "store.dedup_window"),
        convert=ConvertOptions(
            user_name=getattr(args, "privacy.user_name"),
            hash_salt=getattr(args, "privacy.hash_salt"),
        ),
        log_level=getattr(args, "log.level"),
        log_format=getattr(args, "log.format"),
        **_web_hardening(args, host, port),
        remote_write=remote_write_from_args(args),
        archive=archive_from_args(args),
    )


def _optional_listen_address(text: str) -> tuple[str, int] | None:
    return parse_listen_address(text) if text.strip() else None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of at least 0")
    return value


def _web_hardening(args: argparse.Namespace, host: str, port: int) -> dict[str, Any]:
    """The settings of the internal listener, metrics authentication and the rate limit."""
    internal = getattr(args, "web.internal_listen_address")
    if internal is not None:
        wildcard = {"0.0.0.0", "::", ""}
        if internal[1] == port and (
            host in wildcard or internal[0] in wildcard or host == internal[0]
        ):
            raise ConfigError(
                "--web.internal-listen-address must differ from --web.listen-address "
                "(another port, or two distinct specific hosts)"
            )
    token_file = getattr(args, "web.metrics_bearer_token_file")
    username = getattr(args, "web.metrics_basic_auth_username")
    password_file = getattr(args, "web.metrics_basic_auth_password_file")
    if bool(username) != bool(password_file):
        raise ConfigError(
            "--web.metrics-basic-auth-username and --web.metrics-basic-auth-password-file "
            "go together"
        )
    auth = None
    if token_file or username:  # the files are read when the app is built (MetricsAuth.load)
        auth = MetricsAuth(
            username=username, bearer_token_file=token_file, password_file=password_file
        )
    return {
        "internal_listen": internal,
        "metrics_auth": auth,
        "unauthenticated_rate_limit": getattr(args, "web.unauthenticated_rate_limit"),
        "read_timeout": getattr(args, "web.read_timeout"),
    }


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in re.split(r"[,\n]", text) if t.strip())


def load_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Parse ``serve`` flags (for tests and embedding); raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="zoom-qss-exporter serve")
    add_serve_arguments(parser, env)
    return settings_from_args(parser.parse_args(list(argv)), env)


# --- remote write and the archive -------------------------------------------------------------


def _url(text: str) -> str:
    text = text.strip()
    if text and not re.match(r"https?://[^/\s]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def _header(text: str) -> tuple[str, str]:
    """``Name: value``; the protocol's and the auth flags' headers are refused."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise argparse.ArgumentTypeError("a header is 'Name: value'")
    if name.lower() in RESERVED_HEADERS:
        raise argparse.ArgumentTypeError(f"header {name} is set by the exporter itself")
    return name, value.strip()


def _headers(text: str) -> tuple[tuple[str, str], ...]:
    """The environment variable's form: one ``Name: value`` per line."""
    return tuple(_header(line) for line in text.splitlines() if line.strip())


class _Repeated(argparse.Action):
    """A repeatable flag whose first use on the command line replaces the environment's
    value instead of adding to it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest)
        setattr(namespace, self.dest, (*(() if current is self.default else current), values))


def add_remote_write_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """``--remote-write.*``: shared by ``serve`` and ``replay``."""

    def flag(
        name: str, convert: Callable[[str], Any], default: str | None, help: str, **kw: Any
    ) -> None:
        env_flag(parser, environ, name, convert, default, help, **kw)

    flag(
        "--remote-write.url",
        _url,
        "",
        "Prometheus remote-write endpoint (e.g. http://prometheus:9090/api/v1/write); "
        "empty: no remote write.",
    )
    flag(
        "--remote-write.bearer-token-file",
        str,
        "",
        "File with a bearer token for the Authorization header (read on every request).",
    )
    flag("--remote-write.basic-auth-username", str, "", "Basic auth user name.")
    flag(
        "--remote-write.basic-auth-password-file",
        str,
        "",
        "File with the basic auth password (read on every request).",
    )
    env = env_name("--remote-write.header")
    try:
        headers = _headers(environ.get(env, ""))
    except argparse.ArgumentTypeError as error:
        raise ConfigError(f"{env}: {error}") from None
    parser.add_argument(
        "--remote-write.header",
        type=_header,
        action=_Repeated,
        default=headers,
        metavar="'NAME: VALUE'",
        help="Extra request header, e.g. 'X-Scope-OrgID: tenant-1'; repeatable. "
        f"[env {env}, one per line] (default: none)",
    )
    flag("--remote-write.tls-ca-file", str, "", "CA certificates to verify the receiver with.")
    flag("--remote-write.tls-cert-file", str, "", "Client certificate for mutual TLS.")
    flag("--remote-write.tls-key-file", str, "", "Client certificate's key for mutual TLS.")
    env_switch(
        parser,
        environ,
        "--remote-write.tls-insecure-skip-verify",
        False,
        "Do not verify the receiver's certificate (tests only).",
    )
    flag("--remote-write.timeout", parse_duration, "30s", "Timeout of one request.")
    flag(
        "--remote-write.queue-capacity",
        _positive_int,
        "500000",
        "Samples held until the receiver accepts them; when full the webhook answers 503 "
        "and Zoom delivers the event again later.",
    )
    flag("--remote-write.batch-size", _positive_int, "2000", "Most samples in one request.")
    flag(
        "--remote-write.flush-interval",
        parse_duration,
        "1s",
        "Longest a sample waits for its batch to fill.",
    )
    flag(
        "--remote-write.min-backoff",
        parse_duration,
        "250ms",
        "First wait before a retry (5xx, 429, transport error); doubles up to max-backoff.",
    )
    flag("--remote-write.max-backoff", parse_duration, "10s", "Longest wait between retries.")
    flag(
        "--remote-write.shutdown-timeout",
        parse_duration,
        "15s",
        "How long a stopping exporter keeps sending what is queued.",
    )
    flag(
        "--remote-write.participant-info",
        ParticipantInfo,
        "merged",
        "How zoom_participant_info is written: merged (the default: merged per replica as in "
        "the pull mode and refreshed by every event, as the joins of the dashboards and rules "
        "need; several replicas may write differing info series for a participant) or event "
        "(each *_data event's own metadata, written only at *_data events: any number of "
        "replicas write the same series, but joins find the info only shortly after those "
        "events, and meeting and webinar participants have no user_name).",
        choices=list(ParticipantInfo),
        metavar="{event,merged}",
    )


def remote_write_from_args(args: argparse.Namespace) -> RemoteWriteOptions | None:
    def get(name: str) -> Any:
        return getattr(args, "remote_write." + name)

    if not get("url"):
        return None
    options = RemoteWriteOptions(
        url=get("url"),
        bearer_token_file=get("bearer_token_file"),
        basic_auth_username=get("basic_auth_username"),
        basic_auth_password_file=get("basic_auth_password_file"),
        headers=tuple(get("header")),
        tls_ca_file=get("tls_ca_file"),
        tls_cert_file=get("tls_cert_file"),
        tls_key_file=get("tls_key_file"),
        tls_insecure_skip_verify=get("tls_insecure_skip_verify"),
        timeout=get("timeout"),
        queue_capacity=get("queue_capacity"),
        batch_size=get("batch_size"),
        flush_interval=get("flush_interval"),
        min_backoff=get("min_backoff"),
        max_backoff=get("max_backoff"),
        shutdown_timeout=get("shutdown_timeout"),
        participant_info=get("participant_info"),
    )
    if options.bearer_token_file and options.basic_auth_username:
        raise ConfigError(
            "--remote-write.bearer-token-file and --remote-write.basic-auth-username: "
            "give one of them"
        )
    if options.basic_auth_password_file and not options.basic_auth_username:
        raise ConfigError("--remote-write.basic-auth-password-file needs a user name too")
    if options.tls_key_file and not options.tls_cert_file:
        raise ConfigError("--remote-write.tls-key-file needs --remote-write.tls-cert-file")
    if options.batch_size > options.queue_capacity:
        raise ConfigError("--remote-write.batch-size must not exceed the queue capacity")
    if options.min_backoff > options.max_backoff or options.timeout <= 0:
        raise ConfigError(
            "--remote-write.min-backoff must not exceed --remote-write.max-backoff, and the "
            "timeout must be positive"
        )
    return options


def add_archive_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    def flag(
        name: str, convert: Callable[[str], Any], default: str | None, help: str, **kw: Any
    ) -> None:
        env_flag(parser, environ, name, convert, default, help, **kw)

    flag(
        "--archive.directory",
        str,
        "",
        "Append every accepted event to JSONL files here, for `zoom-qss-exporter replay`; "
        "empty: no archive.",
    )
    flag(
        "--archive.max-bytes",
        _positive_int,
        str(64 << 20),
        "Size at which an archive file is closed and a new one started.",
    )
    flag(
        "--archive.max-files",
        _count,
        "20",
        "Archive files kept (this host's oldest are removed); 0 keeps all.",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def archive_from_args(args: argparse.Namespace) -> ArchiveOptions | None:
    directory = getattr(args, "archive.directory")
    if not directory:
        return None
    return ArchiveOptions(
        directory=directory,
        max_bytes=getattr(args, "archive.max_bytes"),
        max_files=getattr(args, "archive.max_files"),
    )
