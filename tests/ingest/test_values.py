"""Value parsers: every unit format Zoom sends, "no value" markers, and never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoom_qss_exporter.ingest.values import (
    InvalidValue,
    parse_cpu_pressure,
    parse_dbm,
    parse_fps,
    parse_kbps,
    parse_ms,
    parse_number,
    parse_percent,
    parse_quality,
    parse_resolution,
)

PARSERS = (
    parse_kbps,
    parse_ms,
    parse_percent,
    parse_fps,
    parse_dbm,
    parse_number,
    parse_quality,
    parse_cpu_pressure,
    parse_resolution,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("63 kbps", 7875.0), ("27.15kbps", 3393.75), ("6", 750.0), ("0 kbps", 0.0), (6, 750.0)],
)
def test_kbps_to_bytes_per_second(raw: object, expected: float) -> None:
    assert parse_kbps(raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("63 kb/s", 7875.0), ("63kb/s", 7875.0), ("63 Kb/s", 7875.0), ("1,234 kbps", 154_250.0)],
)
def test_kbps_spelled_kb_s_and_with_thousands_separators(raw: str, expected: float) -> None:
    """The table's "kb/s" is a unit like any other; "1,234" is 1234, not an error."""
    assert parse_kbps(raw) == expected


@pytest.mark.parametrize("raw", ["1,5 kbps", "12,34 kbps", "1234,567 kbps", ",123 kbps", "63 /s"])
def test_commas_that_are_not_thousands_separators_are_invalid(raw: str) -> None:
    """A decimal comma ("1,5") could be 1.5 or 15: refused, never guessed."""
    with pytest.raises(InvalidValue):
        parse_kbps(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [("134 ms", 0.134), ("0ms", 0.0), ("8", 0.008), (" 23 ms ", 0.023)]
)
def test_ms_to_seconds(raw: str, expected: float) -> None:
    assert parse_ms(raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "expected"), [("0.0%", 0.0), ("1%", 0.01), ("12.5 %", 0.125), ("0.0", 0.0), ("3", 0.03)]
)
def test_percent_to_ratio(raw: str, expected: float) -> None:
    assert parse_percent(raw) == pytest.approx(expected)


def test_other_units() -> None:
    assert parse_fps("25 fps") == 25.0
    assert parse_fps("30fps") == 30.0
    assert parse_dbm("-50") == -50.0
    assert parse_dbm(-56) == -56.0  # summaries send integers
    assert parse_dbm("-44 dBm") == -44.0
    assert parse_number("3.65") == 3.65
    assert parse_number("4.5") == 4.5


@pytest.mark.parametrize("raw", ["", "-", " ", None, "N/A"])
def test_no_value_markers_give_none_never_zero(raw: object) -> None:
    for parser in PARSERS:
        assert parser(raw) is None


def test_resolution() -> None:
    assert parse_resolution("1280*720") == (1280.0, 720.0)
    assert parse_resolution("640x360") == (640.0, 360.0)
    assert parse_resolution("0*0") is None
    assert parse_resolution("640*0") is None  # a zero side is no picture: no 0 exported
    assert parse_resolution("0x480") is None
    assert parse_resolution("") is None
    with pytest.raises(InvalidValue):
        parse_resolution("wide")


def test_levels() -> None:
    assert [parse_quality(q) for q in ("good", "fair", "poor", "bad")] == [3, 2, 1, 0]
    assert parse_quality("Good") == 3
    assert parse_quality({"value": "poor"}) == 1  # webinar.participant_qos: an object
    levels = [parse_cpu_pressure(p) for p in ("normal", "fair", "serious", "critical")]
    assert levels == [0, 1, 2, 3]
    with pytest.raises(InvalidValue):
        parse_quality("excellent")


@pytest.mark.parametrize(
    "raw", ["fast", "12 parsecs", "1e999", "nan", "inf ms", True, [1], {"a": 1}, "1 2 ms"]
)
def test_unreadable_values_raise_the_typed_error(raw: object) -> None:
    with pytest.raises(InvalidValue):
        parse_ms(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(json_values)
def test_any_input_converts_or_raises_invalid_value(raw: object) -> None:
    for parser in PARSERS:
        try:
            result = parser(raw)
        except InvalidValue:
            continue
        assert result is None or isinstance(result, float | tuple)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.sampled_from(["", " "]))
def test_number_with_unit_round_trips(number: float, space: str) -> None:
    assert parse_ms(f"{number!r}{space}ms") == pytest.approx(number / 1000)
