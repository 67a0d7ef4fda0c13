"""The series store: the exporter's only per-participant state.

Series are grouped in *streams*: the labels sibling series share (a participant's QoS type, or
a call party's direction). Zoom sends one QoS item per stream per minute (or per few seconds
for phone), so ordering, freshness and lifetime are kept per stream: a stream's series show
its newest item, an item not newer than the newest one is stale and changes nothing, a value
missing from the newest item is gone (not frozen at its last value), and a stream expires
after a TTL without items. Departures end a participant's per-sample streams and are
remembered, so that a retried event cannot bring them back; so does the end of a call (every
party's per-sample streams, once an event gives ``call_end_time``); a hard cap bounds the heap:
on live series (``max_series``), and on departure records (as many, the oldest go first).

Info families (``zoom_participant_info``, ``zoom_phone_party_info``) hold one series per
owner whose labels carry metadata: merged (newest values win), and replaced when they change.

Layout, for a few hundred thousand series: every series is one pre-rendered exposition line
(``{labels} value``, updated on write) in its family's dict, keyed by a small integer made
from its stream id and ``stat``; a scrape is one ``join`` per family. Per-stream state lives
in flat arrays indexed by stream id.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from zoom_qss_exporter.families import ALL_FAMILIES, INFO_FAMILIES, Family, Lifetime
from zoom_qss_exporter.samples import Conversion, InfoUpdate, Owner
from zoom_qss_exporter.store.textformat import FORMATTED, format_value, label_text

Labels = tuple[str, ...]
_STAT_INDEX = {"": 0, "min": 1, "avg": 2, "max": 3}
_STATS = ("", "min", "avg", "max")
SAMPLE, SUMMARY = 0, 1  # per-stream state is kept apart for the two lifetimes


class SeriesView(NamedTuple):
    value: float
    timestamp: float  # Zoom's time of the stream's newest item
    updated: float  # our clock when it arrived, for the TTL


class FamilySeries:
    """One family's live series: ``lines[stat][stream id]`` is ``b'{labels} value'`` (no
    name, no newline); ``stat`` is 0 where the family has no ``stat`` label, else 1-3 for
    min, avg, max. Keying by the stream id lets every family share one int object per
    stream."""

    __slots__ = ("bit", "family", "kind", "lines", "slots", "streams")

    def __init__(self, family: Family, bit: int, streams: dict[Labels, int]) -> None:
        self.family = family
        self.bit = bit  # this family's first bit in a stream's mask of live series
        self.kind = SAMPLE if family.lifetime is Lifetime.SAMPLE else SUMMARY
        self.streams = streams  # stream ids of every family with the same stream labels
        self.lines: tuple[dict[int, bytes], ...] = ({}, {}, {}, {})
        # by ``stat`` ("" where there is none): its lines and its bit in a stream's mask
        self.slots = {
            stat: (self.lines[index], 1 << (bit + index)) for stat, index in _STAT_INDEX.items()
        }

    def __len__(self) -> int:
        return sum(len(lines) for lines in self.lines)


@dataclass(frozen=True, slots=True)
class StoreLimits:
    ttl: float = 300.0
    summary_ttl: float = 3600.0
    max_series: int = 1_000_000
    max_departures: int = 0  # departure records kept; 0: as many as max_series


@dataclass(slots=True)
class WriteResult:
    written: int = 0  # samples that created or updated a series
    stale: int = 0  # samples of an item not newer than its stream's newest, or of a leaver
    dropped: int = 0  # new series refused because the store is full
    info_stale: bool = False  # the event's info was known already, as new or newer


class SeriesStore:
    def __init__(self, limits: StoreLimits) -> None:
        self.limits = limits
        tables: dict[Labels, dict[Labels, int]] = {}
        self._families = {
            family: FamilySeries(family, 4 * n, tables.setdefault(_stream_names(family), {}))
            for n, family in enumerate(ALL_FAMILIES)
        }
        self._by_bit = list(self._families.values())
        # per stream id
        self._labels: list[Labels | None] = []
        self._text: list[bytes] = []  # its labels, rendered
        self._table: list[dict[Labels, int]] = []
        self._owner: list[Owner | None] = []
        self._masks: tuple[list[int], list[int]] = ([], [])  # bit per live series, per kind
        self._stamps: tuple[array[float], array[float]] = (array("d"), array("d"))
        self._updated: tuple[array[float], array[float]] = (array("d"), array("d"))
        self._free: list[int] = []
        self._owned: dict[Owner, set[int]] = {}  # owner -> its streams with per-sample series
        self._parties: dict[str, set[Owner]] = {}  # call id -> its parties in ``_owned``
        self._departed: dict[Owner, float] = {}  # owner -> when the tombstone may go
        self._ended: dict[str, float] = {}  # ended call id -> when the tombstone may go
        self._info: dict[int, tuple[float, Labels]] = {}  # info stream -> (time, its values)
        # the stat prefixes of the stream whose series were made last: (its label values,
        # the family's label names, prefix by stat); identity, not equality, is checked
        self._stat_prefixes: tuple[Labels | None, Labels, dict[str, bytes]] = (None, (), {})
        self._info_bits = sum(1 << self._families[family].bit for family in INFO_FAMILIES)
        self._live = 0
        self.expired_total = 0
        self.dropped_total = 0
        self.departures_dropped_total = 0  # departure records forgotten early, at their cap
        self.max_departures = limits.max_departures or limits.max_series

    # --- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._live

    @property
    def departures(self) -> int:
        """Departure records held (one per departed participant or call party)."""
        return len(self._departed)

    def has_departed(self, owner: Owner) -> bool:
        """Whether ``owner``'s departure is remembered: its retried samples change nothing."""
        return owner in self._departed

    def families(self) -> Iterator[FamilySeries]:
        yield from self._families.values()

    def series(self, family: Family) -> Iterator[tuple[Labels, SeriesView]]:
        """Every series of ``family`` with its label values (the slow, general view)."""
        packed = self._families[family]
        items = [(sid, stat, line) for stat in range(4) for sid, line in packed.lines[stat].items()]
        for sid, stat, line in items:
            stream = self._labels[sid]
            assert stream is not None
            if family.key:
                labels = (*stream, *self._info[sid][1])
            else:
                labels = (*stream, _STATS[stat]) if stat else stream
            value = float(line[line.rindex(b" ") + 1 :])
            kind = packed.kind
            yield labels, SeriesView(value, self._stamps[kind][sid], self._updated[kind][sid])

    def get(self, family: Family, labels: Labels) -> SeriesView | None:
        """One series by its labels; a scan, for tests and debugging."""
        for found, view in self.series(family):
            if found == labels:
                return view
        return None

    # --- writing ----------------------------------------------------------------------------

    def apply(
        self, conversion: Conversion, now: float, seen: Collection[tuple[Labels, float]] = ()
    ) -> WriteResult:
        """Write a conversion's samples and metadata; the hot path of every event.

        Consecutive samples of one stream (equal label values), time and lifetime are one
        item: one freshness check, and afterwards the stream's series that the item did not
        carry are removed. ``seen`` holds the (stream, time) of per-sample items known to
        be redeliveries (the fleet metrics' ledger remembers them longer than series live):
        they are stale even when their series have expired or their participant has left,
        so that Zoom's retries, up to ~85 minutes late, bring nobody back."""
        result = WriteResult()
        for leaver in conversion.departures:
            self._depart(leaver, now)
        owner = conversion.owner
        departed = owner is not None and (
            self._departed.get(owner, now) > now
            or (owner[0] == "phone" and self._ended.get(owner[1], now) > now)
        )
        families = self._families
        stream: Labels | None = None
        table: dict[Labels, int] | None = None
        kind = sid = -1
        item_time = -1.0
        stale_item = False
        carried = 0  # mask bits of the series the current item carried
        stale = dropped = 0
        formatted = FORMATTED
        for family, labels, value, timestamp, stat in conversion.samples:
            packed = families[family]
            new_item = labels is not stream and labels != stream  # is: the usual, cheap test
            if (
                new_item
                or timestamp != item_time
                or packed.kind != kind
                or packed.streams is not table
            ):
                if sid >= 0 and not stale_item:
                    self._close_item(sid, kind, carried)
                stream, table, kind, carried = labels, packed.streams, packed.kind, 0
                item_time = timestamp
                sid = table.get(labels, -1)
                stale_item = kind == SAMPLE and (
                    departed or (bool(seen) and (labels, timestamp) in seen)
                )
                if sid >= 0 and not stale_item:
                    stale_item = timestamp <= self._stamps[kind][sid]
                    if not stale_item:
                        self._stamps[kind][sid] = timestamp
                        self._updated[kind][sid] = now
            if stale_item:
                stale += 1
                continue
            lines, bit = packed.slots[stat]
            line = lines.get(sid) if sid >= 0 else None
            if line is not None:  # an update: the common case
                text = formatted.get(value) or format_value(value)
                if not line.endswith(text) or line[-len(text) - 1] != 32:  # b" "
                    lines[sid] = line[: line.rindex(b" ") + 1] + text
            elif self._live >= self.limits.max_series:
                dropped += 1
                continue
            else:
                if sid < 0:
                    sid = self._new_stream(labels, packed, timestamp, now)
                if owner is not None and kind == SAMPLE and self._owner[sid] is None:
                    self._owner[sid] = owner
                    if owner not in self._owned and owner[0] == "phone":
                        self._parties.setdefault(owner[1], set()).add(owner)
                    self._owned.setdefault(owner, set()).add(sid)
                lines[sid] = self._prefix(packed, sid, stat) + format_value(value)
                self._live += 1
            carried |= bit
        if sid >= 0 and not stale_item:
            self._close_item(sid, kind, carried)
        result.written = len(conversion.samples) - stale - dropped
        result.stale, result.dropped = stale, dropped
        self.dropped_total += dropped
        # an event whose samples were all stale (a redelivery, a leaver's) brings back no info
        if conversion.info and (result.written or not conversion.samples):
            fresh = [self._merge_info(update, now) for update in conversion.info]
            result.info_stale = not any(fresh)
        for call_id in conversion.ended_calls:  # after its samples: the newest are shown last
            self._end_call(call_id, now)
        return result

    def _close_item(self, sid: int, kind: int, carried: int) -> None:
        """The stream now holds exactly the series its newest item carried."""
        masks = self._masks[kind]
        gone = masks[sid] & ~carried
        masks[sid] = carried
        if gone:
            self._remove_bits(sid, gone)
            self._release_if_empty(sid)

    def _prefix(self, packed: FamilySeries, sid: int, stat: str) -> bytes:
        """``{labels} `` of a new series: its stream's labels, rendered once per stream; with
        ``stat``, rendered from the label values (never by editing rendered text), once per
        stream and stat while one stream's series are made (its families share them)."""
        if not stat:
            return b"{" + self._text[sid] + b"} "
        stream, names = self._labels[sid], packed.family.labels
        assert stream is not None
        last_stream, last_names, prefixes = self._stat_prefixes
        if stream is not last_stream or names is not last_names:
            prefixes = {}
            self._stat_prefixes = (stream, names, prefixes)
        prefix = prefixes.get(stat)
        if prefix is None:
            prefix = prefixes[stat] = b"{" + label_text(names, (*stream, stat)) + b"} "
        return prefix

    def _new_stream(self, labels: Labels, packed: FamilySeries, stamp: float, now: float) -> int:
        text = label_text(_stream_names(packed.family), labels)
        if self._free:
            sid = self._free.pop()
            self._labels[sid], self._text[sid], self._table[sid] = labels, text, packed.streams
            self._owner[sid] = None
            for kind in (SAMPLE, SUMMARY):
                self._masks[kind][sid] = 0
                self._stamps[kind][sid] = self._updated[kind][sid] = 0.0
        else:
            sid = len(self._labels)
            self._labels.append(labels)
            self._text.append(text)
            self._table.append(packed.streams)
            self._owner.append(None)
            for kind in (SAMPLE, SUMMARY):
                self._masks[kind].append(0)
                self._stamps[kind].append(0.0)
                self._updated[kind].append(0.0)
        self._stamps[packed.kind][sid] = stamp
        self._updated[packed.kind][sid] = now
        packed.streams[labels] = sid
        return sid

    def _remove_bits(self, sid: int, bits: int) -> None:
        while bits:
            low = bits & -bits
            index = low.bit_length() - 1
            del self._by_bit[index >> 2].lines[index & 3][sid]
            self._live -= 1
            bits ^= low

    def _release_if_empty(self, sid: int) -> None:
        if self._masks[SAMPLE][sid] or self._masks[SUMMARY][sid]:
            return
        labels = self._labels[sid]
        if labels is None:  # never held a series (all dropped at the cap) or already free
            return
        del self._table[sid][labels]
        owner = self._owner[sid]
        if owner is not None:
            owned = self._owned[owner]
            owned.discard(sid)
            if not owned:
                del self._owned[owner]
                if owner[0] == "phone":
                    parties = self._parties[owner[1]]
                    parties.discard(owner)
                    if not parties:
                        del self._parties[owner[1]]
        self._labels[sid], self._text[sid], self._owner[sid] = None, b"", None
        self._free.append(sid)

    def _depart(self, owner: Owner, now: float) -> None:
        for sid in list(self._owned.get(owner, ())):
            bits, self._masks[SAMPLE][sid] = self._masks[SAMPLE][sid], 0
            self._remove_bits(sid, bits)
            self._release_if_empty(sid)
        departed = self._departed
        if departed.pop(owner, None) is None and len(departed) >= self.max_departures:
            # the oldest record goes: insertion order is expiry order (one TTL for all)
            del departed[next(iter(departed))]
            self.departures_dropped_total += 1
        departed[owner] = now + self.limits.ttl

    def _end_call(self, call_id: str, now: float) -> None:
        """Every party's per-sample series end, and no retried sample brings them back."""
        for owner in list(self._parties.get(call_id, ())):
            self._depart(owner, now)
        self._ended[call_id] = now + self.limits.ttl

    def _merge_info(self, update: InfoUpdate, now: float) -> bool:
        """Newest values win; an older event only fills in what is still unknown. False when
        the update brought nothing: not newer than the record, and no value it lacked (a
        redelivered or replayed ``*_data`` event), which then changes nothing."""
        owner = update.key
        family = update.family
        packed = self._families[family]
        sid = packed.streams.get(owner, -1)
        record = self._info.get(sid) if sid >= 0 else None
        if record is not None and not update.values:  # a refresh: nothing new is known
            self._updated[SUMMARY][sid] = now
            return True
        new = tuple(update.values.get(k, "") for k in family.labels[family.key :])
        if record is None:
            timestamp, values = update.timestamp, new
        elif update.timestamp >= record[0]:
            timestamp = update.timestamp
            values = tuple(n or o for n, o in zip(new, record[1], strict=True))
        else:
            timestamp = record[0]
            values = tuple(o or n for n, o in zip(new, record[1], strict=True))
        lines = packed.lines[0]
        if record is not None and sid in lines:
            if update.timestamp <= record[0] and values == record[1]:
                self._updated[SUMMARY][sid] = now  # its owner is still about
                return False
            if values != record[1]:
                lines[sid] = self._info_line(family, sid, values)
            self._updated[SUMMARY][sid] = now
            self._stamps[SUMMARY][sid] = timestamp
            self._info[sid] = (timestamp, values)
            return True
        if self._live >= self.limits.max_series:
            self.dropped_total += 1
            return True
        if sid < 0:
            sid = self._new_stream(owner, packed, timestamp, now)
        # the line first: state changes only once it exists, so a record is never half made
        lines[sid] = self._info_line(family, sid, values)
        self._info[sid] = (timestamp, values)
        self._masks[SUMMARY][sid] = 1 << packed.bit
        self._live += 1
        return True

    def _info_line(self, family: Family, sid: int, values: Labels) -> bytes:
        owner = self._labels[sid]
        assert owner is not None
        return b"{" + label_text(family.labels, (*owner, *values)) + b"} " + format_value(1.0)

    # --- forgetting -------------------------------------------------------------------------

    def expire(self, now: float) -> int:
        """Drop streams without an item within their TTL, and tombstones past theirs."""
        before = self._live
        for kind, ttl in ((SAMPLE, self.limits.ttl), (SUMMARY, self.limits.summary_ttl)):
            cutoff = now - ttl
            masks, updated = self._masks[kind], self._updated[kind]
            for sid, when in enumerate(updated):
                if when < cutoff and masks[sid]:
                    bits, masks[sid] = masks[sid], 0
                    if bits & self._info_bits:
                        del self._info[sid]
                    self._remove_bits(sid, bits)
                    self._release_if_empty(sid)
        expired = before - self._live
        self.expired_total += expired
        gone = [owner for owner, until in self._departed.items() if until <= now]
        for owner in gone:
            del self._departed[owner]
        for call_id in [call for call, until in self._ended.items() if until <= now]:
            del self._ended[call_id]
        return expired


def _stream_names(family: Family) -> Labels:
    """The labels that identify a stream: all but ``stat``; for info, only the owner's."""
    if family.key:
        return family.labels[: family.key]
    return family.labels[:-1] if family.labels[-1] == "stat" else family.labels


def counts(store: SeriesStore) -> Mapping[str, int]:
    """Live series per family name, for ``zoom_qss_exporter_series``."""
    return {packed.family.name: len(packed) for packed in store.families()}
