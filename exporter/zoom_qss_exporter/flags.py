"""Flags in the Prometheus exporter style, each with an environment variable
``ZOOM_QSS_<FLAG>`` (upper case, dots and dashes as underscores) that sets its default, and
the value types they share."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ORDER = ("d", "h", "m", "s", "ms")  # each unit at most once, largest first (1h30m)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")  # plain seconds: no sign, exponent, nan or inf


TOKEN_ENV = "ZOOM_WEBHOOK_SECRET_TOKEN"  # the Zoom app's secret token(s), comma-separated


def first_token(environ: Mapping[str, str]) -> str:
    """The first token of ``TOKEN_ENV``: what the commands that sign (simulate, replay) use."""
    return next((t.strip() for t in environ.get(TOKEN_ENV, "").split(",") if t.strip()), "")


class ConfigError(Exception):
    """A setting is missing or wrong; the message says how to fix it."""


def parse_duration(text: str) -> float:
    """Prometheus-style durations: ``300s``, ``5m``, ``1h30m`` (units largest first, each
    once), or plain seconds (``300``)."""
    text = text.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    pos, seconds, last = 0, 0.0, -1
    for match in _DURATION.finditer(text):
        order = _ORDER.index(match.group(2))
        if match.start() != pos or order <= last:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos, last = match.end(), order
    if pos != len(text) or pos == 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h30m)")
    return seconds


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {least}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def count(text: str) -> int:
    """A whole number, 0 included."""
    return _whole_number(text, 0)


def env_name(flag: str) -> str:
    return "ZOOM_QSS_" + re.sub(r"[.\-]", "_", flag.lstrip("-")).upper()


def parse_bool(text: str) -> bool:
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
        value = parse_bool(environ[env]) if env in environ else default
    except argparse.ArgumentTypeError as error:
        raise ConfigError(f"{env}: {error}") from None
    parser.add_argument(
        name,
        action=argparse.BooleanOptionalAction,
        default=value,
        help=f"{help} [env {env}] (default: {'on' if default else 'off'})",
    )
