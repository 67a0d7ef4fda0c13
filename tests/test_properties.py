"""Property-based tests: whatever Zoom (or an attacker holding the secret) sends, the value
parsers and the event models either convert it or raise the project's own typed error
(:class:`InvalidValue`, pydantic's ``ValidationError`` re-exported by ``events``), and the
conversion of any event the models accept never raises at all."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import example
from zoom_qss_exporter.convert import ConvertOptions, UserNameMode, convert, parse_time
from zoom_qss_exporter.events import EVENT_MODELS, ValidationError
from zoom_qss_exporter.values import (
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

PARSERS: dict[str, Callable[[object], object]] = {
    "kbps": parse_kbps,
    "ms": parse_ms,
    "percent": parse_percent,
    "fps": parse_fps,
    "dbm": parse_dbm,
    "number": parse_number,
    "resolution": parse_resolution,
    "quality": parse_quality,
    "cpu_pressure": parse_cpu_pressure,
}

# What json.loads can produce: any of it can sit where Zoom puts a value.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Strings shaped like Zoom's values, so that the interesting paths (units, "W*H") are hit often.
unit_strings = st.builds(
    lambda sign, number, space, unit: f"{sign}{number}{space}{unit}",
    st.sampled_from(["", "-", "+"]),
    st.one_of(
        st.integers(min_value=0, max_value=10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.from_regex(r"\d{0,5}\.\d{0,5}(e[-+]?\d{1,4})?", fullmatch=True),
    ),
    st.sampled_from(["", " ", "  ", "\t"]),
    st.sampled_from(["", "kbps", "KBPS", "ms", "s", "%", "fps", "dBm", "mbps", "bps", "x", "µs"]),
)
resolutions = st.builds(
    lambda w, sep, h: f"{w}{sep}{h}",
    st.integers(min_value=-5, max_value=10**25),
    st.sampled_from(["*", "x", "X", " * ", "", "**"]),
    st.integers(min_value=-5, max_value=10**25),
)
levels = st.sampled_from(["good", "Fair", " poor ", "BAD", "normal", "serious", "critical", "meh"])
values = st.one_of(json_values, unit_strings, resolutions, levels)


@pytest.mark.parametrize("name", PARSERS)
@given(raw=values)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_value_parsers_convert_or_raise_invalid_value(name: str, raw: object) -> None:
    try:
        result = PARSERS[name](raw)
    except InvalidValue:
        return
    if name == "resolution":
        assert result is None or (isinstance(result, tuple) and len(result) == 2)
    else:
        # levels are whole numbers (good=3...); everything else a float; never NaN or a bool
        assert result is None or (isinstance(result, int | float) and not isinstance(result, bool))
        assert result is None or result == result


@given(text=st.text(max_size=40) | st.from_regex(r"\d{1,6}-\d\d-\d\dT\d\d:\d\d:\d\d.*"))
def test_parse_time_reads_or_returns_none(text: str) -> None:
    result = parse_time(text)
    assert result is None or isinstance(result, float)


# --- event models and conversion ---------------------------------------------------------------

EXAMPLES = {name: example(name) for name in EVENT_MODELS}
_OPTIONS = (ConvertOptions(), ConvertOptions(user_name=UserNameMode.HASH, hash_salt="s"))


def _paths(document: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``document`` a value can be replaced."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: object) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, Any]:
    """One of Zoom's examples with a few values anywhere replaced by any JSON value."""
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    document = EXAMPLES[name]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        document = _replace(document, path, draw(values))
    return name, document


def _check(name: str, document: object) -> None:
    model = EVENT_MODELS[name]
    try:
        event = model.model_validate(document)
    except ValidationError:
        return
    for options in _OPTIONS:
        conversion = convert(event, options)
        assert all(isinstance(reason, str) for reason in conversion.skipped)


@given(case=mutated_events())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_examples_validate_or_raise_and_always_convert(case: tuple[str, Any]) -> None:
    _check(*case)


@given(name=st.sampled_from(sorted(EVENT_MODELS)), document=json_values)
@settings(max_examples=200)
def test_any_json_document_validates_or_raises(name: str, document: object) -> None:
    _check(name, document)


@given(case=mutated_events())
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_examples_survive_a_json_round_trip(case: tuple[str, Any]) -> None:
    """What the receiver sees is what json.loads gives back: the same properties hold there
    (e.g. floats written as integers, -0.0)."""
    name, document = case
    try:
        text = json.dumps(document, allow_nan=False)
    except ValueError:
        return  # NaN/Infinity are refused with 400 before any model sees them
    _check(name, json.loads(text))
