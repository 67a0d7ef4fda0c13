"""Recording rules of what is live now, counted without a series per participant: the
dashboards' live counts, poor shares and worst meetings (rules/zoom-qss-live.yaml).

Each rule reads one instant of the raw per-participant (or per-call) series and writes a
handful of series: by product and site; by product, site, data center and network type (the
fleet's "where"); by product and QoS type; one per meeting that has a poor participant now;
phone calls and call parties by network. A dashboard then reads a few recorded series at every
step of its time range instead of every participant's series, so a 3-hour panel costs the same
at 100,000 participants as at 100.

"Poor" is what it is for the alerts: a media stream above a poor threshold of quality.yaml
(latency, jitter, average packet loss) or an audio stream with an estimated MOS below it. A
participant is live while a media stream of theirs has a sample (``--store.ttl``), and poor
while one of those streams is poor.
"""

from __future__ import annotations

from textwrap import indent

from .config import Config
from .rules import PARTICIPANT, STREAM, Group, Rule, number, one_info

WHERE = ("product", "site", "data_center", "network_type")
PARTY = "call_id, user_id, role"
PLACE = "product_site_data_center_network_type"

# the recorded names, for the dashboards
LIVE = f"{PLACE}:zoom_qos_live_participants:count"
LIVE_POOR = f"{PLACE}:zoom_qos_live_poor_participants:count"
SITE_LIVE = "product_site:zoom_qos_live_participants:count"
SITE_POOR = "product_site:zoom_qos_live_poor_participants:count"
MEETINGS = "product:zoom_qos_live_meetings:count"
MEETING_POOR = "product_meeting_id:zoom_qos_live_poor_participants:count"
STREAMS = "product_qos_type:zoom_qos_live_streams:count"
STREAMS_POOR = "product_qos_type:zoom_qos_live_poor_streams:count"
STREAMS_RATIO = "product_qos_type:zoom_qos_live_poor_streams:ratio"
CALLS = "product:zoom_phone_live_calls:count"
CALLS_POOR = "product:zoom_phone_live_poor_calls:count"
PARTIES = "network:zoom_phone_live_call_parties:count"
PARTIES_POOR = "network:zoom_phone_live_poor_call_parties:count"


def poor_conditions(config: Config, selector: str = "") -> list[str]:
    """Each figure of a media stream past its poor threshold (``selector``: more matchers)."""
    media = f'qos_type=~"{config.media_regex}"' + (f", {selector}" if selector else "")
    return [
        f"zoom_qos_latency_seconds{{{media}}} > {number(config.latency.warning)}",
        f"zoom_qos_jitter_seconds{{{media}}} > {number(config.jitter.warning)}",
        f"zoom_qos_packet_loss_avg_ratio{{{media}}} > {number(config.packet_loss.warning)}",
        f"zoom_qos_mos_estimate{{{media}}} < {number(config.mos_warning)}",
    ]


def poor_streams(config: Config, by: str) -> str:
    """One series (value 1) per ``by`` group with a poor media stream now."""
    poor = "\n  or ".join(poor_conditions(config))
    return f"group by ({by}) (\n  {poor}\n)"


def live_streams(config: Config, by: str) -> str:
    """One series (value 1) per ``by`` group with a media stream live now."""
    return (
        f'group by ({by}) (zoom_qos_sample_timestamp_seconds{{qos_type=~"{config.media_regex}"}})'
    )


def placed(expr: str) -> str:
    """Per-participant ``expr`` with the participant's site, data center and network type from
    one info series; a participant without info keeps its series, without them (so that it is
    still counted, under no site)."""
    labels = ", ".join(WHERE[1:])
    return (
        f"(\n  ({expr})\n  * on ({PARTICIPANT}) group_left ({labels})\n"
        f"  {one_info('zoom_participant_info')}\n)\nor on ({PARTICIPANT})\n{expr}"
    )


def live_groups(config: Config) -> list[Group]:
    return [{"name": "zoom-qss-live.rules", "rules": _records(config)}]


def _records(config: Config) -> list[Rule]:
    where = ", ".join(WHERE)
    mos = number(config.mos_warning)
    phone_poor = f"min by ({PARTY}) (zoom_phone_mos) < {mos}"
    parties = f"group by ({PARTY}) (zoom_phone_mos)"
    return [
        {
            # Live participants by product and where they connect from: the fleet's
            # denominators. Participants whose info is unknown count under no site.
            "record": LIVE,
            "expr": f"count by ({where}) (\n{_in(placed(live_streams(config, PARTICIPANT)))}\n)\n",
        },
        {
            # 0, not nothing, where none is poor: the shares' numerators.
            "record": LIVE_POOR,
            "expr": f"count by ({where}) (\n{_in(placed(poor_streams(config, PARTICIPANT)))}\n)\n"
            f"or\n0 * {LIVE}\n",
        },
        {"record": SITE_LIVE, "expr": f"sum by (product, site) ({LIVE})"},
        {"record": SITE_POOR, "expr": f"sum by (product, site) ({LIVE_POOR})"},
        {
            "record": MEETINGS,
            "expr": f"count by (product) ({live_streams(config, 'product, meeting_id')})",
        },
        {
            # Only the instances with a poor participant now: bounded by the poor, not by
            # the fleet; what the worst-meetings table and the meeting picker rank.
            "record": MEETING_POOR,
            "expr": f"count by (product, meeting_id) ({poor_streams(config, PARTICIPANT)})",
        },
        {
            "record": STREAMS,
            "expr": f"count by (product, qos_type) ({live_streams(config, STREAM)})",
        },
        {
            "record": STREAMS_POOR,
            "expr": f"count by (product, qos_type) ({poor_streams(config, STREAM)})\n"
            f"or\n0 * {STREAMS}\n",
        },
        {"record": STREAMS_RATIO, "expr": f"{STREAMS_POOR}\n/\n{STREAMS}\n"},
        {
            # "phone" as the product, as in the analytics and the MOS alert
            "record": CALLS,
            "expr": "label_replace(\n  count(group by (call_id) (zoom_phone_mos or "
            'zoom_phone_jitter_seconds))\n  or vector(0),\n  "product", "phone", "", ""\n)\n',
        },
        {
            "record": CALLS_POOR,
            "expr": "label_replace(\n  count(group by (call_id) (zoom_phone_mos < "
            f'{mos}))\n  or vector(0),\n  "product", "phone", "", ""\n)\n',
        },
        {
            # Call parties (caller or callee) by the network Zoom names for them; a party
            # without zoom_phone_party_info counts under no network.
            "record": PARTIES,
            "expr": f"count by (network) (\n{_in(_networked(parties))}\n)\n",
        },
        {
            "record": PARTIES_POOR,
            "expr": f"count by (network) (\n{_in(_networked(phone_poor))}\n)\nor\n0 * {PARTIES}\n",
        },
    ]


def _networked(expr: str) -> str:
    info = f"topk by ({PARTY}) (1, zoom_phone_party_info)"
    return (
        f"(\n  ({expr})\n  * on ({PARTY}) group_left (network)\n  {info}\n)\n"
        f"or on ({PARTY})\n({expr})"
    )


def _in(expr: str) -> str:
    return indent(expr, "  ")
