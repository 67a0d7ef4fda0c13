"""Phone calls: MOS, jitter, delay and loss per call, party and direction."""

from __future__ import annotations

from .. import live
from ..config import Config
from ..grafana import (
    GREEN,
    RED,
    Json,
    Panel,
    Row,
    column_units,
    dashboard,
    dashboard_link,
    stat,
    steps,
    table,
    target,
    textbox,
    timeseries,
    variable,
)
from .common import PHONE_UID, SEARCH, above, matches, mos_steps, searching

PARTY = "call_id, user_id, role"
WORST_CALLS = 10  # the call picker's default, "All": the worst now
ENDED_CALLS = 20  # rows of the ended calls' table: the worst
FOUND_FIRST = "-1"  # the calls the search finds: first, before the lowest MOS (sorted up)


def call_picker() -> str:
    """The live calls with the lowest MOS now (of the selected parties and directions), and
    first those the search finds (call id, or a party's user id)."""
    who = 'role=~"$role", direction=~"$direction"'
    worst = f"bottomk({WORST_CALLS}, min by (call_id) (zoom_phone_mos{{{who}}}))"
    found = "\n  or ".join(
        f"zoom_phone_mos{{{matches(label)}}}" for label in ("call_id", "user_id")
    )
    return (
        f"query_result(sort(\n{FOUND_FIRST} * group by (call_id) (\n{searching(found)}\n)\n"
        f"or\n{worst}\n))"
    )


def party_network() -> str:
    """One ``zoom_phone_party_info`` series per party, whatever its network: two at once
    (several remote-write replicas, a network change) would fail a ``group_left`` join."""
    return f"topk by ({PARTY}) (1, zoom_phone_party_info)"


def with_network(expr: str) -> str:
    """``expr`` (per party, aggregated or not) with the party's ``network`` joined, falling
    back to ``expr`` without it for a party that has no info series at that instant."""
    return (
        f"(\n  ({expr})\n  * on ({PARTY}) group_left (network)\n  {party_network()}\n)"
        f"\nor on ({PARTY})\n({expr})"
    )


def phone_calls(config: Config) -> Json:
    who = 'call_id=~"$call", role=~"$role", direction=~"$direction"'
    legend = "{{call_id}} {{role}} {{direction}}"
    sides = 'role=~"$role", direction=~"$direction"'
    # the ended calls: all of them (they are in no live picker), the worst first
    ended = "zoom_phone_call_{}{{" + sides + ', stat="{}"}}'
    worst_ended = f'bottomk({ENDED_CALLS}, zoom_phone_call_mos{{{sides}, stat="min"}})'

    def of_worst_ended(expr: str) -> str:
        return f"{expr}\nand on (call_id, user_id, role, direction)\n{worst_ended}"

    # the search set to the call id: the call is among the picker's options however it ranks
    to_call = dashboard_link(
        PHONE_UID,
        search="${__data.fields.call_id:percentencode}",
        call="${__data.fields.call_id:percentencode}",
    )
    items: list[Panel | Row] = [
        Row("Now"),
        stat(
            "Calls live",
            f"Zoom Phone calls that sent a QoS sample within --store.ttl (recording rule "
            f"{live.CALLS}).",
            [target(live.CALLS, "calls")],
            "short",
        ),
        stat(
            "Calls with a poor MOS",
            f"Live calls with a party and direction below MOS {config.mos_warning:g} "
            f"(recording rule {live.CALLS_POOR}).",
            [target(live.CALLS_POOR, "calls")],
            "short",
            thresholds=steps(GREEN, (1, RED)),
        ),
        table(
            "Worst calls now",
            "The 10 call parties and directions with the lowest MOS now, worst first. Click a "
            "call to select it.",
            [
                target(
                    "bottomk(10, "
                    + with_network("min by (call_id, user_id, role, direction) (zoom_phone_mos)")
                    + ")",
                    table=True,
                )
            ],
            "none",
            columns=["call_id", "user_id", "role", "direction", "network", "Value"],
            renames={"Value": "MOS"},
            sort_by="Value",
            ascending=True,
            links=[{"title": "Select this call", "url": to_call}],
            thresholds=mos_steps(config),
            custom={"cellOptions": {"type": "color-text"}},
            width=12,
            height=8,
        ),
        timeseries(
            "Poor call parties by network",
            f"Live call parties (caller or callee) with a sample below MOS "
            f"{config.mos_warning:g}, by the network Zoom names for them (LAN, WiFi, VPN; "
            "from zoom_phone_party_info, empty when Zoom named none), against all live "
            f"parties on that network: is one kind of network worse? (recording rules "
            f"{live.PARTIES_POOR} and {live.PARTIES})",
            [
                target(live.PARTIES_POOR, "poor on {{network}}"),
                target(live.PARTIES, "all on {{network}}"),
            ],
            "short",
            minimum=0,
            width=12,
            height=8,
        ),
        Row("Per call, party and direction"),
        timeseries(
            "MOS",
            "Zoom's MOS of each sample, per call, caller or callee, sending or receiving; "
            "below the dashed line the MOS alert fires.",
            [target(f"zoom_phone_mos{{{who}}}", legend)],
            "none",
            thresholds=mos_steps(config),
            draw_thresholds=True,
            minimum=1,
            maximum=5,
        ),
        timeseries(
            "Jitter",
            "Jitter of each sample; the dashed line is the participant jitter threshold.",
            [target(f"zoom_phone_jitter_seconds{{{who}}}", legend)],
            "s",
            thresholds=above(config.jitter),
            draw_thresholds=True,
            minimum=0,
        ),
        timeseries(
            "Network delay",
            "Network delay of each sample; dashed lines are the latency thresholds (ITU-T G.114).",
            [target(f"zoom_phone_network_delay_seconds{{{who}}}", legend)],
            "s",
            thresholds=above(config.latency),
            draw_thresholds=True,
            minimum=0,
        ),
        timeseries(
            "Packet loss",
            "Average and maximum packet loss of each sample; dashed lines are the loss thresholds.",
            [
                target(f"zoom_phone_packet_loss_avg_ratio{{{who}}}", "avg " + legend),
                target(f"zoom_phone_packet_loss_max_ratio{{{who}}}", "max " + legend),
            ],
            "percentunit",
            thresholds=above(config.packet_loss),
            draw_thresholds=True,
            minimum=0,
        ),
        timeseries(
            "Bitrate",
            "Bitrate of each sample in bits per second (the exporter's bytes per second times 8).",
            [target(f"8 * zoom_phone_bitrate_bytes_per_second{{{who}}}", legend)],
            "bps",
            minimum=0,
        ),
        timeseries(
            "Samples at or below the MOS threshold",
            "Share of all phone samples in the last 5 minutes at or below the MOS threshold, "
            "by direction (recording rule direction:zoom_phone_fleet_mos_below_threshold"
            ":ratio_rate5m, at histogram resolution).",
            [
                target(
                    'direction:zoom_phone_fleet_mos_below_threshold:ratio_rate5m{direction=~"$direction"}',
                    "{{direction}}",
                )
            ],
            "percentunit",
            minimum=0,
            maximum=1,
        ),
        Row("Ended calls (from phone.call_qos_summary)"),
        table(
            "Ended calls",
            f"The {ENDED_CALLS} ended calls' parties and directions with the lowest MOS (of the "
            "selected parties and directions), worst first: lowest and average MOS, average "
            "jitter, delay and loss, and the peak loss.",
            [
                target(of_worst_ended(ended.format("mos", "min")), table=True),
                target(of_worst_ended(ended.format("mos", "avg")), table=True),
                target(of_worst_ended(ended.format("jitter_seconds", "avg")), table=True),
                target(of_worst_ended(ended.format("network_delay_seconds", "avg")), table=True),
                target(of_worst_ended(ended.format("packet_loss_ratio", "avg")), table=True),
                target(
                    of_worst_ended(f"zoom_phone_call_packet_loss_peak_ratio{{{sides}}}"),
                    table=True,
                ),
            ],
            "none",
            columns=[
                "call_id",
                "user_id",
                "role",
                "direction",
                *(f"Value #{ref}" for ref in "ABCDEF"),
            ],
            renames={
                "Value #A": "lowest MOS",
                "Value #B": "average MOS",
                "Value #C": "jitter",
                "Value #D": "delay",
                "Value #E": "loss",
                "Value #F": "peak loss",
            },
            sort_by="Value #A",
            ascending=True,
            overrides=column_units(
                {
                    "Value #C": "s",
                    "Value #D": "s",
                    "Value #E": "percentunit",
                    "Value #F": "percentunit",
                }
            ),
        ),
    ]
    variables = [  # the call picker reads role and direction: they come first
        variable("role", "Party", "caller,callee", multi=True, custom=True),
        variable("direction", "Direction", "sending,receiving", multi=True, custom=True),
        textbox(
            SEARCH,
            "Search",
            description="find a live call by its id or a party's user id (plain text, any case)",
        ),
        variable(
            "call",
            "Calls",
            call_picker(),
            multi=True,
            all_value=None,
            ordered=True,
            description=f"All: the {WORST_CALLS} live calls with the lowest MOS now and those "
            "the search finds, never every call",
            regex='/call_id="(?<value>[^"]+)"/',
        ),
    ]
    return dashboard(
        PHONE_UID,
        "Phone calls",
        "Zoom Phone: MOS, jitter, delay and loss per call, caller and callee, sending and "
        "receiving.",
        items,
        variables,
        time_from="now-1h",
    )
