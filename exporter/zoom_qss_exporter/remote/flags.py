"""Flags of the remote-write mode (shared by ``serve`` and ``replay``) and of its write-ahead
log, and the options they make."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from zoom_qss_exporter.flags import (
    ConfigError,
    env_flag,
    env_name,
    env_switch,
    parse_duration,
    positive_int,
)
from zoom_qss_exporter.remote.client import RESERVED_HEADERS, ParticipantInfo, RemoteWriteOptions
from zoom_qss_exporter.remote.wal import WALOptions

DEFAULT_WAL_DIRECTORY = "data/remote-write"  # relative to the working directory, as Prometheus'


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

    flag = partial(env_flag, parser, environ)

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
    flag(
        "--remote-write.timeout",
        parse_duration,
        "30s",
        "Longest one request may take, connection, body and answer together; then it is "
        "abandoned and retried.",
    )
    flag(
        "--remote-write.queue-capacity",
        positive_int,
        "500000",
        "Samples held until the receiver accepts them; when full the webhook answers 503 "
        "and Zoom delivers the event again later.",
    )
    flag("--remote-write.batch-size", positive_int, "2000", "Most samples in one request.")
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
        "--remote-write.retry-budget",
        parse_duration,
        "5m",
        "How long a batch the receiver answers 500 (or another 5xx but 502, 503, 504) is "
        "retried before its samples are dropped and counted (reason retries_exhausted); 429, "
        "502, 503, 504 and network errors are retried without limit.",
    )
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
        retry_budget=get("retry_budget"),
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


def add_wal_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The remote-write queue's write-ahead log (``serve`` only: ``replay`` reads an archive)."""
    env_switch(
        parser,
        environ,
        "--remote-write.wal",
        True,
        "Keep what remote write has not delivered in a write-ahead log, and answer Zoom only "
        "once an event is in it: nothing acknowledged is lost to a restart or a crash. "
        "--no-remote-write.wal keeps it in memory only.",
    )
    flag = partial(env_flag, parser, environ)
    flag(
        "--remote-write.wal-directory",
        str,
        DEFAULT_WAL_DIRECTORY,
        "Directory of the write-ahead log (one exporter process per directory).",
    )
    env_switch(
        parser,
        environ,
        "--remote-write.wal-fsync",
        True,
        "Sync the log to disk (fdatasync, shared by the events arriving meanwhile) before "
        "answering Zoom, so that a crash of the machine loses nothing either; off: a crash "
        "of the process still loses nothing.",
    )


def wal_from_args(args: argparse.Namespace) -> WALOptions | None:
    if not getattr(args, "remote_write.url") or not getattr(args, "remote_write.wal"):
        return None
    directory = getattr(args, "remote_write.wal_directory").strip()
    if not directory:
        raise ConfigError(
            "--remote-write.wal-directory is empty: give a directory, or --no-remote-write.wal"
        )
    return WALOptions(directory=directory, fsync=getattr(args, "remote_write.wal_fsync"))
