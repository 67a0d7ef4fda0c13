"""The quality thresholds of ``quality.yaml``: what makes a stream-minute poor, and which cause
a poor one gets. Read strictly: a typo must fail the start, not keep a default silently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zoom_qss_exporter.flags import ConfigError

DEFAULT_FILE = Path(__file__).resolve().parent / "quality.yaml"

# name: (low, high) of each key, by section
_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "poor": {
        "latency": (0.0, 60.0),
        "jitter": (0.0, 60.0),
        "packet_loss": (0.0, 1.0),
        "mos": (1.0, 5.0),
    },
    "cause": {"wifi_rssi_dbm": (-120.0, 0.0), "cpu_usage": (0.0, 1.0)},
}


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    latency: float = 0.4  # seconds: poor above
    jitter: float = 0.03  # seconds: poor above
    packet_loss: float = 0.1  # ratio: poor above
    mos: float = 3.5  # poor below
    wifi_rssi_dbm: float = -70.0  # weak Wi-Fi at or below
    cpu_usage: float = 0.9  # CPU saturation at or above


def read_yaml(path: Path) -> Any:
    """A YAML file of the analytics' settings; ConfigError says why it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None


def load_thresholds(path: Path | None = None) -> QualityThresholds:
    """``path`` (an operator's copy) or the shipped ``quality.yaml``; every key is required,
    so that a copy made from an older release fails loudly rather than half applies."""
    path = path or DEFAULT_FILE
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a mapping with 'poor' and 'cause' is required")
    values: dict[str, float] = {}
    for section, bounds in _BOUNDS.items():
        part = raw.pop(section, None)
        if not isinstance(part, dict):
            raise ConfigError(f"{path}: {section}: a mapping is required")
        for key, (low, high) in bounds.items():
            value = part.pop(key, None)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not low <= value <= high:
                raise ConfigError(
                    f"{path}: {section}.{key}: a number from {low:g} to {high:g} is required"
                )
            values[key] = float(value)
        if part:
            raise ConfigError(f"{path}: {section}: unknown keys {sorted(part)}")
    if raw:
        raise ConfigError(f"{path}: unknown keys {sorted(raw)}")
    return QualityThresholds(**values)
