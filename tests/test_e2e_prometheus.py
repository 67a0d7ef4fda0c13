"""End to end: the console script serving, the simulator posting signed traffic over loopback,
and a real Prometheus (Debian's package) scraping it; checked through Prometheus' HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from zoom_qss_exporter.simulate import SimulationConfig, simulate

TOKEN = "e2e-secret-token"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something other than None (or fail after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except httpx.TransportError:
            result = None
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def serving(name: str, argv: list[str], port: int, log: Path, **popen: Any) -> Iterator[str]:
    """Run a server process until the block ends; yields its URL once ``/-/ready`` says so."""
    with log.open("w") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, **popen)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(name, lambda: httpx.get(url + "/-/ready").status_code == 200 or None)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def exporter_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")}
    env["ZOOM_WEBHOOK_SECRET_TOKEN"] = TOKEN
    argv = [sys.executable, "-m", "zoom_qss_exporter.cli", f"--web.listen-address=127.0.0.1:{port}"]
    with serving("the exporter", argv, port, tmp_path / "exporter.log", env=env) as url:
        yield url


@pytest.fixture
def prometheus_url(tmp_path: Path, exporter_url: str) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: run scripts/setup (installs Debian's prometheus)"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: zoom-qss-exporter\n"
        f"    static_configs:\n      - targets: ['{exporter_url.removeprefix('http://')}']\n"
    )
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with serving("Prometheus", argv, port, tmp_path / "prometheus.log") as url:
        yield url


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(prometheus + "/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def scalar(prometheus: str, promql: str) -> float | None:
    result = query(prometheus, promql)
    return float(result[0]["value"][1]) if result else None


def by_label(results: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in results}


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
        p["participant_id"]: p["degraded"]
        for instance in manifest["instances"]
        for p in instance["participants"]
    }
    calls = {c["call_id"]: c["degraded"] for c in manifest["phone_calls"]}
    assert any(participants.values()) and not all(participants.values())

    worst_latency = 'max by (participant_id) (zoom_qos_latency_seconds{qos_type="audio_input"})'
    latencies = wait_for(
        "every participant in Prometheus",
        lambda: (lambda got: got if set(got) == set(participants) else None)(
            by_label(query(prometheus_url, worst_latency), "participant_id")
        ),
    )
    for participant, degraded in participants.items():
        if degraded:
            assert latencies[participant] >= 0.3, participant
        else:
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
