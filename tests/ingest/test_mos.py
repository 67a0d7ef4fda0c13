"""The E-model MOS estimate against the published values of ITU-T G.107 and G.109."""

from __future__ import annotations

import pytest

from zoom_qss_exporter.ingest.mos import (
    delay_impairment,
    loss_impairment,
    mos_estimate,
    r_factor,
    r_to_mos,
)

# ITU-T G.109 Table 1: the lower R of each user-satisfaction category and its MOS.
G109 = [(90.0, 4.34), (80.0, 4.03), (70.0, 3.60), (60.0, 3.10), (50.0, 2.58)]


@pytest.mark.parametrize(("r", "mos"), G109)
def test_r_to_mos_matches_g109(r: float, mos: float) -> None:
    assert r_to_mos(r) == pytest.approx(mos, abs=0.01)


def test_default_r_is_the_g107_default_mos() -> None:
    assert r_to_mos(93.2) == pytest.approx(4.41, abs=0.005)  # G.107: R = 93.2 gives 4.41


def test_r_to_mos_is_clamped_and_monotonic() -> None:
    assert r_to_mos(-10) == 1.0
    assert r_to_mos(0) == 1.0
    assert r_to_mos(3) == 1.0  # the cubic would dip below 1 here
    assert r_to_mos(100) == 4.5
    assert r_to_mos(150) == 4.5
    values = [r_to_mos(r / 2) for r in range(0, 201)]
    assert values == sorted(values)


def test_delay_impairment() -> None:
    assert delay_impairment(0.0) == 0.0
    assert delay_impairment(0.1) == pytest.approx(2.4)  # 0.024 per ms below 177.3 ms
    assert delay_impairment(0.1773) == pytest.approx(0.024 * 177.3)
    assert delay_impairment(0.4) == pytest.approx(0.024 * 400 + 0.11 * (400 - 177.3))


def test_loss_impairment() -> None:
    assert loss_impairment(0.0) == 0.0
    assert loss_impairment(0.251) == pytest.approx(95 / 2)  # Ppl = Bpl: half of 95 - Ie
    assert loss_impairment(1.0) == pytest.approx(95 * 100 / 125.1)
    assert loss_impairment(-1.0) == 0.0  # out of range values are clamped
    assert loss_impairment(2.0) == loss_impairment(1.0)


def test_r_factor_adds_jitter_buffer_and_codec_delay() -> None:
    assert r_factor(0.0, 0.0, 0.0) == pytest.approx(93.2 - 0.024 * 10)
    # 134 ms + 2 x 6 ms + 10 ms = 156 ms of effective delay, no loss (Zoom's examples).
    assert r_factor(0.134, 0.006, 0.0) == pytest.approx(93.2 - 0.024 * 156)


def test_good_and_bad_networks_fall_on_either_side_of_3_5() -> None:
    assert mos_estimate(0.134, 0.006, 0.0) == pytest.approx(4.325, abs=0.001)
    assert mos_estimate(0.08, 0.01, 0.005) > 4.0  # the simulator's worst healthy network
    assert mos_estimate(0.3, 0.04, 0.05) < 2.5  # its best degraded one
    assert mos_estimate(0.15, 0.03, 0.01) > 3.5  # every "info" threshold at once
    assert 1.0 <= mos_estimate(5.0, 1.0, 1.0) < 1.01
