"""Applies a converted event to the store and the fleet metrics, and judges its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from zoom_qss_exporter.analytics.collector import QualityAnalytics
from zoom_qss_exporter.ingest.convert import ConvertOptions, convert
from zoom_qss_exporter.ingest.events import Event
from zoom_qss_exporter.outcomes import Outcome
from zoom_qss_exporter.samples import Conversion
from zoom_qss_exporter.store.fleet import FleetMetrics
from zoom_qss_exporter.store.health import HealthMetrics
from zoom_qss_exporter.store.series import SeriesStore


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    convert: ConvertOptions = field(default_factory=ConvertOptions)
    per_participant: bool = True  # off: fleet metrics only, the store stays empty


class Sink(Protocol):
    """Another destination of every conversion (remote write), offered it before the store
    and the fleet metrics see it: a refusal leaves no trace anywhere, so Zoom's redelivery of
    the event (it is answered 503) is not a duplicate."""

    def offer(self, conversion: Conversion, now: float) -> bool: ...

    def expire(self, now: float) -> None: ...


class Pipeline:
    def __init__(
        self,
        store: SeriesStore,
        fleet: FleetMetrics,
        health: HealthMetrics,
        options: PipelineOptions,
        sink: Sink | None = None,
        analytics: QualityAnalytics | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.health = health
        self.options = options
        self.sink = sink
        self.analytics = analytics

    def ingest(self, event: Event, now: float) -> Outcome:
        """``stale`` when the event held samples and not one of them was new;
        ``rejected_overload`` when the sink is full (nothing is applied then)."""
        conversion = convert(event, self.options.convert)
        if self.analytics is not None:
            self.analytics.place(conversion)
        if self.sink is not None and not self.sink.offer(conversion, now):
            return Outcome.REJECTED_OVERLOAD
        skipped = conversion.skipped
        fresh, repeated = self.fleet.observe(conversion.fleet, now)
        counted = len(fresh)
        if self.analytics is not None:
            new_summary = bool(conversion.summary) and self.fleet.ledger.first_sighting(
                ("summary", *conversion.summary_of), conversion.summary_time, now
            )
            self.analytics.observe(conversion, fresh, new_summary)
        if repeated:
            skipped.extend(["already_counted"] * len(repeated))
        if skipped:
            self.health.count_skipped(skipped)
        if not self.options.per_participant:
            return Outcome.ACCEPTED if counted or not conversion.fleet else Outcome.STALE
        written = self.store.apply(conversion, now, repeated)
        if (conversion.samples or conversion.fleet) and not (written.written or counted):
            return Outcome.STALE
        if not conversion.samples and written.info_stale:  # a *_data event seen before
            return Outcome.STALE
        return Outcome.ACCEPTED

    def expire(self, now: float) -> int:
        self.fleet.ledger.expire(now)
        if self.analytics is not None:
            self.analytics.expire(now)
        if self.sink is not None:
            self.sink.expire(now)
        return self.store.expire(now)
