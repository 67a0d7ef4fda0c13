"""Series lifecycle: TTL expiry, the cap, out-of-order samples, departures, metadata merges."""

from __future__ import annotations

import copy
from typing import Any

from conftest import LiveExporter, LiveFactory, example, key, ongoing_call, series_of
from zoom_qss_exporter import families as f
from zoom_qss_exporter.samples import Conversion, InfoUpdate, Sample
from zoom_qss_exporter.store.exposition import render_store
from zoom_qss_exporter.store.series import SeriesStore, StoreLimits

MEETING = "4444AAAiAAAAAiAiAiiAii=="
AUDIO = {
    "product": "meeting",
    "meeting_id": MEETING,
    "participant_id": "1234567890",
    "qos_type": "audio_input",
}


def qos_at(
    date_time: str, latency: str = "134 ms", participant: str = "1234567890"
) -> dict[str, Any]:
    event = copy.deepcopy(example("meeting.participant_qos"))
    participant_obj = event["payload"]["object"]["participant"]
    participant_obj["user_id"] = participant
    item = participant_obj["qos"][0]
    item["date_time"] = date_time
    item["details"]["latency"] = latency
    return event


def summary_for(participant: str) -> dict[str, Any]:
    event = copy.deepcopy(example("meeting.participant_qos_summary"))
    event["payload"]["object"]["participant"]["participant_id"] = participant
    return event


def latency(live: LiveExporter, participant: str = "1234567890") -> float | None:
    return live.metrics().get(
        key("zoom_qos_latency_seconds", **{**AUDIO, "participant_id": participant})
    )


def test_newer_sample_replaces_older(live: LiveExporter) -> None:
    live.post(qos_at("2021-07-13T21:44:51Z", "134 ms"))
    live.post(qos_at("2021-07-13T21:45:51Z", "150 ms"))
    assert latency(live) == 0.15


def test_late_sample_never_overwrites_a_newer_one(live: LiveExporter) -> None:
    live.post(qos_at("2021-07-13T21:45:51Z", "150 ms"))
    late = qos_at("2021-07-13T21:44:51Z", "999 ms")  # its first delivery failed, say
    assert live.post(late).json() == {"status": "accepted"}  # a sample the fleet lacked
    assert latency(live) == 0.15
    metrics = live.metrics()
    assert metrics[key("zoom_qos_sample_timestamp_seconds", **AUDIO)] == 1626212751.0
    samples = key("zoom_qos_samples_total", product="meeting", qos_type="audio_input")
    assert metrics[samples] == 2
    # delivered again: neither a gauge value nor counted again in the fleet
    assert live.post(late).json() == {"status": "stale"}
    assert latency(live) == 0.15
    assert live.metrics()[samples] == 2


def test_redelivery_is_not_counted_twice_in_the_fleet(live_factory: LiveFactory) -> None:
    for per_participant in (True, False):
        live = live_factory(per_participant=per_participant)
        event = qos_at("2021-07-13T21:44:51Z")
        live.post(event)
        live.clock.advance(300)  # Zoom retries 5 minutes later
        live.post(event)
        metrics = live.metrics()
        labels = {"product": "meeting", "qos_type": "audio_input"}
        assert metrics[key("zoom_qos_samples_total", **labels)] == 1
        assert metrics[key("zoom_qos_fleet_latency_seconds_count", **labels)] == 1


def test_per_minute_series_expire_after_ttl(live: LiveExporter) -> None:
    live.post(qos_at("2021-07-13T21:44:51Z"))
    live.clock.advance(299)
    assert latency(live) is not None
    live.clock.advance(2)
    metrics = live.metrics()
    assert key("zoom_qos_latency_seconds", **AUDIO) not in metrics
    assert metrics[key("zoom_qss_exporter_series_expired_total")] >= 6
    # the info series lives by the longer summary TTL
    infos = series_of(metrics, "zoom_participant_info")
    assert len(infos) == 1


def test_summary_series_live_for_the_summary_ttl(live_factory: LiveFactory) -> None:
    live = live_factory(summary_ttl=600.0)
    live.post(example("meeting.participant_qos_summary"))
    live.clock.advance(599)
    assert series_of(live.metrics(), "zoom_qos_participation_jitter_seconds")
    live.clock.advance(2)
    metrics = live.metrics()
    assert not series_of(metrics, "zoom_qos_participation_jitter_seconds")
    assert not series_of(metrics, "zoom_participant_info")


def test_updates_keep_a_series_alive(live: LiveExporter) -> None:
    for minute in range(10):
        live.post(qos_at(f"2021-07-13T21:{minute + 10}:51Z"))
        live.clock.advance(60)
    assert latency(live) is not None


def test_summary_ends_per_minute_series_and_a_retry_cannot_revive_them(
    live: LiveExporter,
) -> None:
    live.post(qos_at("2021-07-13T21:44:51Z", participant="p1"))
    live.post(qos_at("2021-07-13T21:44:51Z", participant="p2"))
    assert latency(live, "p1") is not None
    live.post(summary_for("p1"))
    assert latency(live, "p1") is None
    assert latency(live, "p2") is not None  # others stay
    retried = live.post(qos_at("2021-07-13T21:45:51Z", participant="p1"))
    assert retried.json() == {"status": "accepted"}  # new sample: counted in the fleet
    assert latency(live, "p1") is None
    stale = live.post(qos_at("2021-07-13T21:45:51Z", participant="p1"))
    assert stale.json() == {"status": "stale"}
    assert latency(live, "p1") is None
    # after the TTL the tombstone is gone too; a new stay may start
    live.clock.advance(301)
    live.post(qos_at("2021-07-13T22:00:51Z", participant="p1"))
    assert latency(live, "p1") == 0.134


def test_a_redelivery_never_revives_a_leaver_or_an_expired_series(live: LiveExporter) -> None:
    """Zoom retries an event it got no timely answer for at +5, +20 and +60 minutes, long
    after a leaver's tombstone (one TTL) and its series have gone."""
    event = qos_at("2021-07-13T21:44:51Z", participant="p1")
    live.post(event)
    live.post(summary_for("p1"))
    live.clock.advance(20 * 60)
    assert live.post(event).json() == {"status": "stale"}
    assert latency(live, "p1") is None

    event = qos_at("2021-07-13T21:44:51Z", participant="p2")
    live.post(event)
    live.clock.advance(20 * 60)  # expired: p2 sent nothing more
    assert latency(live, "p2") is None
    assert live.post(event).json() == {"status": "stale"}
    assert latency(live, "p2") is None
    live.post(qos_at("2021-07-13T22:10:51Z", "150 ms", participant="p2"))  # a new sample
    assert latency(live, "p2") == 0.15


def test_a_redelivery_after_the_summary_ttl_brings_back_no_info(live: LiveExporter) -> None:
    event = qos_at("2021-07-13T21:44:51Z", participant="p1")
    live.post(event)
    live.post(summary_for("p1"))
    live.clock.advance(3601)  # past the summary TTL: participation and info series gone
    assert not series_of(live.metrics(), "zoom_participant_info")
    live.clock.advance(20 * 60)
    assert live.post(event).json() == {"status": "stale"}
    assert not series_of(live.metrics(), "zoom_participant_info")


def test_two_items_of_one_type_in_one_event_keep_the_newer(live_factory: LiveFactory) -> None:
    event = qos_at("2021-07-13T21:45:51Z", "200 ms")
    items = event["payload"]["object"]["participant"]["qos"]
    older = copy.deepcopy(items[0])
    older["date_time"] = "2021-07-13T21:44:51Z"
    older["details"]["latency"] = "100 ms"
    for order in ([items[0], older], [older, items[0]]):
        live = live_factory()
        event["payload"]["object"]["participant"]["qos"] = order
        assert live.post(event).json() == {"status": "accepted"}
        assert latency(live) == 0.2
        metrics = live.metrics()
        assert metrics[key("zoom_qos_sample_timestamp_seconds", **AUDIO)] == 1626212751.0


def test_phone_summary_ends_that_partys_per_sample_series(live: LiveExporter) -> None:
    live.post(ongoing_call())
    assert series_of(live.metrics(), "zoom_phone_mos")
    live.post(example("phone.call_qos_summary"))
    metrics = live.metrics()
    assert not series_of(metrics, "zoom_phone_mos")
    assert series_of(metrics, "zoom_phone_call_mos")


CALL = "6971668082545971778"


def call_sample(
    party: str, role: str, date_time: str, mos: str = "4.5", ended: bool = False
) -> dict[str, Any]:
    event = ongoing_call()
    event["payload"]["object"]["call_end_time"] = "2021-06-09T05:43:02Z" if ended else ""
    holder = event["payload"]["object"]["call_qos"]
    holder.update(id=party, type=role)
    holder["qos"]["date_time"] = date_time
    holder["qos"]["details"]["mos"] = mos
    return event


def phone_mos(live: LiveExporter) -> dict[str, float]:
    """MOS per party now: {user_id: value}."""
    return {
        dict(labels)["user_id"]: value
        for (name, labels), value in live.metrics().items()
        if name == "zoom_phone_mos"
    }


def test_a_call_end_time_ends_every_partys_per_sample_series_at_once(live: LiveExporter) -> None:
    """A call whose summary never comes leaves no per-sample series for the TTL."""
    assert live.post(call_sample("caller-1", "caller", "2021-06-09T05:42:40Z")).status_code == 200
    assert live.post(call_sample("callee-1", "callee", "2021-06-09T05:42:40Z")).status_code == 200
    assert phone_mos(live) == {"caller-1": 4.5, "callee-1": 4.5}
    other = call_sample("caller-2", "caller", "2021-06-09T05:42:40Z")
    other["payload"]["object"]["call_id"] = "another-call"
    live.post(other)
    ending = call_sample("caller-1", "caller", "2021-06-09T05:43:00Z", "3.1", ended=True)
    assert live.post(ending).json() == {"status": "accepted"}
    assert phone_mos(live) == {"caller-2": 4.5}  # both parties of the call, no other call
    parties = series_of(live.metrics(), "zoom_phone_party_info")
    assert {(dict(p)["call_id"], dict(p)["user_id"]) for p in parties} == {
        (CALL, "caller-1"),
        (CALL, "callee-1"),
        ("another-call", "caller-2"),
    }  # the parties stay, for the summary TTL
    # the end is remembered: a retried or late sample of either party brings nothing back
    late = call_sample("callee-1", "callee", "2021-06-09T05:43:01Z")
    assert live.post(late).json() == {"status": "accepted"}  # a new sample, for the fleet
    assert live.post(late).json() == {"status": "stale"}
    assert phone_mos(live) == {"caller-2": 4.5}
    live.clock.advance(301)  # the tombstone lasts one TTL
    assert live.post(call_sample("callee-1", "callee", "2021-06-09T05:50:00Z")).status_code == 200
    assert phone_mos(live) == {"callee-1": 4.5}


def test_party_info_holds_the_newest_network_and_lives_for_the_summary_ttl(
    live: LiveExporter,
) -> None:
    first = call_sample("caller-1", "caller", "2021-06-09T05:42:40Z")
    live.post(first)
    ((labels, value),) = [
        (dict(k[1]), v) for k, v in live.metrics().items() if k[0] == "zoom_phone_party_info"
    ]
    assert labels == {"call_id": CALL, "user_id": "caller-1", "role": "caller", "network": "LAN"}
    assert value == 1.0
    moved = call_sample("caller-1", "caller", "2021-06-09T05:42:50Z")
    moved["event_ts"] += 10_000
    moved["payload"]["object"]["call_qos"]["qos"]["details"]["network"] = "WiFi"
    live.post(moved)
    silent = call_sample("caller-1", "caller", "2021-06-09T05:43:00Z")
    silent["event_ts"] += 20_000
    del silent["payload"]["object"]["call_qos"]["qos"]["details"]["network"]
    live.post(silent)  # no network named: the known one stays
    (party,) = series_of(live.metrics(), "zoom_phone_party_info")
    assert dict(party)["network"] == "WiFi"  # one series per party, replaced on change
    live.clock.advance(3000)
    live.post(call_sample("caller-1", "caller", "2021-06-09T05:43:10Z"))  # refreshes it
    live.clock.advance(3000)
    assert series_of(live.metrics(), "zoom_phone_party_info")
    live.clock.advance(601)
    assert not series_of(live.metrics(), "zoom_phone_party_info")


def test_series_cap_drops_new_series_and_counts_them(live_factory: LiveFactory) -> None:
    live = live_factory(max_series=10)
    for n in range(5):
        assert live.post(qos_at("2021-07-13T21:44:51Z", participant=f"p{n}")).status_code == 200
    metrics = live.metrics()
    live_series = sum(
        value for (name, _), value in metrics.items() if name == "zoom_qss_exporter_series"
    )
    assert live_series == 10
    assert metrics[key("zoom_qss_exporter_series_dropped_total")] > 0
    assert metrics[key("zoom_qss_exporter_series_limit")] == 10
    # fleet metrics still see every sample
    assert metrics[key("zoom_qos_samples_total", product="meeting", qos_type="audio_input")] == 5


def test_per_participant_off_keeps_fleet_metrics_only(live_factory: LiveFactory) -> None:
    live = live_factory(per_participant=False)
    for name in ("meeting.participant_qos", "meeting.participant_data", "phone.call_qos"):
        assert live.post(example(name)).json() == {"status": "accepted"}
    metrics = live.metrics()
    assert not series_of(metrics, "zoom_qos_latency_seconds")
    assert not series_of(metrics, "zoom_participant_info")
    assert not series_of(metrics, "zoom_phone_mos")
    assert metrics[key("zoom_qos_samples_total", product="meeting", qos_type="audio_input")] == 1


def test_info_merges_names_and_devices_and_replaces_on_change(live: LiveExporter) -> None:
    live.post(example("session.user_data"))
    infos = series_of(live.metrics(), "zoom_participant_info")
    assert len(infos) == 1
    data = example("session.user_data")
    data["event_ts"] += 1000
    data["payload"]["object"]["user"]["data"][0]["network_type"] = "Wifi"
    data["payload"]["object"]["user"]["data"][0]["device"] = ""
    live.post(data)
    infos = series_of(live.metrics(), "zoom_participant_info")
    assert len(infos) == 1
    labels = dict(next(iter(infos)))
    assert labels["network_type"] == "Wifi"  # newest wins
    assert labels["device"] == "WIN"  # an empty value does not erase a known one
    assert labels["user_name"] == "example"


def test_older_data_event_only_fills_gaps() -> None:
    store = SeriesStore(StoreLimits())
    owner = ("meeting", "m", "p")
    blank = dict.fromkeys(f.INFO_LABELS[3:], "")
    mac = InfoUpdate(f.PARTICIPANT_INFO, owner, {**blank, "device": "Mac"}, 200.0)
    store.apply(Conversion(owner, info=[mac]), 0.0)
    win = InfoUpdate(f.PARTICIPANT_INFO, owner, {**blank, "device": "WIN", "camera": "C"}, 100.0)
    store.apply(Conversion(owner, info=[win]), 1.0)
    ((labels, _),) = store.series(f.PARTICIPANT_INFO)
    values = dict(zip(f.INFO_LABELS, labels, strict=True))
    assert values["device"] == "Mac"
    assert values["camera"] == "C"


def test_store_counts_written_stale_and_dropped() -> None:
    store = SeriesStore(StoreLimits(max_series=1))
    owner = ("meeting", "m", "p")
    labels = (*owner, "audio_input")
    first = store.apply(Conversion(owner, [Sample(f.LATENCY, labels, 0.1, 10.0)]), 0.0)
    assert (first.written, first.stale, first.dropped) == (1, 0, 0)
    late = store.apply(Conversion(owner, [Sample(f.LATENCY, labels, 0.9, 5.0)]), 1.0)
    assert (late.written, late.stale) == (0, 1)
    other = ("meeting", "m", "q")
    full = store.apply(Conversion(other, [Sample(f.JITTER, (*other, "audio_input"), 0.1, 9.0)]), 1)
    assert full.dropped == 1
    assert store.dropped_total == 1
    assert len(store) == 1
    assert store.expire(1000.0) == 1
    assert len(store) == 0


def test_a_value_missing_from_the_newest_item_is_gone() -> None:
    store = SeriesStore(StoreLimits())
    owner = ("meeting", "m", "p")
    labels = (*owner, "video_input")
    store.apply(
        Conversion(
            owner, [Sample(f.LATENCY, labels, 0.1, 10.0), Sample(f.FRAME_RATE, labels, 25, 10.0)]
        ),
        0.0,
    )
    assert store.get(f.FRAME_RATE, labels) is not None
    store.apply(Conversion(owner, [Sample(f.LATENCY, labels, 0.2, 70.0)]), 60.0)
    assert store.get(f.FRAME_RATE, labels) is None  # not frozen at 25
    latest = store.get(f.LATENCY, labels)
    assert latest is not None and latest.value == 0.2 and latest.timestamp == 70.0
    assert len(store) == 1


def test_late_item_changes_nothing_even_for_series_it_alone_carries() -> None:
    store = SeriesStore(StoreLimits())
    owner = ("meeting", "m", "p")
    labels = (*owner, "video_input")
    store.apply(Conversion(owner, [Sample(f.LATENCY, labels, 0.1, 70.0)]), 0.0)
    late = store.apply(
        Conversion(
            owner, [Sample(f.LATENCY, labels, 0.9, 10.0), Sample(f.JITTER, labels, 1, 10.0)]
        ),
        1.0,
    )
    assert (late.written, late.stale) == (0, 2)
    assert store.get(f.JITTER, labels) is None


def test_an_items_samples_are_one_item_by_their_label_values_not_their_tuple() -> None:
    """Conversion shares one label tuple per item, but equal tuples built apart (another
    converter, a compiled build) must make one item too, not a stale second one."""
    store = SeriesStore(StoreLimits())
    owner = ("meeting", "m", "p")
    samples = [
        Sample(f.LATENCY, (*owner, "video_input"), 0.1, 10.0),
        Sample(f.FRAME_RATE, (*owner, "video_input"), 25, 10.0),
        Sample(f.LATENCY, (*owner, "audio_input"), 0.2, 10.0),
    ]
    assert samples[0].stream is not samples[1].stream
    written = store.apply(Conversion(owner, samples), 0.0)
    assert (written.written, written.stale) == (3, 0)
    assert store.get(f.FRAME_RATE, (*owner, "video_input")) is not None
    assert len(store) == 3


def test_a_label_value_that_cannot_encode_never_poisons_the_info_record() -> None:
    """A lone surrogate (no UTF-8 for it) that got past every other check: the info series
    is written with U+FFFD in its place, the exposition renders, later events of the same
    participant update it, and it expires like any other."""
    store = SeriesStore(StoreLimits(summary_ttl=3600.0))
    owner = ("meeting", "m\ud800", "p")
    blank = dict.fromkeys(f.INFO_LABELS[3:], "")
    poisoned = {**blank, "user_name": "a\udfffb", "device": "\ud83d"}
    store.apply(
        Conversion(owner, info=[InfoUpdate(f.PARTICIPANT_INFO, owner, poisoned, 100.0)]), 0.0
    )
    text = render_store(store).decode("utf-8")  # strict
    assert 'user_name="a\ufffdb"' in text and 'meeting_id="m\ufffd"' in text
    store.apply(
        Conversion(
            owner, info=[InfoUpdate(f.PARTICIPANT_INFO, owner, {**blank, "device": "Mac"}, 200.0)]
        ),
        1.0,
    )
    assert 'device="Mac"' in render_store(store).decode("utf-8")
    assert store.expire(3602.0) == 1
    assert len(store) == 0 and not list(store.series(f.PARTICIPANT_INFO))
    assert render_store(store).decode("utf-8").count("{") == 0


def test_departure_records_are_capped_and_counted(live_factory: LiveFactory) -> None:
    """One record per departed call party (or participant), kept for --store.ttl: at most
    --store.max-series of them, the oldest forgotten first and counted."""
    live = live_factory(max_series=10)
    summary = example("phone.call_qos_summary")
    parties = [
        {"type": "callee", "user_id": f"party-{n}", "qos": []} for n in range(50)
    ]  # no samples: departures (and party info, up to the cap) only
    summary["payload"]["object"]["call_qos"] = parties
    summary["payload"]["object"]["call_end_time"] = ""  # parties leave; the call is not over
    assert live.post(summary).json() == {"status": "accepted"}
    metrics = live.metrics()
    assert metrics[key("zoom_qss_exporter_departures")] == 10
    assert metrics[key("zoom_qss_exporter_departures_dropped_total")] == 40
    assert live.exporter.store.departures == 10
    call = summary["payload"]["object"]["call_id"]

    store = live.exporter.store
    assert store.has_departed(("phone", call, "party-49"))
    assert not store.has_departed(("phone", call, "party-0"))  # forgotten early
    live.clock.advance(301)
    live.metrics()  # a scrape expires first
    assert live.exporter.store.departures == 0
