"""The fleet metrics' redelivery ledger and plain histograms."""

from __future__ import annotations

from zoom_qss_exporter.store.fleet import SampleLedger
from zoom_qss_exporter.store.plain_metrics import Histogram

STREAM = ("meeting", "m==", "p1", "audio_input")


def test_each_sample_time_counts_once_per_stream() -> None:
    ledger = SampleLedger(window=5400)
    assert ledger.first_sighting(STREAM, 6000.0, now=0)
    assert not ledger.first_sighting(STREAM, 6000.0, now=1)  # a redelivery
    assert ledger.first_sighting(STREAM, 5940.0, now=2)  # late, but its first delivery
    assert not ledger.first_sighting(STREAM, 5940.0, now=3)  # and now a redelivery
    assert ledger.first_sighting(STREAM, 6060.0, now=4)
    assert ledger.first_sighting((*STREAM[:3], "video_input"), 6000.0, now=5)


def test_out_of_order_minutes_count_once_each_within_63_minutes() -> None:
    """Zoom retries a failed delivery 5, 20 and 60 minutes later, when newer minutes of the
    stream have long been counted."""
    ledger = SampleLedger(window=5400)
    newest = 100_000.0
    assert ledger.first_sighting(STREAM, newest, now=0)
    for minutes in (5, 20, 60, 63):
        late = newest - 60 * minutes + 1  # a second off the minute grid: the same minute
        assert ledger.first_sighting(STREAM, late, now=1), minutes
        assert not ledger.first_sighting(STREAM, late, now=2), minutes
    assert not ledger.first_sighting(STREAM, newest - 60 * 64, now=3)  # beyond: not counted
    # the newest moves on: what was counted stays counted, at its new distance
    assert ledger.first_sighting(STREAM, newest + 600, now=4)
    assert not ledger.first_sighting(STREAM, newest - 60 * 5 + 1, now=5)
    assert ledger.first_sighting(STREAM, newest - 60 * 6, now=6)


def test_remembered_for_at_least_the_window_then_forgotten() -> None:
    ledger = SampleLedger(window=100)
    ledger.expire(now=0)
    assert ledger.first_sighting(STREAM, 10.0, now=1)
    ledger.expire(now=100)  # first rotation: the stream moves to the previous generation
    assert len(ledger) == 1
    assert not ledger.first_sighting(STREAM, 10.0, now=150)  # still remembered
    ledger.expire(now=200)  # second rotation: not counted since, so it is forgotten
    assert len(ledger) == 0
    assert ledger.first_sighting(STREAM, 10.0, now=301)  # beyond Zoom's retries: new again


def test_histogram_buckets_are_cumulative_and_le_inclusive() -> None:
    histogram = Histogram("h", "help", ("a",), (0.1, 0.2))
    for value in (0.05, 0.1, 0.15, 0.3):
        histogram.observe(("x",), value)
    family = histogram.collect()
    got = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert got[("h_bucket", "0.1")] == 2
    assert got[("h_bucket", "0.2")] == 3
    assert got[("h_bucket", "+Inf")] == 4
    assert got[("h_count", None)] == 4
    assert abs(got[("h_sum", None)] - 0.6) < 1e-9
