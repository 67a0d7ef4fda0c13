"""Fleet metrics: bounded-cardinality histograms and counters over every QoS sample.

They carry no meeting or participant label, so they stay cheap at any scale and keep working
when per-participant series are switched off. Each sample is counted once: a
:class:`SampleLedger` remembers the newest ``date_time`` counted per sample stream, so a
redelivered event (Zoom retries up to ~85 minutes later) is not counted again.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from .convert import QOS_TYPES, FleetSample

DELAY_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 1.0)
LOSS_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
MOS_BUCKETS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)


class SampleLedger:
    """Newest counted ``date_time`` per sample stream, forgotten after ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._newest: dict[tuple[str, ...], tuple[float, float]] = {}  # -> (date_time, seen at)

    def __len__(self) -> int:
        return len(self._newest)

    def first_sighting(self, stream: tuple[str, ...], timestamp: float, now: float) -> bool:
        known = self._newest.get(stream)
        if known is not None and timestamp <= known[0]:
            return False
        self._newest[stream] = (timestamp, now)
        return True

    def expire(self, now: float) -> None:
        cutoff = now - self.window
        for stream in [s for s, (_, seen) in self._newest.items() if seen < cutoff]:
            del self._newest[stream]


class FleetMetrics:
    def __init__(self, registry: CollectorRegistry, ledger: SampleLedger) -> None:
        self.ledger = ledger
        labels = ("product", "qos_type")
        self.latency = Histogram(
            "zoom_qos_fleet_latency_seconds",
            "Latency of every per-minute QoS sample, all participants.",
            labels,
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self.jitter = Histogram(
            "zoom_qos_fleet_jitter_seconds",
            "Jitter of every per-minute QoS sample, all participants.",
            labels,
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self.loss = Histogram(
            "zoom_qos_fleet_packet_loss_ratio",
            "Average packet loss (0-1) of every per-minute QoS sample, all participants.",
            labels,
            buckets=LOSS_BUCKETS,
            registry=registry,
        )
        self.mos = Histogram(
            "zoom_phone_fleet_mos",
            "MOS of every phone.call_qos sample, all calls.",
            ("direction",),
            buckets=MOS_BUCKETS,
            registry=registry,
        )
        self.samples = Counter(
            "zoom_qos_samples",
            'QoS samples received (each counted once; phone samples as product="phone").',
            labels,
            registry=registry,
        )
        self.notifications = Counter(
            "zoom_network_notifications",
            "Network instability notifications raised by Zoom clients.",
            ("product", "notification"),
            registry=registry,
        )

    def observe(self, samples: Iterable[FleetSample], now: float) -> tuple[int, int]:
        """Count the samples not seen before; returns (counted, not newer than counted)."""
        counted = repeated = 0
        for sample in samples:
            if not self.ledger.first_sighting(sample.stream, sample.timestamp, now):
                repeated += 1
                continue
            counted += 1
            self.samples.labels(sample.product, sample.qos_type).inc()
            if sample.product == "phone":
                if sample.mos is not None:
                    self.mos.labels(sample.qos_type).observe(sample.mos)
                continue
            if sample.qos_type not in QOS_TYPES:
                continue
            if sample.latency is not None:
                self.latency.labels(sample.product, sample.qos_type).observe(sample.latency)
            if sample.jitter is not None:
                self.jitter.labels(sample.product, sample.qos_type).observe(sample.jitter)
            if sample.loss is not None:
                self.loss.labels(sample.product, sample.qos_type).observe(sample.loss)
            if sample.notification is not None:
                self.notifications.labels(sample.product, sample.notification).inc()
        return counted, repeated
