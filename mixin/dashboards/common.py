"""What the dashboards share: their uids, value mappings and threshold colours."""

from __future__ import annotations

from ..config import Config, Figure
from ..grafana import GREEN, ORANGE, RED, YELLOW, Json, steps, target, value_mapping

FLEET_UID = "zoom-qss-fleet"
MEETING_UID = "zoom-qss-meeting"
PHONE_UID = "zoom-qss-phone"
EXPORTER_UID = "zoom-qss-exporter"
TRENDS_UID = "zoom-qss-trends"

QUALITY = value_mapping(
    {3: ("good", GREEN), 2: ("fair", YELLOW), 1: ("poor", ORANGE), 0: ("bad", RED)}
)
PRESSURE = value_mapping(
    {0: ("normal", GREEN), 1: ("fair", YELLOW), 2: ("serious", ORANGE), 3: ("critical", RED)}
)
UP = value_mapping({1: ("up", GREEN), 0: ("down", RED)})


def above(figure: Figure) -> Json:
    """Colours of a figure that is bad when high: yellow from info, red from warning."""
    colours = {"info": YELLOW, "warning": RED}
    return steps(GREEN, *((value, colours[severity]) for severity, value in figure.levels()))


def mos_steps(config: Config) -> Json:
    """MOS is bad when low: red below the alert's threshold."""
    return steps(RED, (config.mos_warning, GREEN))


def percentiles(metric: str, selector: str, quantiles: tuple[float, ...]) -> list[Json]:
    """Quantiles of a recorded per-bucket rate, all label sets together."""
    rate = f"{metric}{{{selector}}}"
    return [
        target(f"histogram_quantile({q}, sum by (le) ({rate}))", f"p{q * 100:g}") for q in quantiles
    ]


# The free-text search of the meeting and phone dashboards: a textbox, matched as literal text
# (``:regex`` escapes what regular expressions would read), without case, anywhere in a label.
SEARCH = "search"


def matches(label: str) -> str:
    """A matcher: ``label`` holds the typed text. A raw string (backticks): the escaping
    backslashes stay as typed."""
    return f"{label}=~`(?i).*${{{SEARCH}:regex}}.*`"


def searching(expr: str) -> str:
    """``expr`` while something is typed in the search box, nothing while it is empty (where
    ``.*`` would match every series): the typed text set as a label is removed when empty, and
    only a non-empty one gains the label the two sides are matched on."""
    typed = f'label_replace(vector(1), "typed", `${{{SEARCH}:regex}}`, "", "")'
    return (
        f'label_replace(\n  {expr},\n  "searching", "yes", "", ""\n)\n'
        f'and on (searching)\nlabel_replace({typed}, "searching", "yes", "typed", ".+")'
    )


def meeting_names(selector: str) -> str:
    """One series per instance (value 1) with the number people join with
    (``meeting_number``) or the session's name (``session_name``) where an event of one of
    its participants gave one; several numbers for one instance: one of them."""
    return (
        "topk by (product, meeting_id) (1, group by (product, meeting_id, meeting_number, "
        f'session_name) (\n  zoom_participant_info{{{selector}, meeting_number!=""}}\n'
        f'  or zoom_participant_info{{{selector}, session_name!=""}}\n))'
    )


def with_meeting_names(expr: str, selector: str) -> str:
    """``expr`` (per instance) with its ``meeting_number`` or ``session_name`` where known,
    and as it is where not (``expr`` is written twice)."""
    return (
        f"(\n  ({expr})\n  * on (product, meeting_id) group_left (meeting_number, session_name)\n"
        f"  {meeting_names(selector)}\n)\nor on (product, meeting_id)\n({expr})"
    )
