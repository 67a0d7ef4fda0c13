"""Prometheus recording rules of the fleet histograms, built from the thresholds, and the
PromQL helpers the alerts (alerts.py), the live rules (live.py) and the dashboards share. No rule
here writes a series per participant: live counts are live.py's, and the quality alerts read
the analytics' counters (analytics.py, slo.py).

Recording rules are named ``level:metric:operations``; ``participant`` as a level stands for
``product, meeting_id, participant_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.utils import floatToGoString

from zoom_qss_exporter.store.fleet import DELAY_BUCKETS, LOSS_BUCKETS, MOS_BUCKETS

from .config import Config

Rule = dict[str, Any]
Group = dict[str, Any]

PARTICIPANT = "product, meeting_id, participant_id"
STREAM = f"{PARTICIPANT}, qos_type"
_go_float: Callable[[float], str] = floatToGoString  # spells ``le`` as the exporter does


def one_info(selector: str) -> str:
    """One zoom_participant_info series per participant, whatever its other labels: joins on
    it (``group_left``) and counts of it then hold when a participant briefly has two (several
    remote-write replicas, a device or network change); with one, the result is the same."""
    return f"topk by ({PARTICIPANT}) (1, {selector})"


def with_user_name(expr: str, selector: str) -> str:
    """``expr`` (per-participant series, aggregated or not) with the participant's ``user_name``
    joined from ``one_info(selector)``, falling back to ``expr`` itself, without ``user_name``,
    for a participant who has no info series at that instant: in remote-write's ``event`` mode
    (info only within the lookback after a join or leave), for one whose info was dropped at the
    series cap, or before the first event with metadata. The join keeps all or none of a
    participant's series (it matches on the participant alone), so ``or on`` the participant
    adds exactly the series of those the join dropped. ``expr`` is written twice in the query,
    once here."""
    return (
        f"(\n  ({expr})\n  * on ({PARTICIPANT}) group_left (user_name)\n  {one_info(selector)}\n)"
        f"\nor on ({PARTICIPANT})\n({expr})"
    )


def number(value: float) -> str:
    """A PromQL literal: 0.15, 5, 3.5."""
    return f"{value:g}"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


def percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def bucket_bound(threshold: float, bounds: tuple[float, ...]) -> str:
    """The ``le`` of the largest bucket bound at or below ``threshold`` (histogram shares)."""
    below = [bound for bound in bounds if bound <= threshold + 1e-12]
    return _go_float(below[-1] if below else bounds[0])


# --- recording rules --------------------------------------------------------------------------


def recording_groups(config: Config) -> list[Group]:
    return [
        {"name": "zoom-qss-fleet.rules", "rules": _fleet_records(config)},
    ]


def _fleet_records(config: Config) -> list[Rule]:
    rules: list[Rule] = []
    fleet = (
        ("latency_seconds", config.latency, DELAY_BUCKETS),
        ("jitter_seconds", config.jitter, DELAY_BUCKETS),
        ("packet_loss_ratio", config.packet_loss, LOSS_BUCKETS),
    )
    for name, _, _ in fleet:
        rules.append(
            {
                "record": f"product_qos_type_le:zoom_qos_fleet_{name}_bucket:rate5m",
                "expr": f"sum by (product, qos_type, le) (rate(zoom_qos_fleet_{name}_bucket[5m]))",
            }
        )
    rules.append(
        {
            "record": "direction_le:zoom_phone_fleet_mos_bucket:rate5m",
            "expr": "sum by (direction, le) (rate(zoom_phone_fleet_mos_bucket[5m]))",
        }
    )
    rules.append(
        {
            "record": "product_qos_type:zoom_qos_samples:rate5m",
            "expr": "sum by (product, qos_type) (rate(zoom_qos_samples_total[5m]))",
        }
    )
    for name, figure, bounds in fleet:
        # Share of samples above the warning threshold, at histogram resolution: above the
        # largest bucket bound at or below the threshold. None (not NaN) without samples in
        # the last 5 minutes: the histograms' counters outlive the QoS types that stopped.
        rate = f"product_qos_type_le:zoom_qos_fleet_{name}_bucket:rate5m"
        le = bucket_bound(figure.warning, bounds)
        rules.append(
            {
                "record": f"product_qos_type:zoom_qos_fleet_{name}_above_threshold:ratio_rate5m",
                "expr": f'1 - (\n  {rate}{{le="{le}"}}\n  / ignoring (le)\n'
                f'  ({rate}{{le="+Inf"}} > 0)\n)\n',
            }
        )
    rate = "direction_le:zoom_phone_fleet_mos_bucket:rate5m"
    le = bucket_bound(config.mos_warning, MOS_BUCKETS)
    rules.append(
        {
            "record": "direction:zoom_phone_fleet_mos_below_threshold:ratio_rate5m",
            "expr": f'{rate}{{le="{le}"}}\n/ ignoring (le)\n({rate}{{le="+Inf"}} > 0)\n',
        }
    )
    return rules
