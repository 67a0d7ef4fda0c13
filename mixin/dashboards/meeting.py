"""Meeting drill-down: product, then meeting, then participants, minute by minute."""

from __future__ import annotations

from typing import Any

from zoom_qss_exporter.families import INFO_LABELS

from .. import live
from ..config import Config
from ..grafana import (
    GREEN,
    ORANGE,
    RED,
    YELLOW,
    Json,
    Panel,
    Row,
    column_units,
    dashboard,
    dashboard_link,
    steps,
    table,
    target,
    textbox,
    timeseries,
    variable,
)
from ..rules import PARTICIPANT, number, one_info, with_user_name
from .common import (
    MEETING_UID,
    PRESSURE,
    QUALITY,
    SEARCH,
    above,
    matches,
    mos_steps,
    searching,
    with_meeting_names,
)

_WHO = 'product="$product", meeting_id="$meeting", participant_id=~"$participant"'
# Grafana (10.4+, legends rendered by its Prometheus backend) renders an absent label as "":
# a participant without info (no user_name) still reads "<participant_id> <qos_type>".
_NAMED = "{{user_name}} {{participant_id}} {{qos_type}}"


_MEETING = 'product="$product", meeting_id="$meeting"'
WORST_PARTICIPANTS = 10  # the participant picker's default, "All": the worst now
WORST_MEETINGS = 50  # the meeting picker's options, besides those found by the search
# Grafana renders each option's series as `{meeting_id="...",picker="..."} 1 <ms>`: the option's
# text is the picker without a leading " · " (no name known), its value the id at the end (Zoom's
# uuids and participant ids hold no space).
PICKER_REGEX = '/picker="(?: · )?(?<text>[^"]*?(?<value>[^" ]+))"/'
MEETING_PICKER_REGEX = PICKER_REGEX
# Found by the search (its text anywhere in these labels, any case), listed first: a large
# value, which sort_desc puts before every count and score.
FOUND_FIRST = "1e9"


def worst_figure(config: Config, selector: str) -> str:
    """Per participant, the worst of their media streams' figures now against its poor
    threshold (quality.yaml): the largest latency, jitter or average loss divided by its
    threshold, or the threshold MOS divided by the lowest audio MOS. From 1 on, poor."""
    media = f'{selector}, qos_type=~"{config.media_regex}"'
    figures = (
        (
            "latency",
            f"max by ({PARTICIPANT}) (zoom_qos_latency_seconds{{{media}}}) / "
            f"{number(config.latency.warning)}",
        ),
        (
            "jitter",
            f"max by ({PARTICIPANT}) (zoom_qos_jitter_seconds{{{media}}}) / "
            f"{number(config.jitter.warning)}",
        ),
        (
            "loss",
            f"max by ({PARTICIPANT}) (zoom_qos_packet_loss_avg_ratio{{{media}}}) / "
            f"{number(config.packet_loss.warning)}",
        ),
        (
            "mos",
            f"{number(config.mos_warning)} / min by ({PARTICIPANT}) "
            f"(zoom_qos_mos_estimate{{{media}}})",
        ),
    )
    each = "\n  or ".join(
        f'label_replace({expr}, "figure", "{name}", "", "")' for name, expr in figures
    )
    return f"max by ({PARTICIPANT}) (\n  {each}\n)"


def meeting_picker() -> str:
    """The worst instances now, at the selected sites: by participants with poor quality now
    (recording rule), then by size; and first those the search finds (a meeting number,
    session name, participant name or id, or uuid). Each reads "<number or name> · <uuid>",
    valued by the uuid."""
    at_site = 'product="$product", site=~"$site"'
    size = f"count by (product, meeting_id) ({one_info(f'zoom_participant_info{{{at_site}}}')})"
    worst = (
        f'topk({WORST_MEETINGS},\n  ({live.MEETING_POOR}{{product="$product"}} '
        f"and on (product, meeting_id) {size}\n  or 0 * {size})\n"
        f"  + on (product, meeting_id) {size} / 1e6\n)"
    )
    found = "\n  or ".join(
        f"zoom_participant_info{{{at_site}, {matches(label)}}}"
        for label in ("meeting_number", "session_name", "user_name", "participant_id", "meeting_id")
    )
    ranked = f"{FOUND_FIRST} * group by (product, meeting_id) (\n{searching(found)}\n)\nor\n{worst}"
    named = with_meeting_names(ranked, 'product="$product"')
    return (
        "query_result(sort_desc(max by (meeting_id, picker) (label_join(label_join(\n"
        f"{named},\n"
        '  "name", "", "meeting_number", "session_name"),\n'
        '  "picker", " · ", "name", "meeting_id"\n'
        "))))"
    )


def participant_picker(config: Config) -> str:
    """The meeting's worst participants now at the selected sites (a participant without info
    is at every site), and first those the search finds (their name or id). Each reads
    "<name> · <participant id>", valued by the id."""
    elsewhere = f'zoom_participant_info{{{_MEETING}, site!~"$site"}}'
    worst = (
        f"topk({WORST_PARTICIPANTS},\n  {worst_figure(config, _MEETING)}\n"
        f"  unless on ({PARTICIPANT}) {elsewhere}\n)"
    )
    found = "\n  or ".join(
        f"zoom_participant_info{{{_MEETING}, {matches(label)}}}"
        for label in ("user_name", "participant_id")
    )
    ranked = f"{FOUND_FIRST} * group by ({PARTICIPANT}) (\n{searching(found)}\n)\nor\n{worst}"
    named = with_user_name(ranked, f"zoom_participant_info{{{_MEETING}}}")
    return (
        "query_result(sort_desc(max by (participant_id, picker) (label_join(\n"
        f"{named},\n"
        '  "picker", " · ", "user_name", "participant_id"\n'
        "))))"
    )


def _named(expr: str) -> str:
    """Adds the participant's user_name (from zoom_participant_info) to each series, keeping
    the series of a participant without info (see ``with_user_name``)."""
    return with_user_name(expr, f"zoom_participant_info{{{_WHO}}}")


def meeting_drilldown(config: Config) -> Json:
    media = f'{_WHO}, qos_type=~"{config.media_regex}"'
    # the info series' labels, in order; the meeting's number and name are in the picker
    info_columns = [
        "participant_id",
        *(n for n in INFO_LABELS[3:] if n not in ("meeting_number", "session_name")),
    ]

    def series(title: str, text: str, metric: str, unit: str, **kw: Any) -> Panel:
        return timeseries(title, text, [target(_named(metric), _NAMED)], unit, **kw)

    stay = "zoom_qos_participation_{}{{" + _MEETING + ', stat="avg"}}'
    everyone = f'{_MEETING}, qos_type=~"{config.media_regex}"'
    figures = {
        "Value #C": ("latency", f"max by ({PARTICIPANT}) (zoom_qos_latency_seconds{{{everyone}}})"),
        "Value #D": ("jitter", f"max by ({PARTICIPANT}) (zoom_qos_jitter_seconds{{{everyone}}})"),
        "Value #E": (
            "loss",
            f"max by ({PARTICIPANT}) (zoom_qos_packet_loss_avg_ratio{{{everyone}}})",
        ),
        "Value #F": ("MOS", f"min by ({PARTICIPANT}) (zoom_qos_mos_estimate{{{everyone}}})"),
    }
    # a row's link shows that participant: found by the search (so among the picker's
    # options however they rank), in this meeting
    show = dashboard_link(
        MEETING_UID,
        product="${__data.fields.product}",
        meeting="${__data.fields.meeting_id:percentencode}",
        search="${__data.fields.participant_id:percentencode}",
        participant="${__data.fields.participant_id:percentencode}",
    )
    items: list[Panel | Row] = [
        Row("Participants"),
        table(
            "Participants, worst first",
            "Everyone who is (or was, within --store.summary-ttl) in this meeting, worst first: "
            "the worst of their media streams' figures now against its poor threshold (1 and "
            "above: poor; empty for those who left), the largest latency, jitter and loss and "
            "the lowest audio MOS now, then name, site, device, network and Zoom data center "
            "from zoom_participant_info (one info series per participant). The participant "
            f"picker starts from the {WORST_PARTICIPANTS} worst; click a row to show that "
            "participant.",
            [
                target(one_info(f"zoom_participant_info{{{_MEETING}}}"), table=True),
                target(worst_figure(config, _MEETING), table=True),
                *(target(expr, table=True) for _, expr in figures.values()),
            ],
            "none",
            columns=[
                "user_name",
                "participant_id",
                "Value #B",
                *figures,
                *(name for name in info_columns if name not in ("participant_id", "user_name")),
            ],
            renames={"Value #B": "worst / threshold"}
            | {column: words for column, (words, _) in figures.items()},
            sort_by="Value #B",
            links=[{"title": "Show this participant", "url": show}],
            overrides=[
                *column_units({"Value #C": "s", "Value #D": "s", "Value #E": "percentunit"}),
                {
                    "matcher": {"id": "byName", "options": "Value #B"},
                    "properties": [
                        {"id": "decimals", "value": 2},
                        {"id": "thresholds", "value": steps(GREEN, (1, RED))},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
            ],
            height=9,
        ),
        Row("Network"),
        series(
            "Bitrate",
            "Per-minute bitrate of each media stream, in bits per second (the exporter's "
            "bytes per second times 8).",
            f"8 * zoom_qos_bitrate_bytes_per_second{{{media}}}",
            "bps",
            minimum=0,
        ),
        series(
            "Latency",
            "Per-minute latency of each media stream; dashed lines are the info and warning "
            "thresholds (ITU-T G.114).",
            f"zoom_qos_latency_seconds{{{media}}}",
            "s",
            thresholds=above(config.latency),
            draw_thresholds=True,
            minimum=0,
        ),
        series(
            "Jitter",
            "Per-minute jitter of each media stream; the dashed line is the warning threshold.",
            f"zoom_qos_jitter_seconds{{{media}}}",
            "s",
            thresholds=above(config.jitter),
            draw_thresholds=True,
            minimum=0,
        ),
        series(
            "Packet loss (average)",
            "Per-minute average packet loss of each media stream; dashed lines are the info "
            "and warning thresholds.",
            f"zoom_qos_packet_loss_avg_ratio{{{media}}}",
            "percentunit",
            thresholds=above(config.packet_loss),
            draw_thresholds=True,
            minimum=0,
        ),
        series(
            "Estimated audio MOS",
            "MOS estimated from latency, jitter and loss of each audio stream (simplified "
            "E-model, zoom_qos_mos_estimate); below the dashed line the MOS alert fires.",
            f"zoom_qos_mos_estimate{{{_WHO}}}",
            "none",
            thresholds=mos_steps(config),
            draw_thresholds=True,
            minimum=1,
            maximum=5,
        ),
        series(
            "Zoom's quality rating",
            "Zoom's own per-minute quality of each stream: good, fair, poor or bad.",
            f"zoom_qos_quality_level{{{_WHO}}}",
            "none",
            mappings=QUALITY,
            thresholds=steps(RED, (1, ORANGE), (2, YELLOW), (3, GREEN)),
            minimum=0,
            maximum=3,
        ),
        Row("Video"),
        series(
            "Frame rate",
            "Per-minute video and screen-share frame rate.",
            f"zoom_qos_frame_rate_fps{{{_WHO}}}",
            "suffix: fps",
            minimum=0,
        ),
        series(
            "Resolution (height)",
            "Height of the video in pixels (720 for 1280x720).",
            f"zoom_qos_resolution_height_pixels{{{_WHO}}}",
            "pixel",
            minimum=0,
        ),
        Row("Device and Wi-Fi"),
        timeseries(
            "CPU",
            "CPU used by the Zoom client (average) and by the whole system (maximum) over "
            "each minute.",
            [
                target(
                    _named(f'zoom_qos_zoom_cpu_usage_ratio{{{_WHO}, stat="avg"}}'),
                    "Zoom · " + _NAMED,
                ),
                target(
                    _named(f"zoom_qos_system_cpu_usage_max_ratio{{{_WHO}}}"), "system · " + _NAMED
                ),
            ],
            "percentunit",
            minimum=0,
            maximum=1,
            width=8,
        ),
        series(
            "CPU pressure",
            "The system's highest CPU pressure level in each minute.",
            f'zoom_qos_system_cpu_pressure_level{{{_WHO}, stat="max"}}',
            "none",
            mappings=PRESSURE,
            thresholds=steps(GREEN, (1, YELLOW), (2, ORANGE), (3, RED)),
            minimum=0,
            maximum=3,
            width=8,
        ),
        timeseries(
            "Wi-Fi signal (RSSI)",
            "Average Wi-Fi signal strength in each minute, for participants on Wi-Fi; below "
            "the dashed line voice quality suffers.",
            [
                target(
                    _named(
                        "max by (product, meeting_id, participant_id) "
                        f'(zoom_qos_wifi_rssi_dbm{{{_WHO}, stat="avg"}})'
                    ),
                    "{{user_name}} {{participant_id}}",
                )
            ],
            "dBm",
            thresholds=steps(RED, (config.wifi_rssi_dbm, GREEN)),
            draw_thresholds=True,
            width=8,
        ),
        Row("Whole stay (participants who left, from the summaries)"),
        table(
            "Whole stay averages",
            "Averages over the whole stay of each participant of this meeting who left, per "
            "QoS type, from the *_qos_summary events; the longest latency first.",
            [
                target(f"8 * {stay.format('bitrate_bytes_per_second')}", table=True),
                target(stay.format("latency_seconds"), table=True),
                target(stay.format("jitter_seconds"), table=True),
                target(stay.format("packet_loss_ratio"), table=True),
            ],
            "none",
            columns=["participant_id", "qos_type", "Value #A", "Value #B", "Value #C", "Value #D"],
            sort_by="Value #B",
            renames={
                "Value #A": "bitrate",
                "Value #B": "latency",
                "Value #C": "jitter",
                "Value #D": "packet loss",
            },
            overrides=column_units(
                {
                    "Value #A": "bps",
                    "Value #B": "s",
                    "Value #C": "s",
                    "Value #D": "percentunit",
                }
            ),
            height=7,
        ),
    ]
    variables = [
        variable("product", "Product", "label_values(zoom_participant_info, product)"),
        variable(
            "site",
            "Site",
            f'label_values({live.SITE_LIVE}{{product="$product"}}, site)',
            multi=True,
            description="the meetings and worst participants offered: those at these sites "
            "(All: participants without a site too)",
            all_value=".*",
        ),
        textbox(
            SEARCH,
            "Search",
            description="find a meeting, webinar or session by its number, the session's name, "
            "a participant's name (where --privacy.user-name keeps names) or id, or its uuid; "
            "and a participant of the meeting by name or id. Plain text, any case.",
        ),
        variable(
            "meeting",
            "Meeting",
            meeting_picker(),
            description=f"the {WORST_MEETINGS} worst now (most participants with poor quality, "
            "then the largest), after those the search finds; each reads its number, or the "
            "session's name, and its uuid",
            regex=MEETING_PICKER_REGEX,
            ordered=True,
        ),
        variable(
            "participant",
            "Participants",
            participant_picker(config),
            multi=True,
            all_value=None,
            ordered=True,
            description=f"All: the {WORST_PARTICIPANTS} worst now (the worst of their figures "
            "against its poor threshold) and those the search finds, never the whole meeting",
            regex=PICKER_REGEX,
        ),
    ]
    return dashboard(
        MEETING_UID,
        "Meeting drill-down",
        "One meeting, webinar or session: each participant's network, audio, video and "
        "device, minute by minute, with the alert thresholds drawn.",
        items,
        variables,
    )
