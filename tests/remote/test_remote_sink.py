"""What of a conversion goes to remote write: the pull mode's names, labels and values, late
items in requests of their own, metadata merged (the default) or as each event has it
(replicas agree), nothing kept from a refused event."""

from __future__ import annotations

import copy
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import example, ongoing_call, parse_metrics
from zoom_qss_exporter.families import PARTICIPANT_INFO, PHONE_PARTY_INFO
from zoom_qss_exporter.ingest.convert import ConvertOptions, convert
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.remote.client import ParticipantInfo
from zoom_qss_exporter.remote.protocol import decode, encode
from zoom_qss_exporter.remote.queue import Chunk
from zoom_qss_exporter.remote.sink import LATE_AFTER, RemoteWriteSink, stream_key
from zoom_qss_exporter.store.exposition import render_store
from zoom_qss_exporter.store.series import SeriesStore, StoreLimits

NOW = 1_700_000_000.0
# the info labels QoS events carry too (a data event's are the others)
IDENTITY = {
    "__name__",
    "product",
    "meeting_id",
    "participant_id",
    "user_name",
    "meeting_number",
    "session_name",
}
Series = tuple[tuple[str, str], ...]


class FakeQueue:
    """Takes what it is offered, unless told to refuse."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.refuse = False

    def offer(self, chunks: Sequence[Chunk]) -> bool:
        if self.refuse:
            return False
        self.chunks.extend(chunks)
        return True

    def take(self) -> list[Chunk]:
        taken, self.chunks = self.chunks, []
        return taken


EVENT, MERGED = ParticipantInfo.EVENT, ParticipantInfo.MERGED


def sink(
    queue: FakeQueue,
    max_owners: int = 1000,
    mode: ParticipantInfo = MERGED,
    late_after: float = LATE_AFTER,
) -> RemoteWriteSink:
    return RemoteWriteSink(
        queue,
        5400.0,
        info_ttl=3600.0,
        max_owners=max_owners,
        participant_info=mode,
        late_after=late_after,
    )


def conversion(document: dict[str, Any]) -> Any:
    event = EVENT_MODELS[document["event"]].model_validate(document)
    return convert(event, ConvertOptions())


def sent(chunks: list[Chunk]) -> dict[Series, list[tuple[int, float]]]:
    return decode(encode([point for chunk in chunks for point in chunk.points]))


def qos_event(date_time: str, latency: str = "100 ms", user_id: str = "16778240") -> dict[str, Any]:
    document = copy.deepcopy(example("meeting.participant_qos"))
    participant = document["payload"]["object"]["participant"]
    participant["user_id"] = user_id
    participant["qos"] = [
        {"type": "audio_input", "date_time": date_time, "details": {"latency": latency}},
        {"type": "audio_output", "date_time": date_time, "details": {"latency": latency}},
    ]
    document["event_ts"] = int(NOW * 1000)
    return document


@pytest.mark.parametrize("mode", list(ParticipantInfo))
@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_same_names_labels_and_values_as_the_pull_mode(name: str, mode: ParticipantInfo) -> None:
    """Every example event, in either mode: what a scrape shows of it is exactly what remote
    write sends (empty label values are absent in both once in Prometheus); but an info series
    that would carry no more than a user name is not written (see
    test_merged_info_waits_for_metadata, test_event_mode_info_is_each_metadata_events_own).
    The call is an ongoing one: an ended call's samples are written but leave the scrape."""
    converted = conversion(ongoing_call() if name == "phone.call_qos" else example(name))
    store = SeriesStore(StoreLimits())
    store.apply(converted, NOW)
    scraped = {
        (metric, frozenset((k, v) for k, v in labels if v)): value
        for (metric, labels), value in parse_metrics(render_store(store).decode()).items()
    }
    queue = FakeQueue()
    assert sink(queue, mode=mode).offer(converted, NOW)
    pushed = {
        (dict(labels)["__name__"], frozenset(p for p in labels if p[0] != "__name__")): samples
        for labels, samples in sent(queue.take()).items()
    }
    written = {key: samples[-1][1] for key, samples in pushed.items()}
    info = {k: v for k, v in scraped.items() if k[0] == "zoom_participant_info"}
    metadata = any(n not in IDENTITY for k in info for n, _ in k[1])
    if not metadata:
        scraped = {k: v for k, v in scraped.items() if k not in info}
    assert written == scraped
    assert scraped, "every example carries samples or metadata"
    assert metadata == name.endswith(("_data", "_data_summary")), "the data events have some"


def data_event(participant: str = "16778240", event_ts: float = NOW) -> dict[str, Any]:
    data = copy.deepcopy(example("meeting.participant_data"))
    data["event_ts"] = int(event_ts * 1000)
    data["payload"]["object"]["participant"]["participant_id"] = participant
    return data


def test_samples_carry_zoom_time_and_merged_info_the_event_time() -> None:
    queue = FakeQueue()
    rw = sink(queue, mode=MERGED)
    assert rw.offer(conversion(data_event(event_ts=NOW - 30)), NOW + 999)
    assert rw.offer(conversion(qos_event("2023-11-14T22:12:20Z")), NOW + 999)
    series = sent(queue.take())
    times = {dict(labels)["__name__"]: samples for labels, samples in series.items()}
    assert times["zoom_qos_latency_seconds"] == [(1_699_999_940_000, 0.1)]  # date_time
    assert [t for t, _ in times["zoom_participant_info"]] == [
        int(NOW * 1000) - 30_000,
        int(NOW * 1000),
    ], "event_ts of each event, not the arrival"


def test_merged_info_waits_for_metadata() -> None:
    """QoS events name no device or network: a replica that saw only those writes no info
    series, so that another replica's (which saw the data event) stays the only one."""
    queue = FakeQueue()
    rw = sink(queue, mode=MERGED)
    assert rw.offer(conversion(qos_event("2023-11-14T22:12:00Z")), NOW)
    assert not any(p.family is PARTICIPANT_INFO for c in queue.take() for p in c.points)
    summary = copy.deepcopy(example("meeting.participant_qos_summary"))
    summary["payload"]["object"]["participant"]["participant_id"] = "16778240"
    summary["event_ts"] = int(NOW * 1000) + 1
    assert rw.offer(conversion(summary), NOW)  # a user name is not enough
    assert not any(p.family is PARTICIPANT_INFO for c in queue.take() for p in c.points)
    assert rw.offer(conversion(data_event(event_ts=NOW + 2)), NOW)
    (info,) = [p for c in queue.take() for p in c.points if p.family is PARTICIPANT_INFO]
    labels = dict(zip(PARTICIPANT_INFO.labels, info.labels, strict=True))
    assert labels["user_name"] and labels["device"], "merged: the name came first"


@pytest.mark.parametrize("mode", list(ParticipantInfo))
def test_party_info_waits_for_a_network(mode: ParticipantInfo) -> None:
    """Zoom names the network on some samples only (its example: the sending one): a replica
    that saw only the others writes no party info, so the one with the network stays alone."""
    queue = FakeQueue()
    rw = sink(queue, mode=mode)
    receiving = ongoing_call()
    receiving["event_ts"] = int(NOW * 1000)
    sample = receiving["payload"]["object"]["call_qos"]["qos"]
    sample.update(type="receiving", date_time="2023-11-14T22:13:10Z")
    del sample["details"]["network"]
    assert rw.offer(conversion(receiving), NOW)
    assert not any(p.family is PHONE_PARTY_INFO for c in queue.take() for p in c.points)
    sending = ongoing_call()
    sending["event_ts"] = int(NOW * 1000) + 1000
    assert rw.offer(conversion(sending), NOW)
    (info,) = [p for c in queue.take() for p in c.points if p.family is PHONE_PARTY_INFO]
    assert info.labels == ("6971668082545971778", "KLN56y2cSzu0pWxUSec4RQ", "caller", "LAN")
    assert (info.value, info.timestamp) == (1.0, NOW + 1)


def test_late_and_repeated_items_go_in_requests_of_their_own() -> None:
    queue = FakeQueue()
    rw = sink(queue)
    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)
    (first,) = queue.take()
    assert not first.alone and len(first.points) == 4  # latency + sample time, two streams
    assert rw.offer(conversion(qos_event("2023-11-14T22:12:00Z")), NOW)  # Zoom's late retry
    late = queue.take()
    assert [chunk.alone for chunk in late] == [True, True]  # one per item; info not resent
    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)  # a redelivery
    assert all(chunk.alone for chunk in queue.take())
    assert rw.offer(conversion(qos_event("2023-11-14T22:14:00Z")), NOW)  # in order again
    assert not any(chunk.alone for chunk in queue.take())


def test_items_of_one_stream_in_one_event_newest_first_the_older_goes_alone() -> None:
    queue = FakeQueue()
    rw = sink(queue)
    document = qos_event("2023-11-14T22:13:00Z")
    items = document["payload"]["object"]["participant"]["qos"]
    older = {**items[0], "date_time": "2023-11-14T22:12:00Z"}
    items[1:] = [older]
    assert rw.offer(conversion(document), NOW)
    chunks = queue.take()
    assert [chunk.alone for chunk in chunks[:2]] == [False, True]
    assert {p.timestamp for p in chunks[1].points} == {1699999920.0}  # 22:12:00
    # and the newer one is what the stream's ledger remembers: 22:12:30 is late too
    document = qos_event("2023-11-14T22:12:30Z")
    document["payload"]["object"]["participant"]["qos"][1:] = []
    assert rw.offer(conversion(document), NOW)
    assert [chunk.alone for chunk in queue.take()] == [True]


def test_an_item_older_than_late_after_goes_alone_even_on_a_new_stream() -> None:
    """Zoom's retry an hour on, of a participant this replica never saw: Prometheus would
    refuse it as out of bounds, and a whole request with it."""
    queue = FakeQueue()
    rw = sink(queue)
    when = 1700000000.0  # 22:13:20: the items below are 22:13:00, 20 s earlier
    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), when + LATE_AFTER - 60)
    assert not any(chunk.alone for chunk in queue.take())
    other = qos_event("2023-11-14T22:13:00Z", user_id="someone-else")
    assert rw.offer(conversion(other), when + LATE_AFTER + 60)
    assert [chunk.alone for chunk in queue.take()] == [True, True]  # one per item


@pytest.mark.parametrize("mode", list(ParticipantInfo))
def test_a_refused_event_leaves_no_trace(mode: ParticipantInfo) -> None:
    queue = FakeQueue()
    rw = sink(queue, mode=mode)
    queue.refuse = True
    assert not rw.offer(conversion(data_event()), NOW)
    assert not rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)
    queue.refuse = False
    assert rw.offer(conversion(data_event()), NOW)  # Zoom's redeliveries
    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)
    chunks = queue.take()
    assert not any(chunk.alone for chunk in chunks), "not mistaken for a repeat"
    assert any(point.family is PARTICIPANT_INFO for chunk in chunks for point in chunk.points)


def test_info_is_merged_and_a_changed_label_set_ends_the_old_series() -> None:
    queue = FakeQueue()
    rw = sink(queue, mode=MERGED)
    data = copy.deepcopy(example("meeting.participant_data"))
    data["event_ts"] = int(NOW * 1000)
    participant = data["payload"]["object"]["participant"]
    participant["participant_id"] = "16778240"
    participant["data"][0]["camera"] = ""  # not known yet
    assert rw.offer(conversion(data), NOW)
    (info_labels,) = sent(queue.take())
    device = dict(info_labels)["device"]
    assert device

    later = qos_event("2023-11-14T22:14:00Z")
    later["event_ts"] = int(NOW * 1000) + 60_000
    assert rw.offer(conversion(later), NOW + 60)
    info = {k: v for k, v in sent(queue.take()).items() if dict(k)["__name__"].endswith("_info")}
    assert list(info) == [info_labels], "metadata the QoS event lacks is kept"
    assert info[info_labels] == [(int(NOW * 1000) + 60_000, 1.0)]

    participant["data"][0]["device"] = "Windows"
    data["event_ts"] = int(NOW * 1000) + 120_000
    assert rw.offer(conversion(data), NOW + 120)
    info = sent(queue.take())
    assert len(info) == 2
    old, new = info[info_labels], next(v for k, v in info.items() if k != info_labels)
    assert new == [(int(NOW * 1000) + 120_000, 1.0)]
    assert old[0][0] == int(NOW * 1000) + 120_001 and math.isnan(old[0][1]), "a staleness marker"

    data["event_ts"] = int(NOW * 1000) + 30_000  # older than the info last sent
    participant["data"][0]["camera"] = "FaceTime HD"  # a value not known yet
    assert rw.offer(conversion(data), NOW + 130)
    assert queue.take() == []
    newest = qos_event("2023-11-14T22:16:00Z")
    newest["event_ts"] = int(NOW * 1000) + 180_000
    assert rw.offer(conversion(newest), NOW + 180)  # the next event sends what it filled in
    infos = {k: v for k, v in sent(queue.take()).items() if dict(k)["__name__"].endswith("_info")}
    (filled,) = [k for k, samples in infos.items() if samples[0][1] == 1.0]  # and a marker
    assert dict(filled)["camera"] == "FaceTime HD" and dict(filled)["device"] == "Windows"


@pytest.mark.parametrize("mode", list(ParticipantInfo))
def test_past_the_owner_cap_info_goes_unmerged(mode: ParticipantInfo) -> None:
    queue = FakeQueue()
    rw = sink(queue, max_owners=1, mode=mode)
    assert rw.offer(conversion(data_event("a")), NOW)
    assert rw.offer(conversion(data_event("b")), NOW)
    infos = [(p, c.alone) for c in queue.take() for p in c.points if p.family is PARTICIPANT_INFO]
    assert [p.labels[2] for p, _ in infos] == ["a", "b"]
    assert [alone for _, alone in infos] == [False, True], "b's may be late: on its own"


def test_expiry_forgets_streams_and_metadata() -> None:
    queue = FakeQueue()
    rw = sink(queue, late_after=math.inf)  # the events are hours old here
    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)
    queue.take()
    for step in range(3):  # two generations of the 90-minute ledger, and past the info TTL
        rw.expire(NOW + step * 5400.0)
    assert rw.offer(conversion(qos_event("2023-11-14T22:12:00Z")), NOW + 10800)
    chunks = queue.take()
    assert not any(chunk.alone for chunk in chunks)


# --- --remote-write.participant-info=event (opt-in, for several replicas) ----------------------


def metadata_event(
    event_ts: float,
    name: str = "meeting.participant_data",
    participant: str = "16778240",
    **changes: str,
) -> dict[str, Any]:
    """A ``*_data`` or ``*_data_summary`` example about ``participant``, its item changed."""
    document = copy.deepcopy(example(name))
    document["event_ts"] = int(event_ts * 1000)
    who = document["payload"]["object"].get("participant") or document["payload"]["object"]["user"]
    who["participant_id" if "participant" in document["payload"]["object"] else "id"] = participant
    item = who["data"][0]
    for key, value in changes.items():
        if value:
            item[key] = value
        else:
            item.pop(key, None)
    return document


def qos_summary_event(event_ts: float, participant: str = "16778240") -> dict[str, Any]:
    summary = copy.deepcopy(example("meeting.participant_qos_summary"))
    summary["payload"]["object"]["participant"]["participant_id"] = participant
    summary["event_ts"] = int(event_ts * 1000)
    return summary


def a_participants_events() -> list[dict[str, Any]]:
    """One participant's events in arrival order: joins, QoS minutes, a change of network, the
    QoS summary with their name, the data summary (another device name), Zoom's late retry of
    an older data event and a redelivery of the change."""
    minute = qos_event("2023-11-14T22:14:00Z")
    minute["event_ts"] = int(NOW * 1000) + 120_000
    change = metadata_event(NOW + 90, network_type="Wifi")
    return [
        metadata_event(NOW),
        qos_event("2023-11-14T22:13:00Z"),
        change,
        minute,
        qos_summary_event(NOW + 150),
        metadata_event(NOW + 150, "meeting.participant_data_summary"),
        metadata_event(NOW + 30, camera=""),  # late: its retry came after the change
        change,  # Zoom's redelivery
    ]


Points = set[tuple[Series, int, float]]


def written(mode: ParticipantInfo, events: list[dict[str, Any]]) -> tuple[Points, Points]:
    """The samples one sink writes of ``events``, and its staleness markers."""
    queue = FakeQueue()
    rw = sink(queue, mode=mode)
    for document in events:
        assert rw.offer(conversion(document), NOW)
    points = {(s, t, v) for s, samples in sent(queue.take()).items() for t, v in samples}
    return {p for p in points if not math.isnan(p[2])}, {p for p in points if math.isnan(p[2])}


def test_event_mode_replicas_together_write_what_one_writes() -> None:
    """Every split of a participant's events between two replicas (in arrival order each): the
    two write, together, exactly the samples one replica seeing all of them writes. Merged
    metadata does not have that property: it depends on what each replica saw."""
    events = a_participants_events()
    one, _ = written(EVENT, events)
    assert len({s for s, _, _ in one if dict(s)["__name__"] == "zoom_participant_info"}) == 4
    differs = False
    for mask in itertools.product((0, 1), repeat=len(events)):
        a = [e for e, side in zip(events, mask, strict=True) if side == 0]
        b = [e for e, side in zip(events, mask, strict=True) if side == 1]
        assert written(EVENT, a)[0] | written(EVENT, b)[0] == one, mask
        differs |= written(MERGED, a)[0] | written(MERGED, b)[0] != written(MERGED, events)[0]
    assert differs, "merged: what a replica writes depends on what it saw"


def info_points(queue: FakeQueue) -> list[tuple[dict[str, str], float, float, bool]]:
    """Labels (the empty ones too), time, value and alone-ness of the info points queued."""
    return [
        (dict(zip(PARTICIPANT_INFO.labels, p.labels, strict=True)), p.timestamp, p.value, c.alone)
        for c in queue.take()
        for p in c.points
        if p.family is PARTICIPANT_INFO
    ]


def test_event_mode_info_is_each_metadata_events_own() -> None:
    """Written from *_data and *_data_summary events only, with their labels alone: QoS
    events and summaries (a user name at most) write no info, and nothing of an earlier event
    fills in what a later one lacks."""
    queue = FakeQueue()
    rw = sink(queue, mode=EVENT)
    assert rw.offer(conversion(qos_event("2023-11-14T22:12:00Z")), NOW)
    assert rw.offer(conversion(qos_summary_event(NOW + 1)), NOW)
    assert info_points(queue) == []

    assert rw.offer(conversion(metadata_event(NOW + 2)), NOW)
    ((labels, when, value, alone),) = info_points(queue)
    assert (when, value, alone) == (NOW + 2, 1.0, False)
    assert labels["user_name"] == "", "the name was in the summary, not in this event"
    assert labels["device"] == "WIN" and labels["camera"] == "FaceTime HD Camera"

    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)  # refreshes nothing
    assert info_points(queue) == []
    assert rw.offer(conversion(metadata_event(NOW + 3, camera="")), NOW)
    (new, *_), (old, _, marker, _) = info_points(queue)
    assert new["camera"] == "" and new["device"] == "WIN", "not merged with the earlier event"
    assert old == labels and math.isnan(marker)

    assert rw.offer(conversion(metadata_event(NOW + 4, "session.user_data", "s1")), NOW)
    ((session, *_),) = info_points(queue)
    assert session["product"] == "session" and session["user_name"] == "example", "its own"


def test_event_mode_late_info_goes_alone_and_a_change_ends_the_old_series() -> None:
    queue = FakeQueue()
    rw = sink(queue, mode=EVENT)
    assert rw.offer(conversion(metadata_event(NOW)), NOW)
    ((first, *_),) = info_points(queue)

    assert rw.offer(conversion(metadata_event(NOW + 60, network_type="Wifi")), NOW)
    (new, when, one, alone), (old, stale_at, marker, marker_alone) = info_points(queue)
    assert new["network_type"] == "Wifi" and (when, one, alone) == (NOW + 60, 1.0, False)
    assert old == first and stale_at == NOW + 60.001 and math.isnan(marker) and marker_alone

    assert rw.offer(conversion(metadata_event(NOW + 30)), NOW)  # older than the info queued
    ((late, when, one, alone),) = info_points(queue)
    assert (late, when, one, alone) == (first, NOW + 30, 1.0, True), "written, on its own"
    assert rw.offer(conversion(metadata_event(NOW + 60, network_type="Wifi")), NOW)  # again
    ((again, when, _, alone),) = info_points(queue)
    assert (again, when, alone) == (new, NOW + 60, True), "a redelivery: no marker"

    assert rw.offer(conversion(metadata_event(NOW + 90)), NOW)  # newer again: back to Wired
    (back, _, _, alone), (ended, _, marker, _) = info_points(queue)
    assert back == first and not alone and ended == new and math.isnan(marker)


def test_event_mode_remembers_a_participant_while_they_send_events() -> None:
    """The label set last queued is kept for the info TTL (at least the redelivery window,
    5,400 s here) after the participant's last event (a per-minute one too), then
    forgotten: a change after that ends no series."""
    queue = FakeQueue()
    rw = sink(queue, mode=EVENT)
    assert rw.offer(conversion(metadata_event(NOW)), NOW)
    assert rw.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW + 3000)
    queue.take()
    rw.expire(NOW + 4000)
    assert rw.offer(conversion(metadata_event(NOW + 4000, device="Mac")), NOW + 4000)
    assert [math.isnan(value) for _, _, value, _ in info_points(queue)] == [False, True]
    rw.expire(NOW + 4000 + 5399)
    assert rw.offer(conversion(metadata_event(NOW + 3500, device="Mac")), NOW + 9399)
    ((_, _, _, alone),) = info_points(queue)
    assert alone, "still known: Zoom's late retry goes on its own"
    rw.expire(NOW + 9399 + 5401)
    assert rw.offer(conversion(metadata_event(NOW + 15000, device="iOS")), NOW + 15000)
    assert [math.isnan(value) for _, _, value, _ in info_points(queue)] == [False]


def test_a_redelivery_is_marked_a_first_late_delivery_is_not() -> None:
    """Zoom's redelivery of a minute already queued goes alone as a redelivery (its refusal
    means the engine has it); a minute never queued that arrives after newer ones (its first
    delivery got a 503) goes alone as new (its refusal is a loss)."""
    queue = FakeQueue()
    rw = sink(queue)
    for minute in ("10", "12"):
        assert rw.offer(conversion(qos_event(f"2023-11-14T22:{minute}:00Z")), NOW)
    queue.take()
    assert rw.offer(conversion(qos_event("2023-11-14T22:10:00Z")), NOW)
    assert [(c.alone, c.redelivery) for c in queue.take()] == [(True, True)] * 2
    assert rw.offer(conversion(qos_event("2023-11-14T22:11:00Z")), NOW)
    assert [(c.alone, c.redelivery) for c in queue.take()] == [(True, False)] * 2
    assert rw.offer(conversion(qos_event("2023-11-14T22:11:00Z")), NOW)  # now it was queued
    assert [(c.alone, c.redelivery) for c in queue.take()] == [(True, True)] * 2


def test_a_restarted_sink_knows_what_the_earlier_one_queued() -> None:
    """The state written to the log, and the records queued after it, rebuild the ledger
    and the info records: redeliveries after a restart still go alone, fresh items do not,
    and a redelivered data event does not write info older than what was written."""
    queue = FakeQueue()
    before = sink(queue)
    assert before.offer(conversion(data_event(event_ts=NOW)), NOW)
    assert before.offer(conversion(qos_event("2023-11-14T22:10:00Z")), NOW)
    state = before.state()
    assert before.offer(conversion(qos_event("2023-11-14T22:12:00Z")), NOW)
    written = [[(c.alone, c.points)] for c in queue.take()]
    from_state = (state, written[-1:])  # the newest state and the record after it
    nothing: dict[str, Any] = {}
    from_records = (nothing, written)  # no state yet: every record

    for known, records in (from_state, from_records):
        repeat = FakeQueue()
        after = sink(repeat)
        after.restore(known, records, now=NOW)
        assert after.offer(conversion(qos_event("2023-11-14T22:10:00Z")), NOW)
        assert [(c.alone, c.redelivery) for c in repeat.take()] == [(True, True)] * 2
        assert after.offer(conversion(qos_event("2023-11-14T22:12:00Z")), NOW)
        assert [(c.alone, c.redelivery) for c in repeat.take()] == [(True, True)] * 2
        assert after.offer(conversion(data_event(event_ts=NOW - 600)), NOW)  # redelivered
        assert not [p for c in repeat.take() if not c.alone for p in c.points]
        assert after.offer(conversion(qos_event("2023-11-14T22:13:00Z")), NOW)
        assert not any(chunk.alone for chunk in repeat.take())


def test_the_stream_key_is_the_same_in_every_process() -> None:
    key = (True, ("meeting", "m==", "16778240", "audio_input"))
    source = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from zoom_qss_exporter.remote.sink import stream_key;"
        f"print(stream_key({key!r}))"
    )
    exporter = str(Path(__file__).resolve().parents[2] / "exporter")
    keys = {
        subprocess.run(
            [sys.executable, "-c", source, exporter],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert keys == {str(stream_key(key))}
