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

from .convert import ConvertOptions, UserNameMode

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
    secret_tokens: tuple[str, ...] = ()
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


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Every flag takes its default from its environment variable when that is set."""

    def flag(
        name: str, convert: Callable[[str], Any], default: str | None, help: str, **kw: Any
    ) -> None:
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

    def switch(name: str, default: bool, help: str) -> None:
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
    )


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in re.split(r"[,\n]", text) if t.strip())


def load_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Parse ``serve`` flags (for tests and embedding); raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="zoom-qss-exporter serve")
    add_serve_arguments(parser, env)
    return settings_from_args(parser.parse_args(list(argv)), env)
