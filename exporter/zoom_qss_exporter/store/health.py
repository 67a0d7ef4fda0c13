"""The exporter's own metrics (``zoom_qss_exporter_*``), so it can explain its behaviour."""

from __future__ import annotations

import platform
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from zoom_qss_exporter import __version__
from zoom_qss_exporter.outcomes import EVENT_NAMES, OTHER_EVENT, UNVERIFIED, URL_VALIDATION, Outcome
from zoom_qss_exporter.store.plain_metrics import Counter, Histogram

_PROCESSING_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


REFUSAL_REASONS = ("head_too_large", "too_many_headers", "malformed")
"""Why the HTTP layer refused a request (``zoom_qss_exporter_http_requests_refused_total``)."""


class HealthMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        prefix = "zoom_qss_exporter_"
        self.events = Counter(
            prefix + "events", "Webhook deliveries by event and outcome.", ("event", "outcome")
        )
        self.items_skipped = Counter(
            prefix + "items_skipped",
            "QoS items or fields ignored (unknown type or field, unreadable value, ...).",
            ("reason",),
        )
        self.requests_refused = Counter(
            prefix + "http_requests_refused",
            "Requests refused by the HTTP layer before any route saw them: request head too "
            "large, too many headers, malformed HTTP.",
            ("reason",),
        )
        self.processing = Histogram(
            prefix + "event_processing_seconds",
            "Time to handle one webhook delivery, from first byte read to answer.",
            ("event",),
            _PROCESSING_BUCKETS,
        )
        self.last_event = Gauge(
            prefix + "last_event_timestamp_seconds",
            "When the last authentic event was accepted (Unix seconds).",
            registry=registry,
        )
        build = Gauge(
            prefix + "build_info",
            "Version of the exporter and of Python (value 1).",
            ("version", "python_version"),
            registry=registry,
        )
        build.labels(__version__, platform.python_version()).set(1)
        for event in sorted(
            EVENT_NAMES
        ):  # the series alerts and dashboards expect exist from the start
            self.events.inc((event, Outcome.ACCEPTED.value), 0)
        self.events.inc((UNVERIFIED, Outcome.INVALID_SIGNATURE.value), 0)
        # a failure that creates its series at 1 would be no increase() to ZoomQSSWebhookErrors
        for event in (*sorted(EVENT_NAMES), URL_VALIDATION, OTHER_EVENT, UNVERIFIED):
            self.events.inc((event, Outcome.ERROR.value), 0)
        for reason in REFUSAL_REASONS:
            self.requests_refused.inc((reason,), 0)
        registry.register(self)

    def count_event(self, event: str, outcome: Outcome) -> None:
        self.events.inc((event, outcome.value))

    def expect_overload(self) -> None:
        """With remote write every event can be refused 503: its series exist from the start
        (at 0), so that the first refusal is an increase to ZoomQSSWebhookErrors."""
        for event in sorted(EVENT_NAMES):
            self.events.inc((event, Outcome.REJECTED_OVERLOAD.value), 0)

    def count_refused(self, reason: str) -> None:
        self.requests_refused.inc((reason,))

    def count_skipped(self, reasons: list[str]) -> None:
        for reason, n in Tally(reasons).items():
            self.items_skipped.inc((reason,), n)

    def collect(self) -> Iterator[Metric]:
        yield self.events.collect()
        yield self.items_skipped.collect()
        yield self.requests_refused.collect()
        yield self.processing.collect()
