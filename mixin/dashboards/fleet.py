"""Fleet overview: how every meeting, webinar, session and phone call is doing, at a glance."""

from __future__ import annotations

from .. import live
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
from .common import FLEET_UID, MEETING_UID, above, mos_steps, percentiles, with_meeting_names


def fleet_overview(config: Config) -> Json:
    p = 'product=~"$product"'
    ps = 'product=~"$product", site=~"$site"'
    pq = 'product=~"$product", qos_type=~"$qos_type"'
    # the search set to the uuid: the meeting is among the picker's options however it ranks
    to_meeting = dashboard_link(
        MEETING_UID,
        product="${__data.fields.product}",
        meeting="${__data.fields.meeting_id:percentencode}",
        search="${__data.fields.meeting_id:percentencode}",
    )
    to_meeting += "&${site:queryparam}"
    meeting_link = [{"title": "Open the meeting", "url": to_meeting}]
    poor_ratio = steps(GREEN, (config.fleet_ratio, RED))
    participants = f"sum by (product) ({live.SITE_LIVE}{{{ps}}})"
    poor_share = f"sum by (product) ({live.SITE_POOR}{{{ps}}})\n/\n{participants}"
    at_site = f"and on (product, meeting_id) zoom_participant_info{{{ps}}}"
    items: list[Panel | Row] = [
        Row("Now"),
        stat(
            "Participants live",
            "Participants with a media stream that sent per-minute QoS within the exporter's "
            f"--store.ttl, by product, at the selected sites (recording rule {live.SITE_LIVE}).",
            [target(participants, "{{product}}")],
            "short",
        ),
        stat(
            "Meetings live",
            "Meeting, webinar and session instances with at least one participant live, of "
            "every site: an instance has no site, its participants do (recording rule "
            f"{live.MEETINGS}).",
            [target(f"{live.MEETINGS}{{{p}}}", "{{product}}")],
            "short",
        ),
        stat(
            "Phone calls live",
            "Zoom Phone calls that sent a QoS sample within --store.ttl (recording rule "
            f"{live.CALLS}).",
            [target(live.CALLS, "calls")],
            "short",
        ),
        stat(
            "Participants with poor quality",
            "Share of live participants at the selected sites with a media stream above a poor "
            "threshold or an audio MOS below the MOS threshold (recording rules "
            f"{live.SITE_POOR} over {live.SITE_LIVE}). Red from the share that pages as a "
            "fleet-level incident.",
            [target(poor_share, "{{product}}")],
            "percentunit",
            thresholds=poor_ratio,
            minimum=0,
            maximum=1,
        ),
        Row("Quality"),
        timeseries(
            "Participants and calls live",
            "Live participants by product at the selected sites, and live Zoom Phone calls "
            "(recording rules: a few series at every step, whatever the number of people).",
            [
                target(participants, "{{product}} participants"),
                target(live.CALLS, "phone calls"),
            ],
            "short",
            minimum=0,
        ),
        timeseries(
            "Share of streams with poor quality, by QoS type",
            "For each product and media QoS type, the share of live streams above a poor "
            "threshold (latency, jitter, loss) or with a poor audio MOS, of every site "
            f"(recording rule {live.STREAMS_RATIO}).",
            [target(f"{live.STREAMS_RATIO}{{{pq}}}", "{{product}} {{qos_type}}")],
            "percentunit",
            thresholds=poor_ratio,
            draw_thresholds=True,
            minimum=0,
            maximum=1,
        ),
        Row("Distributions (fleet histograms, every sample, every site)"),
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
            sort_by="Value #A",
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
                f"Participants known to the exporter (live or left within --store.summary-ttl) "
                f"at the selected sites, by {words.lower()}; empty means Zoom did not say.",
                [
                    target(
                        f"count by ({label}) ({one_info(f'zoom_participant_info{{{ps}}}')})",
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
                f"Share of the live participants at the selected sites with poor quality now, "
                f"per {words} (recording rules {live.LIVE_POOR} over {live.LIVE}).",
                [
                    target(
                        f"sum by ({label}) ({live.LIVE_POOR}{{{ps}}})\n/\n"
                        f"sum by ({label}) ({live.LIVE}{{{ps}}})",
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
    worst = f"topk(10,\n  {live.MEETING_POOR}{{{p}}}\n  {at_site}\n)"
    lowest = (
        f"bottomk(10,\n  min by (product, meeting_id) (zoom_qos_mos_estimate{{{p}}})\n"
        f"  {at_site}\n)"
    )
    meeting_columns = ["product", "meeting_number", "session_name", "meeting_id", "Value"]
    items += [
        Row("Worst meetings right now"),
        table(
            "Meetings with the most participants in poor quality",
            "Top 10 instances with a participant at the selected sites, by their participants "
            f"with poor quality now (recording rule {live.MEETING_POOR}), worst first, with "
            "the number people join with or the session's name where known. Click a meeting "
            "to open it in the drill-down.",
            [target(with_meeting_names(worst, p), table=True)],
            "short",
            columns=meeting_columns,
            renames={"Value": "poor participants"},
            sort_by="Value",
            links=meeting_link,
            width=12,
        ),
        table(
            "Meetings with the worst audio",
            "Bottom 10 instances with a participant at the selected sites, by the lowest "
            "estimated audio MOS of any participant now (zoom_qos_mos_estimate), worst first. "
            "Click a meeting to open it in the drill-down.",
            [target(with_meeting_names(lowest, p), table=True)],
            "none",
            columns=meeting_columns,
            renames={"Value": "lowest MOS"},
            sort_by="Value",
            ascending=True,
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
            "site",
            "Site",
            f'label_values({live.SITE_LIVE}{{product=~"$product"}}, site)',
            multi=True,
            description="offices of the exporter's sites file, external, unknown (participants "
            "without a site: the analytics off, or no info yet, are in All); the histograms "
            "and QoS-type shares are of every site",
            all_value=".*",
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
