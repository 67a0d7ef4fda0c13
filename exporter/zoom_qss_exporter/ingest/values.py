"""Parsers for Zoom's QoS values, which are strings with units ("63 kbps", "0.0%", "1280*720").

Each parser returns the value in Prometheus base units, ``None`` when Zoom says "no value"
(``""``, ``"-"``, a resolution with a zero side: ``"0*0"``, ``"640*0"``), and raises
:class:`InvalidValue` for anything else it cannot read. Callers skip the sample on ``None``
and count it on ``InvalidValue``: never a fake 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Generic, TypeVar

T = TypeVar("T")

# A number (digits grouped by thousands with "," too: "1,234 kbps"), then a unit ("kb/s" too).
_NUMBER_WITH_UNIT = re.compile(
    r"\s*([-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"\s*([A-Za-z%/]*)\s*"
)
_RESOLUTION = re.compile(r"\s*(\d+)\s*[*xX]\s*(\d+)\s*")
_NO_VALUE = frozenset({"", "-", "--", "n/a", "na", "null", "none"})

QUALITY_LEVELS: Mapping[str, float] = {"good": 3, "fair": 2, "poor": 1, "bad": 0}
CPU_PRESSURE_LEVELS: Mapping[str, float] = {"normal": 0, "fair": 1, "serious": 2, "critical": 3}


class InvalidValue(ValueError):
    """A QoS value that is present but cannot be read."""


_CACHE_SIZE = 1 << 14


class ValueParser(Generic[T]):
    """Reads one kind of value, remembering the strings it has read.

    Zoom repeats the same few strings ("0 ms", "0.0%") endlessly and this is the hottest code
    of the ingest path, so the conversion reads ``cache`` directly before calling."""

    __slots__ = ("_read", "cache")

    def __init__(self, read: Callable[[object], T | None]) -> None:
        self._read = read
        self.cache: dict[str, T | None] = {}

    def __call__(self, raw: object) -> T | None:
        if raw.__class__ is not str:
            return self._read(raw)
        try:
            return self.cache[raw]
        except KeyError:
            value = self._read(raw)
            if len(self.cache) >= _CACHE_SIZE:
                self.cache.clear()
            self.cache[raw] = value
            return value


def _read_quantity(raw: object, units: Mapping[str, float]) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise InvalidValue(f"boolean {raw!r} is not a number")
    if isinstance(raw, int | float):
        if isinstance(raw, int) and not -(10**308) < raw < 10**308:  # float() would overflow
            raise InvalidValue(f"{str(raw)[:40]}... is too large")
        number, unit = float(raw), ""
    elif isinstance(raw, str):
        if raw.strip().lower() in _NO_VALUE:
            return None
        match = _NUMBER_WITH_UNIT.fullmatch(raw)
        if match is None:
            raise InvalidValue(f"cannot read {raw[:40]!r} as a number")
        number, unit = float(match.group(1).replace(",", "")), match.group(2).lower()
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


# Each parser returns base units: bytes/s, seconds, 0-1 ratios.
parse_kbps = ValueParser(partial(_read_quantity, units=_KBPS))  # kbps (or bare) -> bytes/s
parse_ms = ValueParser(partial(_read_quantity, units=_MS))  # ms (or bare) -> seconds
parse_percent = ValueParser(partial(_read_quantity, units=_PERCENT))  # % (or bare) -> ratio
parse_fps = ValueParser(partial(_read_quantity, units=_FPS))
parse_dbm = ValueParser(partial(_read_quantity, units=_DBM))
parse_number = ValueParser(partial(_read_quantity, units=_PLAIN))


def _read_resolution(raw: object) -> tuple[float, float] | None:
    """``"1280*720"`` to (width, height). A zero side (``"0*0"``, ``"640*0"``) is no picture,
    so no value: half a resolution would export a 0 that no video had."""
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
    if width == 0 or height == 0:
        return None
    return width, height


parse_resolution = ValueParser(_read_resolution)


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


# good=3, fair=2, poor=1, bad=0; the string, or (webinar.participant_qos) an object holding it
parse_quality = ValueParser(partial(_level, levels=QUALITY_LEVELS, what="quality level"))
# normal=0, fair=1, serious=2, critical=3 (Compute Pressure API states)
parse_cpu_pressure = ValueParser(
    partial(_level, levels=CPU_PRESSURE_LEVELS, what="CPU pressure level")
)
