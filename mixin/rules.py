"""Prometheus recording and alerting rules, built from the thresholds.

Recording rules are named ``level:metric:operations``; ``participant`` as a level stands for
``product, meeting_id, participant_id``. Every alert carries ``severity``, ``summary``, a
templated ``description`` and a ``runbook_url`` into docs/runbook.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.utils import floatToGoString

from zoom_qss_exporter.store.fleet import DELAY_BUCKETS, LOSS_BUCKETS, MOS_BUCKETS

from .config import Config, Duration, Figure

Rule = dict[str, Any]
Group = dict[str, Any]

PARTICIPANT = "product, meeting_id, participant_id"
STREAM = f"{PARTICIPANT}, qos_type"
DIMENSIONS = (  # fleet-level incidents: label, words, alert
    ("data_center", "data center", "ZoomDataCenterDegraded"),
    ("network_type", "network type", "ZoomNetworkTypeDegraded"),
    ("product", "product", "ZoomProductDegraded"),
)
_INFO_QUERY = (
    '{{ range printf "zoom_participant_info{product=%q,meeting_id=%q,participant_id=%q}" '
    "$labels.product $labels.meeting_id $labels.participant_id | query }}"
    " ({{ with .Labels.user_name }}{{ . }}, {{ end }}{{ .Labels.device }},"
    " {{ .Labels.network_type }}, data center {{ .Labels.data_center }}){{ end }}"
)
WHO = f"participant {{{{ $labels.participant_id }}}}{_INFO_QUERY}"
# " on WiFi": the call party's network, from zoom_phone_party_info, when Zoom named one
_NETWORK_QUERY = (
    '{{ with printf "zoom_phone_party_info{call_id=%q,user_id=%q,role=%q}" '
    "$labels.call_id $labels.user_id $labels.role | query }}"
    '{{ with . | first | label "network" }} on {{ . }}{{ end }}{{ end }}'
)
WHERE = "in {{ $labels.product }} {{ $labels.meeting_id }}"
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
        {"name": "zoom-qss-participants.rules", "rules": _participant_records(config)},
        {"name": "zoom-qss-fleet.rules", "rules": _fleet_records(config)},
    ]


def _poor_conditions(config: Config) -> list[str]:
    media = f'qos_type=~"{config.media_regex}"'
    return [
        f"zoom_qos_latency_seconds{{{media}}} > {number(config.latency.warning)}",
        f"zoom_qos_jitter_seconds{{{media}}} > {number(config.jitter.warning)}",
        f"zoom_qos_packet_loss_avg_ratio{{{media}}} > {number(config.packet_loss.warning)}",
        f"zoom_qos_mos_estimate{{{media}}} < {number(config.mos_warning)}",
    ]


def _participant_records(config: Config) -> list[Rule]:
    media = f'qos_type=~"{config.media_regex}"'
    poor = "\n  or ".join(_poor_conditions(config))
    rules: list[Rule] = [
        {
            # 1 for a media stream above a warning threshold (or with a poor audio MOS), 0 for
            # every other stream that reports: the denominators of the shares below.
            "record": "participant_qos_type:zoom_qos_poor:bool",
            "expr": f"group by ({STREAM}) (\n    {poor}\n)\nor\n0 * group by ({STREAM}) "
            f"(zoom_qos_sample_timestamp_seconds{{{media}}})\n",
        },
        {
            "record": "participant:zoom_qos_poor:max",
            "expr": f"max by ({PARTICIPANT}) (participant_qos_type:zoom_qos_poor:bool)",
        },
        {
            "record": "product_qos_type:zoom_qos_poor:ratio",
            "expr": "avg by (product, qos_type) (participant_qos_type:zoom_qos_poor:bool)",
        },
        {
            # Where each participant connects from: data center and network type of the info.
            # One info series per participant (topk): two at once (replicas, a device or
            # network change) would otherwise fail the whole rule on duplicate match groups.
            "record": "participant_data_center_network_type:zoom_qos_poor:max",
            "expr": f"participant:zoom_qos_poor:max\n* on ({PARTICIPANT}) group_left "
            "(data_center, network_type)\n"
            f"{one_info('zoom_participant_info')}\n",
        },
    ]
    for label, _, _ in DIMENSIONS:
        source = (
            "participant:zoom_qos_poor:max"
            if label == "product"
            else "participant_data_center_network_type:zoom_qos_poor:max"
        )
        rules += [
            {
                "record": f"{label}:zoom_qos_poor_participants:sum",
                "expr": f"sum by ({label}) ({source})",
            },
            {
                "record": f"{label}:zoom_qos_participants:count",
                "expr": f"count by ({label}) ({source})",
            },
            {
                "record": f"{label}:zoom_qos_poor_participants:ratio",
                "expr": f"{label}:zoom_qos_poor_participants:sum\n/\n"
                f"{label}:zoom_qos_participants:count\n",
            },
        ]
    return rules


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


# --- alerts -----------------------------------------------------------------------------------


def alert_groups(config: Config) -> list[Group]:
    return [
        {"name": "zoom-qss-participants.alerts", "rules": _participant_alerts(config)},
        {"name": "zoom-qss-fleet.alerts", "rules": _fleet_alerts(config)},
        {"name": "zoom-qss-exporter.alerts", "rules": _exporter_alerts(config)},
    ]


def _alert(
    config: Config,
    name: str,
    expr: str,
    duration: Duration,
    severity: str,
    summary: str,
    description: str,
) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": duration.text,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{config.runbook_url}#{name.lower()}",
        },
    }


def _participant_alerts(config: Config) -> list[Rule]:
    media = f'qos_type=~"{config.media_regex}"'
    figures: list[tuple[str, str, Figure, str, Any, str]] = [
        ("Latency", "zoom_qos_latency_seconds", config.latency, "latency", milliseconds, "D"),
        ("Jitter", "zoom_qos_jitter_seconds", config.jitter, "jitter", milliseconds, "D"),
        (
            "PacketLoss",
            "zoom_qos_packet_loss_avg_ratio",
            config.packet_loss,
            "average packet loss",
            percent,
            "P",
        ),
    ]
    rules = []
    for suffix, metric, figure, words, shown, kind in figures:
        human = "humanizeDuration" if kind == "D" else "humanizePercentage"
        for severity, threshold in figure.levels():
            rules.append(
                _alert(
                    config,
                    f"ZoomParticipantHigh{suffix}",
                    f"{metric}{{{media}}} > {number(threshold)}",
                    config.participant_for,
                    severity,
                    f"A Zoom participant's {words} is above {shown(threshold)}.",
                    f"{{{{ $labels.qos_type }}}} {words} of {WHO} {WHERE} has been above "
                    f"{shown(threshold)} for {config.participant_for.text}: "
                    f"{{{{ $value | {human} }}}}.",
                )
            )
    mos = number(config.mos_warning)
    rules.append(
        _alert(
            config,
            "ZoomLowMOS",
            f'label_replace(zoom_phone_mos < {mos}, "product", "phone", "", "")\n'
            f"or\nzoom_qos_mos_estimate{{{media}}} < {mos}\n",
            config.mos_for,
            "warning",
            f"Zoom audio quality is poor (MOS below {mos}).",
            '{{ if eq $labels.product "phone" }}Phone call {{ $labels.call_id }}, '
            f"{{{{ $labels.role }}}} {{{{ $labels.user_id }}}}{_NETWORK_QUERY}, "
            "{{ $labels.direction }}: MOS"
            f"{{{{ else }}}}{{{{ $labels.qos_type }}}} of {WHO} {WHERE}: estimated MOS"
            '{{ end }} {{ printf "%.2f" $value }}, below '
            f"{mos} for {config.mos_for.text}.",
        )
    )
    return rules


def _fleet_alerts(config: Config) -> list[Rule]:
    rules = []
    ratio, least = number(config.fleet_ratio), number(config.fleet_min_participants)
    for label, words, name in DIMENSIONS:
        known = "" if label == "product" else f'{{{label}!=""}}'  # "": Zoom did not say
        count = (
            f'{{{{ with printf "{label}:zoom_qos_poor_participants:sum{{{label}=%q}}" '
            f'$labels.{label} | query }}}}{{{{ . | first | value | printf "%.0f" }}}}{{{{ end }}}}'
        )
        rules.append(
            _alert(
                config,
                name,
                f"{label}:zoom_qos_poor_participants:ratio{known} >= {ratio}\n"
                f"and\n{label}:zoom_qos_poor_participants:sum >= {least}\n",
                config.fleet_for,
                "critical",
                f"Many Zoom participants in one {words} have poor quality.",
                f"{{{{ $value | humanizePercentage }}}} of the Zoom participants in {words} "
                f"{{{{ $labels.{label} }}}} ({count} people) have had poor audio or video "
                f"for {config.fleet_for.text}: a shared network, data center or Zoom problem.",
            )
        )
    return rules


def _exporter_alerts(config: Config) -> list[Rule]:
    selector = config.exporter_selector
    every = config.exporter_for
    window = config.signature_window.text
    return [
        _alert(
            config,
            "ZoomQSSExporterDown",
            f"up{{{selector}}} == 0\nor\nabsent(up{{{selector}}})\n",
            every,
            "critical",
            "The Zoom QSS exporter cannot be scraped.",
            "Prometheus has not scraped the Zoom QSS exporter"
            "{{ with $labels.instance }} {{ . }}{{ end }} for "
            f"{every.text}: no call quality data and no call quality alerts meanwhile.",
        ),
        _alert(
            config,
            "ZoomQSSNoEvents",
            # by job, over every instance the window saw: a restarted or rolled-out exporter
            # (a new instance, its gauge at 0) is not a silence, and neither is a replica that
            # the load balancer happened to skip
            f"time() - max by (job) (max_over_time(zoom_qss_exporter_last_event_timestamp_seconds"
            f"{{{selector}}}[{config.no_events_for.text}]))\n"
            f"> {config.no_events_for.seconds}\n",
            every,
            "warning",
            "The Zoom QSS exporter receives no events.",
            "The exporter ({{ $labels.job }}) has accepted no Zoom event for "
            f"{config.no_events_for.text}: the event subscription may be disabled (Zoom does "
            "so after failed URL validations) or the secret token wrong.",
        ),
        _alert(
            config,
            "ZoomQSSSignatureFailures",
            f"sum by (job, instance) (increase(zoom_qss_exporter_events_total"
            f'{{{selector}, outcome=~"invalid_signature|rate_limited"}}[{window}]))\n'
            f"> {config.signature_failures}\n",
            every,
            "warning",
            "Webhook requests with an invalid signature.",
            "The exporter {{ $labels.instance }} refused "
            '{{ $value | printf "%.0f" }} requests with an invalid signature (or rate-limited '
            f"after repeated failures) in the last {window}: a wrong or rotated secret token, "
            "or someone probing the webhook.",
        ),
        _alert(
            config,
            "ZoomQSSWebhookErrors",
            # every event and outcome series exists from the start at 0 (health.py), so the
            # first failure is an increase too
            f"sum by (job, instance, event) (increase(zoom_qss_exporter_events_total"
            f'{{{selector}, outcome=~"error|rejected_overload"}}[10m]))\n> 0\n',
            every,
            "warning",
            "The Zoom QSS webhook answers deliveries with a 5xx.",
            "The exporter {{ $labels.instance }} answered "
            '{{ $value | printf "%.0f" }} {{ $labels.event }} deliveries with a 5xx in the '
            "last 10m (500: a bug, see the log; 503: the remote-write queue is full). Zoom "
            "retries them for a while, then drops them: their data is lost.",
        ),
        _alert(
            config,
            "ZoomQSSSeriesCapReached",
            f"increase(zoom_qss_exporter_series_dropped_total{{{selector}}}[10m]) > 0",
            every,
            "warning",
            "The Zoom QSS exporter is dropping new series at its cap.",
            "The exporter {{ $labels.instance }} dropped "
            '{{ $value | printf "%.0f" }} new series in the last 10m because it holds '
            "--store.max-series series: new participants and calls are not visible.",
        ),
        _alert(
            config,
            "ZoomQSSSeriesCapNear",
            f"sum by (job, instance) (zoom_qss_exporter_series{{{selector}}})\n"
            f"/ on (job, instance)\nzoom_qss_exporter_series_limit{{{selector}}}\n"
            f"> {number(config.series_cap_ratio)}\n",
            every,
            "info",
            "The Zoom QSS exporter is close to its series cap.",
            "The exporter {{ $labels.instance }} holds {{ $value | humanizePercentage }} of "
            "--store.max-series.",
        ),
    ]
