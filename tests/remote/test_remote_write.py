"""Remote Write 1.0 encoding: every body goes back through the protobuf and snappy libraries'
parsers; the wire bytes are checked against prompb's field numbers by hand."""

from __future__ import annotations

import math
import struct

import cramjam
import pytest

from zoom_qss_exporter import families as f
from zoom_qss_exporter.families import ALL_FAMILIES, INFO_LABELS, PARTICIPANT_INFO
from zoom_qss_exporter.remote.protocol import (
    HEADERS,
    STALE_NAN,
    Point,
    WriteRequest,
    build,
    clean,
    decode,
    decompress,
    encode,
    series_labels,
)

T0 = 1_700_000_000.0
WHO = ("meeting", "uuid==", "16778240", "audio_input")


def test_round_trip_through_protobuf_and_snappy() -> None:
    points = [
        Point(f.LATENCY, WHO, 0.134, T0),
        Point(f.RSSI, (*WHO[:3], "wifi_rssi", "avg"), -50.0, T0 + 0.5),
        Point(f.PHONE_MOS, ("call-1", "user-1", "caller", "sending"), 4.4, T0 + 60),
    ]
    decoded = decode(encode(points))
    assert decoded == {
        (
            ("__name__", "zoom_qos_latency_seconds"),
            ("meeting_id", "uuid=="),
            ("participant_id", "16778240"),
            ("product", "meeting"),
            ("qos_type", "audio_input"),
        ): [(1_700_000_000_000, 0.134)],
        (
            ("__name__", "zoom_qos_wifi_rssi_dbm"),
            ("meeting_id", "uuid=="),
            ("participant_id", "16778240"),
            ("product", "meeting"),
            ("qos_type", "wifi_rssi"),
            ("stat", "avg"),
        ): [(1_700_000_000_500, -50.0)],
        (
            ("__name__", "zoom_phone_mos"),
            ("call_id", "call-1"),
            ("direction", "sending"),
            ("role", "caller"),
            ("user_id", "user-1"),
        ): [(1_700_000_060_000, 4.4)],
    }


def test_body_is_snappy_block_format_of_the_serialised_message() -> None:
    points = [Point(f.JITTER, WHO, 0.006, T0)]
    body = encode(points)
    serialised = build(points).SerializeToString()
    # Block format: a varint of the uncompressed length first; no framing-format stream header.
    assert not body.startswith(b"\xff\x06\x00\x00sNaPpY")
    assert _varint(body) == len(serialised) > 0x80  # two bytes of varint
    assert decompress(body) == serialised
    assert bytes(cramjam.snappy.decompress_raw(body)) == serialised
    with pytest.raises(cramjam.DecompressionError):
        cramjam.snappy.decompress(body)  # the framing format's parser does not take it


def _varint(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
    raise AssertionError("no varint")


def test_wire_bytes_use_prompb_field_numbers() -> None:
    """prompb: WriteRequest.timeseries=1; TimeSeries.labels=1, samples=2; Label.name=1,
    value=2; Sample.value=1 (double), timestamp=2 (int64). Encoded by hand from the spec."""
    family = f.Family("m", "", ("a",), f.Lifetime.SAMPLE, "")
    got = build([Point(family, ("b",), 1.0, 1.0)]).SerializeToString()
    label_a = b"\x0a\x01a\x12\x01b"  # name "a", value "b"
    label_name = b"\x0a\x08__name__\x12\x01m"
    sample = b"\x09" + struct.pack("<d", 1.0) + b"\x10\xe8\x07"  # value 1.0, timestamp 1000
    series = (
        b"\x0a" + bytes([len(label_name)]) + label_name
        + b"\x0a" + bytes([len(label_a)]) + label_a
        + b"\x12" + bytes([len(sample)]) + sample
    )  # fmt: skip
    assert got == b"\x0a" + bytes([len(series)]) + series


@pytest.mark.parametrize("family", ALL_FAMILIES, ids=lambda family: family.name)
def test_every_family_gets_sorted_unique_labels_with_its_name(family: f.Family) -> None:
    values = tuple(f"v{i}" for i in range(len(family.labels)))
    labels = series_labels(family, values)
    names = [name for name, _ in labels]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert ("__name__", family.name) in labels
    assert dict(labels) == {
        "__name__": family.name,
        **dict(zip(family.labels, values, strict=True)),
    }


def test_empty_values_are_left_out() -> None:
    named = {
        "product": "meeting",
        "meeting_id": "uuid",
        "participant_id": "p1",
        "user_name": "Ada",
        "device": "Mac",
        "data_center": "SC",
        "device_detail": "GoogleChromeSAB 130",
    }
    values = tuple(named.get(label, "") for label in INFO_LABELS)
    labels = dict(series_labels(PARTICIPANT_INFO, values))
    assert labels == {
        "__name__": "zoom_participant_info",
        "product": "meeting",
        "meeting_id": "uuid",
        "participant_id": "p1",
        "user_name": "Ada",
        "device": "Mac",
        "data_center": "SC",
        "device_detail": "GoogleChromeSAB 130",
    }
    assert len(values) == len(INFO_LABELS)


def test_label_values_travel_raw_without_escaping() -> None:
    odd = 'Zoë "the boss" O\'Neil \\ {x="1"}\nline two\t😀'
    values = ("meeting", "uuid/with+slash==", "p1", odd, *[""] * (len(INFO_LABELS) - 4))
    (labels,) = decode(encode([Point(PARTICIPANT_INFO, values, 1.0, T0)]))
    assert dict(labels)["user_name"] == odd
    assert dict(labels)["meeting_id"] == "uuid/with+slash=="


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    broken = "Ada \ud83d Lovelace"  # JSON may carry it; UTF-8 (and protobuf) cannot
    assert clean(broken) == "Ada \ufffd Lovelace"
    assert clean("plain") == "plain"
    values = ("meeting", "uuid", "p1", broken, *[""] * (len(INFO_LABELS) - 4))
    (labels,) = decode(encode([Point(PARTICIPANT_INFO, values, 1.0, T0)]))
    assert dict(labels)["user_name"] == "Ada \ufffd Lovelace"


def test_samples_of_a_series_go_in_time_order_once_per_millisecond() -> None:
    points = [
        Point(f.LATENCY, WHO, 0.3, T0 + 120),
        Point(f.LATENCY, WHO, 0.1, T0),
        Point(f.LATENCY, WHO, 0.2, T0 + 60),
        Point(f.LATENCY, WHO, 0.25, T0 + 60),  # same millisecond: the later point wins
    ]
    (samples,) = decode(encode(points)).values()
    assert samples == [
        (1_700_000_000_000, 0.1),
        (1_700_000_060_000, 0.25),
        (1_700_000_120_000, 0.3),
    ]


def test_one_time_series_per_label_set() -> None:
    points = [Point(f.LATENCY, WHO, 0.1, T0), Point(f.JITTER, WHO, 0.01, T0)] * 3
    request = WriteRequest.FromString(decompress(encode(points)))
    assert len(request.timeseries) == 2


def test_staleness_marker_keeps_its_bit_pattern() -> None:
    marker = Point(PARTICIPANT_INFO, ("m", "u", "p", *[""] * (len(INFO_LABELS) - 3)), STALE_NAN, T0)
    (samples,) = decode(encode([marker])).values()
    ((_, value),) = samples
    assert math.isnan(value)
    assert struct.pack("<d", value) == struct.pack("<Q", 0x7FF0000000000002)


def test_wrong_number_of_label_values_is_refused() -> None:
    with pytest.raises(ValueError, match="zoom_qos_latency_seconds"):
        encode([Point(f.LATENCY, WHO[:3], 0.1, T0)])


def test_protocol_headers() -> None:
    assert HEADERS == {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
