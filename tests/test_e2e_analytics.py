"""The quality analytics end to end: the simulator (one weak-Wi-Fi site, one CPU-starved client
version, redeliveries) feeds a real exporter with no per-participant series, a real Prometheus
scrapes it with the analytics recording rules, and the Trends dashboard's own queries name the
site and the version with their cause; the stream-minutes counted are those sent, each once."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixin_harness import DASHBOARDS, default_values, load, panels, substitute
from prometheus_harness import api, by_label, exporter, prometheus, query, wait_for
from zoom_qss_exporter.simulate.run import SimulationConfig, SimulationReport, simulate

TOKEN = "e2e-analytics-token"
RULES = Path(__file__).resolve().parents[1] / "rules" / "zoom-qss-analytics.yaml"
WEAK_WIFI_SITE = "Lyon Office"
CPU_STARVED = "5.16"  # the simulator's 5.16.10.26186, as the analytics label it


@dataclass
class Run:
    exporter: str
    prometheus: str
    report: SimulationReport
    manifest: dict[str, Any]
    at: float  # when the Trends queries are evaluated: the next 5-minute boundary


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("analytics")
    sites = directory / "sites.yaml"
    asyncio.run(simulate(_config(sites_file=sites, sites_only=True)))
    flags = ("--no-store.per-participant", f"--analytics.sites-file={sites}")
    with (
        exporter(directory, TOKEN, *flags) as exporter_url,
        prometheus(directory, exporter_url, [RULES]) as prometheus_url,
    ):
        wait_for("a first scrape", lambda: query(prometheus_url, "up == 1") or None, timeout=30)
        manifest_path = directory / "manifest.json"
        report = asyncio.run(
            simulate(_config(target=exporter_url + "/webhook", manifest=manifest_path))
        )
        assert report.ok, report.first_failure
        counted = _exported_total(exporter_url)

        def scraped() -> float | None:
            raw = query(prometheus_url, "timestamp(sum(zoom_qos_stream_minutes_total))")
            total = query(prometheus_url, "sum(zoom_qos_stream_minutes_total)")
            done = raw and total and float(total[0]["value"][1]) == counted
            return float(raw[0]["value"][1]) if done else None

        last_scrape = wait_for("Prometheus to scrape the last counts", scraped, timeout=30)

        def recorded_after() -> bool | None:
            stamps = query(
                prometheus_url,
                "max(timestamp(product_account_site:zoom_qos_stream_minutes:rate5m))",
            )
            return True if stamps and float(stamps[0]["value"][1]) > last_scrape else None

        wait_for("the rules to see the last scrape", recorded_after, timeout=30)
        yield Run(
            exporter_url,
            prometheus_url,
            report,
            json.loads(manifest_path.read_text()),
            math.ceil(time.time() / 300) * 300,
        )


def _config(**fields: Any) -> SimulationConfig:
    return SimulationConfig(
        **{
            "secret_token": TOKEN,
            "meetings": 9,  # three each of meetings, webinars, sessions
            "participants": 10,
            "phone_calls": 3,
            "rate": 500,
            "duration": 8,
            "interval": 2,  # four rounds
            "degraded_share": 0.1,
            "churn": 0.0,
            "accounts": 2,
            "redeliver_share": 0.15,
            "concurrency": 4,
            "seed": 20261206,
            **fields,
        }
    )


def _exported_total(exporter_url: str) -> float:
    text = httpx.get(exporter_url + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("zoom_qos_stream_minutes_total{")
    )


def test_each_stream_minute_sent_is_counted_once(run: Run) -> None:
    sent = run.manifest["stream_minutes"]
    assert sent["redelivered"] > 0, "the simulator redelivered nothing: no redelivery tested"
    assert _exported_total(run.exporter) == sent["delivered"]
    poor = sum(n for cause, n in sent["by_cause"].items() if cause != "good")
    text = httpx.get(run.exporter + "/metrics", timeout=10).text
    counted_poor = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("zoom_qos_poor_stream_minutes_total{")
    )
    assert counted_poor == poor
    assert "zoom_qos_latency_seconds{" not in text  # no per-participant series in this mode


def test_the_causes_counted_are_those_the_simulator_caused(run: Run) -> None:
    sent = run.manifest["stream_minutes"]["by_cause"]
    counted = by_label(
        query(run.prometheus, "sum by (cause) (zoom_qos_poor_stream_minutes_total)"), "cause"
    )
    assert counted == {cause: n for cause, n in sent.items() if cause != "good" and n}


def _trends(title: str, ref: str = "A") -> str:
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-trends"))
    values = default_values(board) | {"window": "1h"}
    (expr,) = [
        t["expr"]
        for p in panels(board)
        if p["title"] == title
        for t in p["targets"]
        if t["refId"] == ref
    ]
    return substitute(expr, values)


def _at(run: Run, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api(run.prometheus, "query", query=promql, time=str(run.at))[
        "result"
    ]
    return result


def test_the_trends_worst_sites_table_puts_the_weak_wifi_site_first(run: Run) -> None:
    shares = by_label(_at(run, _trends("The ten worst sites")), "site")
    assert max(shares, key=shares.__getitem__) == WEAK_WIFI_SITE, shares
    # every office, the remote workers (external), and the phone calls (no address: unknown)
    assert set(shares) == {*run.manifest["by_site"], "unknown"}
    causes = {
        cause: by_label(_at(run, _trends("The ten worst sites", ref)), "site").get(
            WEAK_WIFI_SITE, 0
        )
        for ref, cause in zip(
            "EFGHI", ("wifi", "cpu", "network", "latency", "unknown"), strict=True
        )
    }
    assert max(causes, key=causes.__getitem__) == "wifi", causes


def test_the_trends_clients_table_puts_the_cpu_starved_version_first(run: Run) -> None:
    results = _at(run, _trends("Client platforms and versions"))
    worst = max(results, key=lambda r: float(r["value"][1]))
    assert worst["metric"]["version"] == CPU_STARVED, results
    causes = by_label(
        _at(
            run,
            "sum by (cause) (product_platform_version_cause:zoom_qos_client_poor_stream_minutes"
            f':rate5m{{version="{CPU_STARVED}"}})',
        ),
        "cause",
    )
    assert max(causes, key=causes.__getitem__) == "cpu", causes


def test_the_sites_reach_the_exporter_and_nothing_folds(run: Run) -> None:
    text = httpx.get(run.exporter + "/metrics", timeout=10).text
    assert "zoom_qss_exporter_analytics_sites 5.0" in text
    assert "zoom_qss_exporter_analytics_invalid_addresses_total 0.0" in text
    for line in text.splitlines():
        if line.startswith("zoom_qss_exporter_analytics_folds_total{"):
            assert line.endswith(" 0.0"), line
