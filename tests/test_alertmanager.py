"""The Alertmanager example (alertmanager/alertmanager.yml): valid for amtool, each alert of
rules/ routed to the receiver its severity calls for, inhibit rules that name alerts and labels
the rules really have, and Debian's Alertmanager running it: notification groups that people
joining and leaving do not split, the inhibitions applied, and the notifications delivered."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertmanager_harness import alertmanager, example_config, webhook_receiver
from mixin_harness import ALERT_FILE, RULES, load_yaml, rules
from prometheus_harness import wait_for

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
RECEIVER = {"critical": "page", "warning": "ticket", "info": "dashboard-only"}
_MATCHER = re.compile(r'^\s*([a-z_]+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    assert binary, "amtool missing: run scripts/setup (installs Debian's prometheus-alertmanager)"
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, env={"HOME": "/nonexistent"}
    )


def alert_rules() -> list[dict[str, Any]]:
    return rules(ALERT_FILE)


def test_amtool_check_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _route_cases() -> list[tuple[str, dict[str, str], str]]:
    """(id, labels, receiver): every alerting rule of rules/ with its severity's receiver,
    and what falls outside the Zoom alerts."""
    cases = []
    for rule in alert_rules():
        labels = {"alertname": rule["alert"], **rule["labels"]}
        ident = "-".join(labels.values())
        cases.append((ident, labels, RECEIVER[rule["labels"]["severity"]]))
    cases.append(("not-a-zoom-alert", {"alertname": "NodeDown", "severity": "critical"}, "ticket"))
    cases.append(("zoom-without-severity", {"alertname": "ZoomSomethingElse"}, "ticket"))
    return cases


@pytest.mark.parametrize(
    ("labels", "receiver"), [c[1:] for c in _route_cases()], ids=[c[0] for c in _route_cases()]
)
def test_amtool_routes_each_alert_by_severity(labels: dict[str, str], receiver: str) -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def _matchers(items: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for item in items:
        match = _MATCHER.match(item)
        assert match, item
        out[match.group(1)] = (match.group(2), match.group(3))
    return out


def _alerts_matching(matchers: dict[str, tuple[str, str]]) -> set[tuple[str, str]]:
    """(alertname, severity) of the alerting rules the matchers select."""
    found = set()
    for rule in alert_rules():
        labels = {"alertname": rule["alert"], **rule["labels"]}
        if all(
            (op == "=" and labels.get(name) == value)
            or (op == "=~" and re.fullmatch(value, labels.get(name, "")))
            for name, (op, value) in matchers.items()
        ):
            found.add((rule["alert"], rule["labels"]["severity"]))
    return found


def _label_names_in_unit_tests() -> dict[str, set[str]]:
    """Every label an alert has carried in the promtool unit tests, by alert name."""
    names: dict[str, set[str]] = {}
    for path in sorted((RULES / "tests").glob("*.yaml")):
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                for alert in check.get("exp_alerts") or []:
                    names.setdefault(check["alertname"], set()).update(alert["exp_labels"])
    return names


def test_inhibit_rules_name_alerts_and_labels_that_exist() -> None:
    """Each inhibit rule's source and target select alerts of rules/ (each alternative of a
    regular expression names one), and the labels they must share are labels both carry."""
    config = load_yaml(CONFIG)
    carried = _label_names_in_unit_tests()
    names = {rule["alert"] for rule in alert_rules()}
    assert len(config["inhibit_rules"]) >= 5
    for rule in config["inhibit_rules"]:
        sides: dict[str, set[tuple[str, str]]] = {}
        for side in ("source_matchers", "target_matchers"):
            matchers = _matchers(rule[side])
            op, value = matchers["alertname"]
            alternatives = value.split("|") if op == "=~" else [value]
            for alternative in alternatives:
                assert alternative in names, (side, alternative)
            sides[side] = _alerts_matching(matchers)
            assert sides[side], (side, rule[side])
        assert not sides["source_matchers"] & sides["target_matchers"], rule
        for label in rule["equal"]:
            for selected in sides.values():
                for alertname, _ in selected:
                    assert label in carried[alertname], (rule, alertname, label)


def test_routes_group_by_what_an_alert_is_about() -> None:
    """Never by participant, call party or stream: people joining and leaving neither open
    nor split notifications."""
    groups = []

    def walk(route: dict[str, Any]) -> None:
        if "group_by" in route:
            groups.append(route["group_by"])
        for child in route.get("routes", []):
            walk(child)

    walk(load_yaml(CONFIG)["route"])
    assert groups
    for group_by in groups:
        assert "alertname" in group_by
        assert not {"participant_id", "user_id", "call_id", "qos_type"} & set(group_by)


# --- Debian's Alertmanager running the example ----------------------------------------------------


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, **labels}}


ALERTS = [
    # a site that pages, a participant there, one elsewhere
    _alert("ZoomSiteDegraded", "critical", account="acme", site="Paris HQ"),
    _alert(
        "ZoomParticipantPoorQuality",
        "info",
        product="meeting",
        meeting_id="m1",
        participant_id="p1",
        site="Paris HQ",
    ),
    _alert(
        "ZoomParticipantPoorQuality",
        "info",
        product="meeting",
        meeting_id="m1",
        participant_id="p2",
        site="external",
    ),
    # a meeting's ticket and one of its participants
    _alert("ZoomMeetingPoorQuality", "warning", product="meeting", meeting_id="m2"),
    _alert(
        "ZoomParticipantPoorQuality",
        "info",
        product="meeting",
        meeting_id="m2",
        participant_id="p3",
        site="external",
    ),
    # webinars burn their budget fast: the slow burn's ticket and a webinar's ticket wait
    _alert(
        "ZoomQualityErrorBudgetBurn",
        "critical",
        product="webinar",
        account="acme",
        long="1h",
        short="5m",
    ),
    _alert(
        "ZoomQualityErrorBudgetBurn",
        "warning",
        product="webinar",
        account="acme",
        long="3d",
        short="6h",
    ),
    _alert("ZoomMeetingPoorQuality", "warning", product="webinar", meeting_id="w1"),
    # the exporter down: its silence is no second page
    _alert("ZoomQSSExporterDown", "critical", job="zoom-qss-exporter", instance="a:9981"),
    _alert("ZoomQSSNoEvents", "critical", job="zoom-qss-exporter"),
]
SUPPRESSED = {
    ("ZoomParticipantPoorQuality", "p1"),  # under the site's page
    ("ZoomParticipantPoorQuality", "p3"),  # under its meeting's ticket
    ("ZoomQualityErrorBudgetBurn", "warning"),  # under the fast burn's page
    ("ZoomMeetingPoorQuality", "w1"),  # under its product's page
    ("ZoomQSSNoEvents", ""),  # under the exporter down
}


def _key(labels: dict[str, str]) -> tuple[str, str]:
    name = labels["alertname"]
    if name == "ZoomQualityErrorBudgetBurn":
        return name, labels["severity"]
    return name, labels.get("participant_id") or labels.get("meeting_id", "")


def test_alertmanager_groups_inhibits_and_notifies(tmp_path: Path) -> None:
    with (
        webhook_receiver() as notifications,
        alertmanager(tmp_path, example_config(notifications.url)) as url,
    ):
        posted = httpx.post(f"{url}/api/v2/alerts", json=ALERTS, timeout=10)
        assert posted.status_code == 200, posted.text

        def states() -> dict[tuple[str, str], str] | None:
            found = {
                _key(a["labels"]): a["status"]["state"]
                for a in httpx.get(f"{url}/api/v2/alerts", timeout=10).json()
            }
            settled = len(found) == len(ALERTS) and all(
                (state == "suppressed") == (key in SUPPRESSED) for key, state in found.items()
            )
            return found if settled else None

        found = wait_for("the inhibitions", states, timeout=30)
        assert {key for key, state in found.items() if state == "suppressed"} == SUPPRESSED

        # notification groups: by what an alert is about, each to its severity's receiver
        groups = {
            (group["receiver"]["name"], json.dumps(group["labels"], sort_keys=True)): len(
                group["alerts"]
            )
            for group in httpx.get(f"{url}/api/v2/alerts/groups", timeout=10).json()
        }

        def labels(**values: str) -> str:
            return json.dumps(values, sort_keys=True)

        assert groups == {
            ("page", labels(alertname="ZoomSiteDegraded", account="acme", site="Paris HQ")): 1,
            (
                "page",
                labels(alertname="ZoomQualityErrorBudgetBurn", product="webinar", account="acme"),
            ): 1,
            ("page", labels(alertname="ZoomQSSExporterDown", job="zoom-qss-exporter")): 1,
            ("page", labels(alertname="ZoomQSSNoEvents", job="zoom-qss-exporter")): 1,
            (
                "ticket",
                labels(alertname="ZoomQualityErrorBudgetBurn", product="webinar", account="acme"),
            ): 1,
            (
                "ticket",
                labels(alertname="ZoomMeetingPoorQuality", product="meeting", meeting_id="m2"),
            ): 1,
            (
                "ticket",
                labels(alertname="ZoomMeetingPoorQuality", product="webinar", meeting_id="w1"),
            ): 1,
            (
                "dashboard-only",
                labels(alertname="ZoomParticipantPoorQuality", product="meeting", meeting_id="m1"),
            ): 2,
            (
                "dashboard-only",
                labels(alertname="ZoomParticipantPoorQuality", product="meeting", meeting_id="m2"),
            ): 1,
        }

        # what is not inhibited reaches its receiver's webhook
        expected = {
            ("/page", ("ZoomSiteDegraded", "")),
            ("/page", ("ZoomQualityErrorBudgetBurn", "critical")),
            ("/page", ("ZoomQSSExporterDown", "")),
            ("/ticket", ("ZoomMeetingPoorQuality", "m2")),
        }

        def delivered() -> set[tuple[str, tuple[str, str]]] | None:
            got = {
                (f"/{receiver}", _key(alert["labels"]))
                for receiver in ("page", "ticket", "dashboard-only")
                for alert in notifications.alerts(receiver)
            }
            return got if expected <= got else None

        got = wait_for("the notifications", delivered, timeout=30)
        assert not {key for _, key in got} & SUPPRESSED
        assert not {path for path, _ in got} - {"/page", "/ticket"}  # info is not sent
