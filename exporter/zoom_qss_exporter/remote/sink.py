"""What of each converted event goes to remote write, and in which request.

Sent: every per-participant and per-call gauge sample, at Zoom's own time of it (``date_time``,
or ``event_ts`` for summaries), and the info series ``zoom_participant_info`` and
``zoom_phone_party_info`` (value 1 at ``event_ts``; a call party's as a participant's, below,
once an event named the party's network: Zoom names it on some samples only, and a replica
that saw none would write a second series without it). The
fleet histograms and counters and the exporter's own metrics are not sent: they are
cumulative per process and stay on each replica's ``/metrics`` (docs/remote-write.md).

Two pieces of per-replica state, both bounded in time, and both kept in the write-ahead log
(:mod:`.wal`) so that a restart does not forget them:

- the newest time already queued per sample stream, and which of the 63 minutes before it
  were queued. An item not newer than that (Zoom's redelivery, or its retry of an event
  answered 503 while newer ones got through) is queued in a chunk of its own, so that a
  receiver refusing it does not refuse good samples with it; if all of its minutes were
  queued before, the chunk is a ``redelivery``, whose refusal means the engine has it.
- per participant (and call party), the info label set last queued and its time (and in
  ``merged`` mode the merged metadata), for ``--store.summary-ttl`` after their last event
  (at least ``--store.dedup-window``, as long as Zoom may redeliver an event) and for at
  most ``--store.max-series`` participants (past that, each event's own view, unmerged,
  without staleness markers, and in a request of its own since it may be late).

``zoom_participant_info`` in one of two modes (``--remote-write.participant-info``):

- ``merged`` (the default): merged as the pull store merges it (newest values win, an empty
  value never erases a known one), so that an event carrying only part of a participant's
  metadata does not start a second info series, and refreshed by each of their events, so
  that the joins of the dashboards and recording rules on ``zoom_participant_info`` find it
  all meeting long on the remote engine too. When the merged labels change, the old series
  gets a staleness marker, as a scrape would give it (in a request of its own). It is written
  only once the metadata holds more than what QoS events carry (user name, meeting number,
  session name): once a ``*_data`` or ``*_data_summary`` event came by. With several
  replicas, one that saw only a participant's QoS events would
  otherwise write a second, emptier info series for them, and joins on it would find two.
  Still, with several replicas, one that saw fewer of a participant's events (not the summary
  with the user name, say) merges less and writes another, less complete label set.
- ``event`` (opt-in, for several replicas that must write exactly the same series): written
  from each event that carries device or network metadata (``*_data``, ``*_data_summary``),
  with that event's labels alone (``""`` where it lacks one; ``user_name`` only when the
  event itself carries it, as Video SDK's do), at its ``event_ts``, whatever this replica saw
  before. The samples written are a function of the set of events only, so any number of
  replicas behind a load balancer write exactly what one would. Per-minute QoS events and QoS
  summaries (which carry at most a user name) write no info, so joins on plain
  ``zoom_participant_info`` find a participant only within the lookback after a data event.
  The replica's record decides only which request the sample goes in (an event not newer
  than the info last queued for the participant goes in a chunk of its own) and whether a
  staleness marker ends the label set this replica queued before, when the event brings
  another (as in ``merged`` mode; it helps instant queries only).

Nothing changes unless the queue takes the whole event: a refused event leaves no trace, so
Zoom's redelivery of it is not a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from zoom_qss_exporter.families import (
    INFO_FAMILIES,
    INFO_FROM_DATA,
    INFO_LABELS,
    PARTICIPANT_INFO,
    Family,
    Lifetime,
)
from zoom_qss_exporter.remote.client import ParticipantInfo
from zoom_qss_exporter.remote.protocol import STALE_NAN, Point
from zoom_qss_exporter.remote.queue import Chunk
from zoom_qss_exporter.samples import Conversion, InfoUpdate
from zoom_qss_exporter.store.recent import RecentMap

StreamKey = tuple[bool, tuple[str, ...]]  # (per-sample lifetime?, the stream's label values)
# Seconds: Prometheus refuses samples more than about an hour older than its newest ("out of
# bounds"), and the whole request with them; Zoom's last retry comes an hour after the first.
LATE_AFTER = 45 * 60.0
# The grid on which a stream remembers what it queued: Zoom's per-minute items (and, roughly,
# the phone samples of one minute), as the fleet ledger tells redeliveries apart.
STEP = 60.0
# where the values only a data item gives are, in a participant's info values
_FROM_DATA = tuple(i for i, name in enumerate(INFO_LABELS[3:]) if name in INFO_FROM_DATA)
InfoKey = tuple[Family, tuple[str, ...]]
_INFO_BY_NAME = {family.name: family for family in INFO_FAMILIES}


def _described(family: Family, values: tuple[str, ...]) -> bool:
    """Worth writing: a participant's info once a data item described them, a call party's
    once an event named its network (a replica that saw only QoS events, or only samples
    without a network, would otherwise write a second, emptier series)."""
    if family is PARTICIPANT_INFO:
        return any(values[i] for i in _FROM_DATA)
    return any(values)


def stream_key(key: StreamKey) -> int:
    """A 64-bit key for the ledger that is the same in every process (``hash`` of a string
    is not), so that the ledger can be written down and read back by the next one."""
    text = "\x1f".join(("1" if key[0] else "0", *key[1]))
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def point_stream(point: Point) -> StreamKey:
    """The stream a point of a conversion's sample belongs to: its labels without ``stat``."""
    family = point.family
    labels = point.labels[:-1] if family.labels and family.labels[-1] == "stat" else point.labels
    return (family.lifetime is Lifetime.SAMPLE, labels)


class ChunkQueue(Protocol):
    """Takes all of the chunks or none (:class:`~.queue.RemoteWriteQueue`)."""

    def offer(self, chunks: Sequence[Chunk]) -> bool: ...


class _Info(NamedTuple):
    timestamp: float  # event time of the newest metadata merged in
    values: tuple[str, ...]  # the family's labels after its key, in order
    sent: tuple[str, ...] | None  # the label values last queued (all the family's labels)
    sent_at: float  # their time
    updated: float  # our clock, for the TTL


class RemoteWriteSink:
    def __init__(
        self,
        queue: ChunkQueue,
        window: float,
        info_ttl: float,
        max_owners: int,
        participant_info: ParticipantInfo = ParticipantInfo.MERGED,
        late_after: float = LATE_AFTER,
    ) -> None:
        self.queue = queue
        # a record must outlive Zoom's retries, or a retried data event would be taken for new
        self.info_ttl = max(info_ttl, window)
        self.max_owners = max_owners
        self.participant_info = participant_info
        self.late_after = late_after
        self._ledger = RecentMap(window, marked=True)  # keyed by stream_key(StreamKey)
        self._info: dict[InfoKey, _Info] = {}

    def offer(self, conversion: Conversion, now: float) -> bool:
        """Queue the event's samples, all or nothing; False when the queue is full."""
        chunks, seen = self._samples(conversion, now)
        records: list[tuple[InfoKey, _Info]] = []
        for update in conversion.info:
            if self.participant_info is ParticipantInfo.EVENT:
                info, info_chunks = self._event_info(update, now)
            else:
                info, info_chunks = self._merged_info(update, now)
            chunks.extend(info_chunks)
            if info is not None:
                records.append(((update.family, update.key), info))
        if chunks and not self.queue.offer(chunks):
            return False
        for key, timestamp in seen:
            self._ledger.sighting(key, timestamp, STEP)
        self._info.update(records)
        return True

    def _samples(
        self, conversion: Conversion, now: float
    ) -> tuple[list[Chunk], list[tuple[int, float]]]:
        """The in-order samples as one chunk, and each stream's items in this event; each
        late item as a chunk of its own: late against what was queued before, against an item
        of the same stream earlier in this event, or older than ``late_after`` (a retry of a
        stream this replica never saw may be older than the engine takes: Prometheus refuses
        the whole request then)."""
        oldest = now - self.late_after
        fresh: list[Point] = []
        chunks: list[Chunk] = []
        newest: dict[int, float] = {}  # of the streams in ``fresh``
        seen: list[tuple[int, float]] = []
        stream: tuple[str, ...] | None = None
        lifetime: Lifetime | None = None
        key = 0
        when = 0.0
        group = fresh
        for family, labels, value, timestamp, stat in conversion.samples:
            if labels is not stream or family.lifetime is not lifetime or timestamp != when:
                if labels != stream or family.lifetime is not lifetime:
                    key = stream_key((family.lifetime is Lifetime.SAMPLE, labels))
                stream, lifetime, when = labels, family.lifetime, timestamp
                seen.append((key, timestamp))
                known = newest.get(key)
                if known is None:
                    known = self._ledger.get(key)
                if (known is not None and timestamp <= known) or timestamp < oldest:
                    group = []
                    again = not self._ledger.is_new(key, timestamp, STEP)
                    chunks.append(Chunk(group, alone=True, redelivery=again))
                else:
                    group = fresh
                    newest[key] = timestamp
            group.append(Point(family, (*labels, stat) if stat else labels, value, timestamp))
        if fresh:
            chunks.insert(0, Chunk(fresh))
        return chunks, seen

    def _event_info(self, update: InfoUpdate, now: float) -> tuple[_Info | None, list[Chunk]]:
        """The event's own metadata, if it describes more than QoS events do, at the event's
        time; the record kept tells only where it goes (and which series this replica ends)."""
        family = update.family
        record = self._info.get((family, update.key))
        new = tuple(update.values.get(k, "") for k in family.labels[family.key :])
        if not _described(family, new):  # a per-minute event or a QoS summary: no device
            return (None if record is None else record._replace(updated=now)), []
        labels = (*update.key, *new)
        point = Point(family, labels, 1.0, update.timestamp)
        if record is None:
            if len(self._info) >= self.max_owners:  # past the cap: written, not remembered,
                return None, [Chunk([point], alone=True)]  # so it may be late: on its own
            return _Info(update.timestamp, new, labels, update.timestamp, now), [Chunk([point])]
        if update.timestamp <= record.sent_at:  # late: may be refused, so on its own
            return record._replace(updated=now), [Chunk([point], alone=True)]
        chunks = [Chunk([point])]
        if record.sent is not None and record.sent != labels:
            marker = Point(family, record.sent, STALE_NAN, update.timestamp + 0.001)
            chunks.append(Chunk([marker], alone=True))
        return _Info(update.timestamp, new, labels, update.timestamp, now), chunks

    def _merged_info(self, update: InfoUpdate, now: float) -> tuple[_Info | None, list[Chunk]]:
        """The merged metadata to keep, and what to queue for it: nothing for an event not
        newer than the info last queued (it may fill in unknown values: the next event sends
        them)."""
        family = update.family
        new = tuple(update.values.get(k, "") for k in family.labels[family.key :])
        record = self._info.get((family, update.key))
        if record is None:
            if len(self._info) >= self.max_owners:  # past the cap: this event's view, unmerged
                if not _described(family, new):
                    return None, []
                point = Point(family, (*update.key, *new), 1.0, update.timestamp)
                return None, [Chunk([point], alone=True)]  # it may be late: on its own
            record = _Info(update.timestamp, new, None, 0.0, now)
        if update.timestamp >= record.timestamp:
            values = tuple(n or o for n, o in zip(new, record.values, strict=True))
            timestamp = update.timestamp
        else:
            values = tuple(o or n for n, o in zip(new, record.values, strict=True))
            timestamp = record.timestamp
        late = record.sent is not None and update.timestamp <= record.sent_at
        if late or not _described(family, values):
            return _Info(timestamp, values, record.sent, record.sent_at, now), []
        labels = (*update.key, *values)
        chunks = [Chunk([Point(family, labels, 1.0, update.timestamp)])]
        if record.sent is not None and record.sent != labels:  # ends the old series, as a scrape
            # A millisecond later than the event: another replica may still write the old
            # series at the event's time, and two values at one time would be refused.
            marker = Point(family, record.sent, STALE_NAN, update.timestamp + 0.001)
            chunks.append(Chunk([marker], alone=True))
        return _Info(timestamp, values, labels, update.timestamp, now), chunks

    def state(self) -> dict[str, Any]:
        """The ledger and the info records, as the write-ahead log keeps them."""
        return {
            "streams": self._ledger.entries(),
            "info": [
                [
                    family.name,
                    list(key),
                    r.timestamp,
                    list(r.values),
                    r.sent and list(r.sent),
                    r.sent_at,
                ]
                for (family, key), r in self._info.items()
            ],
        }

    def restore(
        self, state: dict[str, Any], records: list[list[tuple[bool, list[Point]]]], now: float
    ) -> None:
        """What an earlier process knew: its state, then the records it queued after it.
        Restored info records count as just seen: they expire a TTL after the restart at the
        latest."""
        self._ledger.load([(int(k), float(t), int(m)) for k, t, m in state.get("streams", [])])
        for name, key, timestamp, values, sent, sent_at in state.get("info", []):
            family = _INFO_BY_NAME.get(name)
            if family is None:
                continue
            self._info[(family, tuple(key))] = _Info(
                float(timestamp), tuple(values), tuple(sent) if sent else None, float(sent_at), now
            )
        for chunks in records:
            for _, points in chunks:
                for point in points:
                    if point.family in INFO_FAMILIES:
                        self._restore_info(point, now)
                    else:
                        key = stream_key(point_stream(point))
                        self._ledger.sighting(key, point.timestamp, STEP)

    def _restore_info(self, point: Point, now: float) -> None:
        if point.value != 1.0:  # a staleness marker ends the series it names, nothing more
            return
        family = point.family
        key = (family, point.labels[: family.key])
        record = self._info.get(key)
        if record is not None and record.sent_at > point.timestamp:
            return
        values = point.labels[family.key :]
        self._info[key] = _Info(point.timestamp, values, point.labels, point.timestamp, now)

    def expire(self, now: float) -> None:
        self._ledger.expire(now)
        cutoff = now - self.info_ttl
        for key in [k for k, record in self._info.items() if record.updated < cutoff]:
            del self._info[key]
