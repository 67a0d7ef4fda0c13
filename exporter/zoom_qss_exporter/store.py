"""The series store: the exporter's only per-participant state.

Keyed by (family, label values); each series keeps its value, Zoom's time of that value and
the wall time of its last update. Late or repeated samples never overwrite newer ones,
departures end a participant's per-sample series (and are remembered so that a retried
event cannot bring them back), series expire after a TTL, and a hard cap bounds the heap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .convert import Conversion, InfoUpdate, Owner
from .families import ALL_FAMILIES, INFO_LABELS, PARTICIPANT_INFO, Family, Lifetime

Labels = tuple[str, ...]
_INFO_KEYS = INFO_LABELS[3:]


class Series:
    __slots__ = ("timestamp", "updated", "value")

    def __init__(self, value: float, timestamp: float, updated: float) -> None:
        self.value = value
        self.timestamp = timestamp  # Zoom's time of the value
        self.updated = updated  # our clock at the last write, for the TTL


@dataclass(slots=True)
class _Info:
    values: dict[str, str]
    timestamp: float
    labels: Labels


@dataclass(frozen=True, slots=True)
class StoreLimits:
    ttl: float = 300.0
    summary_ttl: float = 3600.0
    max_series: int = 1_000_000


@dataclass(slots=True)
class WriteResult:
    written: int = 0  # samples that created or updated a series
    stale: int = 0  # samples older than (or as old as) the stored value, or of a departed owner
    dropped: int = 0  # new series refused because the store is full


class SeriesStore:
    def __init__(self, limits: StoreLimits) -> None:
        self.limits = limits
        self._series: dict[Family, dict[Labels, Series]] = {fam: {} for fam in ALL_FAMILIES}
        self._owned: dict[Owner, set[tuple[Family, Labels]]] = {}
        self._departed: dict[Owner, float] = {}  # owner -> when the tombstone may go
        self._info: dict[Owner, _Info] = {}
        self._live = 0
        self.expired_total = 0
        self.dropped_total = 0

    # --- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._live

    def families(self) -> Iterator[tuple[Family, Mapping[Labels, Series]]]:
        yield from self._series.items()

    def families_dict(self) -> Mapping[Family, Mapping[Labels, Series]]:
        return self._series

    def get(self, family: Family, labels: Labels) -> Series | None:
        return self._series[family].get(labels)

    def has_departed(self, owner: Owner, now: float) -> bool:
        return self._departed.get(owner, now) > now

    # --- writing ----------------------------------------------------------------------------

    def apply(self, conversion: Conversion, now: float) -> WriteResult:
        result = WriteResult()
        for leaver in conversion.departures:
            self._depart(leaver, now)
        owner = conversion.owner
        departed = owner is not None and self._departed.get(owner, now) > now
        for sample in conversion.samples:
            family = sample.family
            sample_series = family.lifetime is Lifetime.SAMPLE
            if sample_series and departed:
                result.stale += 1
                continue
            series = self._series[family]
            current = series.get(sample.labels)
            if current is not None:
                if sample.timestamp <= current.timestamp:
                    result.stale += 1
                    continue
                current.value, current.timestamp, current.updated = (
                    sample.value,
                    sample.timestamp,
                    now,
                )
            elif not self._insert(family, sample.labels, sample.value, sample.timestamp, now):
                result.dropped += 1
                continue
            elif sample_series and owner is not None:
                self._owned.setdefault(owner, set()).add((family, sample.labels))
            result.written += 1
        if conversion.info is not None:
            self._merge_info(conversion.info, now)
        return result

    def _insert(self, family: Family, labels: Labels, value: float, ts: float, now: float) -> bool:
        if self._live >= self.limits.max_series:
            self.dropped_total += 1
            return False
        self._series[family][labels] = Series(value, ts, now)
        self._live += 1
        return True

    def _remove(self, family: Family, labels: Labels) -> None:
        if self._series[family].pop(labels, None) is not None:
            self._live -= 1

    def _depart(self, owner: Owner, now: float) -> None:
        for family, labels in self._owned.pop(owner, ()):
            self._remove(family, labels)
        self._departed[owner] = now + self.limits.ttl

    def _merge_info(self, update: InfoUpdate, now: float) -> None:
        """Newest values win; an older event only fills in what is still unknown."""
        record = self._info.get(update.owner)
        if record is None:
            values, timestamp = dict(update.values), update.timestamp
        elif update.timestamp >= record.timestamp:
            values = {k: update.values.get(k) or record.values[k] for k in _INFO_KEYS}
            timestamp = update.timestamp
        else:
            values = {k: record.values[k] or update.values.get(k, "") for k in _INFO_KEYS}
            timestamp = record.timestamp
        labels = (*update.owner, *(values.get(k, "") for k in _INFO_KEYS))
        if record is not None and record.labels == labels:
            series = self._series[PARTICIPANT_INFO].get(labels)
            if series is not None:
                series.updated = now
                record.timestamp = timestamp
                return
        if record is not None:
            self._remove(PARTICIPANT_INFO, record.labels)
            del self._info[update.owner]
        if self._insert(PARTICIPANT_INFO, labels, 1.0, timestamp, now):
            self._info[update.owner] = _Info(values, timestamp, labels)

    # --- forgetting -------------------------------------------------------------------------

    def expire(self, now: float) -> int:
        """Drop series not updated within their TTL, and tombstones past theirs."""
        expired = 0
        for family, series in self._series.items():
            ttl = self.limits.ttl if family.lifetime is Lifetime.SAMPLE else self.limits.summary_ttl
            cutoff = now - ttl
            dead = [labels for labels, entry in series.items() if entry.updated < cutoff]
            for labels in dead:
                del series[labels]
                if family is PARTICIPANT_INFO:
                    self._info.pop((labels[0], labels[1], labels[2]), None)
                elif family.lifetime is Lifetime.SAMPLE:
                    self._disown(family, labels)
            expired += len(dead)
        self._live -= expired
        self.expired_total += expired
        gone = [owner for owner, until in self._departed.items() if until <= now]
        for owner in gone:
            del self._departed[owner]
        return expired

    def _disown(self, family: Family, labels: Labels) -> None:
        owner: Owner = (
            ("phone", labels[0], labels[1])
            if family.name.startswith("zoom_phone_")
            else (labels[0], labels[1], labels[2])
        )
        owned = self._owned.get(owner)
        if owned is not None:
            owned.discard((family, labels))
            if not owned:
                del self._owned[owner]
