"""Meeting drill-down: product, then meeting, then participants, minute by minute."""

from __future__ import annotations

from typing import Any

from zoom_qss_exporter.families import INFO_LABELS

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
    steps,
    table,
    target,
    timeseries,
    variable,
)
from ..rules import one_info, with_user_name
from .common import MEETING_UID, PRESSURE, QUALITY, above, mos_steps

_WHO = 'product="$product", meeting_id="$meeting", participant_id=~"$participant"'
# Grafana (10.4+, legends rendered by its Prometheus backend) renders an absent label as "":
# a participant without info (no user_name) still reads "<participant_id> <qos_type>".
_NAMED = "{{user_name}} {{participant_id}} {{qos_type}}"


# The meeting picker: one option per instance, reading "<number or name> · <uuid>" (Grafana's
# dropdown filters on what is typed, so a meeting is found by the number people type to join,
# a session by its name, or either by its uuid), whose value is the uuid. The instances whose
# participants named a number or name give those; the others (no event of theirs carried
# one) give their uuid alone, once.
MEETING_PICKER = (
    "query_result(group by (meeting_id, picker) (label_join(label_join(\n"
    "  group by (meeting_id, meeting_number, session_name) (\n"
    '    zoom_participant_info{product="$product", meeting_number!=""}\n'
    '    or zoom_participant_info{product="$product", session_name!=""}\n'
    "  )\n"
    '  or on (meeting_id) group by (meeting_id) (zoom_participant_info{product="$product"}),\n'
    '  "name", "", "meeting_number", "session_name"),\n'
    '  "picker", " · ", "name", "meeting_id"\n'
    ")))"
)
# Grafana renders each result as `{meeting_id="...",picker="..."} 1 <ms>`: the option's text
# is the picker without a leading " · " (no name known), its value the uuid at the end (Zoom's
# uuids hold no space).
MEETING_PICKER_REGEX = '/picker="(?: · )?(?<text>[^"]*?(?<value>[^" ]+))"/'


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

    stay = "zoom_qos_participation_{}{{" + _WHO + ', stat="avg"}}'
    items: list[Panel | Row] = [
        Row("Participants"),
        table(
            "Participants",
            "Who is (or was, within --store.summary-ttl) in this meeting: name, device, "
            "network and Zoom data center, from zoom_participant_info; one row per "
            "participant (when one briefly has two info series, with several remote-write "
            "replicas or after a device or network change, one of them is shown).",
            [target(one_info(f"zoom_participant_info{{{_WHO}}}"), table=True)],
            "none",
            columns=info_columns,
            height=7,
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
            "Averages over each departed participant's whole stay, per QoS type, from the "
            "*_qos_summary events.",
            [
                target(f"8 * {stay.format('bitrate_bytes_per_second')}", table=True),
                target(stay.format("latency_seconds"), table=True),
                target(stay.format("jitter_seconds"), table=True),
                target(stay.format("packet_loss_ratio"), table=True),
            ],
            "none",
            columns=["participant_id", "qos_type", "Value #A", "Value #B", "Value #C", "Value #D"],
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
            "meeting",
            "Meeting",
            MEETING_PICKER,
            description="type the meeting number, the session name or the uuid to find it: "
            "meeting or webinar instance uuid, or Video SDK session id",
            regex=MEETING_PICKER_REGEX,
        ),
        variable(
            "participant",
            "Participant",
            'label_values(zoom_participant_info{product="$product", meeting_id="$meeting"}, '
            "participant_id)",
            multi=True,
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
