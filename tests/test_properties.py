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
from zoom_qss_exporter import families as f
from zoom_qss_exporter.ingest.convert import ConvertOptions, UserNameMode, convert, parse_time
from zoom_qss_exporter.ingest.events import EVENT_MODELS, ValidationError
from zoom_qss_exporter.ingest.receiver import Refusal, _parse_json
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
from zoom_qss_exporter.samples import Conversion, InfoUpdate, Sample
from zoom_qss_exporter.store.exposition import render_store
from zoom_qss_exporter.store.series import SeriesStore, StoreLimits

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


# --- text that is not UTF-8: raw surrogates, CESU-8, UTF-16 and UTF-32 --------------------------

surrogates = st.characters(categories=["Cs"])
text_with_a_surrogate = st.builds(
    lambda before, lone, after: before + lone + after,
    st.text(max_size=8),
    surrogates,
    st.text(max_size=8),
)
# every character, lone surrogates included (and often: they are rare among all characters)
any_text = text_with_a_surrogate | st.text(
    st.characters(codec=None, exclude_categories=()), max_size=20
)


def _string_paths(document: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(document, str):
        return [prefix]
    items = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else ()
    )
    return [path for key, value in items for path in _string_paths(value, (*prefix, key))]


@st.composite
def events_with_a_surrogate(draw: st.DrawFn) -> tuple[str, bytes]:
    """One of Zoom's examples with text holding a lone surrogate in one of its string fields,
    written raw (the three bytes of its UTF-8 form, as CESU-8 and Python's lenient codec
    write them) or as a ``\\uXXXX`` escape."""
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    document = EXAMPLES[name]
    path = draw(st.sampled_from(_string_paths(document)))
    document = _replace(document, path, draw(text_with_a_surrogate))
    if draw(st.booleans()):
        return name, json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return name, json.dumps(document).encode()


def _refused_400(body: bytes) -> str:
    with pytest.raises(Refusal) as refusal:
        _parse_json(body)
    assert refusal.value.status == 400
    return str(refusal.value)


@given(case=events_with_a_surrogate())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_a_lone_surrogate_anywhere_is_refused_400(case: tuple[str, bytes]) -> None:
    reason = _refused_400(case[1])
    assert "UTF-8" in reason or "surrogate" in reason


@given(
    name=st.sampled_from(sorted(EXAMPLES)),
    codec=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]),
    ascii_only=st.booleans(),
)
@settings(max_examples=100)
def test_utf16_and_utf32_bodies_are_refused_400(name: str, codec: str, ascii_only: bool) -> None:
    body = json.dumps(EXAMPLES[name], ensure_ascii=ascii_only).encode(codec)
    assert "not UTF-16 or UTF-32" in _refused_400(body)


@given(case=mutated_events(), text=any_text)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_validated_text_never_holds_a_surrogate(case: tuple[str, Any], text: str) -> None:
    """Whatever reaches the models by another way than the receiver (replay, tests), no
    label value made from what they give can fail to encode as UTF-8."""
    name, document = case
    paths = _string_paths(document)
    if paths:
        document = _replace(document, paths[len(text) % len(paths)], text)
    try:
        event = EVENT_MODELS[name].model_validate(document)
    except ValidationError:
        return
    for options in _OPTIONS:
        conversion = convert(event, options)
        labels = [value for sample in conversion.samples for value in sample.labels]
        labels += [value for sample in conversion.fleet for value in sample.stream]
        for update in conversion.info:
            labels += [*update.key, *update.values.values()]
        for value in labels:
            value.encode("utf-8")  # raises on a surrogate


@given(values=st.lists(any_text, min_size=len(f.INFO_LABELS), max_size=len(f.INFO_LABELS)))
@settings(max_examples=200)
def test_any_label_values_render_as_utf8_and_expire(values: list[str]) -> None:
    """Defence in depth: even a label value with a lone surrogate renders (as U+FFFD), and
    its series expires."""
    store = SeriesStore(StoreLimits(ttl=60.0, summary_ttl=60.0))
    owner = (values[0], values[1], values[2])
    info = dict(zip(f.INFO_LABELS[3:], values[3:], strict=True))
    store.apply(Conversion(owner, info=[InfoUpdate(f.PARTICIPANT_INFO, owner, info, 1.0)]), 0.0)
    store.apply(Conversion(owner, samples=[Sample(f.LATENCY, (*owner, values[3]), 0.1, 1.0)]), 0.0)
    text = render_store(store).decode("utf-8")  # strict
    assert text.count("zoom_participant_info{") == 1
    store.expire(61.0)
    assert len(store) == 0
