"""Alerting and recording rules: generated from the thresholds, clean for promtool, every alert
unit-tested, and shaped the way the runbook and the dashboards expect."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin.__main__ import outputs
from mixin.config import QUALITY
from mixin_harness import (
    ALERT_FILE,
    ANALYTICS_FILE,
    LIVE_FILE,
    ONE_INFO,
    RECORDING_FILE,
    ROOT,
    RULE_FILES,
    RULES,
    known_metrics,
    load_yaml,
    metric_names,
    promtool,
    recorded_names,
    rules,
)

UNIT_TESTS = sorted((RULES / "tests").glob("*.yaml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
PARTICIPANT_LABELS = ("product", "meeting_id", "participant_id", "qos_type")


def alerts() -> list[dict[str, Any]]:
    return rules(ALERT_FILE)


def test_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mixin", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_promtool_check_rules_is_clean() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", "--lint=all", "--lint-fatal", *RULE_FILES],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS
    result = subprocess.run(
        [promtool(), "test", "rules", *UNIT_TESTS], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_and_severity_fires_and_resolves_in_a_unit_test() -> None:
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()  # alerts with a time at which they must not fire
    for path in UNIT_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if not expected:
                    quiet.add(check["alertname"])
                for alert in expected:
                    fired.add((check["alertname"], alert["exp_labels"]["severity"]))
    defined = {(rule["alert"], rule["labels"]["severity"]) for rule in alerts()}
    assert defined - fired == set(), "alerts without a firing unit test"
    assert {name for name, _ in defined} - quiet == set(), "alerts never checked quiet"


def test_alerts_follow_the_conventions() -> None:
    runbook = RUNBOOK.read_text()
    base = load_yaml(ROOT / "mixin" / "thresholds.yaml")["runbook_url"]
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Zoom(?:[A-Z][a-z]*|QSS|MOS)+", name), name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["summary"].endswith("."), name
        assert "{{" in annotations["description"], name
        assert annotations["runbook_url"] == f"{base}#{name.lower()}"
        assert f"\n## {name}\n" in runbook, f"docs/runbook.md has no section for {name}"


def test_participant_alerts_say_who_and_where() -> None:
    for rule in alerts():
        if rule["alert"].startswith("ZoomParticipant"):
            for label in PARTICIPANT_LABELS:
                assert f"$labels.{label}" in rule["annotations"]["description"], rule["alert"]
            assert "zoom_participant_info" in rule["annotations"]["description"]
            assert " by " not in rule["expr"] and "without" not in rule["expr"], rule["alert"]


def test_recording_rules_join_one_info_series_per_participant() -> None:
    """Two info series for one participant at once must not fail the join (unit-tested in
    rules/tests/fleet.yaml)."""
    for rule in rules(RECORDING_FILE) + rules(LIVE_FILE):
        if "zoom_participant_info" in rule["expr"]:
            assert rule["expr"].count("zoom_participant_info") == rule["expr"].count(ONE_INFO)


def test_recording_rules_are_named_level_metric_operations() -> None:
    for name in recorded_names():
        assert re.fullmatch(r"[a-z_]+:zoom_[a-z_]+:[a-z0-9_]+", name), name


def test_rules_read_only_metrics_that_exist() -> None:
    known = known_metrics()
    for rule in (rule for path in RULE_FILES for rule in rules(path)):
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, (rule.get("alert") or rule.get("record"), unknown)
        for text in rule.get("annotations", {}).values():
            unknown = metric_names(text) - known
            assert not unknown, (rule.get("alert"), unknown)


def _mixin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixin", "--check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_thresholds_file_is_strict(tmp_path: Path) -> None:
    """A typo in the one configuration place fails loudly instead of keeping a default."""
    source = (ROOT / "mixin" / "thresholds.yaml").read_text()
    broken = tmp_path / "thresholds.yaml"
    for edit, message in (
        (("  ratio: 0.25", "  ratoi: 0.25"), "fleet.ratio: missing"),
        (("  ratio: 0.25", "  ratio: 0.25\n  rate: 0.5"), "fleet: unknown keys ['rate']"),
        (("    info: 0.15", "    info: 0.5"), "info must be below warning"),
        (("  for: 5m  # five", "  for: five  # five"), "a duration like 5m"),
        # the poor thresholds are quality.yaml's: a copy here is refused, saying where they are
        (
            ("    info: 0.15", "    info: 0.15\n    warning: 0.3"),
            "participant.latency.warning: set it as poor.latency of quality.yaml",
        ),
        (("  for: 2m", "  for: 2m\n  warning: 3.6"), "mos.warning: set it as poor.mos of"),
        (("    info: 0.03", "    info: 0.2"), "trends.poor_share: info must be below warning"),
    ):
        assert edit[0] in source
        broken.write_text(source.replace(edit[0], edit[1], 1))
        result = _mixin("--thresholds", str(broken))
        assert result.returncode == 2 and message in result.stderr, result.stderr


def _quality(tmp_path: Path, **poor: float) -> Path:
    document = load_yaml(QUALITY)
    document["poor"].update(poor)
    path = tmp_path / "quality.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _keys(node: Any) -> set[str]:
    if not isinstance(node, dict):
        return set()
    return set(node) | {key for value in node.values() for key in _keys(value)}


def test_the_poor_thresholds_are_the_exporters_quality_file(tmp_path: Path) -> None:
    """One copy of what makes a stream poor: mixin/thresholds.yaml holds none of it, and the
    operator's quality file (the exporter's --analytics.thresholds-file) reaches the alerts,
    the recording rules and the lines drawn on the dashboards."""
    mixin = load_yaml(ROOT / "mixin" / "thresholds.yaml")
    assert "warning" not in _keys(mixin["participant"]) | _keys(mixin["mos"])
    files = outputs(quality=_quality(tmp_path, latency=0.3, jitter=0.05, packet_loss=0.08, mos=3.6))
    recording = files[Path("rules/zoom-qss-recording.yaml")]
    for condition in ("> 0.3\n", "> 0.05\n", "> 0.08\n", "< 3.6\n"):
        assert condition in recording, condition
    alerts = {
        (rule["alert"], rule["labels"]["severity"]): rule["expr"]
        for group in yaml.safe_load(files[Path("rules/zoom-qss-alerts.yaml")])["groups"]
        for rule in group["rules"]
    }
    assert alerts[("ZoomParticipantHighLatency", "warning")].endswith("> 0.3")
    assert alerts[("ZoomParticipantHighLatency", "info")].endswith("> 0.15")  # thresholds.yaml
    assert alerts[("ZoomParticipantHighJitter", "warning")].endswith("> 0.05")
    assert alerts[("ZoomParticipantHighPacketLoss", "warning")].endswith("> 0.08")
    assert "< 3.6" in alerts[("ZoomLowMOS", "warning")]
    fleet = json.loads(files[Path("dashboards/zoom-qss-fleet.json")])
    (latency,) = [p for p in fleet["panels"] if p["title"] == "Latency percentiles"]
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 0.15, 0.3]
    # the shipped file gives the committed files
    assert outputs() == outputs(quality=QUALITY)


def test_the_quality_option(tmp_path: Path) -> None:
    stale = _mixin("--quality", str(_quality(tmp_path, latency=0.3)))
    assert stale.returncode == 1
    assert "rules/zoom-qss-alerts.yaml is out of date" in stale.stderr
    assert "dashboards/zoom-qss-fleet.json is out of date" in stale.stderr
    same = _mixin("--quality", str(_quality(tmp_path)))
    assert same.returncode == 0, same.stderr
    broken = _mixin("--quality", str(_quality(tmp_path, mos=7)))
    assert broken.returncode == 2
    assert "poor.mos: a number from 1 to 5 is required" in broken.stderr
    below = _mixin("--quality", str(_quality(tmp_path, latency=0.1)))  # under latency's info
    assert below.returncode == 2
    assert "participant.latency: info must be below warning" in below.stderr, below.stderr


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_unit_test_files_load_the_rule_files_they_test(path: Path) -> None:
    """The alerts read the recording rules: their tests load both. The analytics' rules and
    the live rules read only raw series: their tests load them alone."""
    files = sorted(load_yaml(path)["rule_files"])
    if path.name == "analytics.yaml":
        assert files == ["../zoom-qss-analytics.yaml"]
    elif path.name == "live.yaml":
        assert files == ["../zoom-qss-live.yaml"]
    else:
        assert files == ["../zoom-qss-alerts.yaml", "../zoom-qss-recording.yaml"]


@pytest.mark.parametrize(
    ("rule_file", "unit_test"), [(ANALYTICS_FILE, "analytics.yaml"), (LIVE_FILE, "live.yaml")]
)
def test_every_analytics_and_live_rule_is_unit_tested(rule_file: Path, unit_test: str) -> None:
    """Each recorded analytics and live series is asserted in its rules/tests/ file."""
    tested = {
        check["expr"]
        for case in load_yaml(RULES / "tests" / unit_test)["tests"]
        for check in case["promql_expr_test"]
    }
    for name in recorded_names(rule_file):
        assert any(re.search(rf"(?<![:\w]){re.escape(name)}(?![:\w])", e) for e in tested), name


def test_live_rules_read_one_instant_and_write_no_series_per_participant() -> None:
    """The live rules read the raw series at one instant (no range, no offset) and aggregate
    every participant away: the only per-something series left are per meeting (those with a
    poor participant) and the fleet's dimensions."""
    for rule in rules(LIVE_FILE):
        expr = rule["expr"]
        assert "[" not in expr and "offset" not in expr, rule["record"]
        level = rule["record"].split(":")[0]
        assert "participant" not in level and "call" not in level, rule["record"]
        assert re.match(r"^(?:count|sum|label_replace|[a-z_:]+\n/)", expr), rule["record"]


def test_analytics_rules_read_five_minutes_of_raw_counters() -> None:
    """Cheap at every evaluation: the rules read 5 minutes of the counters, or this
    evaluation's recorded rates; the long windows are the dashboards' (from recorded rates)."""
    for rule in rules(ANALYTICS_FILE):
        windows = re.findall(r"\[([^\]]+)\]", rule["expr"])
        assert windows in ([], ["5m"]), (rule["record"], windows)
        assert "_over_time" not in rule["expr"] and "offset" not in rule["expr"], rule["record"]
