from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zoom_qss_exporter.analytics.thresholds import (
    DEFAULT_FILE,
    QualityThresholds,
    load_thresholds,
)
from zoom_qss_exporter.flags import ConfigError


def test_the_shipped_file_gives_the_documented_defaults() -> None:
    assert load_thresholds() == QualityThresholds()


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "quality.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _shipped() -> dict[str, dict[str, float]]:
    loaded = yaml.safe_load(DEFAULT_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_an_operators_copy_changes_a_threshold(tmp_path: Path) -> None:
    document = _shipped()
    document["poor"]["latency"] = 0.3
    document["cause"]["wifi_rssi_dbm"] = -75
    loaded = load_thresholds(_write(tmp_path, document))
    assert (loaded.latency, loaded.wifi_rssi_dbm, loaded.jitter) == (0.3, -75.0, 0.03)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["poor"].pop("jitter"), "poor.jitter: a number from 0 to 60"),
        (lambda d: d["poor"].update(packet_loss=10), "poor.packet_loss: a number from 0 to 1"),
        (lambda d: d["cause"].update(cpu_usage="high"), "cause.cpu_usage"),
        (lambda d: d["cause"].update(wifi=1), "cause: unknown keys ['wifi']"),
        (lambda d: d.update(extra={}), "unknown keys ['extra']"),
        (lambda d: d.pop("cause"), "cause: a mapping is required"),
        (lambda d: d["poor"].update(mos=True), "poor.mos"),
    ],
)
def test_a_wrong_file_is_refused_with_the_key_named(
    tmp_path: Path, change: object, message: str
) -> None:
    document = _shipped()
    change(document)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_thresholds(_write(tmp_path, document))


def test_unreadable_and_malformed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_thresholds(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("poor: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_thresholds(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="a mapping"):
        load_thresholds(bad)
