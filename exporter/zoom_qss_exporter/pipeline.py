"""Applies a converted event to the store and the fleet metrics, and judges its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from .convert import ConvertOptions, convert
from .events import Event
from .fleet import FleetMetrics
from .health import HealthMetrics, Outcome
from .store import SeriesStore


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    convert: ConvertOptions = field(default_factory=ConvertOptions)
    per_participant: bool = True  # off: fleet metrics only, the store stays empty


class Pipeline:
    def __init__(
        self,
        store: SeriesStore,
        fleet: FleetMetrics,
        health: HealthMetrics,
        options: PipelineOptions,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.health = health
        self.options = options

    def ingest(self, event: Event, now: float) -> Outcome:
        """``stale`` when the event held samples and not one of them was new."""
        conversion = convert(event, self.options.convert)
        skipped = conversion.skipped
        counted, repeated = self.fleet.observe(conversion.fleet, now)
        if repeated:
            skipped.extend(["not_newer_than_counted"] * repeated)
        if skipped:
            self.health.count_skipped(skipped)
        if not self.options.per_participant:
            fresh = counted > 0 or not conversion.fleet
            return Outcome.ACCEPTED if fresh else Outcome.STALE
        written = self.store.apply(conversion, now)
        if (conversion.samples or conversion.fleet) and not (written.written or counted):
            return Outcome.STALE
        return Outcome.ACCEPTED

    def expire(self, now: float) -> int:
        self.fleet.ledger.expire(now)
        return self.store.expire(now)
