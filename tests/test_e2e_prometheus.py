"""End to end: the console script serving, the simulator posting signed traffic over loopback,
and a real Prometheus (Debian's package) scraping it; checked through Prometheus' HTTP API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from prometheus_harness import by_label, exporter, prometheus, query, scalar, wait_for
from zoom_qss_exporter.simulate.run import SimulationConfig, simulate

TOKEN = "e2e-secret-token"


@pytest.fixture
def exporter_url(tmp_path: Path) -> Iterator[str]:
    with exporter(tmp_path, TOKEN) as url:
        yield url


@pytest.fixture
def prometheus_url(tmp_path: Path, exporter_url: str) -> Iterator[str]:
    with prometheus(tmp_path, exporter_url) as url:
        yield url


def test_prometheus_scrapes_simulated_traffic(
    tmp_path: Path, exporter_url: str, prometheus_url: str
) -> None:
    manifest_path = tmp_path / "manifest.json"
    config = SimulationConfig(
        secret_token=TOKEN,
        target=exporter_url + "/webhook",
        meetings=3,
        participants=4,
        phone_calls=4,
        rate=400,
        count=400,
        duration=60,
        interval=1,
        degraded_share=0.5,
        churn=0.0,
        seed=11,
        manifest=manifest_path,
    )
    report = asyncio.run(simulate(config))
    assert report.ok, report.first_failure
    manifest = json.loads(manifest_path.read_text())
    participants = {
        p["participant_id"]: p["cause"]
        for instance in manifest["instances"]
        for p in instance["participants"]
    }
    calls = {c["call_id"]: c["degraded"] for c in manifest["phone_calls"]}
    assert {None, "network"} <= set(participants.values())

    worst_latency = 'max by (participant_id) (zoom_qos_latency_seconds{qos_type="audio_input"})'
    latencies = wait_for(
        "every participant in Prometheus",
        lambda: (lambda got: got if set(got) == set(participants) else None)(
            by_label(query(prometheus_url, worst_latency), "participant_id")
        ),
    )
    for participant, cause in participants.items():
        if cause in ("network", "latency"):  # a bad or a far network: late packets
            assert latencies[participant] >= 0.3, participant
        else:  # healthy, or packets lost near the client (a weak Wi-Fi, a busy CPU): on time
            assert latencies[participant] <= 0.08, participant

    worst_mos = "min by (call_id) (zoom_phone_mos)"
    mos = wait_for(
        "every call in Prometheus",
        lambda: (lambda got: got if set(got) == set(calls) else None)(
            by_label(query(prometheus_url, worst_mos), "call_id")
        ),
    )
    for call, degraded in calls.items():
        assert (mos[call] < 3.5) if degraded else (mos[call] >= 4.0), call

    up = query(prometheus_url, 'up{job="zoom-qss-exporter"}')
    assert [float(r["value"][1]) for r in up] == [1.0]
    counted = 'sum(zoom_qss_exporter_events_total{outcome=~"accepted|stale"})'
    wait_for(
        "every sent event counted by the exporter",
        lambda: True if scalar(prometheus_url, counted) == report.total else None,
    )
