"""The remote-write queue's write-ahead log: what Zoom was told is accepted survives a restart,
a crash of the process and (with fsync, the default) of the machine.

Every event the queue takes is one line appended here before the webhook answers 200: its
chunks of points, as JSON. The sender answers for batches strictly in the order they were
queued, so "the engine has answered for everything up to here" is one position (segment,
byte offset), written to ``checkpoint.json`` after each batch. A restart reads the segments
after that position and queues their chunks again, in order; what the engine had answered
for is not sent again (but for the last batch, when the process died between the engine's
answer and the checkpoint: an identical newest sample, which Prometheus takes silently).

The sink's memory (the newest time and the minutes seen per stream, the info last queued per
participant) decides which samples are late; it must survive too, or Zoom's redeliveries
after a restart would join fresh batches and a strict Prometheus would refuse those whole.
At each new segment the sink's state is written to ``state-<segment>.json``; a restart loads
the newest one and replays the records after it into the sink.

Bounded: the records held are those the engine has not answered for (at most the queue's
capacity, which the webhook enforces with 503s) plus those since the newest state (one
segment: ``segment_bytes``, or ``segment_seconds`` of traffic). A write that fails (a full
disk) is undone and refused: the webhook answers 503 and Zoom delivers the event again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from zoom_qss_exporter.families import ALL_FAMILIES, Family
from zoom_qss_exporter.remote.protocol import STALE_NAN, Point

log = logging.getLogger("zoom_qss_exporter.remote_write")

_FAMILIES = {family.name: family for family in ALL_FAMILIES}
_SEGMENT = re.compile(r"segment-(\d{8})\.wal")
_STATE = re.compile(r"state-(\d{8})\.json")
CHECKPOINT = "checkpoint.json"


class Position(NamedTuple):
    """Where a record ends: records are answered for in this order."""

    segment: int
    offset: int


class WALError(OSError):
    """The log cannot be written or synced (disk full, directory gone): the event is
    refused, and Zoom delivers it again."""


@dataclass(frozen=True, slots=True)
class WALOptions:
    directory: str
    fsync: bool = True  # each answer waits for fdatasync (group commit)
    segment_bytes: int = 64 << 20
    segment_seconds: float = 300.0


@dataclass
class Recovered:
    """What a start found in the log."""

    state: dict[str, Any]  # the sink's, as of the start of ``replayed``'s first record
    replayed: list[list[tuple[bool, list[Point]]]]  # records after the state: for the sink
    backlog: list[tuple[Position, list[tuple[bool, list[Point]]]]]  # not answered for yet
    counters: dict[str, Any] = field(default_factory=dict)  # as the checkpoint had them
    torn: int = 0  # bytes of a record cut short by a crash (never acknowledged), removed


def encode_record(chunks: list[tuple[bool, list[Point]]]) -> bytes:
    """One event's chunks as a line; a staleness marker's NaN as null (JSON has no NaN, and
    its exact bits matter)."""
    document = [
        [alone, [[p.family.name, p.labels, _value_out(p.value), p.timestamp] for p in points]]
        for alone, points in chunks
    ]
    return _dumps(document) + b"\n"


def decode_record(line: bytes) -> list[tuple[bool, list[Point]]]:
    document = _loads(line)
    chunks = []
    for alone, points in document:
        chunks.append(
            (
                bool(alone),
                [
                    Point(_family(name), tuple(labels), _value_in(value), float(timestamp))
                    for name, labels, value, timestamp in points
                ],
            )
        )
    return chunks


def _family(name: str) -> Family:
    family = _FAMILIES.get(name)
    if family is None:
        raise ValueError(f"unknown family {name!r}")
    return family


def _value_out(value: float) -> float | None:
    return None if math.isnan(value) else value


def _value_in(value: float | None) -> float:
    return STALE_NAN if value is None else float(value)


class WriteAheadLog:
    def __init__(self, options: WALOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self.clock = clock
        self.directory = Path(options.directory)
        self.state_source: Callable[[], dict[str, Any]] = dict
        self.counters_source: Callable[[], dict[str, Any]] = dict
        self._fd = -1
        self._segment = 0
        self._size = 0
        self._opened_at = 0.0
        self._confirmed = Position(0, 0)
        self._state_segment = 0
        self._written = 0  # records appended since the start, and of those known on disk
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None
        self.errors_total = 0

    # --- start --------------------------------------------------------------------------------

    def recover(self) -> Recovered:
        """Read what an earlier process left; the log is then open for new records in a new
        segment. Raises :class:`WALError` when the directory cannot be used."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            checkpoint = self._read_json(self.directory / CHECKPOINT) or {}
            confirmed = _position(checkpoint.get("confirmed"))
            states = self._numbered(_STATE)
            segments = self._numbered(_SEGMENT)
            state: dict[str, Any] = {}
            state_segment = 0
            for number in reversed(states):  # the newest readable one
                loaded = self._read_json(self.directory / f"state-{number:08d}.json")
                if loaded is not None:
                    state, state_segment = loaded, number
                    break
            recovered = Recovered(state, [], [], dict(checkpoint.get("counters", {})))
            first = min(state_segment, confirmed.segment) if segments else 0
            for number in (n for n in segments if n >= first):
                for end, chunks in self._records(number, recovered):
                    if number >= state_segment:
                        recovered.replayed.append(chunks)
                    if end > confirmed:
                        recovered.backlog.append((end, chunks))
            self._confirmed = confirmed
            self._open(max(segments, default=0) + 1)
        except OSError as error:
            raise WALError(f"cannot use {self.directory}: {error.strerror}") from None
        return recovered

    def start(self) -> None:
        """Write the state of the new segment (the sink holds what was recovered by now) and
        forget what no longer matters."""
        self._write_state()

    def _records(
        self, number: int, recovered: Recovered
    ) -> Iterator[tuple[Position, list[tuple[bool, list[Point]]]]]:
        path = self.directory / f"segment-{number:08d}.wal"
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            end = data.find(b"\n", offset)
            if end < 0:  # a write cut short by a crash: it was never answered 200
                recovered.torn += len(data) - offset
                with open(path, "r+b") as torn:
                    torn.truncate(offset)
                return
            line = data[offset:end]
            offset = end + 1
            try:
                chunks = decode_record(line)
            except (ValueError, TypeError) as error:
                log.error("remote write: log %s: skipped an unreadable record: %s", path, error)
                continue
            yield Position(number, offset), chunks

    # --- appending ----------------------------------------------------------------------------

    def append(self, chunks: list[tuple[bool, list[Point]]]) -> Position:
        """One event's chunks, written through to the OS; its position. Raises
        :class:`WALError` (the write undone) when it cannot be written."""
        line = encode_record(chunks)
        now = self.clock()
        if self._size and (
            self._size + len(line) > self.options.segment_bytes
            or now - self._opened_at >= self.options.segment_seconds
        ):
            self._rotate()
        try:
            self._write(line)
        except OSError as error:
            self.errors_total += 1
            self._undo()
            if not (self._size and self._confirmed >= Position(self._segment, self._size)):
                raise WALError(f"cannot append to the remote-write log: {error.strerror}") from None
            # A full disk, but all of this segment was answered for: a new segment frees it.
            self._rotate()
            try:
                self._write(line)
            except OSError as again:
                self.errors_total += 1
                self._undo()
                raise WALError(f"cannot append to the remote-write log: {again.strerror}") from None
        self._size += len(line)
        self._written += 1
        return Position(self._segment, self._size)

    def _write(self, line: bytes) -> None:
        if self._fd < 0:
            self._reopen()
        if os.write(self._fd, line) != len(line):
            raise OSError(28, "No space left on device (short write)")

    async def synced(self) -> None:
        """Until every record appended so far is on disk: one fdatasync for all the events
        waiting at that moment (group commit). Returns at once without ``fsync``; raises
        :class:`WALError` when the sync fails."""
        if not self.options.fsync:
            return
        target = self._written
        while self._synced < target:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        target, fd = self._written, self._fd
        try:
            if fd >= 0:
                await asyncio.to_thread(os.fdatasync, fd)
        except OSError as error:
            self.errors_total += 1
            log.error("remote write: fdatasync of the log failed: %s", error.strerror)
            raise WALError(f"cannot sync the remote-write log: {error.strerror}") from None
        finally:
            self._syncing = None
        self._synced = max(self._synced, target)

    def confirm(self, position: Position) -> None:
        """The engine has answered for everything up to ``position``."""
        if position <= self._confirmed:
            return
        self._confirmed = position
        self.checkpoint()

    def checkpoint(self) -> None:
        document = {"confirmed": list(self._confirmed), "counters": self.counters_source()}
        try:
            self._write_json(self.directory / CHECKPOINT, document)
        except OSError as error:  # the next batch tries again; a restart resends a little
            self.errors_total += 1
            log.error("remote write: cannot write the log's checkpoint: %s", error.strerror)
            return
        self._remove_old()

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
                os.close(self._fd)
            self._fd = -1

    # --- segments -----------------------------------------------------------------------------

    def _open(self, number: int) -> None:
        """Segment ``number`` for appending: a new one, or the open one again."""
        path = self.directory / f"segment-{number:08d}.wal"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o600)
        self._segment = number
        self._size = os.fstat(self._fd).st_size
        self._opened_at = self.clock()

    def _rotate(self) -> None:
        """A new segment, and the sink's state as of its start. Not while an fdatasync of the
        open segment is in flight (its descriptor must stay open): the next record then."""
        if self._syncing is not None:
            return
        old = self._fd
        try:
            if self.options.fsync and self._written > self._synced:
                os.fdatasync(old)
                self._synced = self._written
        except OSError as error:
            self.errors_total += 1
            log.error("remote write: fdatasync of the log failed: %s", error.strerror)
        with contextlib.suppress(OSError):
            os.close(old)
        self._fd = -1
        try:
            self._open(self._segment + 1)
        except OSError:
            self._segment += 1  # the append retries the open, and refuses the event if it fails
            self._size = 0
            return
        self._write_state()

    def _reopen(self) -> None:
        """The segment again after a failed write or open. A tail that the failed write left
        (its undo failed too) is cut off; if that fails, a new segment starts instead, so
        that no record ever continues a partial line."""
        whole = self._size  # where the segment's last whole record ends
        self._open(self._segment)
        if self._size != whole:
            try:
                os.ftruncate(self._fd, whole)
                self._size = whole
            except OSError:
                os.close(self._fd)
                self._fd = -1
                self._open(self._segment + 1)
        if self._state_segment != self._segment:
            self._write_state()

    def _write_state(self) -> None:
        try:
            path = self.directory / f"state-{self._segment:08d}.json"
            self._write_json(path, self.state_source())
        except OSError as error:  # the older state stays and the segments after it are kept
            self.errors_total += 1
            log.error("remote write: cannot write the sink's state: %s", error.strerror)
            return
        self._state_segment = self._segment
        self._remove_old()

    def _undo(self) -> None:
        """After a failed write: cut the segment back to its last whole record, so that the
        next record does not continue a partial line; close it if even that fails."""
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def _remove_old(self) -> None:
        """Segments before both the first unanswered record and the newest state, and states
        older than the newest."""
        confirmed = self._confirmed.segment
        if confirmed < self._segment:  # its end answered for: it holds nothing unanswered
            with contextlib.suppress(OSError):
                path = self.directory / f"segment-{confirmed:08d}.wal"
                if path.stat().st_size <= self._confirmed.offset:
                    confirmed += 1
        keep = min(confirmed, self._state_segment)
        for number in self._numbered(_SEGMENT):
            if number < keep:
                with contextlib.suppress(OSError):
                    (self.directory / f"segment-{number:08d}.wal").unlink()
        for number in self._numbered(_STATE):
            if number < self._state_segment:
                with contextlib.suppress(OSError):
                    (self.directory / f"state-{number:08d}.json").unlink()

    def _numbered(self, pattern: re.Pattern[str]) -> list[int]:
        numbers = []
        for path in self.directory.iterdir():
            found = pattern.fullmatch(path.name)
            if found:
                numbers.append(int(found.group(1)))
        return sorted(numbers)

    def size_bytes(self) -> int:
        total = 0
        for path in self.directory.iterdir():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            document = _loads(data)
        except ValueError:
            log.error("remote write: %s is unreadable, ignored", path)
            return None
        return document if isinstance(document, dict) else None

    @staticmethod
    def _write_json(path: Path, document: dict[str, Any]) -> None:
        """Whole or not at all: a temporary file, synced, renamed over the old one."""
        data = _dumps(document)
        partial = path.with_name(path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(28, "No space left on device (short write)")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)


def _dumps(document: object) -> bytes:
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:  # a lone surrogate in a label: the standard library escapes it
        return json.dumps(document, separators=(",", ":")).encode()


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # the escaped surrogates of _dumps' fallback


def _position(value: object) -> Position:
    """The checkpoint's position; the start of the log when it is not one."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(n, int) and n >= 0 for n in value)
    ):
        return Position(value[0], value[1])
    return Position(0, 0)
