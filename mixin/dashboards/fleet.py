"""Fleet overview: how every meeting, webinar, session and phone call is doing, at a glance."""

from __future__ import annotations

from ..config import Config
from ..grafana import (
    GREEN,
    RED,
    Json,
    Panel,
    Row,
    bargauge,
    dashboard,
    dashboard_link,
    heatmap,
    piechart,
    stat,
    steps,
    table,
    target,
    timeseries,
    variable,
)
from ..rules import one_info
from .common import FLEET_UID, MEETING_UID, above, mos_steps, percentiles


def fleet_overview(config: Config) -> Json:
    p = 'product=~"$product"'
    pq = 'product=~"$product", qos_type=~"$qos_type"'
    live = f"zoom_qos_sample_timestamp_seconds{{{p}}}"
    calls = "count(group by (call_id) (zoom_phone_mos or zoom_phone_jitter_seconds)) or vector(0)"
    to_meeting = dashboard_link(
        MEETING_UID,
        product="${__data.fields.product}",
        meeting="${__data.fields.meeting_id:percentencode}",
    )
    meeting_link = [{"title": "Open the meeting", "url": to_meeting}]
    poor_ratio = steps(GREEN, (config.fleet_ratio, RED))
    items: list[Panel | Row] = [
        Row("Now"),
        stat(
            "Participants live",
            "Participants who sent per-minute QoS within the exporter's --store.ttl, by product.",
            [
                target(
                    f"count by (product) (group by (product, meeting_id, participant_id) ({live}))",
                    "{{product}}",
                )
            ],
            "short",
        ),
        stat(
            "Meetings live",
            "Meeting, webinar and session instances with at least one participant live.",
            [
                target(
                    f"count by (product) (group by (product, meeting_id) ({live}))", "{{product}}"
                )
            ],
            "short",
        ),
        stat(
            "Phone calls live",
            "Zoom Phone calls that sent a QoS sample within --store.ttl.",
            [target(calls, "calls")],
            "short",
        ),
        stat(
            "Participants with poor quality",
            "Share of live participants with a media stream above a warning threshold or an "
            "audio MOS below the MOS threshold (recording rule product:zoom_qos_poor_participants"
            ":ratio). Red from the share that pages as a fleet-level incident.",
            [target(f"product:zoom_qos_poor_participants:ratio{{{p}}}", "{{product}}")],
            "percentunit",
            thresholds=poor_ratio,
            minimum=0,
            maximum=1,
        ),
        Row("Quality"),
        timeseries(
            "Participants and calls live",
            "Live participants by product, and live Zoom Phone calls.",
            [
                target(
                    f"count by (product) (group by (product, meeting_id, participant_id) ({live}))",
                    "{{product}} participants",
                ),
                target(calls, "phone calls"),
            ],
            "short",
            minimum=0,
        ),
        timeseries(
            "Share of participants with poor quality, by QoS type",
            "For each product and media QoS type, the share of participants whose stream is "
            "above a warning threshold (latency, jitter, loss) or has a poor audio MOS "
            "(recording rule product_qos_type:zoom_qos_poor:ratio).",
            [target(f"product_qos_type:zoom_qos_poor:ratio{{{pq}}}", "{{product}} {{qos_type}}")],
            "percentunit",
            thresholds=poor_ratio,
            draw_thresholds=True,
            minimum=0,
            maximum=1,
        ),
        Row("Distributions (fleet histograms, every sample)"),
    ]
    figures = (
        ("Latency", "latency_seconds", "s", config.latency),
        ("Jitter", "jitter_seconds", "s", config.jitter),
        ("Packet loss", "packet_loss_ratio", "percentunit", config.packet_loss),
    )
    for words, name, unit, figure in figures:
        rate = f"product_qos_type_le:zoom_qos_fleet_{name}_bucket:rate5m"
        items += [
            heatmap(
                f"{words} distribution",
                f"{words} of every per-minute sample of the selected products and QoS types, "
                "per histogram bucket (samples per second over 5 minutes).",
                f"sum by (le) ({rate}{{{pq}}})",
                unit,
            ),
            timeseries(
                f"{words} percentiles",
                f"Median, 90th and 99th percentile of {words.lower()} over all samples, "
                "estimated from the fleet histogram; dashed lines are the alert thresholds.",
                percentiles(rate, pq, (0.5, 0.9, 0.99)),
                unit,
                thresholds=above(figure),
                draw_thresholds=True,
                minimum=0,
            ),
        ]
    shares = "product_qos_type:zoom_qos_fleet_{}_above_threshold:ratio_rate5m"
    items += [
        table(
            "Samples above the warning thresholds",
            "Share of the last 5 minutes' samples above each warning threshold, by product "
            "and QoS type, at histogram resolution (recording rules "
            "product_qos_type:zoom_qos_fleet_*_above_threshold:ratio_rate5m).",
            [target(f"{shares.format(name)}{{{pq}}}", table=True) for _, name, _, _ in figures],
            "percentunit",
            columns=["product", "qos_type", "Value #A", "Value #B", "Value #C"],
            renames={"Value #A": "latency", "Value #B": "jitter", "Value #C": "packet loss"},
            width=12,
        ),
        timeseries(
            "Network notifications",
            "Zoom clients' network warnings per second, by product and kind.",
            [
                target(
                    f"sum by (product, notification) "
                    f"(rate(zoom_network_notifications_total{{{p}}}[$__rate_interval]))",
                    "{{product}}: {{notification}}",
                )
            ],
            "cps",
            minimum=0,
        ),
        heatmap(
            "Phone MOS distribution",
            "MOS of every Zoom Phone sample, per histogram bucket (samples per second).",
            "sum by (le) (direction_le:zoom_phone_fleet_mos_bucket:rate5m)",
            "none",
        ),
        timeseries(
            "Phone MOS percentiles",
            "10th percentile and median of the phone MOS: a tenth of the samples are worse "
            "than p10. The dashed line is the MOS alert threshold.",
            percentiles("direction_le:zoom_phone_fleet_mos_bucket:rate5m", "", (0.1, 0.5)),
            "none",
            thresholds=mos_steps(config),
            draw_thresholds=True,
            minimum=1,
            maximum=5,
        ),
        Row("Who and where (zoom_participant_info)"),
    ]
    for label, words in (
        ("device", "Device"),
        ("network_type", "Network type"),
        ("data_center", "Zoom data center"),
        ("client_version", "Client version"),
    ):
        items.append(
            piechart(
                f"Participants by {words.lower()}",
                f"Participants known to the exporter (live or left within --store.summary-ttl), "
                f"by {words.lower()}; empty means Zoom did not say.",
                [
                    target(
                        f"count by ({label}) ({one_info(f'zoom_participant_info{{{p}}}')})",
                        f"{{{{{label}}}}}",
                        instant=True,
                    )
                ],
                "short",
            )
        )
    for label, words in (("data_center", "data center"), ("network_type", "network type")):
        items.append(
            bargauge(
                f"Poor participants by {words}",
                f"Share of live participants with poor quality per {words} "
                f"(recording rule {label}:zoom_qos_poor_participants:ratio); the alert "
                f"needs at least {config.fleet_min_participants:g} of them too.",
                [
                    target(
                        f"{label}:zoom_qos_poor_participants:ratio",
                        f"{{{{{label}}}}}",
                        instant=True,
                    )
                ],
                "percentunit",
                thresholds=poor_ratio,
                minimum=0,
                maximum=1,
                width=12,
            )
        )
    items += [
        Row("Worst meetings right now"),
        table(
            "Meetings with the most participants in poor quality",
            "Top 10 instances by number of participants with poor quality now. Click a "
            "meeting to open it in the drill-down.",
            [
                target(
                    "topk(10, sum by (product, meeting_id) "
                    f"(participant:zoom_qos_poor:max{{{p}}}) > 0)",
                    table=True,
                )
            ],
            "short",
            columns=["product", "meeting_id", "Value"],
            renames={"Value": "poor participants"},
            links=meeting_link,
            width=12,
        ),
        table(
            "Meetings with the worst audio",
            "Bottom 10 instances by the lowest estimated audio MOS of any participant now "
            "(zoom_qos_mos_estimate). Click a meeting to open it in the drill-down.",
            [
                target(
                    f"bottomk(10, min by (product, meeting_id) (zoom_qos_mos_estimate{{{p}}}))",
                    table=True,
                )
            ],
            "none",
            columns=["product", "meeting_id", "Value"],
            renames={"Value": "lowest MOS"},
            links=meeting_link,
            thresholds=mos_steps(config),
            custom={"cellOptions": {"type": "color-text"}},
            width=12,
        ),
    ]
    variables = [
        variable(
            "product",
            "Product",
            "label_values(zoom_qos_samples_total, product)",
            multi=True,
            description="meeting, webinar, session (and phone for the sample counts)",
        ),
        variable(
            "qos_type",
            "QoS type",
            "label_values(zoom_qos_fleet_latency_seconds_count, qos_type)",
            multi=True,
        ),
    ]
    return dashboard(
        FLEET_UID,
        "Fleet overview",
        "How the whole company's Zoom meetings, webinars, sessions and phone calls are doing.",
        items,
        variables,
    )
