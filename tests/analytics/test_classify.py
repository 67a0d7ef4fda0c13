from __future__ import annotations

import pytest

from zoom_qss_exporter.analytics.classify import (
    CAUSES,
    CPU,
    GOOD,
    LATENCY,
    NETWORK,
    UNKNOWN,
    WIFI,
    stream_cause,
    summary_poor,
)
from zoom_qss_exporter.analytics.thresholds import QualityThresholds
from zoom_qss_exporter.samples import StreamSummary

T = QualityThresholds()


def cause(
    *,
    rssi: float | None = -50,
    cpu: float | None = 0.3,
    network: str = "wifi",
    latency: float = 0.05,
    jitter: float = 0.005,
    loss: float = 0.001,
    mos: float = 4.3,
) -> int:
    return stream_cause(latency, jitter, loss, mos, rssi, cpu, network, T)


def test_a_stream_inside_every_threshold_is_good() -> None:
    assert cause() == GOOD
    # at a threshold is not over it
    assert cause(latency=0.4, jitter=0.03, loss=0.1, mos=3.5) == GOOD


@pytest.mark.parametrize(
    "figures", [{"latency": 0.41}, {"jitter": 0.031}, {"loss": 0.11}, {"mos": 3.4}]
)
def test_any_figure_over_its_threshold_makes_it_poor(figures: dict[str, float]) -> None:
    assert cause(**figures) != GOOD  # type: ignore[arg-type]


def test_weak_wifi_comes_first() -> None:
    assert cause(rssi=-70, cpu=0.99, jitter=0.08) == WIFI  # at the threshold counts
    assert cause(rssi=-69, cpu=0.2, jitter=0.08) == NETWORK


def test_weak_signal_on_a_wired_or_cellular_network_is_not_wifi() -> None:
    assert cause(rssi=-85, network="wired", jitter=0.08) == NETWORK
    assert cause(rssi=-85, network="cellular", jitter=0.08) == NETWORK
    assert cause(rssi=-85, network="unknown", jitter=0.08) == WIFI


def test_cpu_saturation_comes_before_the_network() -> None:
    assert cause(cpu=0.9, loss=0.2) == CPU
    assert cause(cpu=0.89, loss=0.2) == NETWORK
    assert cause(rssi=None, cpu=0.95, latency=0.6) == CPU


def test_loss_or_jitter_is_network_even_with_latency() -> None:
    assert cause(loss=0.2, latency=0.6) == NETWORK


def test_latency_alone_is_latency() -> None:
    assert cause(latency=0.6) == LATENCY


def test_a_low_mos_with_no_figure_over_is_unknown() -> None:
    assert cause(mos=3.0) == UNKNOWN
    assert stream_cause(None, None, None, 2.9, None, None, "unknown", T) == UNKNOWN


def test_missing_figures_are_not_poor() -> None:
    assert stream_cause(None, None, None, None, -90, 1.0, "wifi", T) == GOOD


def test_thresholds_come_from_the_file_not_the_code() -> None:
    strict = QualityThresholds(latency=0.1)
    assert stream_cause(0.2, 0.0, 0.0, None, None, None, "wired", strict) == LATENCY
    assert CAUSES[LATENCY] == "latency"


def test_a_summary_is_poor_when_one_stream_is() -> None:
    good = StreamSummary("audio_input", 0.05, 0.005, 0.0, 4.3)
    lossy = StreamSummary("video_input", 0.05, 0.005, 0.15, None)
    assert not summary_poor([good], T)
    assert summary_poor([good, lossy], T)
    assert not summary_poor([], T)
