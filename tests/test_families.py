"""The metric contract as code: names follow the rules and docs/metrics.md documents every one."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FLEET_AND_HEALTH
from zoom_qss_exporter.families import ALL_FAMILIES, Lifetime

REFERENCE = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()


def test_names_follow_prometheus_rules() -> None:
    for family in ALL_FAMILIES:
        assert re.fullmatch(r"zoom_[a-z_]+", family.name), family.name
        for forbidden in ("_summary_", "_count", "_sum", "_bucket", "_total"):
            assert forbidden not in family.name, family.name
        assert len(set(family.labels)) == len(family.labels)


def test_stat_label_only_where_the_contract_says() -> None:
    with_stat = {f.name for f in ALL_FAMILIES if "stat" in f.labels}
    assert "zoom_qos_wifi_rssi_dbm" in with_stat
    assert "zoom_phone_call_packet_loss_peak_ratio" not in with_stat
    assert "zoom_qos_participation_quality_level" not in with_stat


def test_lifetimes() -> None:
    by_name = {f.name: f.lifetime for f in ALL_FAMILIES}
    assert by_name["zoom_qos_latency_seconds"] is Lifetime.SAMPLE
    assert by_name["zoom_phone_mos"] is Lifetime.SAMPLE
    assert by_name["zoom_qos_participation_latency_seconds"] is Lifetime.SUMMARY
    assert by_name["zoom_phone_call_mos"] is Lifetime.SUMMARY
    assert by_name["zoom_participant_info"] is Lifetime.SUMMARY


def test_reference_documents_every_metric() -> None:
    for name in [f.name for f in ALL_FAMILIES] + list(FLEET_AND_HEALTH):
        assert f"`{name}`" in REFERENCE, name
