"""Exposition of ``/metrics``: the store's pre-rendered lines, plus a small registry.

The store keeps each series' line rendered, so its part of a scrape is one ``join`` per family,
done in a worker thread together with gzip so that webhooks keep flowing on the event loop.
A rendered body is reused for up to ``max_age`` seconds (an HA pair of Prometheus servers
scraping together costs one render), and concurrent scrapes share one render.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client import openmetrics as _openmetrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zoom_qss_exporter.families import Family
from zoom_qss_exporter.store.allocator import release_free_memory
from zoom_qss_exporter.store.series import SeriesStore, counts

OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class StoreHealthCollector(Collector):
    """The store's own health: live series per family, expiry, drops, the cap."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        live = GaugeMetricFamily(
            "zoom_qss_exporter_series", "Live series in the store, by family.", labels=["family"]
        )
        for name, count in counts(self.store).items():
            live.add_metric([name], count)
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
            "zoom_qss_exporter_departures",
            "Departure records held, one per departed participant or call party, for "
            "--store.ttl; as many as --store.max-series at most.",
            value=self.store.departures,
        )
        yield CounterMetricFamily(
            "zoom_qss_exporter_departures_dropped",
            "Departure records forgotten before their TTL because --store.max-series of them "
            "were held (the oldest go first).",
            value=self.store.departures_dropped_total,
        )
        yield GaugeMetricFamily(
            "zoom_qss_exporter_series_limit",
            "The cap on live series (--store.max-series).",
            value=self.store.limits.max_series,
        )


def _header(family: Family, openmetrics: bool) -> bytes:
    help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        help_text = help_text.replace('"', r"\"")
    return f"# HELP {family.name} {help_text}\n# TYPE {family.name} gauge\n".encode()


def store_chunks(store: SeriesStore, openmetrics: bool = False) -> list[bytes]:
    """The store's families in the text (or OpenMetrics) format, byte for byte as
    prometheus-client would write them, as a list of chunks (one copy of the lines, not two).
    Safe in a worker thread: each family's lines are joined in one call, which the event loop
    cannot interleave with a write."""
    chunks: list[bytes] = []
    small: list[bytes] = []  # headers and names, sent together with the next block
    for packed in store.families():
        name = packed.family.name.encode()
        small.append(_header(packed.family, openmetrics))
        for lines in packed.lines:
            block = (b"\n" + name).join(lines.values())
            if block:
                small.append(name)
                chunks += (b"".join(small), block)
                small = [b"\n"]
    chunks.append(b"".join(small))
    return chunks


def render_store(store: SeriesStore, openmetrics: bool = False) -> bytes:
    return b"".join(store_chunks(store, openmetrics))


def gzip_chunks(chunks: list[bytes]) -> list[bytes]:
    """One gzip member over all chunks, without joining them first; level 1: a scrape of
    200,000 series compresses about 30:1 even so, several times faster than the default."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return [part for part in out if part]


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: named (or ``*``) with a weight above 0
    (``gzip;q=0`` refuses it, RFC 9110 section 12.5.3)."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    gzip = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return gzip > 0


def wants_openmetrics(accept: str) -> bool:
    return any(
        part.split(";")[0].strip() == "application/openmetrics-text" for part in accept.split(",")
    )


class MetricsEndpoint:
    """Renders and caches the scrape body, as chunks."""

    def __init__(
        self,
        store: SeriesStore,
        registry: CollectorRegistry,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.registry = registry
        self.max_age = max_age
        self.clock = clock
        self._cache: dict[tuple[bool, bool], tuple[float, list[bytes]]] = {}
        self._locks: dict[tuple[bool, bool], asyncio.Lock] = {}

    async def body(self, accept: str, accept_encoding: str) -> tuple[list[bytes], dict[str, str]]:
        openmetrics = wants_openmetrics(accept)
        compress = accepts_gzip(accept_encoding)
        headers = {
            "content-type": OPENMETRICS_TYPE if openmetrics else CONTENT_TYPE_LATEST,
            "vary": "accept, accept-encoding",  # the body depends on both
        }
        if compress:
            headers["content-encoding"] = "gzip"
        key = (openmetrics, compress)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # a scrape arriving mid-render waits for it instead of rendering again
            self._drop_stale()
            cached = self._cache.get(key)
            if cached is not None:
                return cached[1], headers
            chunks = await self._render(openmetrics, compress)
            self._cache[key] = (self.clock(), chunks)
        return chunks, headers

    def _drop_stale(self) -> None:
        """Let go of bodies past their age before rendering a new one: a scrape holds one
        body at a time, not also the last one of every kind (text, gzip, OpenMetrics)."""
        now = self.clock()
        for key in [key for key, (made, _) in self._cache.items() if now - made >= self.max_age]:
            del self._cache[key]

    async def _render(self, openmetrics: bool, compress: bool) -> list[bytes]:
        # the registry is small and its collectors are not thread-safe: render it here
        rest = (_openmetrics.exposition.generate_latest if openmetrics else generate_latest)(
            self.registry
        )

        def finish() -> list[bytes]:
            release_free_memory()  # the bodies before this one, freed by now
            chunks = store_chunks(self.store, openmetrics)
            chunks.append(rest)
            return gzip_chunks(chunks) if compress else chunks

        return await asyncio.to_thread(finish)
