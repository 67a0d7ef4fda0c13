"""Conversion as a pure function: a payload in, samples and skip reasons out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conftest import example
from zoom_qss_exporter import families as f
from zoom_qss_exporter.families import MAX_LABEL_VALUE
from zoom_qss_exporter.ingest.convert import ConvertOptions, UserNameMode, convert
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.samples import Conversion


def run(event: dict[str, Any], options: ConvertOptions | None = None) -> Conversion:
    model = EVENT_MODELS[event["event"]].model_validate(event)
    return convert(model, options or ConvertOptions())


def with_details(
    details: dict[str, Any], qos_type: str = "audio_input", name: str = "meeting.participant_qos"
) -> dict[str, Any]:
    event = copy.deepcopy(example(name))
    holder = event["payload"]["object"].get("participant") or event["payload"]["object"]["user"]
    holder["qos"] = [{"date_time": "2021-07-13T21:44:51Z", "type": qos_type, "details": details}]
    return event


def values(conversion: Conversion) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.family.name, s.labels[3:]): s.value for s in conversion.samples}


def test_units_with_and_without_space_agree() -> None:
    spaced = run(with_details({"bitrate": "27.15 kbps", "latency": "7 ms", "avg_loss": "1 %"}))
    tight = run(with_details({"bitrate": "27.15kbps", "latency": "7ms", "avg_loss": "1%"}))
    assert values(spaced) == values(tight)
    assert values(tight)[("zoom_qos_bitrate_bytes_per_second", ("audio_input",))] == (
        pytest.approx(27.15 * 125)
    )


def test_no_value_markers_emit_no_sample_and_are_not_errors() -> None:
    out = run(
        with_details(
            {"latency": "", "jitter": "-", "resolution": "0*0", "frame_rate": ""},
            qos_type="video_input",
        )
    )
    names = {s.family.name for s in out.samples}
    assert names == {"zoom_qos_sample_timestamp_seconds"}
    assert out.skipped == []


def test_video_values() -> None:
    out = run(with_details({"resolution": "1280*720", "frame_rate": "25 fps"}, "video_output"))
    got = values(out)
    assert got[("zoom_qos_resolution_width_pixels", ("video_output",))] == 1280
    assert got[("zoom_qos_resolution_height_pixels", ("video_output",))] == 720
    assert got[("zoom_qos_frame_rate_fps", ("video_output",))] == 25


def test_cpu_usage_and_pressure() -> None:
    out = run(
        with_details(
            {
                "zoom_min_cpu_usage": "1%",
                "zoom_avg_cpu_usage": "2%",
                "zoom_max_cpu_usage": "5%",
                "system_max_cpu_usage": "23%",
                "system_min_cpu_pressure_level": "normal",
                "system_avg_cpu_pressure_level": "fair",
                "system_max_cpu_pressure_level": "critical",
            },
            "cpu_usage",
        )
    )
    got = values(out)
    assert got[("zoom_qos_zoom_cpu_usage_ratio", ("cpu_usage", "max"))] == 0.05
    assert got[("zoom_qos_system_cpu_usage_max_ratio", ("cpu_usage",))] == 0.23
    assert got[("zoom_qos_system_cpu_pressure_level", ("cpu_usage", "min"))] == 0
    assert got[("zoom_qos_system_cpu_pressure_level", ("cpu_usage", "max"))] == 3


def test_quality_as_object_in_webinar_events() -> None:
    out = run(with_details({"quality": {"value": "fair"}}, name="webinar.participant_qos"))
    assert values(out)[("zoom_qos_quality_level", ("audio_input",))] == 2


def test_rssi_only_in_dbm() -> None:
    rssi = {"min_rssi": "-56", "avg_rssi": "-50", "max_rssi": "-44"}
    assert len([s for s in run(with_details(rssi, "wifi_rssi")).samples if s.family is f.RSSI]) == 3
    dbm = run(with_details({**rssi, "rssi_unit": "dBm"}, "wifi_rssi"))
    assert len([s for s in dbm.samples if s.family is f.RSSI]) == 3
    other = run(with_details({**rssi, "rssi_unit": "percent"}, "wifi_rssi"))
    assert not [s for s in other.samples if s.family is f.RSSI]
    assert other.skipped == ["unsupported_rssi_unit"] * 3


def test_summary_rssi_integers() -> None:
    event = copy.deepcopy(example("meeting.participant_qos_summary"))
    event["payload"]["object"]["participant"]["qos"] = [
        {"type": "wifi_rssi", "details": {"min_rssi": -60, "avg_rssi": -55, "max_rssi": -40}}
    ]
    got = values(run(event))
    assert got[("zoom_qos_participation_wifi_rssi_dbm", ("wifi_rssi", "avg"))] == -55


def test_unknown_type_and_field_are_skipped_and_counted_not_fatal() -> None:
    event = with_details({"latency": "10 ms", "brand_new_metric": "7 units"})
    items = event["payload"]["object"]["participant"]["qos"]
    items.append({"date_time": "2021-07-13T21:44:51Z", "type": "hologram_input", "details": {}})
    items.append("not an object")
    items.append({"date_time": "yesterday", "type": "audio_output", "details": {}})
    items.append(
        {"date_time": "2021-07-13T21:44:51Z", "type": "video_input", "details": {"latency": "slow"}}
    )
    out = run(event)
    assert values(out)[("zoom_qos_latency_seconds", ("audio_input",))] == 0.01
    assert sorted(out.skipped) == sorted(
        ["unknown_field", "unknown_qos_type", "invalid_item", "invalid_date_time", "invalid_value"]
    )


def test_notification_feeds_the_fleet_counter() -> None:
    out = run(with_details({"network_notification": "network bandwidth low"}, "notification"))
    assert [s.notification for s in out.fleet] == ["network bandwidth low"]
    odd = run(with_details({"network_notification": "aliens"}, "notification"))
    assert [s.notification for s in odd.fleet] == ["other"]


def test_a_notification_repeated_on_several_items_of_one_event_counts_once() -> None:
    event = with_details({"network_notification": "network bandwidth low"}, "audio_input")
    items = event["payload"]["object"]["participant"]["qos"]
    for qos_type, note in (
        ("notification", "network bandwidth low"),
        ("video_input", "Internet connection unstable"),
    ):
        items.append({**items[0], "type": qos_type, "details": {"network_notification": note}})
    notes = [s.notification for s in run(event).fleet]
    assert notes == ["network bandwidth low", None, "internet connection unstable"]


def test_phone_bare_numbers() -> None:
    out = run(example("phone.call_qos"))
    got = {s.family.name: s.value for s in out.samples}
    assert got == pytest.approx(
        {
            "zoom_phone_mos": 4.5,
            "zoom_phone_jitter_seconds": 0.008,
            "zoom_phone_network_delay_seconds": 0.023,
            "zoom_phone_packet_loss_avg_ratio": 0.0,
            "zoom_phone_packet_loss_max_ratio": 0.0,
            "zoom_phone_bitrate_bytes_per_second": 750.0,
        }
    )
    assert out.owner == ("phone", "6971668082545971778", "KLN56y2cSzu0pWxUSec4RQ")


def test_phone_summary_statistics_over_samples() -> None:
    event = copy.deepcopy(example("phone.call_qos_summary"))
    party = event["payload"]["object"]["call_qos"][0]
    party["qos"] = [
        {
            "date_time": "2021-04-26T05:26:00Z",
            "type": "sending",
            "details": {"mos": mos, "max_loss": loss, "avg_loss": "1.0"},
        }
        for mos, loss in (("4.0", "2.0"), ("3.0", "8.0"), ("2.0", "1.0"))
    ]
    got = {(s.family.name, s.labels[4:]): s.value for s in run(event).samples}
    assert got[("zoom_phone_call_mos", ("min",))] == 2.0
    assert got[("zoom_phone_call_mos", ("avg",))] == 3.0
    assert got[("zoom_phone_call_mos", ("max",))] == 4.0
    assert got[("zoom_phone_call_packet_loss_peak_ratio", ())] == 0.08


def test_summary_time_is_event_ts() -> None:
    out = run(example("meeting.participant_qos_summary"))
    assert {s.timestamp for s in out.samples} == {1626230691.572}


def test_user_name_policy() -> None:
    event = example("session.user_qos")
    (plain,) = run(event).info
    assert plain.values["user_name"] == "example"
    (off,) = run(event, ConvertOptions(user_name=UserNameMode.OFF)).info
    assert off.values["user_name"] == ""
    (hashed,) = run(event, ConvertOptions(user_name=UserNameMode.HASH, hash_salt="s")).info
    assert hashed.values["user_name"] not in ("", "example")
    assert len(hashed.values["user_name"]) == 16


def test_descriptive_label_values_are_cut_to_the_label_value_limit() -> None:
    event = copy.deepcopy(example("meeting.participant_data"))
    event["payload"]["object"]["participant"]["user_name"] = "n" * (MAX_LABEL_VALUE + 1)
    item = event["payload"]["object"]["participant"]["data"][0]
    item["device"] = "d" * 5000
    item["camera"] = "c" * MAX_LABEL_VALUE
    (info,) = run(event).info
    assert info.values["user_name"] == "n" * (MAX_LABEL_VALUE - 1) + "…"
    assert info.values["device"] == "d" * (MAX_LABEL_VALUE - 1) + "…"
    assert info.values["camera"] == "c" * MAX_LABEL_VALUE  # at the limit: kept whole


def test_deprecated_location_is_a_fallback() -> None:
    event = copy.deepcopy(example("meeting.participant_data"))
    item = event["payload"]["object"]["participant"]["data"][0]
    del item["location"]
    item["Location"] = "Berlin"
    (info,) = run(event).info
    assert info.values["location"] == "Berlin"


def test_mos_estimate_for_audio_with_latency_jitter_and_loss() -> None:
    full = {"latency": "134 ms", "jitter": "6 ms", "avg_loss": "0.0%"}
    for qos_type in ("audio_input", "audio_output", "audio_device_from_crc"):
        got = values(run(with_details(full, qos_type)))
        assert got[("zoom_qos_mos_estimate", (qos_type,))] == pytest.approx(4.3254, abs=1e-4)
    assert ("zoom_qos_mos_estimate", ("video_input",)) not in values(
        run(with_details(full, "video_input"))
    )
    for missing in full:
        partial = {k: v for k, v in full.items() if k != missing}
        names = {s.family.name for s in run(with_details(partial)).samples}
        assert "zoom_qos_mos_estimate" not in names, missing
    no_value = {**full, "jitter": "-"}
    assert "zoom_qos_mos_estimate" not in {
        s.family.name for s in run(with_details(no_value)).samples
    }


def test_kb_s_and_thousands_separators_and_half_resolutions_through_conversion() -> None:
    out = run(with_details({"bitrate": "63 kb/s", "resolution": "640*0"}, "video_input"))
    got = values(out)
    assert got[("zoom_qos_bitrate_bytes_per_second", ("video_input",))] == 7875.0
    assert not [s for s in out.samples if "resolution" in s.family.name]  # no fake 0 width
    assert out.skipped == []
    thousands = values(run(with_details({"bitrate": "1,234 kbps"})))
    assert thousands[("zoom_qos_bitrate_bytes_per_second", ("audio_input",))] == 154_250.0


def info_of(conversion: Conversion) -> dict[str, str]:
    (update,) = conversion.info
    return update.values


def test_client_and_device_detail_of_data_summaries() -> None:
    info = info_of(run(example("session.user_data_summary")))
    assert info["client"] == "Web video sdk 1.12.10"
    assert info["device_detail"] == "GoogleChromeSAB 130"
    assert info_of(run(example("meeting.participant_data")))["client"] == ""  # not sent there


def test_meeting_number_and_session_name() -> None:
    meeting = info_of(run(example("meeting.participant_data_summary")))
    assert (meeting["meeting_number"], meeting["session_name"]) == ("1234567890", "")
    event = copy.deepcopy(example("meeting.participant_qos"))
    event["payload"]["object"]["id"] = 85746065432  # a number in JSON is the same number
    assert info_of(run(event))["meeting_number"] == "85746065432"
    session = info_of(run(example("session.user_qos")))
    assert (session["meeting_number"], session["session_name"]) == ("", "My Session")
    # a per-minute event that names nobody and no meeting only refreshes the info series
    assert info_of(run(example("meeting.participant_qos"))) == {}


def test_unknown_fields_outside_details_are_counted_once_each() -> None:
    event = copy.deepcopy(example("meeting.participant_data_summary"))
    event["brand_new_envelope_field"] = 1
    event["payload"]["new_payload_field"] = "x"
    event["payload"]["object"]["new_object_field"] = {"nested": "not counted twice"}
    participant = event["payload"]["object"]["participant"]
    participant["new_participant_field"] = "x"
    participant["data"][0]["new_data_field"] = "x"
    participant["data"][0]["another"] = None
    out = run(event)
    assert out.skipped == ["unknown_field"] * 6
    # documented fields that are read past on purpose (personal data among them) are not
    assert run(example("meeting.participant_data_summary")).skipped == []
    qos = with_details({"latency": "1 ms"})
    qos["payload"]["object"]["participant"]["qos"][0]["new_item_field"] = "x"
    assert run(qos).skipped == ["unknown_field"]
    call = example("phone.call_qos")
    call["payload"]["object"]["call_qos"]["new_party_field"] = "x"
    call["payload"]["object"]["new_call_field"] = "x"
    assert run(call).skipped == ["unknown_field"] * 2
    summary = example("phone.call_qos_summary")
    summary["payload"]["object"]["call_qos"][0]["new_party_field"] = "x"
    assert run(summary).skipped == ["unknown_field"]


def test_phone_network_becomes_the_partys_info() -> None:
    (update,) = run(example("phone.call_qos")).info
    assert update.family is f.PHONE_PARTY_INFO
    assert update.key == ("6971668082545971778", "KLN56y2cSzu0pWxUSec4RQ", "caller")
    assert update.values == {"network": "LAN"}
    assert update.timestamp == 1626759486.127  # event_ts, as zoom_participant_info's
    summary = copy.deepcopy(example("phone.call_qos_summary"))
    samples = summary["payload"]["object"]["call_qos"][0]["qos"]
    samples[0]["details"]["network"] = "WiFi"
    samples[-1]["details"]["network"] = "VPN"  # the last one Zoom names wins
    (party,) = run(summary).info
    assert party.values == {"network": "VPN"}
    del samples[-1]["details"]["network"]
    assert [i.values for i in run(summary).info] == [{"network": "WiFi"}]
    without = copy.deepcopy(example("phone.call_qos"))
    del without["payload"]["object"]["call_qos"]["qos"]["details"]["network"]
    assert [i.values for i in run(without).info] == [{"network": ""}]
    wrong = copy.deepcopy(example("phone.call_qos"))
    wrong["payload"]["object"]["call_qos"]["qos"]["details"]["network"] = {"type": "LAN"}
    odd = run(wrong)
    assert [i.values for i in odd.info] == [{"network": ""}]
    assert odd.skipped == ["invalid_value"]
    lone = copy.deepcopy(example("phone.call_qos"))
    lone["payload"]["object"]["call_qos"]["qos"]["details"]["network"] = "Wi\ud800Fi"
    (party,) = run(lone).info  # details are raw: the label is cleaned as every other one
    assert party.values == {"network": "Wi\ufffdFi"}


def test_a_set_call_end_time_ends_the_call() -> None:
    assert run(example("phone.call_qos")).ended_calls == ["6971668082545971778"]
    assert run(example("phone.call_qos_summary")).ended_calls == ["6971668082545971778"]
    ongoing = copy.deepcopy(example("phone.call_qos"))
    ongoing["payload"]["object"]["call_end_time"] = ""
    assert run(ongoing).ended_calls == []
    del ongoing["payload"]["object"]["call_end_time"]
    assert run(ongoing).ended_calls == []
    ongoing["payload"]["object"]["call_end_time"] = "soon"
    unreadable = run(ongoing)
    assert unreadable.ended_calls == []
    assert unreadable.skipped == ["invalid_date_time"]
    assert len(unreadable.samples) == 6  # the samples themselves are fine
