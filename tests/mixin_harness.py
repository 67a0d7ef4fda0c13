"""The generated rules and dashboards, read: shared by test_rules, test_dashboards and
test_e2e_monitoring (which runs them against a real Prometheus)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from zoom_qss_exporter.analytics.collector import AnalyticsOptions, QualityAnalytics
from zoom_qss_exporter.families import ALL_FAMILIES

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
ALERT_FILE = RULES / "zoom-qss-alerts.yaml"
RECORDING_FILE = RULES / "zoom-qss-recording.yaml"
ANALYTICS_FILE = RULES / "zoom-qss-analytics.yaml"  # the quality analytics' recording rules
SLO_FILE = RULES / "zoom-qss-slo.yaml"  # the windows and baselines the quality alerts read
LIVE_FILE = RULES / "zoom-qss-live.yaml"  # what is live now, for the dashboards
RULE_FILES = tuple(sorted(RULES.glob("*.yaml")))  # every generated rule file
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
ONE_INFO = "topk by (product, meeting_id, participant_id) (1, zoom_participant_info"
QUERY_RESULT = re.compile(r"^query_result\((.*)\)$", re.S)
_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?([a-z_]+)\)$", re.S)

# Families that are not in families.py (fleet histograms, counters, self-metrics), and the
# series other exporters or Prometheus itself provide.
_OTHER_METRICS = {
    "zoom_qos_fleet_latency_seconds",
    "zoom_qos_fleet_jitter_seconds",
    "zoom_qos_fleet_packet_loss_ratio",
    "zoom_phone_fleet_mos",
    "zoom_qss_exporter_event_processing_seconds",
    "zoom_qos_samples_total",
    "zoom_network_notifications_total",
    "zoom_qss_exporter_events_total",
    "zoom_qss_exporter_items_skipped_total",
    "zoom_qss_exporter_series",
    "zoom_qss_exporter_series_limit",
    "zoom_qss_exporter_series_expired_total",
    "zoom_qss_exporter_series_dropped_total",
    "zoom_qss_exporter_last_event_timestamp_seconds",
    "zoom_qss_exporter_build_info",
}
# The quality analytics' counters and self-metrics (exporter/zoom_qss_exporter/analytics).
ANALYTICS_METRICS = {
    metric.name + ("_total" if metric.type == "counter" else "")
    for metric in QualityAnalytics(AnalyticsOptions()).collect()
}


# --- rules --------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(path)["groups"] for rule in group["rules"]]


def recorded_names(*paths: Path) -> set[str]:
    """The series the recording rules of ``paths`` (all the rule files if none) record."""
    return {
        rule["record"] for path in paths or RULE_FILES for rule in rules(path) if "record" in rule
    }


def known_metrics() -> set[str]:
    """Every series name the rules and dashboards may read."""
    names = {family.name for family in ALL_FAMILIES} | _OTHER_METRICS | ANALYTICS_METRICS
    names |= recorded_names()
    histograms = [n for n in _OTHER_METRICS if not n.endswith("_total") and "fleet" in n]
    histograms.append("zoom_qss_exporter_event_processing_seconds")
    for name in histograms:
        names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def metric_names(expr: str) -> set[str]:
    """The zoom_* series names an expression reads (recorded names included)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\b(?:[a-z_]+:)?zoom_[a-z_]+(?::[a-z0-9_]+)?", without_strings))


def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: run scripts/setup (installs Debian's prometheus)"
    return binary


# --- dashboards ---------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        if panel["type"] != "row":
            yield panel


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in board["templating"]["list"]}


def regex_escape(value: str) -> str:
    """Grafana's ``${name:regex}`` format of one value: regular expressions' characters
    escaped."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def substitute(text: str, values: dict[str, str]) -> str:
    """Grafana's interpolation of ``$name``, ``${name}`` and ``${name:regex}``, for the
    values given."""
    # $__interval: 5m, the smallest the Trends panels that use it allow ("interval")
    builtins = {"__rate_interval": "1m", "__interval": "5m", "__range": "5m"}
    merged = {**builtins, **values}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if match.group(2) == "regex":
            return regex_escape(merged[name])
        assert match.group(2) is None, match.group(0)
        return merged[name]

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", value, text)


def default_values(board: dict[str, Any]) -> dict[str, str]:
    """Every variable as "All" (multi: its allValue, else ".+" in place of the options it
    lists), its selected or first option (custom), empty (a textbox), or a placeholder
    value."""
    values = {}
    for name, var in variables(board).items():
        if name == "datasource":
            continue
        if var.get("multi"):
            values[name] = var.get("allValue", ".+")
        elif var["type"] == "textbox":
            values[name] = var["query"]
        elif var["type"] == "custom":
            values[name] = var["current"].get("value") or var["query"].split(",")[0]
        else:
            values[name] = "placeholder"
    return values


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable, variables unresolved."""
    for panel in panels(board):
        for target in panel["targets"]:
            yield f"{board['uid']}: {panel['title']} {target['refId']}", target["expr"]
    for var in variables(board).values():
        if var["type"] in ("datasource", "custom", "textbox"):
            continue
        if var["type"] == "query" and (result := QUERY_RESULT.match(var["query"])):
            yield f"{board['uid']}: variable {var['name']}", result.group(1)
        elif var["type"] == "query":
            match = _LABEL_VALUES.match(var["query"])
            assert match, var["query"]
            selector = match.group(1) or "{__name__=~'.+'}"
            yield (
                f"{board['uid']}: variable {var['name']}",
                (f"group by ({match.group(2)}) ({selector})"),
            )


def grafana_options(regex: str, results: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(text, value) of a query_result variable's options, as Grafana makes them: each result
    rendered as ``{label="value",...} 1 <ms>``, then matched by the variable's regex (a
    JavaScript ``/.../`` with named groups, which Python spells ``(?P<name>...)``; without a
    ``text`` group the text is the value)."""
    pattern = re.compile(regex.strip("/").replace("(?<", "(?P<"))
    options = []
    for labels in results:
        line = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} 1 1700000000000"
        match = pattern.search(line)
        assert match, line
        text = match.group("text") if "text" in pattern.groupindex else match.group("value")
        options.append((text, match.group("value")))
    return options


def generated_rules(directory: Path, thresholds: dict[str, Any]) -> list[Path]:
    """The rule files ``python -m mixin --thresholds --out`` makes of ``thresholds`` (a parsed
    mixin/thresholds.yaml) in ``directory``: for tests that need other durations or minimums
    than the shipped ones."""
    path = directory / "thresholds.yaml"
    path.write_text(yaml.safe_dump(thresholds))
    out = directory / "generated"  # the rules in out/rules, the dashboards in out/dashboards
    result = subprocess.run(
        [sys.executable, "-m", "mixin", "--thresholds", str(path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return sorted((out / "rules").glob("*.yaml"))
