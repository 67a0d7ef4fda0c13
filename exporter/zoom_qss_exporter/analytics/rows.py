"""Counters over a few bounded dimensions, as rows: one row per combination of label values
holding its stream-minutes and its poor ones by cause. A hard cap on rows; past it, a new
combination folds into its product's ``other`` row and is counted."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from zoom_qss_exporter.analytics.classify import CAUSES
from zoom_qss_exporter.analytics.dimensions import OTHER


class RowTable:
    """``total``: the counter of every stream-minute (or participation, call); ``poor``: of
    the poor ones, by ``cause`` when ``causes`` is set. The first label is ``product`` (or
    ``account`` alone), which is never folded: a fold keeps it and sets the others to
    ``other``, so the fold rows are at most one per product."""

    def __init__(
        self,
        family: str,
        total: tuple[str, str],
        poor: tuple[str, str],
        labels: tuple[str, ...],
        max_rows: int,
        *,
        causes: bool = True,
    ) -> None:
        self.family = family  # the value of ``family`` in the exporter's own metrics
        self.total, self.poor = total, poor  # (name without _total, help)
        self.labels = labels
        self.max_rows = max_rows
        self.causes = causes
        self.width = 1 + (len(CAUSES) if causes else 1)
        self.rows: dict[tuple[str, ...], list[float]] = {}
        self.folds = 0
        self._folded: set[tuple[str, ...]] = set()  # combinations folded, up to max_rows

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, key: tuple[str, ...]) -> list[float]:
        """The row to count into: [total, poor by cause...] (or [total, poor])."""
        found = self.rows.get(key)
        if found is not None:
            return found
        if len(self.rows) >= self.max_rows:
            if key not in self._folded:  # each combination once (while it is remembered)
                self.folds += 1
                if len(self._folded) < self.max_rows:
                    self._folded.add(key)
            key = (key[0], *(OTHER,) * (len(key) - 1))
            found = self.rows.get(key)
            if found is not None:
                return found
        found = self.rows[key] = [0.0] * self.width
        return found

    def collect(self) -> Iterator[Metric]:
        labels = list(self.labels)
        total = CounterMetricFamily(*self.total, labels=labels)
        poor_labels = [*labels, "cause"] if self.causes else labels
        poor = CounterMetricFamily(*self.poor, labels=poor_labels)
        for key, row in list(self.rows.items()):
            values = list(key)
            total.add_metric(values, row[0])
            if not self.causes:
                poor.add_metric(values, row[1])
                continue
            for cause, count in zip(CAUSES, row[1:], strict=True):
                if count:
                    poor.add_metric([*values, cause], count)
        yield total
        yield poor
