"""Settings of ``zoom-qss-exporter serve``: its flags (``flags.py`` says how a flag takes its
default from the environment) and the :class:`Settings` they make."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from zoom_qss_exporter.analytics.flags import (
    AnalyticsSettings,
    add_analytics_arguments,
    analytics_from_args,
)
from zoom_qss_exporter.flags import (
    TOKEN_ENV,
    ConfigError,
    count,
    env_flag,
    env_switch,
    parse_duration,
    positive_int,
)
from zoom_qss_exporter.ingest.archive import ArchiveOptions
from zoom_qss_exporter.ingest.convert import ConvertOptions, UserNameMode
from zoom_qss_exporter.remote.client import RemoteWriteOptions
from zoom_qss_exporter.remote.flags import (
    add_remote_write_arguments,
    add_wal_arguments,
    remote_write_from_args,
    wal_from_args,
)
from zoom_qss_exporter.remote.wal import WALOptions
from zoom_qss_exporter.web.auth import MetricsAuth
from zoom_qss_exporter.web.listeners import WILDCARD_HOSTS, Listeners
from zoom_qss_exporter.web.openapi import Routes


@dataclass(frozen=True, slots=True)
class WebSettings:
    """``--web.*``: the listeners, the paths and the HTTP interface's limits."""

    host: str = ""  # every interface, IPv6 and IPv4 (web.bind)
    port: int = 9981
    telemetry_path: str = "/metrics"
    webhook_path: str = "/webhook"
    max_request_bytes: int = 1 << 20
    metrics_cache: float = 1.0
    internal_listen: tuple[str, int] | None = None  # metrics and probes there; None: one address
    metrics_auth: MetricsAuth | None = None
    unauthenticated_rate_limit: float = 10.0  # signature failures per second per client; 0: off
    read_timeout: float = 10.0

    def listeners(self) -> Listeners:
        return Listeners(self.host, self.port, self.internal_listen)

    def routes(self) -> Routes:
        """What the OpenAPI document describes."""
        return Routes(
            self.webhook_path,
            self.telemetry_path,
            self.internal_listen is not None,
            self.metrics_auth,
        )


@dataclass(frozen=True, slots=True)
class ZoomSettings:
    """``--zoom.*`` and the secret tokens: how deliveries are authenticated."""

    secret_tokens: tuple[str, ...] = field(default=(), repr=False)  # never in logs or tracebacks
    skip_signature_verification: bool = False
    replay_window: float = 300.0


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``--store.*``: how long series and redelivery checks live, and how many series."""

    ttl: float = 300.0
    summary_ttl: float = 3600.0
    max_series: int = 1_000_000
    per_participant: bool = True
    dedup_window: float = 5400.0
    expiry_interval: float = 10.0


@dataclass(frozen=True, slots=True)
class LogSettings:
    """``--log.*``."""

    level: str = "info"
    format: str = "logfmt"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``serve`` was given, one record per flag prefix: each step gets its own."""

    web: WebSettings = field(default_factory=WebSettings)
    zoom: ZoomSettings = field(default_factory=ZoomSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    privacy: ConvertOptions = field(default_factory=ConvertOptions)  # --privacy.*
    log: LogSettings = field(default_factory=LogSettings)
    remote_write: RemoteWriteOptions | None = None  # None: pull only
    wal: WALOptions | None = None  # remote write's write-ahead log; None: in memory only
    archive: ArchiveOptions | None = None
    analytics: AnalyticsSettings | None = field(default_factory=AnalyticsSettings)  # None: off


def parse_listen_address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port`` (every interface: host ``""``) or ``[v6]:port``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid listen address {text!r} (use host:port)")
    return host.strip("[]"), int(port)


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"path {text!r} must start with '/'")
    return text


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Every flag takes its default from its environment variable when that is set."""
    flag = partial(env_flag, parser, environ)
    switch = partial(env_switch, parser, environ)

    flag("--web.listen-address", parse_listen_address, ":9981", "Address to listen on.")
    flag("--web.telemetry-path", _path, "/metrics", "Path of the metrics.")
    flag("--web.webhook-path", _path, "/webhook", "Path Zoom POSTs its events to.")
    flag(
        "--web.max-request-bytes",
        positive_int,
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
        "--store.max-series",
        positive_int,
        "1000000",
        "Cap on live series; past it new ones drop. Departure records have a cap of the same "
        "size; past it the oldest go.",
    )
    switch("--store.per-participant", True, "Per-participant series (off: fleet metrics only).")
    flag(
        "--store.dedup-window",
        parse_duration,
        "90m",
        "How long the newest counted sample time per stream is remembered, so that Zoom's "
        "redeliveries (up to ~85 min late) are not counted twice in the fleet metrics.",
    )
    add_privacy_arguments(parser, environ)
    flag(
        "--log.level",
        str,
        "info",
        "Log level.",
        choices=["debug", "info", "warning", "error"],
    )
    flag("--log.format", str, "logfmt", "Log line format.", choices=["logfmt", "json"])
    add_remote_write_arguments(parser, environ)
    add_wal_arguments(parser, environ)
    add_archive_arguments(parser, environ)
    add_analytics_arguments(parser, environ)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    tokens = _tokens(environ.get(TOKEN_ENV, ""))
    token_file = getattr(args, "zoom.secret_token_file")
    if token_file:
        try:
            tokens += _tokens(Path(token_file).read_text(encoding="utf-8-sig"))  # BOM or not
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
        web=WebSettings(
            host=host,
            port=port,
            telemetry_path=getattr(args, "web.telemetry_path"),
            webhook_path=getattr(args, "web.webhook_path"),
            max_request_bytes=getattr(args, "web.max_request_bytes"),
            metrics_cache=getattr(args, "web.metrics_cache"),
            **_web_hardening(args, host, port),
        ),
        zoom=ZoomSettings(
            secret_tokens=tuple(dict.fromkeys(tokens)),
            skip_signature_verification=skip,
            replay_window=getattr(args, "zoom.replay_window"),
        ),
        store=StoreSettings(
            ttl=getattr(args, "store.ttl"),
            summary_ttl=getattr(args, "store.summary_ttl"),
            max_series=getattr(args, "store.max_series"),
            per_participant=getattr(args, "store.per_participant"),
            dedup_window=getattr(args, "store.dedup_window"),
        ),
        privacy=convert_options_from_args(args),
        log=LogSettings(level=getattr(args, "log.level"), format=getattr(args, "log.format")),
        remote_write=remote_write_from_args(args),
        wal=wal_from_args(args),
        archive=archive_from_args(args),
        analytics=analytics_from_args(args),
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


def _overlap(one: tuple[str, int], other: tuple[str, int]) -> bool:
    """Whether two listen addresses would take the same connections."""
    hosts = {one[0], other[0]}
    return one[1] == other[1] and (len(hosts) == 1 or bool(hosts & WILDCARD_HOSTS))


def _web_hardening(args: argparse.Namespace, host: str, port: int) -> dict[str, Any]:
    """The settings of the internal listener, metrics authentication and the rate limit."""
    internal = getattr(args, "web.internal_listen_address")
    if internal is not None and _overlap(internal, (host, port)):
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


def add_archive_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    flag = partial(env_flag, parser, environ)

    flag(
        "--archive.directory",
        str,
        "",
        "Append every accepted event to JSONL files here, for `zoom-qss-exporter replay`; "
        "empty: no archive.",
    )
    flag(
        "--archive.max-bytes",
        positive_int,
        str(64 << 20),
        "Size at which an archive file is closed and a new one started.",
    )
    flag(
        "--archive.max-files",
        count,
        "20",
        "Archive files kept (this host's oldest are removed); 0 keeps all.",
    )


def archive_from_args(args: argparse.Namespace) -> ArchiveOptions | None:
    directory = getattr(args, "archive.directory")
    if not directory:
        return None
    return ArchiveOptions(
        directory=directory,
        max_bytes=getattr(args, "archive.max_bytes"),
        max_files=getattr(args, "archive.max_files"),
    )


def add_privacy_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """``--privacy.*``: shared by ``serve`` and ``replay`` (which must label as the exporter
    that received the events did)."""
    flag = partial(env_flag, parser, environ)
    flag(
        "--privacy.user-name",
        UserNameMode,
        "plain",
        "user_name label of zoom_participant_info: plain, hash (salted SHA-256) or off.",
        choices=list(UserNameMode),
        metavar="{plain,hash,off}",  # not the members' reprs
    )
    flag("--privacy.hash-salt", str, "", "Salt for --privacy.user-name=hash.")


def convert_options_from_args(args: argparse.Namespace) -> ConvertOptions:
    return ConvertOptions(getattr(args, "privacy.user_name"), getattr(args, "privacy.hash_salt"))
