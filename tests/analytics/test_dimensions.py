from __future__ import annotations

import pytest

from zoom_qss_exporter.analytics import dimensions as d


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Wired", "wired"),
        ("LAN", "wired"),
        ("Wifi", "wifi"),
        ("WiFi", "wifi"),
        (" wi-fi ", "wifi"),
        ("3G", "cellular"),
        ("Cellular", "cellular"),
        ("5G", "cellular"),
        ("PPP", "ppp"),
        ("Others", "other"),
        ("VPN", "other"),
        ("", "unknown"),
    ],
)
def test_network_types(raw: str, expected: str) -> None:
    assert d.network_type(raw) == expected
    assert expected in d.NETWORK_TYPES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("UDP", "udp"),
        ("tcp", "tcp"),
        ("SSL", "ssl"),
        ("TLS", "ssl"),
        ("P2P", "p2p"),
        ("QUIC", "other"),
        ("", "unknown"),
    ],
)
def test_connection_types(raw: str, expected: str) -> None:
    assert d.connection_type(raw) == expected
    assert expected in d.CONNECTION_TYPES


@pytest.mark.parametrize(
    ("device", "client", "expected"),
    [
        ("Windows", "", "windows"),
        ("Windows 11", "", "windows"),
        ("Mac", "", "mac"),
        ("macOS 14.5", "", "mac"),
        ("iOS", "", "ios"),
        ("iPad", "", "ios"),
        ("Android 14", "", "android"),
        ("Linux", "", "linux"),
        ("Zoom Rooms", "", "rooms"),
        ("Zoom Room (Windows)", "", "rooms"),
        ("", "Web video sdk 1.12.10", "web"),
        ("Phone", "", "other"),
        ("H.323/SIP", "", "other"),
        ("", "", "unknown"),
    ],
)
def test_platforms(device: str, client: str, expected: str) -> None:
    assert d.platform(device, client) == expected
    assert expected in d.PLATFORMS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.17.11.34827", "5.17"),
        ("5.16.10 (26186)", "5.16"),
        ("6.0", "6.0"),
        ("v6.02.1", "6.2"),
        ("1.12.10", "1.12"),
        ("latest", "other"),
        ("5", "other"),
        ("5.17x", "other"),
        ("", "unknown"),
    ],
)
def test_versions_are_major_minor(raw: str, expected: str) -> None:
    assert d.version(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SC", "SC"),
        ("AMS (Sub)", "AMS (Sub)"),
        ("  US(Virginia)  ", "US(Virginia)"),
        ("Hong  Kong", "Hong Kong"),
        ("x" * 41, "other"),
        ("<script>", "other"),
        ("", "unknown"),
    ],
)
def test_data_centers(raw: str, expected: str) -> None:
    assert d.data_center(raw) == expected


def test_media_of_each_stream_type() -> None:
    assert [d.media(t) for t in ("audio_input", "video_output", "as_input")] == [
        "audio",
        "video",
        "screen_share",
    ]


def test_a_vocabulary_folds_new_values_past_its_cap_and_counts_them() -> None:
    vocabulary = d.Vocabulary(2)
    assert [vocabulary(v) for v in ("a", "b", "a", "c", "unknown", "other", "d")] == [
        "a",
        "b",
        "a",
        "other",
        "unknown",
        "other",
        "other",
    ]
    assert vocabulary.folds == 2 and len(vocabulary) == 2
