"""Structured logs: ``logfmt`` (the Prometheus ecosystem's default) or one JSON object a line.

Fields given through ``extra=`` (``event``, ``outcome``, ``request_id``, ``status``...) become
fields of the line, so a log pipeline can filter deliveries by Zoom's request id. Values are
escaped, so a client-chosen string cannot forge a line. Nothing here logs request bodies,
signatures or tokens: callers pass only what is safe to show.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("logfmt", "json")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for name, value in vars(record).items():
        if name not in _STANDARD and not name.startswith("_"):
            fields[name] = value
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


# Line breaks to readers that split on Unicode's, which json.dumps leaves as they are
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = json.dumps(_fields(record, self), default=str, ensure_ascii=False)
        return line.translate(_LINE_BREAKS)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt(v)}" for k, v in _fields(record, self).items())


def _logfmt(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and all(c.isprintable() and c not in ' ="\\' for c in text):
        return text
    # quotes, backslashes and every line break escaped
    return json.dumps(text, ensure_ascii=False).translate(_LINE_BREAKS)


def configure(level: str, fmt: str) -> None:
    """One handler on the root logger; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
