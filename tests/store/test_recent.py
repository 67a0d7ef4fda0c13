"""RecentMap: a dict's answers in flat arrays, forgetting keys one to two windows after their
last write."""

from __future__ import annotations

import random

from zoom_qss_exporter.store.recent import MARKS, RecentMap


def test_answers_as_a_dict_through_growth() -> None:
    rng = random.Random(7)
    recent, reference = RecentMap(60.0), dict[int, float]()
    keys = [rng.getrandbits(64) - (1 << 63) for _ in range(5000)] + [1, -1, (1 << 63) - 1]
    for _ in range(20_000):
        key, value = rng.choice(keys), rng.random()
        if rng.random() < 0.5:
            recent.set(key, value)
            reference[key] = value
        else:
            known = reference.get(key)
            expected = known is None or value > known
            assert recent.newer(key, value) is expected
            if expected:
                reference[key] = value
    assert all(recent.get(key) == reference.get(key) for key in keys)
    assert len(recent) == len(reference)  # one generation so far


def test_newer_is_strict() -> None:
    recent = RecentMap(60.0)
    assert recent.newer(42, 10.0)
    assert not recent.newer(42, 10.0), "the same time again is a redelivery"
    assert not recent.newer(42, 9.0)
    assert recent.newer(42, 11.0)
    assert recent.get(42) == 11.0


def test_key_zero_is_a_key() -> None:
    """0 marks a free slot inside; it is stored as 1, so 0 and 1 share an entry."""
    recent = RecentMap(60.0)
    assert recent.get(0) is None
    recent.set(0, 5.0)
    assert recent.get(0) == 5.0
    assert recent.get(1) == 5.0


def test_a_key_lives_one_to_two_windows_after_its_last_write() -> None:
    recent = RecentMap(60.0)
    recent.expire(0.0)
    recent.set(1, 1.0)
    recent.expire(59.0)
    assert recent.get(1) == 1.0
    recent.expire(60.0)  # rotated: now in the previous generation
    assert recent.get(1) == 1.0
    assert not recent.newer(1, 1.0), "the previous generation still answers"
    recent.set(2, 2.0)
    recent.expire(119.0)
    assert recent.get(1) == 1.0
    recent.expire(120.0)  # rotated again: key 1 was not written in the last window
    assert recent.get(1) is None
    assert recent.get(2) == 2.0


def test_newer_in_the_previous_generation_moves_the_key_forward() -> None:
    recent = RecentMap(60.0)
    recent.expire(0.0)
    recent.set(1, 1.0)
    recent.expire(60.0)
    assert recent.newer(1, 2.0)
    recent.expire(120.0)
    assert recent.get(1) == 2.0, "written in the last window: kept"


def test_sightings_answer_as_a_reference_of_seen_steps_through_growth() -> None:
    """``sighting`` against a plain model: per key the newest value and the set of steps
    seen; keys of every kind (grid values, off-grid jitter, large jumps), through growth."""
    rng = random.Random(11)
    recent = RecentMap(1e9, marked=True)
    reference: dict[int, tuple[float, set[int]]] = {}
    keys = [rng.getrandbits(64) - (1 << 63) for _ in range(3000)]
    step = 60.0
    for _ in range(40_000):
        key = rng.choice(keys)
        value = 60.0 * rng.randrange(0, 200) + rng.choice((0.0, 0.0, 2.0, -3.0))
        newest, seen = reference.get(key, (value, set()))
        if value > newest:
            shift = round((value - newest) / step)
            seen = {s + shift for s in seen if s + shift < MARKS} | {0}
            expected = True
            newest = value
        else:
            back = round((newest - value) / step)
            expected = back < MARKS and back not in seen
            if expected:
                seen = seen | {back}
        assert recent.sighting(key, value, step) is expected
        if expected or key in reference:
            reference[key] = (newest, seen)
    assert len(recent) == len(reference)


def test_a_sighting_in_the_previous_generation_is_remembered() -> None:
    recent = RecentMap(60.0, marked=True)
    recent.expire(0.0)
    assert recent.sighting(1, 6000.0, 60.0)
    assert recent.sighting(1, 5880.0, 60.0)  # two steps back
    recent.expire(60.0)  # rotated: both in the previous generation
    assert not recent.sighting(1, 5880.0, 60.0)
    assert recent.sighting(1, 5940.0, 60.0)  # written again: moved to the current one
    recent.expire(120.0)
    assert not recent.sighting(1, 5880.0, 60.0), "its marks moved along"
