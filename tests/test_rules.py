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
    DASHBOARDS,
    LIVE_FILE,
    ONE_INFO,
    RECORDING_FILE,
    ROOT,
    RULE_FILES,
    RULES,
    SLO_FILE,
    generated_rules,
    known_metrics,
    load,
    load_yaml,
    metric_names,
    promtool,
    recorded_names,
    rules,
    variables,
)

UNIT_TESTS = sorted((RULES / "tests").glob("*.yaml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
THRESHOLDS = ROOT / "mixin" / "thresholds.yaml"


def alerts() -> list[dict[str, Any]]:
    return rules(ALERT_FILE)


def alert_key(rule: dict[str, Any]) -> tuple[str, ...]:
    """An alerting rule by its name and static labels (one name has several rules: severities,
    burn-rate windows)."""
    labels = rule.get("labels") or {}
    return (rule["alert"], *(f"{k}={v}" for k, v in sorted(labels.items())))


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


def test_every_alert_fires_and_stays_quiet_in_a_unit_test() -> None:
    """Each alerting rule (each severity and burn-rate window) fires in a unit test, and each
    alert name is checked at a time where it must not fire."""
    fired: set[tuple[str, ...]] = set()
    quiet: set[str] = set()  # alerts with a time at which they must not fire
    for path in UNIT_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if not expected:
                    quiet.add(check["alertname"])
                for alert in expected:
                    labels = alert["exp_labels"]
                    static = {k: labels[k] for k in ("severity", "long", "short") if k in labels}
                    fired.add(alert_key({"alert": check["alertname"], "labels": static}))
    defined = {alert_key(rule) for rule in alerts()}
    assert defined - fired == set(), "alerts without a firing unit test"
    assert {rule["alert"] for rule in alerts()} - quiet == set(), "alerts never checked quiet"


def _dashboard_variables() -> dict[str, set[str]]:
    return {load(path)["uid"]: set(variables(load(path))) for path in DASHBOARDS}


def test_alerts_follow_the_conventions() -> None:
    runbook = RUNBOOK.read_text()
    boards = _dashboard_variables()
    assert load_yaml(THRESHOLDS)["runbook_url"] == ""  # no made-up address by default
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Zoom(?:[A-Z][a-z]*|QSS|MOS)+", name), name
        assert re.fullmatch(r"(\d+[smhd])+", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "dashboard_url"}, name
        assert annotations["summary"].endswith("."), name
        assert "{{" in annotations["description"], name
        for text in annotations.values():  # labels only: no query at notification time
            assert not re.search(r"\|\s*query\b|\bquery\s*\}\}", text), name
        # the link opens a shipped dashboard, with variables it has
        url = annotations["dashboard_url"]
        match = re.fullmatch(r"/d/([a-z-]+)(?:\?(.*))?", url)
        assert match and match.group(1) in boards, (name, url)
        for variable in re.findall(r"var-([a-z_]+)=", match.group(2) or ""):
            assert variable in boards[match.group(1)], (name, variable)
        assert f"\n## {name}\n" in runbook, f"docs/runbook.md has no section for {name}"
    # no section left for an alert that is gone
    sections = set(re.findall(r"^## (Zoom\w+)$", runbook, re.MULTILINE))
    assert sections == {rule["alert"] for rule in alerts()}


def test_participant_and_call_alerts_bring_their_labels_in_by_expression() -> None:
    """One alert per participant (not per stream or figure), with where they are from
    zoom_participant_info joined in the expression, so Alertmanager can group and inhibit by
    site; the same for a call party and its network, and a meeting and its number."""
    by_name = {rule["alert"]: rule for rule in alerts()}
    participant = by_name["ZoomParticipantPoorQuality"]
    assert participant["expr"].startswith("group by (product, meeting_id, participant_id) (")
    assert (
        "group_left (user_name, meeting_number, session_name, site, network_type, "
        in (participant["expr"])
    )
    assert ONE_INFO in participant["expr"]
    assert (
        "keep_firing_for" in participant
        and "keep_firing_for" in by_name["ZoomPhoneCallPoorQuality"]
    )
    assert "group_left (network)" in by_name["ZoomPhoneCallPoorQuality"]["expr"]
    meeting = by_name["ZoomMeetingPoorQuality"]["expr"]
    assert "group_left (meeting_number, session_name)" in meeting
    assert "count by (product, meeting_id) (" in meeting


def test_no_alert_reads_a_per_participant_recording_rule() -> None:
    """The alerts and the rules they read use the analytics' counters and the raw series: the
    recording rules of rules/zoom-qss-recording.yaml (one series per participant and stream,
    the fleet histograms' rates) are the dashboards' alone, and alerting costs no recorded series
    per participant. (The unit tests of the alerts do not load that file.)"""
    for path in (ALERT_FILE, SLO_FILE):
        for rule in rules(path):
            used = metric_names(rule["expr"]) & recorded_names(RECORDING_FILE)
            assert not used, (rule.get("alert") or rule.get("record"), used)


def test_rules_join_one_info_series_per_participant() -> None:
    """Two info series for one participant at once must not fail a join (unit-tested in
    rules/tests/fleet.yaml and rules/tests/participants.yaml): every join on
    zoom_participant_info takes one per participant, or one per meeting for its number."""
    per_meeting = "topk by (product, meeting_id) (1,"
    for path in (RECORDING_FILE, ALERT_FILE, LIVE_FILE):
        for rule in rules(path):
            expr = rule["expr"]
            if "zoom_participant_info" in expr:
                joined = expr.count(ONE_INFO) + 2 * expr.count(per_meeting)
                assert expr.count("zoom_participant_info") == joined, rule.get("alert")


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
    source = THRESHOLDS.read_text()
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
        (("  keep_firing_for: 5m", "  keep_firing_for: 5m\n  mos: 3.6"), "phone.mos: set it as"),
        (("    info: 0.03", "    info: 0.2"), "trends.poor_share: info must be below warning"),
        (('runbook_url: ""', "runbook_url: docs/runbook.md"), "runbook_url: an http(s)://"),
        (("  objective: 0.95", "  objective: 95"), "slo.objective: a number from 0.5 to"),
        (("long: 1h, short: 5m", "long: 1h, short: 2m"), "burn_rates[0].short: a multiple of 5m"),
        (("long: 1h, short: 5m", "long: 5m, short: 1h"), "burn_rates[0]: short must be shorter"),
        (("severity: critical, long: 1h", "severity: info, long: 1h"), "critical or warning"),
        (
            ("  baseline: 7d  # a whole", "  baseline: 7d10m  # a whole"),
            "site.baseline: a multiple",
        ),
        (("  min_history: 1d\n  factor: 3", "  min_history: 8d\n  factor: 3"), "at most baseline"),
    ):
        assert edit[0] in source, edit[0]
        broken.write_text(source.replace(edit[0], edit[1], 1))
        result = _mixin("--thresholds", str(broken))
        assert result.returncode == 2 and message in result.stderr, (message, result.stderr)


def _generate(tmp_path: Path, thresholds: str) -> dict[str, Any]:
    """Rules from a copy of thresholds.yaml with ``thresholds`` appended (later keys win),
    written with --out into a directory of their own: its rule files by name."""
    changed = yaml.safe_load(THRESHOLDS.read_text() + thresholds)
    return {path.name: load_yaml(path) for path in generated_rules(tmp_path, changed)}


def test_the_out_option_writes_rules_from_other_thresholds_elsewhere(tmp_path: Path) -> None:
    """What a test (or a fleet) needs: its own windows and durations, the shipped files left as
    they are, and --check against that directory."""
    before = {path: path.read_text() for path in RULE_FILES}
    files = _generate(
        tmp_path,
        "participant: {for: 1m, keep_firing_for: 2m, latency: {info: 0.15}, "
        "packet_loss: {info: 0.01}}\n"
        "site: {window: 5m, baseline: 1h, min_history: 10m, factor: 2, min_increase: 0.05,"
        " min_people: 1, for: 0s}\n",
    )
    assert {path: path.read_text() for path in RULE_FILES} == before
    assert sorted(files) == sorted(path.name for path in RULE_FILES)
    generated = {
        rule["alert"]: rule
        for group in files["zoom-qss-alerts.yaml"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    participant = generated["ZoomParticipantPoorQuality"]
    assert (participant["for"], participant["keep_firing_for"]) == ("1m", "2m")
    site = generated["ZoomSiteDegraded"]
    assert (
        site["for"] == "0s"
        and "account_site:zoom_qos_poor_stream_minutes:ratio_rate5m" in (site["expr"])
    )
    recorded = [r["record"] for g in files["zoom-qss-slo.yaml"]["groups"] for r in g["rules"]]
    assert "account_site:zoom_qos_poor_stream_minutes:ratio_rate1h" in recorded  # the baseline
    checked = subprocess.run(
        [promtool(), "check", "rules", *sorted((tmp_path / "generated" / "rules").glob("*.yaml"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    copy = str(tmp_path / "thresholds.yaml")
    same = _mixin("--thresholds", copy, "--out", str(tmp_path / "generated"))
    assert same.returncode == 0, same.stderr
    stale = _mixin("--out", str(tmp_path / "generated"))  # the shipped thresholds differ
    assert stale.returncode == 1 and "rules/zoom-qss-alerts.yaml is out of date" in stale.stderr


def test_links_follow_grafana_url_and_runbook_url(tmp_path: Path) -> None:
    """With a Grafana address, dashboard links are absolute; with a runbook address, every
    alert links to its own section of it."""
    files = _generate(
        tmp_path,
        'grafana_url: "https://grafana.example.com/"\n'
        'runbook_url: "https://git.example.com/ops/zoom-qss/docs/runbook.md"\n',
    )
    for group in files["zoom-qss-alerts.yaml"]["groups"]:
        for rule in group["rules"]:
            annotations = rule["annotations"]
            assert annotations["dashboard_url"].startswith("https://grafana.example.com/d/")
            assert annotations["runbook_url"] == (
                f"https://git.example.com/ops/zoom-qss/docs/runbook.md#{rule['alert'].lower()}"
            )


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
    the live recording rules and the lines drawn on the dashboards."""
    mixin = load_yaml(ROOT / "mixin" / "thresholds.yaml")
    assert "warning" not in _keys(mixin["participant"]) | _keys(mixin["phone"])
    assert "mos" not in _keys(mixin["phone"])
    files = outputs(quality=_quality(tmp_path, latency=0.3, jitter=0.05, packet_loss=0.08, mos=3.6))
    live = files[Path("rules/zoom-qss-live.yaml")]
    for condition in ("> 0.3", "> 0.05", "> 0.08", "< 3.6"):
        assert condition in live, condition
    alerts = {
        rule["alert"]: rule["expr"]
        for group in yaml.safe_load(files[Path("rules/zoom-qss-alerts.yaml")])["groups"]
        for rule in group["rules"]
    }
    for name in ("ZoomParticipantPoorQuality", "ZoomMeetingPoorQuality"):
        for condition in ("} > 0.3\n", "} > 0.05\n", "} > 0.08\n", "} < 3.6\n"):
            assert condition in alerts[name], (name, condition)
    assert "(zoom_phone_mos) < 3.6," in alerts["ZoomPhoneCallPoorQuality"]
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
    below = _mixin("--quality", str(_quality(tmp_path, latency=0.1)))  # under its line drawn
    assert below.returncode == 2
    assert "participant.latency: info must be below warning" in below.stderr, below.stderr


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_unit_test_files_load_the_rule_files_they_test(path: Path) -> None:
    """The analytics' rules read only the counters, rules/zoom-qss-recording.yaml and the
    exporter's alerts only raw series: their tests load them alone. The quality alerts read
    the analytics' rates through rules/zoom-qss-slo.yaml, and never the per-participant
    recording rules: their tests load those three files and not that one."""
    files = sorted(load_yaml(path)["rule_files"])
    if path.name == "analytics.yaml":
        assert files == ["../zoom-qss-analytics.yaml"]
    elif path.name == "fleet.yaml":
        assert files == ["../zoom-qss-recording.yaml"]
    elif path.name == "live.yaml":
        assert files == ["../zoom-qss-live.yaml"]
    elif path.name == "exporter.yaml":  # the exporter's alerts read its own series
        assert files == ["../zoom-qss-alerts.yaml"]
    else:
        assert files == [
            "../zoom-qss-alerts.yaml",
            "../zoom-qss-analytics.yaml",
            "../zoom-qss-slo.yaml",
        ]


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
