"""Fleet metrics: bounded-cardinality histograms and counters over every QoS sample.

They carry no meeting or participant label, so they stay cheap at any scale and keep working
when per-participant series are switched off. Each sample is counted once: a
:class:`SampleLedger` remembers which ``date_time`` it counted per sample stream, so a
redelivered event (Zoom retries up to ~85 minutes later) is not counted again, and one that
first arrives after newer ones (its earlier delivery failed) still is.

Observed on every sample of every event, so they are :mod:`plain_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zoom_qss_exporter.samples import FleetSample
from zoom_qss_exporter.store.plain_metrics import Counter, Histogram
from zoom_qss_exporter.store.recent import RecentMap

DELAY_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 1.0)
LOSS_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
MOS_BUCKETS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)


class SampleLedger:
    """The ``date_time`` counted per sample stream, minute by minute for the 63 minutes
    before its newest one, remembered for ``window`` seconds or more after the stream's last
    counted sample (Zoom's last retry comes about 85 minutes after the first). Streams are
    keyed by their 64-bit hash, not their labels: the ledger outlives the series of people
    who left, and a colliding pair of streams (odds about n²/2⁶⁴) would at worst leave one
    sample uncounted. Phone samples come every few seconds: one that arrives after a newer
    one of the same minute is taken for a redelivery."""

    def __init__(self, window: float) -> None:
        self._counted = RecentMap(window, marked=True)

    def __len__(self) -> int:
        return len(self._counted)

    def first_sighting(self, stream: tuple[str, ...], timestamp: float, now: float) -> bool:
        return self._counted.sighting(hash(stream), timestamp, _MINUTE)

    def expire(self, now: float) -> None:
        self._counted.expire(now)


_MINUTE = 60.0  # Zoom's per-minute cadence: the ledger's step


class FleetMetrics(Collector):
    def __init__(self, ledger: SampleLedger) -> None:
        self.ledger = ledger
        labels = ("product", "qos_type")
        self.latency = Histogram(
            "zoom_qos_fleet_latency_seconds",
            "Latency of every per-minute QoS sample, all participants.",
            labels,
            DELAY_BUCKETS,
        )
        self.jitter = Histogram(
            "zoom_qos_fleet_jitter_seconds",
            "Jitter of every per-minute QoS sample, all participants.",
            labels,
            DELAY_BUCKETS,
        )
        self.loss = Histogram(
            "zoom_qos_fleet_packet_loss_ratio",
            "Average packet loss (0-1) of every per-minute QoS sample, all participants.",
            labels,
            LOSS_BUCKETS,
        )
        self.mos = Histogram(
            "zoom_phone_fleet_mos",
            "MOS of every phone.call_qos sample, all calls.",
            ("direction",),
            MOS_BUCKETS,
        )
        self.samples = Counter(
            "zoom_qos_samples",
            'QoS samples received (each counted once; phone samples as product="phone").',
            labels,
        )
        self.notifications = Counter(
            "zoom_network_notifications",
            "Network instability notifications raised by Zoom clients.",
            ("product", "notification"),
        )

    def observe(
        self, samples: Iterable[FleetSample], now: float
    ) -> tuple[list[FleetSample], list[tuple[tuple[str, ...], float]]]:
        """Count the samples not seen before; returns them, and the (stream, time) of those
        counted before (redeliveries)."""
        fresh: list[FleetSample] = []
        repeated: list[tuple[tuple[str, ...], float]] = []
        for sample in samples:
            if not self.ledger.first_sighting(sample.stream, sample.timestamp, now):
                repeated.append((sample.stream, sample.timestamp))
                continue
            fresh.append(sample)
            key = (sample.product, sample.qos_type)
            self.samples.inc(key)
            if sample.product == "phone":
                if sample.mos is not None:
                    self.mos.observe((sample.qos_type,), sample.mos)
                continue
            if sample.latency is not None:
                self.latency.observe(key, sample.latency)
            if sample.jitter is not None:
                self.jitter.observe(key, sample.jitter)
            if sample.loss is not None:
                self.loss.observe(key, sample.loss)
            if sample.notification is not None:
                self.notifications.inc((sample.product, sample.notification))
        return fresh, repeated

    def collect(self) -> Iterator[Metric]:
        for metric in (self.latency, self.jitter, self.loss, self.mos):
            yield metric.collect()
        yield self.samples.collect()
        yield self.notifications.collect()
        yield GaugeMetricFamily(
            "zoom_qss_exporter_dedup_entries",
            "Newest counted sample times remembered per stream (--store.dedup-window).",
            value=len(self.ledger),
        )
