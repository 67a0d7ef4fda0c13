"""Labelled counters and histograms as plain dicts and lists, exposed through ``collect()``.

For metrics touched on every event or sample: prometheus-client's labelled metrics take a
label lookup, a lock and a Python loop over the buckets per call, which costs more than the
conversion they measure. These are only touched from the event loop, which also collects them.
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

from zoom_qss_exporter.store.textformat import go_float


class Histogram:
    """A labelled histogram as plain lists: per label set, bucket counts (not cumulative)."""

    def __init__(
        self, name: str, help: str, labels: tuple[str, ...], bounds: tuple[float, ...]
    ) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        self.bounds = bounds
        self._children: dict[tuple[str, ...], list[float]] = {}  # buckets..., +Inf, sum

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = [0.0] * (len(self.bounds) + 2)
        child[bisect_left(self.bounds, value)] += 1
        child[-1] += value

    def collect(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.help, labels=list(self.labels))
        edges = [go_float(b) for b in self.bounds] + ["+Inf"]
        for labels, child in list(self._children.items()):
            counts = child[:-1]
            cumulative, total = [], 0.0
            for edge, n in zip(edges, counts, strict=True):
                total += n
                cumulative.append((edge, total))
            family.add_metric(list(labels), cumulative, child[-1])
        return family


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.help, labels=list(self.labels))
        for labels, value in list(self._values.items()):
            family.add_metric(list(labels), value)
        return family
