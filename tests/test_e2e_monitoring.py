"""End to end for the monitoring: a real Prometheus (Debian's package) loads the generated rules
and scrapes the exporter while the simulator sends traffic with degraded participants and
calls. Checked through Prometheus' HTTP API: the degradation alerts are pending or firing for
exactly the degraded participants and calls, every recording rule evaluates, and every
dashboard query (variables substituted as Grafana would) parses and returns data."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import example
from mixin_harness import (
    ALERT_FILE,
    ANALYTICS_FILE,
    DASHBOARDS,
    LIVE_FILE,
    QUERY_RESULT,
    RECORDING_FILE,
    RULE_FILES,
    default_values,
    grafana_options,
    load,
    queries,
    recorded_names,
    substitute,
    variables,
)
from prometheus_harness import JOB, api, exporter, prometheus, query, wait_for
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.simulate.run import SimulationConfig, simulate

TOKEN = "e2e-monitoring-token"
SEED = 20240611
MEDIA = ("audio_input", "audio_output", "video_input", "video_output")  # what the simulator sends
AUDIO = ("audio_input", "audio_output")
MIN_POOR, POOR_SHARE = 5, 0.25  # fleet defaults of mixin/thresholds.yaml

Alert = tuple[str, str, tuple[str, ...]]  # alertname, severity, who (identifying labels)
_PARTICIPANT = ("product", "meeting_id", "participant_id", "qos_type")
_CALL_PARTY = ("call_id", "user_id", "role", "direction")
_FLEET = ("data_center", "network_type", "product")  # one of them set, the others ""


@dataclass
class Run:
    exporter: str
    prometheus: str
    manifest: dict[str, Any]
    meeting: str  # the product="meeting" instance, also holding a departed participant


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("monitoring")
    with (
        exporter(directory, TOKEN) as exporter_url,
        prometheus(directory, exporter_url, RULE_FILES) as prometheus_url,
    ):
        # Scraped once before any event: every counter then rises between two scrapes, so
        # that the rates of the fleet histograms (and the shares recorded from them) are > 0.
        wait_for(
            "a first scrape",
            lambda: query(prometheus_url, f'up{{job="{JOB}"}} == 1') or None,
            timeout=30,
        )
        manifest = _simulate(exporter_url, directory / "manifest.json")
        meeting = next(i for i in manifest["instances"] if i["product"] == "meeting")
        _post_the_rest(exporter_url, meeting["meeting_id"], meeting["known_as"])
        yield Run(exporter_url, prometheus_url, manifest, meeting["meeting_id"])


def _simulate(exporter_url: str, manifest_path: Path) -> dict[str, Any]:
    config = SimulationConfig(
        secret_token=TOKEN,
        target=exporter_url + "/webhook",
        meetings=3,  # one meeting, one webinar, one session
        participants=10,
        phone_calls=4,
        rate=400,
        duration=3,  # three QoS rounds, one a second
        interval=1,
        degraded_share=0.5,
        churn=0.0,
        seed=SEED,
        manifest=manifest_path,
    )
    report = asyncio.run(simulate(config))
    assert report.ok, report.first_failure
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    return manifest


def _post_the_rest(exporter_url: str, meeting_id: str, number: str) -> None:
    """What the simulator's steady state lacks: a departed participant in the meeting (with
    the data summary that names the meeting's number), an ended call, a redelivery (a skipped
    item) and a request with a wrong signature."""
    departed = copy.deepcopy(example("meeting.participant_qos_summary"))
    departed["payload"]["object"]["uuid"] = meeting_id
    departed_data = copy.deepcopy(example("meeting.participant_data_summary"))
    departed_data["payload"]["object"].update(uuid=meeting_id, id=number)
    call = example("phone.call_qos")
    with httpx.Client(timeout=10) as client:

        def post(event: dict[str, Any], token: str = TOKEN) -> int:
            body = json.dumps(event).encode()
            signed = sign_headers(token, int(time.time()), body)
            headers = {"content-type": "application/json", **signed}
            return client.post(exporter_url + "/webhook", content=body, headers=headers).status_code

        assert post(call) == 200
        assert post(call) == 200  # a redelivery: stale, its sample skipped
        assert post(example("phone.call_qos_summary")) == 200
        assert post(departed) == 200
        assert post(departed_data) == 200
        assert post(call, token="not-the-secret") == 401


def _participants(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**p, "product": i["product"], "meeting_id": i["meeting_id"]}
        for i in manifest["instances"]
        for p in i["participants"]
        if not p["left"]
    ]


def _alerts(prometheus_url: str) -> set[Alert]:
    out = set()
    for result in query(prometheus_url, 'ALERTS{alertstate=~"pending|firing"}'):
        labels = result["metric"]
        who: tuple[str, ...]
        if "call_id" in labels:
            who = _CALL_PARTY
        elif "participant_id" in labels:
            who = _PARTICIPANT
        else:
            who = _FLEET
        ident = tuple(labels.get(k, "") for k in who)  # Prometheus drops empty labels
        out.add((labels["alertname"], labels["severity"], ident))
    return out


def _fleet_alerts(groups: dict[str, dict[str, list[dict[str, Any]]]]) -> set[Alert]:
    """The fleet alerts the manifest calls for: enough poor participants, a large enough share."""
    names = {
        "data_center": "ZoomDataCenterDegraded",
        "network_type": "ZoomNetworkTypeDegraded",
        "product": "ZoomProductDegraded",
    }
    out = set()
    for label, members_by_value in groups.items():
        for value, members in members_by_value.items():
            poor = sum(1 for p in members if p["degraded"])
            if value and poor >= MIN_POOR and poor / len(members) >= POOR_SHARE:
                ident = tuple(value if k == label else "" for k in _FLEET)
                out.add((names[label], "critical", ident))
    return out


def test_degradation_alerts_fire_for_the_degraded_only(run: Run) -> None:
    people = _participants(run.manifest)
    causes = Counter(p["cause"] for p in people)
    # Seed SEED: the weak-Wi-Fi site, the CPU-starved version and half the others degraded.
    assert causes == {None: 11, "wifi": 3, "cpu": 4, "network": 9, "latency": 3}, causes
    data_centers = _data_centers(run)
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {
        "data_center": {},
        "network_type": {},
        "product": {},
    }
    for p in people:
        for label in groups:
            value = data_centers[p["participant_id"]] if label == "data_center" else p[label]
            groups[label].setdefault(value, []).append(p)

    expected: set[Alert] = set()
    sometimes: set[Alert] = set()  # degraded values straddle these thresholds
    for p in (p for p in people if p["degraded"]):
        for qos_type in MEDIA:
            who = (p["product"], p["meeting_id"], p["participant_id"], qos_type)
            late = {("ZoomParticipantHighLatency", "info", who)}
            too_late = {("ZoomParticipantHighLatency", "warning", who)}
            lossy = {
                ("ZoomParticipantHighJitter", "warning", who),
                ("ZoomParticipantHighPacketLoss", "info", who),
            }
            mos = {("ZoomLowMOS", "warning", who)} if qos_type in AUDIO else set()
            loss_warning = {("ZoomParticipantHighPacketLoss", "warning", who)}
            if p["cause"] == "network":  # all of it: late, jittery and lossy
                expected |= late | lossy | mos
                sometimes |= too_late | loss_warning
            elif p["cause"] == "latency":  # far away, otherwise clean: 450 ms and more
                expected |= late | too_late | mos
            else:  # a weak Wi-Fi or a busy CPU: jittery and lossy, on time
                expected |= lossy
                sometimes |= loss_warning | mos
    for call in (c for c in run.manifest["phone_calls"] if c["degraded"]):
        for role, user in (("caller", call["caller_id"]), ("callee", call["callee_id"])):
            for direction in ("sending", "receiving"):
                expected.add(("ZoomLowMOS", "warning", (call["call_id"], user, role, direction)))
    fleet = _fleet_alerts(groups)
    assert {name for name, _, _ in fleet} >= {"ZoomNetworkTypeDegraded", "ZoomProductDegraded"}
    expected |= fleet

    got = wait_for(
        "the degradation alerts of every degraded participant and call",
        lambda: (lambda alerts: alerts if alerts >= expected else None)(_alerts(run.prometheus)),
        timeout=30,
    )
    unexpected = got - expected - sometimes
    assert not unexpected, sorted(unexpected)
    healthy = {p["participant_id"] for p in people if not p["degraded"]}
    healthy |= {c["call_id"] for c in run.manifest["phone_calls"] if not c["degraded"]}
    assert not {a for a in got if set(a[2]) & healthy}
    # The exporter is up, receives events, and one bad signature stays under the threshold.
    assert not {a for a in got if a[0].startswith("ZoomQSS")}


def _data_centers(run: Run) -> dict[str, str]:
    wanted = {p["participant_id"] for p in _participants(run.manifest)}

    def probe() -> dict[str, str] | None:
        info = query(run.prometheus, "zoom_participant_info")
        found = {r["metric"]["participant_id"]: r["metric"].get("data_center", "") for r in info}
        return found if wanted <= set(found) else None

    return wait_for("every participant's info in Prometheus", probe, timeout=30)


def test_every_rule_is_healthy_and_every_recording_rule_has_data(run: Run) -> None:
    for name in sorted(recorded_names(ALERT_FILE, RECORDING_FILE, LIVE_FILE)):
        has_data(run.prometheus, name)
    groups = api(run.prometheus, "rules")["groups"]
    assert {group["name"] for group in groups} >= {"zoom-qss-analytics.rules"}
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))


def _needs_the_analytics(run: Run) -> None:
    """The quality analytics' rules and the Trends dashboard read counters that the exporter
    gains with its analytics; until it exposes them, there is no data to find here (the
    promtool tests of rules/tests/analytics.yaml and tests/test_dashboards.py cover them)."""
    metrics = httpx.get(f"{run.exporter}/metrics", timeout=10).text
    if "zoom_qos_stream_minutes_total" not in metrics:
        pytest.skip("this exporter does not expose the quality analytics counters yet")


def test_every_analytics_recording_rule_has_data(run: Run) -> None:
    _needs_the_analytics(run)
    for name in sorted(recorded_names(ANALYTICS_FILE)):
        has_data(run.prometheus, name)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_data(run: Run, path: Path) -> None:
    board = load(path)
    if board["uid"] == "zoom-qss-trends":
        _needs_the_analytics(run)
    values = default_values(board)
    if board["uid"] == "zoom-qss-meeting":
        values |= {"product": "meeting", "meeting": run.meeting}
        meeting = next(i for i in run.manifest["instances"] if i["meeting_id"] == run.meeting)
        assert any(p["network_type"] == "Wifi" for p in meeting["participants"])  # RSSI
    for where, expr in queries(board):
        has_data(run.prometheus, substitute(expr, values), where)


def test_the_meeting_picker_finds_each_instance_by_number_or_name(run: Run) -> None:
    """The picker's query on the real Prometheus, its results made into options as Grafana
    makes them: each instance once, shown by the number or name people know it by where an
    event gave one, selecting its uuid."""
    picker = variables(load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting")))
    match = QUERY_RESULT.match(picker["meeting"]["query"])
    assert match
    for instance in run.manifest["instances"]:
        product, uuid = instance["product"], instance["meeting_id"]
        promql = substitute(match.group(1), {"product": product, "site": ".*", "search": ""})

        def probe(promql: str = promql) -> list[tuple[str, str]] | None:
            results = [r["metric"] for r in query(run.prometheus, promql)]
            options = grafana_options(picker["meeting"]["regex"], results)
            return options if len(options) == 1 else None

        (option,) = wait_for(f"the {product} picker", probe, timeout=15)
        if product == "webinar":  # the simulator names a webinar's number in summaries only
            assert option == (uuid, uuid)
        else:  # the meeting's number from the data summary posted; a session's name
            assert option == (f"{instance['known_as']} · {uuid}", uuid)


def test_the_search_finds_a_meeting_by_a_participants_name(run: Run) -> None:
    """Typed in the meeting drill-down's search, a participant's name (in other case) puts
    their session first among the meeting picker's options, and them first among the
    participant picker's (found: valued above any rank); a name nobody has finds nothing."""
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting"))
    pickers = variables(board)
    person = next(p for p in _participants(run.manifest) if p["product"] == "session")
    values = {"product": "session", "site": ".*", "meeting": person["meeting_id"]}

    def first(name: str, search: str) -> tuple[str, str, float] | None:
        match = QUERY_RESULT.match(pickers[name]["query"])
        assert match
        promql = substitute(match.group(1), values | {"search": search})
        results = query(run.prometheus, promql)
        options = grafana_options(pickers[name]["regex"], [r["metric"] for r in results])
        return (*options[0], float(results[0]["value"][1])) if options else None

    name = person["user_name"]
    meeting = wait_for("the session found", lambda: first("meeting", name.upper()), timeout=15)
    assert meeting[1:] == (person["meeting_id"], 1e9)
    found = first("participant", name.lower())
    assert found == (f"{name} · {person['participant_id']}", person["participant_id"], 1e9)
    nobody = first("meeting", "nobody is called this")
    assert nobody and nobody[1] == person["meeting_id"] and nobody[2] < 1e9  # ranked, not found


def has_data(prometheus_url: str, promql: str, where: str = "") -> None:
    """Polls until the query returns a series (rules and rates need a few evaluations)."""

    def probe() -> bool | None:
        return True if query(prometheus_url, promql) else None

    wait_for(f"data for {where or promql}: {promql}", probe, timeout=15)
