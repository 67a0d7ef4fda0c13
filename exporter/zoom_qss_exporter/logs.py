"""Structured logs: ``logfmt`` (the Prometheus ecosystem's default) or one JSON object a line.

Fields given through ``extra=`` (``event``, ``outcome``, ``request_id``, ``status``...) become
fields of the line, so a log pipeline can filter deliveries by Zoom's request id. Values are
escaped, so a client-chosen string cannot forge a line. Nothing here logs request bodies,
signatures or tokens: callers pass only what is safe to show.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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


REQUEST_ID_LENGTH = 64
"""Characters of a client-chosen request id kept (logs, archive): Zoom's are 36."""


def cut(text: str, length: int = REQUEST_ID_LENGTH) -> str:
    """A client-chosen string within ``length`` characters, a cut one ending in "…", so that
    one request cannot make one huge log line (or archive line)."""
    return text if len(text) <= length else text[: length - 1] + "…"


class LogBudget:
    """At most ``lines`` log lines per ``interval`` seconds for what an unauthenticated client
    can cause (refused requests, malformed HTTP); past it lines are only counted, and one
    summary line per interval says how many were left out. A flood from many addresses
    costs the log the same as one: about ``lines`` + 1 lines per interval."""

    __slots__ = ("_clock", "_ends", "_logger", "_suppressed", "_used", "interval", "lines")

    def __init__(
        self,
        clock: Callable[[], float],
        lines: int = 20,
        interval: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.lines = lines
        self.interval = interval
        self._clock = clock
        self._logger = logger or logging.getLogger("zoom_qss_exporter.receiver")
        self._ends = -math.inf
        self._used = 0
        self._suppressed: Counter[str] = Counter()

    def allow(self, kind: str) -> bool:
        """Whether one more line of ``kind`` (e.g. its outcome) may be written now."""
        self.flush()
        if self._used < self.lines:
            self._used += 1
            return True
        self._suppressed[kind] += 1
        return False

    def flush(self) -> None:
        """Close the interval if it is over: its summary line, if lines were left out."""
        now = self._clock()
        if now < self._ends:
            return
        if self._suppressed:
            total = sum(self._suppressed.values())
            self._logger.warning(
                "suppressed %d log lines of refused requests in the last %g s",
                total,
                self.interval,
                extra={
                    "suppressed": total,
                    "by_kind": ",".join(f"{k}:{n}" for k, n in sorted(self._suppressed.items())),
                },
            )
        self._ends = now + self.interval
        self._used = 0
        self._suppressed = Counter()
