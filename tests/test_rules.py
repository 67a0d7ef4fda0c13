"""Alerting and recording rules: generated from the thresholds, clean for promtool, every alert
unit-tested, and shaped the way the runbook and the dashboards expect."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mixin_harness import (
    ALERT_FILE,
    ONE_INFO,
    RECORDING_FILE,
    ROOT,
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
        [promtool(), "check", "rules", "--lint=all", "--lint-fatal", ALERT_FILE, RECORDING_FILE],
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
    for rule in rules(RECORDING_FILE):
        if "zoom_participant_info" in rule["expr"]:
            assert rule["expr"].count("zoom_participant_info") == rule["expr"].count(ONE_INFO)


def test_recording_rules_are_named_level_metric_operations() -> None:
    for name in recorded_names():
        assert re.fullmatch(r"[a-z_]+:zoom_[a-z_]+:[a-z0-9_]+", name), name


def test_rules_read_only_metrics_that_exist() -> None:
    known = known_metrics()
    for rule in rules(ALERT_FILE) + rules(RECORDING_FILE):
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, (rule.get("alert") or rule.get("record"), unknown)
        for text in rule.get("annotations", {}).values():
            unknown = metric_names(text) - known
            assert not unknown, (rule.get("alert"), unknown)


def test_thresholds_file_is_strict(tmp_path: Path) -> None:
    """A typo in the one configuration place fails loudly instead of keeping a default."""
    source = (ROOT / "mixin" / "thresholds.yaml").read_text()
    broken = tmp_path / "thresholds.yaml"
    for edit, message in (
        (("  ratio: 0.25", "  ratoi: 0.25"), "fleet.ratio: missing"),
        (("  ratio: 0.25", "  ratio: 0.25\n  rate: 0.5"), "fleet: unknown keys ['rate']"),
        (("    info: 0.15", "    info: 0.5"), "info must be below warning"),
        (("  for: 5m  # five", "  for: five  # five"), "a duration like 5m"),
    ):
        assert edit[0] in source
        broken.write_text(source.replace(edit[0], edit[1], 1))
        result = subprocess.run(
            [sys.executable, "-m", "mixin", "--check", "--thresholds", str(broken)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_unit_test_files_load_both_rule_files(path: Path) -> None:
    files = load_yaml(path)["rule_files"]
    assert sorted(files) == ["../zoom-qss-alerts.yaml", "../zoom-qss-recording.yaml"]
