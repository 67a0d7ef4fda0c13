"""End to end for the monitoring: a real Prometheus (Debian's package) loads the generated rules
and scrapes the exporter (with the simulator's sites) while the simulator sends traffic with
degraded participants and calls. Checked through Prometheus' HTTP API: the quality alerts are
pending or firing for exactly the degraded participants, calls and meetings, and for the sites,
network types, data centers, client versions and products whose share of poor stream-minutes
calls for it; every rule is healthy and every recording rule evaluates; and every dashboard
query (variables substituted as Grafana would) parses and returns data.

The rules are generated (``python -m mixin --thresholds FILE --out DIR``) from the shipped
thresholds with no minimum of people affected: the simulated fleet is a few dozen people for a
few seconds, and the minimums are unit-tested (rules/tests/)."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import example
from mixin_harness import (
    DASHBOARDS,
    QUERY_RESULT,
    ROOT,
    default_values,
    generated_rules,
    grafana_options,
    load,
    load_yaml,
    queries,
    recorded_names,
    rules,
    substitute,
    variables,
)
from prometheus_harness import JOB, api, exporter, prometheus, query, wait_for
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.simulate.run import SimulationConfig, simulate

TOKEN = "e2e-monitoring-token"
SEED = 20240611
THRESHOLDS = load_yaml(ROOT / "mixin" / "thresholds.yaml")
EXCLUDED = {"unknown", "other"}  # analytics values no site, network or client alert names
# A share predicted from the exporter's counters and one Prometheus computes from their rates
# differ a little (a counter's first scrape is its rate's base): within this factor of a
# threshold either way, an alert may or may not be there.
MARGIN = 1.5

Alert = tuple[str, str, tuple[str, ...]]  # alertname, severity, who (identifying labels)
IDENTITY = {  # the labels that say what an alert is about
    "ZoomParticipantPoorQuality": ("product", "meeting_id", "participant_id"),
    "ZoomMeetingPoorQuality": ("product", "meeting_id"),
    "ZoomPhoneCallPoorQuality": ("call_id", "user_id", "role"),
    "ZoomSiteDegraded": ("account", "site"),
    "ZoomNetworkTypeRegression": ("account", "network_type"),
    "ZoomDataCenterRegression": ("data_center",),
    "ZoomClientVersionRegression": ("platform", "version"),
    "ZoomQualityErrorBudgetBurn": ("product", "account", "long", "short"),
}


@dataclass
class Run:
    exporter: str
    prometheus: str
    manifest: dict[str, Any]
    meeting: str  # the product="meeting" instance, also holding a departed participant
    rule_files: list[Path]
    counters: dict[str, list[tuple[dict[str, str], float]]]  # the analytics', after the run


def _rules(directory: Path) -> list[Path]:
    """The rules of the shipped thresholds without their minimums of people affected."""
    thresholds = copy.deepcopy(THRESHOLDS)
    for section in ("slo", "site", "regression"):
        thresholds[section]["min_people"] = 0
    return generated_rules(directory, thresholds)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("monitoring")
    rule_files = _rules(directory)
    sites = directory / "sites.yaml"
    asyncio.run(simulate(SimulationConfig(secret_token=TOKEN, sites_file=sites, sites_only=True)))
    with (
        exporter(directory, TOKEN, f"--analytics.sites-file={sites}") as exporter_url,
        prometheus(directory, exporter_url, rule_files) as prometheus_url,
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
        _end_more(exporter_url, prometheus_url, meeting["meeting_id"])
        counters = _counters(exporter_url)
        yield Run(
            exporter_url, prometheus_url, manifest, meeting["meeting_id"], rule_files, counters
        )


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


def _post(
    client: httpx.Client, exporter_url: str, event: dict[str, Any], token: str = TOKEN
) -> int:
    body = json.dumps(event).encode()
    signed = sign_headers(token, int(time.time()), body)
    headers = {"content-type": "application/json", **signed}
    return client.post(exporter_url + "/webhook", content=body, headers=headers).status_code


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
        assert _post(client, exporter_url, call) == 200
        assert _post(client, exporter_url, call) == 200  # a redelivery: stale, sample skipped
        assert _post(client, exporter_url, example("phone.call_qos_summary")) == 200
        assert _post(client, exporter_url, departed) == 200
        assert _post(client, exporter_url, departed_data) == 200
        assert _post(client, exporter_url, call, token="not-the-secret") == 401


def _end_more(exporter_url: str, prometheus_url: str, meeting_id: str) -> None:
    """A second ended call and a second departure, once Prometheus has scraped the first: a
    counter's rate starts at its second sample, so the calls' and the participations' recorded
    rates and shares have something to show."""
    # the examples' accounts: the simulator's calls and participants open rows at 0 of their own
    call_account = example("phone.call_qos_summary")["payload"]["account_id"]
    meeting_account = example("meeting.participant_qos_summary")["payload"]["account_id"]
    for counter in (
        f'zoom_phone_calls_total{{account="{call_account}"}} > 0',
        f'zoom_qos_participations_total{{account="{meeting_account}"}} > 0',
    ):

        def scraped(counter: str = counter) -> bool | None:
            return True if query(prometheus_url, counter) else None

        wait_for(f"the first {counter} scraped", scraped)
    call = copy.deepcopy(example("phone.call_qos_summary"))
    call["payload"]["object"]["call_id"] = "6971668082545971779"
    departed = copy.deepcopy(example("meeting.participant_qos_summary"))
    departed["payload"]["object"]["uuid"] = meeting_id
    departed["payload"]["object"]["participant"].update(participant_id="second", id="second")
    with httpx.Client(timeout=10) as client:
        assert _post(client, exporter_url, call) == 200
        assert _post(client, exporter_url, departed) == 200


def _counters(exporter_url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The analytics' counters as the exporter holds them after the run: name to samples."""
    text = httpx.get(exporter_url + "/metrics", timeout=10).text
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("stream_minutes_total"):
                out[sample.name].append((dict(sample.labels), sample.value))
    return out


def _participants(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**p, "product": i["product"], "meeting_id": i["meeting_id"]}
        for i in manifest["instances"]
        for p in i["participants"]
        if not p["left"]
    ]


def _alerts(prometheus_url: str) -> dict[Alert, dict[str, str]]:
    """Every pending or firing alert of the quality rules (and any other, by its name alone),
    with its labels."""
    out = {}
    for result in query(prometheus_url, 'ALERTS{alertstate=~"pending|firing"}'):
        labels = result["metric"]
        who = IDENTITY.get(labels["alertname"], ())
        ident = tuple(labels.get(k, "") for k in who)  # Prometheus drops empty labels
        out[(labels["alertname"], labels["severity"], ident)] = labels
    return out


def _shares(
    run: Run, family: str, by: tuple[str, ...]
) -> dict[tuple[str, ...], tuple[float, float]]:
    """(poor share, stream-minutes) of the run by ``by``, from the exporter's counters."""
    total: dict[tuple[str, ...], float] = defaultdict(float)
    poor: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, value in run.counters[f"zoom_qos{family}_stream_minutes_total"]:
        total[tuple(labels[k] for k in by)] += value
    for labels, value in run.counters[f"zoom_qos{family}_poor_stream_minutes_total"]:
        poor[tuple(labels[k] for k in by)] += value
    return {key: (poor[key] / count, count) for key, count in total.items() if count}


def _by_share(
    shares: dict[tuple[str, ...], tuple[float, float]], threshold: float, name: str, severity: str
) -> tuple[set[Alert], set[Alert]]:
    """The alerts of ``name`` these shares call for, and those they may or may not."""
    expected, sometimes = set(), set()
    for key, (share, _) in shares.items():
        if EXCLUDED & set(key[-1:]):
            continue
        alert = (name, severity, key)
        if share >= threshold * MARGIN:
            expected.add(alert)
        elif share > threshold / MARGIN:
            sometimes.add(alert)
    return expected, sometimes


def _meeting_threshold(participants: int) -> float:
    meeting: dict[str, float] = THRESHOLDS["meeting"]
    if participants >= meeting["min_participants"]:
        return min(meeting["poor_share"] * participants, meeting["poor_participants"])
    return meeting["poor_participants"]


def test_quality_alerts_fire_for_the_degraded_only(run: Run) -> None:
    people = _participants(run.manifest)
    causes = Counter(p["cause"] for p in people)
    # Seed SEED: the weak-Wi-Fi site, the CPU-starved version and half the others degraded.
    assert causes == {None: 11, "wifi": 3, "cpu": 4, "network": 9, "latency": 3}, causes

    expected: set[Alert] = set()
    sometimes: set[Alert] = set()
    who: tuple[str, ...]
    # one alert per degraded participant (every one of them has a stream over a poor
    # threshold: the late are 450 ms and more, the others' jitter is over 30 ms)
    for p in (p for p in people if p["degraded"]):
        who = (p["product"], p["meeting_id"], p["participant_id"])
        expected.add(("ZoomParticipantPoorQuality", "info", who))
    # one per party of a degraded call
    for call in (c for c in run.manifest["phone_calls"] if c["degraded"]):
        for role, user in (("caller", call["caller_id"]), ("callee", call["callee_id"])):
            expected.add(("ZoomPhoneCallPoorQuality", "info", (call["call_id"], user, role)))
    # one per meeting with enough of them poor
    for instance in run.manifest["instances"]:
        here = [p for p in people if p["meeting_id"] == instance["meeting_id"]]
        poor = sum(1 for p in here if p["degraded"])
        if poor and poor >= _meeting_threshold(len(here)):
            who = (instance["product"], instance["meeting_id"])
            expected.add(("ZoomMeetingPoorQuality", "warning", who))
    # sites, network types, data centers and client versions: new, so compared with the floor
    site, regression = THRESHOLDS["site"], THRESHOLDS["regression"]
    for shares, threshold, name, severity in (
        (
            _shares(run, "", ("account", "site")),
            site["min_increase"],
            "ZoomSiteDegraded",
            "critical",
        ),
        (
            _shares(run, "", ("account", "network_type")),
            regression["min_increase"],
            "ZoomNetworkTypeRegression",
            "warning",
        ),
        (
            _shares(run, "_path", ("data_center",)),
            regression["min_increase"],
            "ZoomDataCenterRegression",
            "warning",
        ),
        (
            _shares(run, "_client", ("platform", "version")),
            regression["min_increase"],
            "ZoomClientVersionRegression",
            "warning",
        ),
    ):
        certain, maybe = _by_share(shares, threshold, name, severity)
        expected |= certain
        sometimes |= maybe
    # the error budget, by product and account: every window holds the same few seconds
    budget = 1 - THRESHOLDS["slo"]["objective"]
    for rate in THRESHOLDS["slo"]["burn_rates"]:
        shares = {
            (product, account, rate["long"], rate["short"]): value
            for (product, account), value in _shares(run, "", ("product", "account")).items()
        }
        certain, maybe = _by_share(
            shares, rate["factor"] * budget, "ZoomQualityErrorBudgetBurn", rate["severity"]
        )
        expected |= certain
        sometimes |= maybe
    assert {name for name, _, _ in expected} >= set(IDENTITY)  # every quality alert is at stake

    def probe() -> dict[Alert, dict[str, str]] | None:
        alerts = _alerts(run.prometheus)
        return alerts if set(alerts) >= expected else None

    got = wait_for("the quality alerts of the degraded", probe, timeout=60)
    unexpected = set(got) - expected - sometimes
    assert not unexpected, sorted(unexpected)
    healthy = {p["participant_id"] for p in people if not p["degraded"]}
    healthy |= {c["call_id"] for c in run.manifest["phone_calls"] if not c["degraded"]}
    assert not {a for a in got if set(a[2]) & healthy}
    # The exporter is up, receives events, and one bad signature stays under the threshold.
    assert not {a for a in got if a[0].startswith("ZoomQSS")}
    # A participant's alert says where they are: the site of the sites file, the network and
    # the data center of their info, joined in the expression.
    info = _infos(run)
    sites = {p["participant_id"]: p["site"] for p in people}
    for (name, _, ident), labels in got.items():
        if name == "ZoomParticipantPoorQuality":
            participant = ident[2]
            assert labels["site"] == sites[participant], labels
            for label in ("network_type", "data_center", "client_version", "user_name"):
                assert labels.get(label, "") == info[participant].get(label, ""), label


def _infos(run: Run) -> dict[str, dict[str, str]]:
    wanted = {p["participant_id"] for p in _participants(run.manifest)}

    def probe() -> dict[str, dict[str, str]] | None:
        found = {
            r["metric"]["participant_id"]: r["metric"]
            for r in query(run.prometheus, "zoom_participant_info")
        }
        return found if wanted <= set(found) else None

    return wait_for("every participant's info in Prometheus", probe, timeout=30)


def _baselines(run: Run) -> set[str]:
    """The baselines: recorded only once a day of history exists, so none in this run."""
    names = set()
    for section in ("site", "regression"):
        names |= {
            name
            for path in run.rule_files
            for name in recorded_names(path)
            if name.endswith(f":ratio_rate{THRESHOLDS[section]['baseline']}")
        }
    return names


def test_every_rule_is_healthy_and_every_recording_rule_has_data(run: Run) -> None:
    analytics = {path for path in run.rule_files if path.name == "zoom-qss-analytics.yaml"}
    for name in sorted(recorded_names(*(set(run.rule_files) - analytics)) - _baselines(run)):
        has_data(run.prometheus, name)
    assert _baselines(run)  # evaluated (healthy below), empty until there is a day of history
    assert all(rules(path) for path in run.rule_files)
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
    analytics = [path for path in run.rule_files if path.name == "zoom-qss-analytics.yaml"]
    for name in sorted(recorded_names(*analytics)):
        has_data(run.prometheus, name)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_data(run: Run, path: Path) -> None:
    board = load(path)
    at = None
    if board["uid"] == "zoom-qss-trends":
        _needs_the_analytics(run)
        # its windows sum the recorded 5-minute rates at 5-minute steps
        # (sum_over_time(x[1d:5m])): asked at the next 5-minute boundary, the step there
        # holds this run's rates, whenever the run started (tests/test_e2e_analytics.py too)
        at = math.ceil(time.time() / 300) * 300
    values = default_values(board)
    if board["uid"] == "zoom-qss-meeting":
        values |= {"product": "meeting", "meeting": run.meeting}
        meeting = next(i for i in run.manifest["instances"] if i["meeting_id"] == run.meeting)
        assert any(p["network_type"] == "Wifi" for p in meeting["participants"])  # RSSI
    causes = {
        labels["cause"]
        for name, samples in run.counters.items()
        if "poor" in name
        for labels, value in samples
        if value
    }
    for where, expr in queries(board):
        # The Trends dashboard's week before (none yet) and its columns of a cause this run
        # had no poor minute of: tests/test_dashboards.py evaluates them over 8 days of counters.
        cause = re.search(r'cause="(\w+)"', expr)
        if " offset " in expr or (cause and cause.group(1) not in causes):
            continue
        windowed = at if ":5m]" in expr else None  # the windows, not the raw series' rates
        has_data(run.prometheus, substitute(expr, values), where, at=windowed)


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


def has_data(prometheus_url: str, promql: str, where: str = "", at: float | None = None) -> None:
    """Polls until the query returns a series (rules and rates need a few evaluations), at
    ``at`` (a Unix time) if given, else now."""

    def probe() -> bool | None:
        if at is None:
            return True if query(prometheus_url, promql) else None
        found = api(prometheus_url, "query", query=promql, time=str(at))["result"]
        return True if found else None

    wait_for(f"data for {where or promql}: {promql}", probe, timeout=15)
