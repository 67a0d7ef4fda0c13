"""Zoom's own example payloads, each through real HTTP with a real signature: the exact
per-participant series and values that come out."""

from __future__ import annotations

import pytest

from conftest import LiveExporter, SeriesKey, example, key, ongoing_call, parse_metrics
from zoom_qss_exporter.families import ALL_FAMILIES, INFO_LABELS

MEETING = "4444AAAiAAAAAiAiAiiAii=="
SESSION = "4567UVWxYZABCdEfGhiJkl=="
CALL = "6971668082545971778"
CALLER = "KLN56y2cSzu0pWxUSec4RQ"
EMPTY_INFO = dict.fromkeys(INFO_LABELS[3:], "")  # every info label but the owner's
# *_data_summary of meetings and sessions: the web (Video SDK) client's own description
WEB_CLIENT = {"client": "Web video sdk 1.12.10", "device_detail": "GoogleChromeSAB 130"}
DATA_INFO = {
    **EMPTY_INFO,
    "device": "WIN",
    "network_type": "Wired",
    "connection_type": "P2P",
    "data_center": "SC",
    "site": "external",  # its addresses (127.0.0.1, 192.0.2.1) are in no site: no sites file
    "client_version": "4.4.55383.0716",
    "location": "New York",
    "microphone": "Plantronics BT600",
    "speaker": "Plantronics BT600",
    "camera": "FaceTime HD Camera",
}


PER_PARTICIPANT = frozenset(family.name for family in ALL_FAMILIES)


def per_participant(text: str) -> dict[SeriesKey, float]:
    """The store's series: everything but the fleet, analytics and health metrics."""
    return {k: v for k, v in parse_metrics(text).items() if k[0] in PER_PARTICIPANT}


def info(product: str, meeting: str, participant: str, **values: str) -> SeriesKey:
    return key(
        "zoom_participant_info",
        product=product,
        meeting_id=meeting,
        participant_id=participant,
        **{**EMPTY_INFO, **values},
    )


def per_minute_audio(product: str, meeting: str, participant: str) -> dict[SeriesKey, float]:
    labels = {
        "product": product,
        "meeting_id": meeting,
        "participant_id": participant,
        "qos_type": "audio_input",
    }
    return {
        key("zoom_qos_bitrate_bytes_per_second", **labels): 63 * 1000 / 8,
        key("zoom_qos_latency_seconds", **labels): 0.134,
        key("zoom_qos_jitter_seconds", **labels): 0.006,
        key("zoom_qos_packet_loss_avg_ratio", **labels): 0.0,
        key("zoom_qos_packet_loss_max_ratio", **labels): 0.0,
        key("zoom_qos_sample_timestamp_seconds", **labels): 1626212691.0,  # 2021-07-13T21:44:51Z
        # E-model from 134 ms, 6 ms and 0 %: R = 93.2 - 0.024 x (134 + 2 x 6 + 10) = 89.456
        key("zoom_qos_mos_estimate", **labels): 4.325445,
    }


def participation(product: str, meeting: str, participant: str) -> dict[SeriesKey, float]:
    out: dict[SeriesKey, float] = {}
    base = {"product": product, "meeting_id": meeting, "participant_id": participant}
    for qos_type, kbps in (("audio_output", (6, 9, 27)), ("video_output", (200, 391, 898))):
        labels = {**base, "qos_type": qos_type}
        for stat, rate in zip(("min", "avg", "max"), kbps, strict=True):
            out[key("zoom_qos_participation_bitrate_bytes_per_second", **labels, stat=stat)] = (
                rate * 125.0
            )
            out[key("zoom_qos_participation_latency_seconds", **labels, stat=stat)] = 0.0
            out[key("zoom_qos_participation_jitter_seconds", **labels, stat=stat)] = (
                0.001 if stat == "max" else 0.0
            )
            out[key("zoom_qos_participation_packet_loss_ratio", **labels, stat=stat)] = 0.0
            if qos_type == "video_output":
                out[key("zoom_qos_participation_frame_rate_fps", **labels, stat=stat)] = 0.0
    cpu = {**base, "qos_type": "cpu_usage"}
    for stat, pct in (("min", 1), ("avg", 2), ("max", 5)):
        out[key("zoom_qos_participation_zoom_cpu_usage_ratio", **cpu, stat=stat)] = pct / 100
    out[key("zoom_qos_participation_system_cpu_usage_max_ratio", **cpu)] = 0.23
    return out


EXPECTED: dict[str, dict[SeriesKey, float]] = {
    "meeting.participant_qos": {
        **per_minute_audio("meeting", MEETING, "1234567890"),
        key(
            "zoom_qos_quality_level",
            product="meeting",
            meeting_id=MEETING,
            participant_id="1234567890",
            qos_type="audio_input",
        ): 3.0,
        key(
            "zoom_qos_quality_score",
            product="meeting",
            meeting_id=MEETING,
            participant_id="1234567890",
            qos_type="audio_input",
        ): 3.65,
        **{
            key(
                "zoom_qos_wifi_rssi_dbm",
                product="meeting",
                meeting_id=MEETING,
                participant_id="1234567890",
                qos_type="audio_input",
                stat=stat,
            ): value
            for stat, value in (("min", -56.0), ("avg", -50.0), ("max", -44.0))
        },
        info("meeting", MEETING, "1234567890"): 1.0,
    },
    "webinar.participant_qos": {
        **per_minute_audio("webinar", MEETING, "1234567890"),
        key(
            "zoom_qos_quality_level",
            product="webinar",
            meeting_id=MEETING,
            participant_id="1234567890",
            qos_type="audio_input",
        ): 3.0,
        key(
            "zoom_qos_quality_score",
            product="webinar",
            meeting_id=MEETING,
            participant_id="1234567890",
            qos_type="audio_input",
        ): 3.65,
        info("webinar", MEETING, "1234567890"): 1.0,
    },
    "session.user_qos": {
        **per_minute_audio("session", SESSION, "1234567890"),
        info("session", SESSION, "1234567890", user_name="example", session_name="My Session"): 1.0,
    },
    "meeting.participant_qos_summary": {
        **participation("meeting", MEETING, "string"),
        info("meeting", MEETING, "string", user_name="JillChill"): 1.0,
    },
    "webinar.participant_qos_summary": {
        **participation("webinar", MEETING, "string"),
        info(
            "webinar", MEETING, "string", user_name="JillChill", meeting_number="123456ABCDEF"
        ): 1.0,
    },
    "session.user_qos_summary": {
        **{
            key(
                "zoom_qos_participation_zoom_cpu_usage_ratio",
                product="session",
                meeting_id="gkBE2XmnRJq42wHoMox/5g==",
                participant_id="16778240",
                qos_type="cpu_usage",
                stat=stat,
            ): 0.0
            for stat in ("min", "avg", "max")
        },
        key(
            "zoom_qos_participation_system_cpu_usage_max_ratio",
            product="session",
            meeting_id="gkBE2XmnRJq42wHoMox/5g==",
            participant_id="16778240",
            qos_type="cpu_usage",
        ): 0.0,
        info(
            "session",
            "gkBE2XmnRJq42wHoMox/5g==",
            "16778240",
            user_name="example",
            session_name="XdafAKX5RXDACJZXv4xR-w",
        ): 1.0,
    },
    "meeting.participant_data": {info("meeting", MEETING, "1234567890", **DATA_INFO): 1.0},
    "meeting.participant_data_summary": {
        info(
            "meeting",
            MEETING,
            "1234567890",
            **{**DATA_INFO, **WEB_CLIENT, "device": "Windows", "meeting_number": "1234567890"},
        ): 1.0
    },
    "webinar.participant_data": {info("webinar", MEETING, "123456789036", **DATA_INFO): 1.0},
    "webinar.participant_data_summary": {
        info("webinar", MEETING, "123456789036", **DATA_INFO): 1.0
    },
    "session.user_data": {
        info(
            "session",
            SESSION,
            "25508864",
            **{**DATA_INFO, "user_name": "example", "session_name": "My Session"},
        ): 1.0
    },
    "session.user_data_summary": {
        info(
            "session",
            SESSION,
            "25508864",
            **{
                **DATA_INFO,
                **WEB_CLIENT,
                "device": "Windows",
                "user_name": "example",
                "session_name": "My Session",
            },
        ): 1.0
    },
    # The example's call_end_time is set: the call has ended, so its per-sample series end
    # at once (test_an_ongoing_call_gives_its_per_sample_series has them) and the party stays.
    "phone.call_qos": {
        key("zoom_phone_party_info", call_id=CALL, user_id=CALLER, role="caller", network="LAN"): 1
    },
    "phone.call_qos_summary": {
        key("zoom_phone_party_info", call_id=CALL, user_id=CALLER, role="caller", network="LAN"): 1,
        **{
            key(
                name, call_id=CALL, user_id=CALLER, role="caller", direction=direction, stat=stat
            ): value
            for direction in ("sending", "receiving")
            for stat in ("min", "avg", "max")
            for name, value in (
                ("zoom_phone_call_mos", 4.5),
                ("zoom_phone_call_jitter_seconds", 0.008),
                ("zoom_phone_call_network_delay_seconds", 0.023),
                ("zoom_phone_call_packet_loss_ratio", 0.0),
                ("zoom_phone_call_bitrate_bytes_per_second", 750.0),
            )
        },
        **{
            key(
                "zoom_phone_call_packet_loss_peak_ratio",
                call_id=CALL,
                user_id=CALLER,
                role="caller",
                direction=direction,
            ): 0.0
            for direction in ("sending", "receiving")
        },
    },
}


def test_an_ongoing_call_gives_its_per_sample_series(live: LiveExporter) -> None:
    assert live.post(ongoing_call()).json() == {"status": "accepted"}
    labels = {"call_id": CALL, "user_id": CALLER, "role": "caller"}
    assert per_participant(live.metrics_text()) == pytest.approx(
        {
            key("zoom_phone_party_info", **labels, network="LAN"): 1.0,
            **{
                key(name, **labels, direction="sending"): value
                for name, value in (
                    ("zoom_phone_mos", 4.5),
                    ("zoom_phone_jitter_seconds", 0.008),
                    ("zoom_phone_network_delay_seconds", 0.023),
                    ("zoom_phone_packet_loss_avg_ratio", 0.0),
                    ("zoom_phone_packet_loss_max_ratio", 0.0),
                    ("zoom_phone_bitrate_bytes_per_second", 750.0),
                )
            },
        }
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_gives_exactly_these_series(live: LiveExporter, name: str) -> None:
    response = live.post(example(name))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}
    got = per_participant(live.metrics_text())
    assert set(got) == set(EXPECTED[name])
    assert got == pytest.approx(EXPECTED[name])


def test_all_fourteen_events_are_covered() -> None:
    from zoom_qss_exporter.ingest.events import EVENT_MODELS

    assert set(EXPECTED) == set(EVENT_MODELS)


def test_fleet_metrics_count_each_per_minute_sample(live: LiveExporter) -> None:
    live.post(example("meeting.participant_qos"))
    live.post(example("phone.call_qos"))
    metrics = live.metrics()
    labels = {"product": "meeting", "qos_type": "audio_input"}
    assert metrics[key("zoom_qos_samples_total", **labels)] == 1
    assert metrics[key("zoom_qos_fleet_latency_seconds_count", **labels)] == 1
    assert metrics[key("zoom_qos_fleet_latency_seconds_sum", **labels)] == pytest.approx(0.134)
    assert metrics[key("zoom_qos_fleet_latency_seconds_bucket", **labels, le="0.15")] == 1
    assert metrics[key("zoom_qos_fleet_latency_seconds_bucket", **labels, le="0.1")] == 0
    assert metrics[key("zoom_qos_fleet_jitter_seconds_bucket", **labels, le="0.01")] == 1
    assert metrics[key("zoom_qos_fleet_packet_loss_ratio_bucket", **labels, le="0.001")] == 1
    assert metrics[key("zoom_phone_fleet_mos_bucket", direction="sending", le="4.5")] == 1
    assert metrics[key("zoom_phone_fleet_mos_bucket", direction="sending", le="4.0")] == 0
    assert metrics[key("zoom_qos_samples_total", product="phone", qos_type="sending")] == 1


def test_summaries_do_not_feed_fleet_metrics(live: LiveExporter) -> None:
    live.post(example("meeting.participant_qos_summary"))
    live.post(example("phone.call_qos_summary"))
    names = {name for name, _ in live.metrics()}
    assert "zoom_qos_samples_total" not in names
    assert "zoom_qos_fleet_latency_seconds_count" not in names
    assert "zoom_phone_fleet_mos_count" not in names


def test_personal_data_never_becomes_a_label(live: LiveExporter) -> None:
    for name in EXPECTED:
        live.post(example(name))
    label_values = [value for _, labels in live.metrics() for _, value in labels]
    assert label_values
    for personal in (
        "user@example.com",
        "hello.test@gmail.com",
        "192.0.2.1",
        "127.0.0.1",
        "5060",
        "00:00:5E:00:53:00",
        "Disk01",
        "My PC",
        "my-workspace",
        "example.com",
        "rstuvwxyza789-cde",
    ):
        assert not [v for v in label_values if personal in v], personal
