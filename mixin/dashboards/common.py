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
