"""Exposition: the store's custom collector and the rendering of ``/metrics``."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .store import SeriesStore


class StoreCollector(Collector):
    """Yields every family of the store from its current state, plus the store's health."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        live = GaugeMetricFamily(
            "zoom_qss_exporter_series", "Live series in the store, by family.", labels=["family"]
        )
        for family, series in self.store.families():
            gauge = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
            for labels, entry in series.items():
                gauge.add_metric(labels, entry.value)
            live.add_metric([family.name], len(series))
            yield gauge
        yield live
        yield CounterMetricFamily(
            "zoom_qss_exporter_series_expired",
            "Series removed after their TTL without updates.",
            value=self.store.expired_total,
        )
        yield CounterMetricFamily(
            "zoom_qss_exporter_series_dropped",
            "New series refused because the store held --store.max-series series.",
            value=self.store.dropped_total,
        )
        yield GaugeMetricFamily(
            "zoom_qss_exporter_series_limit",
            "The cap on live series (--store.max-series).",
            value=self.store.limits.max_series,
        )


def render(
    registry: CollectorRegistry, accept: str, accept_encoding: str
) -> tuple[bytes, dict[str, str]]:
    """Body and headers for a scrape: OpenMetrics when asked for, gzip when accepted."""
    encoder, content_type = choose_encoder(accept)
    body = encoder(registry)
    headers = {"content-type": content_type}
    if "gzip" in accept_encoding:
        body = gzip.compress(body, compresslevel=1)
        headers["content-encoding"] = "gzip"
    return body, headers
