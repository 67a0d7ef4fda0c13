"""Flag value types and environment variable names."""

from __future__ import annotations

import argparse

import pytest

from zoom_qss_exporter.flags import count, env_name, parse_bool, parse_duration, positive_int


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300", 300),
        ("2.5", 2.5),
        ("5m", 300),
        ("1h30m", 5400),
        ("1m30s500ms", 90.5),
        ("500ms", 0.5),
        ("2d", 172800),
        (" 90s ", 90),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "5 m", "m5", "5m3", "-5s", "-1", "1y", "5m5x", "nan", "inf", "1e3", "30m1h", "5m5m"],
)
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        parse_duration(text)


def test_booleans() -> None:
    assert [parse_bool(t) for t in ("1", "true", "Yes", " on ")] == [True] * 4
    assert [parse_bool(t) for t in ("0", "false", "NO", "off")] == [False] * 4
    with pytest.raises(argparse.ArgumentTypeError, match="boolean"):
        parse_bool("maybe")


def test_whole_numbers() -> None:
    assert (positive_int("3"), count("0")) == (3, 0)
    for parse, text in ((positive_int, "0"), (count, "-1"), (positive_int, "1.5"), (count, "x")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_environment_variable_names() -> None:
    assert env_name("--store.max-series") == "ZOOM_QSS_STORE_MAX_SERIES"
    assert env_name("--remote-write.tls-ca-file") == "ZOOM_QSS_REMOTE_WRITE_TLS_CA_FILE"
