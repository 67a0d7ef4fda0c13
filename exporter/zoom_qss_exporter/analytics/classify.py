"""Good or poor, and why: pure rules over one stream-minute's figures (docs/analytics.md)."""

from __future__ import annotations

from collections.abc import Iterable

from zoom_qss_exporter.analytics.thresholds import QualityThresholds
from zoom_qss_exporter.samples import StreamSummary

CAUSES = ("wifi", "cpu", "network", "latency", "unknown")
WIFI, CPU, NETWORK, LATENCY, UNKNOWN = range(len(CAUSES))
GOOD = -1
# a participant on these is not on Wi-Fi, whatever RSSI a wifi_rssi item reports
_NOT_WIFI = frozenset({"wired", "cellular"})


def stream_cause(
    latency: float | None,
    jitter: float | None,
    loss: float | None,
    mos: float | None,
    rssi: float | None,
    cpu: float | None,
    network_type: str,
    t: QualityThresholds,
) -> int:
    """``GOOD``, or the index in ``CAUSES`` of a poor stream-minute's likely cause.

    Poor: latency, jitter or average loss above its threshold, or a MOS below it. Cause, the
    first that holds: weak Wi-Fi (the minute's RSSI at or below its threshold, not on a wired or
    cellular network), CPU saturation (Zoom's or the system's CPU at or above its threshold),
    network (loss or jitter over), latency (only latency over), else unknown (a low MOS with no
    single figure over, or a phone MOS alone)."""
    slow = latency is not None and latency > t.latency
    lossy = (jitter is not None and jitter > t.jitter) or (
        loss is not None and loss > t.packet_loss
    )
    if not (slow or lossy or (mos is not None and mos < t.mos)):
        return GOOD
    if rssi is not None and rssi <= t.wifi_rssi_dbm and network_type not in _NOT_WIFI:
        return WIFI
    if cpu is not None and cpu >= t.cpu_usage:
        return CPU
    if lossy:
        return NETWORK
    if slow:
        return LATENCY
    return UNKNOWN


def summary_poor(streams: Iterable[StreamSummary], t: QualityThresholds) -> bool:
    """A participation or call leg is poor when any of its media streams' averages over the
    whole of it would make a poor stream-minute."""
    return any(
        stream_cause(s.latency, s.jitter, s.loss, s.mos, None, None, "", t) != GOOD for s in streams
    )
