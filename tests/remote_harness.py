"""Remote write end to end, shared by test_e2e_remote_write and test_e2e_durability:
Prometheus as a remote-write receiver, simulated rounds of events and the samples they should
become, what a receiver stored, and the exporter's own metrics."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from conftest import parse_metrics
from prometheus_harness import api, free_port, serving, wait_for
from zoom_qss_exporter.ingest.convert import ConvertOptions, convert
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.remote.protocol import milliseconds, series_labels
from zoom_qss_exporter.simulate.events import Fleet

TOKEN = "e2e-remote-write-token"
FAST = [
    "--web.metrics-cache=0s",  # each look at the queue sees it now
    "--remote-write.flush-interval=100ms",
    "--remote-write.min-backoff=50ms",
    "--remote-write.max-backoff=300ms",
]
Series = frozenset[tuple[str, str]]
Samples = dict[Series, dict[int, float]]
Event = dict[str, Any]


@contextlib.contextmanager
def receiver(
    directory: Path, port: int | None = None, ooo_window: str = ""
) -> Iterator[tuple[str, int]]:
    """Prometheus as a remote-write receiver (no scraping); yields its URL and port. An
    out-of-order window lets it take samples older than its newest, as several replicas or
    Zoom's late retries need (docs/remote-write.md)."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: run scripts/setup (installs Debian's prometheus)"
    port = port or free_port()
    config = directory / "prometheus.yml"
    storage = (
        f"storage:\n  tsdb:\n    out_of_order_time_window: {ooo_window}\n" if ooo_window else ""
    )
    config.write_text("global:\n  scrape_interval: 1m\n" + storage)
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
    ]
    with serving("Prometheus", argv, port, directory / "prometheus.log", cwd=directory) as url:
        yield url, port


def rounds(seed: int, count: int, start: float, **fleet: Any) -> list[list[Event]]:
    """``count`` rounds of a simulated account, a minute apart from ``start``: the join data
    events, then everyone's QoS (and the summaries and data of who leaves or joins)."""
    simulated = Fleet(seed, **fleet)
    out = [simulated.join_events(start)]
    turns = simulated.turns()
    for n in range(count):
        events: list[Event] = []
        following = []
        for turn in turns:
            produced, after = simulated.step(turn, start + 60 * (n + 1))
            events += produced
            following += after
        turns = following
        out.append(events)
    return out


def samples_of(event: Event) -> Samples:
    """The gauge samples the exporter converts ``event`` into (labels as stored, empty ones
    left out), by series and millisecond. Info is checked on its own: it is merged."""
    parsed = EVENT_MODELS[event["event"]].model_validate(event)
    out: Samples = {}
    for sample in convert(parsed, ConvertOptions()).samples:
        series = frozenset(series_labels(sample.family, sample.labels))
        out.setdefault(series, {})[milliseconds(sample.timestamp)] = sample.value
    return out


def merge(into: Samples, more: Samples) -> Samples:
    for series, points in more.items():
        into.setdefault(series, {}).update(points)
    return into


def stored(prometheus: str, selector: str = '{__name__=~"zoom_.+"}') -> Samples:
    """Every sample of the last three hours, as Prometheus has them."""
    data = api(prometheus, "query", query=f"{selector}[3h]", time=str(time.time() + 60))
    return {
        frozenset(r["metric"].items()): {round(float(t) * 1000): float(v) for t, v in r["values"]}
        for r in data["result"]
    }


def exporter_metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return parse_metrics(httpx.get(url + "/metrics", timeout=10).text)


def metric(url: str, name: str, **labels: str) -> float:
    return exporter_metrics(url).get((name, frozenset(labels.items())), 0.0)


def drained(url: str) -> bool | None:
    return metric(url, "zoom_qss_exporter_remote_write_queue_samples") == 0 or None


def post(url: str, event: Event, client: httpx.Client | None = None) -> httpx.Response:
    """One delivery signed as Zoom signs it, on ``client`` (keep-alive, as Zoom's) or alone."""
    body = json.dumps(event).encode()
    headers = {"content-type": "application/json", **sign_headers(TOKEN, int(time.time()), body)}
    if client is None:
        return httpx.post(url + "/webhook", content=body, headers=headers, timeout=10)
    return client.post(url + "/webhook", content=body, headers=headers)


@contextlib.contextmanager
def exporter_process(
    directory: Path,
    remote: str,
    wal: Path,
    *flags: str,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The console script with remote write and its log in ``wal``; yields its URL and
    process (a test may kill it)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")}
    env["ZOOM_WEBHOOK_SECRET_TOKEN"] = TOKEN
    argv = [
        sys.executable,
        "-m",
        "zoom_qss_exporter.cli",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--remote-write.url={remote}",
        f"--remote-write.wal-directory={wal}",
        *flags,
    ]
    url = f"http://127.0.0.1:{port}"
    with (directory / f"exporter-{port}.log").open("wb") as log:
        # through a pipe: a file size limit of the child (small_disk) must not cut its log
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, preexec_fn=preexec_fn
        )
        assert process.stdout is not None
        pump = threading.Thread(target=shutil.copyfileobj, args=(process.stdout, log), daemon=True)
        pump.start()
        try:
            wait_for("the exporter", lambda: _ready(url, process))
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=60)
            pump.join(timeout=10)
            process.stdout.close()


def _ready(url: str, process: subprocess.Popen[bytes]) -> bool | None:
    if process.poll() is not None:
        raise AssertionError(f"the exporter exited with {process.returncode}")
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url + "/-/ready").status_code == 200 or None
    return None
