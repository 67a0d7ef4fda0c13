"""The Grafana dashboards: fleet overview, meeting drill-down, phone calls, exporter health and
the quality trends.

Thresholds drawn on panels are the alerts' (quality.yaml and thresholds.yaml); every rate over
the fleet histograms comes from the recording rules, so the dashboards stay cheap at any scale.
"""

from __future__ import annotations

from ..config import Config
from ..grafana import Json
from .exporter import exporter_health
from .fleet import fleet_overview
from .meeting import meeting_drilldown
from .phone import phone_calls
from .trends import trends


def all_dashboards(config: Config) -> dict[str, Json]:
    """File name (without .json) to dashboard."""
    return {
        "zoom-qss-fleet": fleet_overview(config),
        "zoom-qss-meeting": meeting_drilldown(config),
        "zoom-qss-phone": phone_calls(config),
        "zoom-qss-exporter": exporter_health(config),
        "zoom-qss-trends": trends(config),
    }
