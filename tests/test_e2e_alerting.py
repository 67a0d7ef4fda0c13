"""The alerts at fleet scale, end to end: the simulator keeps 2,000 participants in 200
meetings, webinars and sessions (5 % degraded at random, and Lyon Office on weak Wi-Fi), a real
exporter and a real Prometheus with the generated rules send their alerts to a real
Alertmanager with the shipped example configuration, whose receivers are a webhook server of
this test. The rules are generated from the shipped thresholds with every duration shortened
(seconds for minutes), so that the incident plays out in about two minutes.

It shows what the issue asks: at most one firing alert per poor participant plus one per poor
meeting, site and fleet condition; the pager hears only of the site (and burn rates, were one
to fire); the site's page silences its participants' alerts."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertmanager_harness import (
    Notifications,
    alertmanager,
    alerts,
    example_config,
    webhook_receiver,
)
from mixin_harness import generated_rules, load_yaml
from prometheus_harness import exporter, prometheus, query, wait_for
from zoom_qss_exporter.simulate.run import SimulationConfig, SimulationReport, simulate

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "e2e-alerting-token"
SITE = "Lyon Office"  # the simulator's weak-Wi-Fi site
PARTICIPANTS = 2_000
DURATION = 100  # seconds of simulated traffic: six rounds, the alerts firing from the third


def _short(thresholds: dict[str, Any]) -> dict[str, Any]:
    """The shipped thresholds with durations cut down: a minute of the real rules is a
    second here, and the baselines are a few minutes old at most (so sites compare against
    the floor, as a new installation's do)."""
    short = copy.deepcopy(thresholds)
    short["participant"].update({"for": "10s", "keep_firing_for": "30s"})
    short["phone"].update({"for": "10s", "keep_firing_for": "30s"})
    short["meeting"].update({"for": "10s", "keep_firing_for": "30s"})
    short["site"].update({"window": "5m", "for": "10s"})  # its shortest: 5-minute rates
    short["regression"].update({"window": "5m", "for": "10s"})
    return short


def _rules(directory: Path) -> list[Path]:
    return generated_rules(directory, _short(load_yaml(ROOT / "mixin" / "thresholds.yaml")))


@dataclass
class Run:
    prometheus: str
    alertmanager: str
    notifications: Notifications
    manifest: dict[str, Any]


def _participants(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**p, "product": i["product"], "meeting_id": i["meeting_id"]}
        for i in manifest["instances"]
        for p in i["participants"]
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("alerting")
    rule_files = _rules(directory)
    sites = directory / "sites.yaml"
    manifest_path = directory / "manifest.json"
    asyncio.run(simulate(SimulationConfig(secret_token=TOKEN, sites_file=sites, sites_only=True)))
    with (
        webhook_receiver() as notifications,
        alertmanager(directory, example_config(notifications.url, "1s")) as alertmanager_url,
        exporter(directory, TOKEN, f"--analytics.sites-file={sites}") as exporter_url,
        prometheus(directory, exporter_url, rule_files, alertmanager_url) as prometheus_url,
    ):
        config = SimulationConfig(
            secret_token=TOKEN,
            target=exporter_url + "/webhook",
            meetings=PARTICIPANTS // 10,
            participants=10,
            phone_calls=10,
            rate=2000,
            duration=DURATION,
            interval=15,
            degraded_share=0.05,
            cpu_starved_version="",  # one incident: the site
            churn=0.0,
            seed=20261207,
            concurrency=16,
            manifest=manifest_path,
        )
        reports: list[SimulationReport] = []
        feeder = threading.Thread(
            target=lambda: reports.append(asyncio.run(simulate(config))), daemon=True
        )
        feeder.start()
        try:
            wait_for(
                "the page for the site",
                lambda: (
                    SITE in {a["labels"].get("site") for a in notifications.alerts("page")} or None
                ),
                timeout=DURATION + 60,
            )
            wait_for(
                "the site's participants inhibited",
                lambda: _inhibited_participants(alertmanager_url) or None,
                timeout=60,
            )
        finally:
            feeder.join(timeout=DURATION + 60)
        assert reports and reports[0].ok, reports and reports[0].first_failure
        yield Run(
            prometheus_url,
            alertmanager_url,
            notifications,
            json.loads(manifest_path.read_text()),
        )


def _inhibited_participants(alertmanager_url: str) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts(alertmanager_url, filter='alertname="ZoomParticipantPoorQuality"')
        if a["labels"].get("site") == SITE and a["status"]["inhibitedBy"]
    ]


def _firing(prometheus_url: str) -> list[dict[str, str]]:
    return [r["metric"] for r in query(prometheus_url, 'ALERTS{alertstate="firing"}')]


def test_at_most_one_alert_per_poor_participant_meeting_site_and_fleet_condition(
    run: Run,
) -> None:
    firing = _firing(run.prometheus)
    by_name = Counter(a["alertname"] for a in firing)
    people = _participants(run.manifest)
    assert len(people) == PARTICIPANTS
    poor = {(p["meeting_id"], p["participant_id"]) for p in people if p["cause"]}
    # one participant alert per poor participant, never one per QoS type, figure or severity
    participant_alerts = [
        (a["meeting_id"], a["participant_id"])
        for a in firing
        if a["alertname"] == "ZoomParticipantPoorQuality"
    ]
    assert len(participant_alerts) == len(set(participant_alerts))
    assert set(participant_alerts) <= poor
    assert len(participant_alerts) >= 0.5 * len(poor), "most poor participants have their alert"
    # a meeting alert only for a meeting that has poor participants, each meeting once
    meetings = [a["meeting_id"] for a in firing if a["alertname"] == "ZoomMeetingPoorQuality"]
    assert len(meetings) == len(set(meetings))
    assert set(meetings) <= {meeting for meeting, _ in poor}
    # sites: only the degraded one
    sites = {a["site"] for a in firing if a["alertname"] == "ZoomSiteDegraded"}
    assert sites == {SITE}
    # fleet conditions: a few, each for a bounded entity (a network type, data center, version)
    fleet = sum(
        n
        for name, n in by_name.items()
        if name.endswith("Regression") or name == "ZoomQualityErrorBudgetBurn"
    )
    data_centers = {p["data_center"] for p in people}
    assert fleet <= len(data_centers) + 6 + 4 + 4  # data centers, network types, versions, burns
    calls = sum(1 for c in run.manifest["phone_calls"] if c["cause"])
    phone = by_name["ZoomPhoneCallPoorQuality"]
    assert phone <= 2 * calls  # a poor call has two parties
    bound = len(poor) + len(set(meetings)) + len(sites) + fleet + phone
    assert len(firing) <= bound
    # the old rules gave 8 to 32 alerts per degraded participant
    assert len(firing) < 2 * len(poor), by_name
    print(f"\nfiring: {len(firing)} for {len(poor)} poor participants: {dict(by_name)}")


def test_the_pager_hears_only_of_the_site_and_burn_rates(run: Run) -> None:
    paged = run.notifications.alerts("page")
    assert {a["labels"]["alertname"] for a in paged} <= {
        "ZoomSiteDegraded",
        "ZoomQualityErrorBudgetBurn",
    }
    assert {
        a["labels"].get("site") for a in paged if a["labels"]["alertname"] == "ZoomSiteDegraded"
    } == {SITE}
    # one notification group for the site, however many people join and leave
    groups = {n["groupKey"] for n in run.notifications.by_receiver["page"]}
    assert len(groups) == 1, groups


def test_the_sites_page_silences_its_participants(run: Run) -> None:
    inhibited = _inhibited_participants(run.alertmanager)
    assert inhibited
    for alert in inhibited:
        assert alert["status"]["state"] == "suppressed"
    # the participants elsewhere are not silenced by it
    elsewhere = [
        a
        for a in alerts(run.alertmanager, filter='alertname="ZoomParticipantPoorQuality"')
        if a["labels"].get("site") not in (SITE, None) and a["status"]["inhibitedBy"]
    ]
    sources = {
        s["labels"]["alertname"]
        for s in alerts(run.alertmanager)
        for a in elsewhere
        if s["fingerprint"] in a["status"]["inhibitedBy"]
    }
    assert "ZoomSiteDegraded" not in sources


def test_no_ticket_or_page_names_a_participant(run: Run) -> None:
    for receiver in ("page", "ticket"):
        for alert in run.notifications.alerts(receiver):
            assert "participant_id" not in alert["labels"], alert["labels"]
    assert httpx.get(run.alertmanager + "/-/ready", timeout=5).status_code == 200
