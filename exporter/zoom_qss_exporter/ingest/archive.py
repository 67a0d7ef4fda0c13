"""The write-ahead archive: every accepted event, as Zoom sent it, appended to JSONL files.

Why: Zoom keeps nothing for us. With the archive, events can be sent again later with
``zoom-qss-exporter replay``: to remote write after an outage longer than the queue could
hold, or to a fresh exporter to reproduce what happened.

One line per event, written before the webhook is answered::

    {"received_at": 1700000000.123, "request_id": "...", "event": {...the body as received...}}

Each line is one unbuffered ``write`` on a file opened for appending, so it survives a crash
of the process (not of the machine: there is no fsync per event). Files rotate at
``max_bytes`` and the oldest of this host's files go past ``max_files`` once a new file (after
a rotation, or at start) holds its first event, and never the file being written; names sort
by time and carry the host name, so replicas can share a volume. After a failed write the next
event goes to the same file again: a full disk neither adds empty files nor costs old ones.
Files are created owner-only (0600) and a directory the archive creates 0700: they hold raw
bodies, with e-mail and IP addresses (docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("zoom_qss_exporter.archive")


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    directory: str
    max_bytes: int = 64 << 20  # per file
    max_files: int = 20  # of this host; 0 keeps every file


class ArchiveError(Exception):
    """The archive directory cannot be used."""


class Archive(Collector):
    def __init__(
        self,
        options: ArchiveOptions,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        self.directory = Path(options.directory)
        self.host = re.sub(r"[^A-Za-z0-9_.-]", "_", host or socket.gethostname()) or "host"
        self._name = re.compile(rf"events-\d{{8}}T\d{{6}}\.\d{{6}}Z-{re.escape(self.host)}\.jsonl")
        self._file: BinaryIO | None = None
        self._path = Path()
        self._size = 0
        self._unpruned = True  # pruning waits for the new file's first event
        self.events_total = 0
        self.errors_total = 0
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._open(self._new_path())
        except OSError as error:
            raise ArchiveError(f"cannot write to {self.directory}: {error.strerror}") from None

    @property
    def path(self) -> Path:
        """The file being written (again, after a failed write)."""
        return self._path

    def append(
        self, body: bytes, document: dict[str, Any], received: float, request_id: str
    ) -> bool:
        """Append one event; False (logged and counted) when it could not be written."""
        line = _line(body, document, received, request_id)
        try:
            if self._file is None:  # a write failed: the same file again, no new empty one
                self._open(self._path)
            elif self._size and self._size + len(line) > self.options.max_bytes:
                self._rotate()
            assert self._file is not None
            self._file.write(line)
        except OSError as error:
            self.errors_total += 1
            log.error("archive: cannot append to %s: %s", self._path, error.strerror)
            self._close()  # reopened by the next event
            return False
        self._size += len(line)
        self.events_total += 1
        if self._unpruned:  # at start too: a restarting process opens a new file each time
            self._unpruned = False
            self._prune()
        return True

    def close(self) -> None:
        self._close()

    def _new_path(self) -> Path:
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        return self.directory / f"events-{stamp}-{self.host}.jsonl"

    def _open(self, path: Path) -> None:
        self._path = path
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)
        self._size = self._file.tell()

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _rotate(self) -> None:
        self._close()
        self._open(self._new_path())
        self._unpruned = True

    def _prune(self) -> None:
        """Keep this host's newest ``max_files`` files, the one being written always among
        them (after the clock stepped back, its name may sort first). Only names this host
        makes count: host ``a`` leaves ``b-a``'s files alone."""
        if not self.options.max_files:
            return
        others = sorted(
            path
            for path in self.directory.glob(f"events-*-{self.host}.jsonl")
            if self._name.fullmatch(path.name) and path != self._path
        )
        for old in others[: max(0, len(others) - (self.options.max_files - 1))]:
            try:
                old.unlink(missing_ok=True)
            except OSError as error:
                log.error("archive: cannot remove %s: %s", old.name, error.strerror)
                continue
            log.info("archive: removed %s (--archive.max-files)", old.name)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "zoom_qss_exporter_archive_events",
            "Accepted events appended to the archive.",
            value=self.events_total,
        )
        yield CounterMetricFamily(
            "zoom_qss_exporter_archive_errors",
            "Accepted events that could not be appended to the archive (see the log).",
            value=self.errors_total,
        )


def _line(body: bytes, document: dict[str, Any], received: float, request_id: str) -> bytes:
    """The body goes in verbatim when it is one line of UTF-8 JSON, else re-serialised."""
    head = json.dumps({"received_at": round(received, 3), "request_id": request_id})
    raw = body.strip()
    if not raw.startswith(b"{") or b"\n" in raw or b"\r" in raw:
        raw = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return head[:-1].encode() + b', "event": ' + raw + b"}\n"


class ArchivedEvent(NamedTuple):
    received_at: float
    request_id: str
    event: dict[str, Any]
    body: bytes  # the event as archived: what Zoom sent, when it was one line of JSON


_EVENT_KEY = b', "event": '  # cannot occur earlier in a line: quotes in request_id are escaped


def read_archive(paths: Iterable[Path], errors: list[str] | None = None) -> Iterator[ArchivedEvent]:
    """The events of archive files, in file then line order. An unreadable line (a crash
    can cut the last one short) is skipped and described in ``errors``."""
    for path in paths:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    event = record["event"]
                    if not isinstance(event, dict):
                        raise ValueError("event is not an object")
                    received = float(record.get("received_at", 0.0))
                    request_id = str(record.get("request_id", ""))
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    if errors is not None:
                        errors.append(f"{path}:{number}: {error}")
                    continue
                yield ArchivedEvent(received, request_id, event, _body(line, event))


def _body(line: bytes, event: dict[str, Any]) -> bytes:
    """The event's bytes as the archive holds them (written last on the line by ``_line``);
    re-serialised for a line written otherwise."""
    start = line.find(_EVENT_KEY)
    if start >= 0:
        body = line[start + len(_EVENT_KEY) :].rstrip()[:-1]
        with contextlib.suppress(ValueError):
            if json.loads(body) == event:
                return body
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
