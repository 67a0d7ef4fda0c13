"""Parsers for Zoom's QoS values, which are strings with units ("63 kbps", "0.0%", "1280*720").

Each parser returns the value in Prometheus base units, ``None`` when Zoom says "no value"
(``""``, ``"-"``, ``"0*0"``), and raises :class:`InvalidValue` for anything else it cannot
read. Callers skip the sample on ``None`` and count it on ``InvalidValue``: never a fake 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_NUMBER_WITH_UNIT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%]*)\s*")
_RESOLUTION = re.compile(r"\s*(\d+)\s*[*xX]\s*(\d+)\s*")
_NO_VALUE = frozenset({"", "-", "--", "n/a", "na", "null", "none"})

QUALITY_LEVELS: Mapping[str, float] = {"good": 3, "fair": 2, "poor": 1, "bad": 0}
CPU_PRESSURE_LEVELS: Mapping[str, float] = {"normal": 0, "fair": 1, "serious": 2, "critical": 3}


class InvalidValue(ValueError):
    """A QoS value that is present but cannot be read."""


def _quantity(raw: object, units: Mapping[str, float]) -> float | None:
    """Read ``<number><optional space><unit>``; ``units`` maps each accepted unit to a factor."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise InvalidValue(f"boolean {raw!r} is not a number")
    if isinstance(raw, int | float):
        number, unit = float(raw), ""
    elif isinstance(raw, str):
        if raw.strip().lower() in _NO_VALUE:
            return None
        match = _NUMBER_WITH_UNIT.fullmatch(raw)
        if match is None:
            raise InvalidValue(f"cannot read {raw[:40]!r} as a number")
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise InvalidValue(f"expected a string or number, got {type(raw).__name__}")
    if not math.isfinite(number):
        raise InvalidValue(f"{raw!r} is not a finite number")
    factor = units.get(unit)
    if factor is None:
        raise InvalidValue(f"unexpected unit {unit!r} in {str(raw)[:40]!r}")
    return number * factor


_KBPS = {"": 125.0, "kbps": 125.0, "kb/s": 125.0, "bps": 0.125, "mbps": 125_000.0}
_MS = {"": 0.001, "ms": 0.001, "s": 1.0}
_PERCENT = {"": 0.01, "%": 0.01}
_FPS = {"": 1.0, "fps": 1.0}
_DBM = {"": 1.0, "dbm": 1.0}
_PLAIN = {"": 1.0}


def parse_kbps(raw: object) -> float | None:
    """Kilobits per second (bare numbers too, as in phone events) to bytes per second."""
    return _quantity(raw, _KBPS)


def parse_ms(raw: object) -> float | None:
    """Milliseconds (bare numbers too) to seconds."""
    return _quantity(raw, _MS)


def parse_percent(raw: object) -> float | None:
    """Percent (bare numbers too) to a 0-1 ratio."""
    return _quantity(raw, _PERCENT)


def parse_fps(raw: object) -> float | None:
    return _quantity(raw, _FPS)


def parse_dbm(raw: object) -> float | None:
    return _quantity(raw, _DBM)


def parse_number(raw: object) -> float | None:
    return _quantity(raw, _PLAIN)


def parse_resolution(raw: object) -> tuple[float, float] | None:
    """``"1280*720"`` to (width, height); ``"0*0"`` means no video, so no value."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidValue(f"expected a resolution string, got {type(raw).__name__}")
    if raw.strip().lower() in _NO_VALUE:
        return None
    match = _RESOLUTION.fullmatch(raw)
    if match is None:
        raise InvalidValue(f"cannot read {raw[:40]!r} as WIDTHxHEIGHT")
    width, height = float(match.group(1)), float(match.group(2))
    if width == 0 and height == 0:
        return None
    return width, height


def _level(raw: object, levels: Mapping[str, float], what: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        # webinar.participant_qos declares `quality` as an object; take its one text value.
        texts = [v for v in raw.values() if isinstance(v, str) and v.strip()]
        if len(texts) != 1:
            raise InvalidValue(f"cannot find a {what} in object {str(raw)[:60]}")
        raw = texts[0]
    if not isinstance(raw, str):
        raise InvalidValue(f"expected a {what} string, got {type(raw).__name__}")
    text = raw.strip().lower()
    if text in _NO_VALUE:
        return None
    value = levels.get(text)
    if value is None:
        raise InvalidValue(f"unknown {what} {raw[:40]!r}")
    return value


def parse_quality(raw: object) -> float | None:
    """good=3, fair=2, poor=1, bad=0; accepts the string or an object holding it."""
    return _level(raw, QUALITY_LEVELS, "quality level")


def parse_cpu_pressure(raw: object) -> float | None:
    """normal=0, fair=1, serious=2, critical=3 (Compute Pressure API states)."""
    return _level(raw, CPU_PRESSURE_LEVELS, "CPU pressure level")
