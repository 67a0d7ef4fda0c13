"""End-to-end harness: the console script and Debian's Prometheus as real processes on
loopback, waited for by polling (never by sleeping a fixed time), queried over HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
JOB = "zoom-qss-exporter"  # the job name the rules' exporter_selector expects


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


@contextlib.contextmanager
def exporter(directory: Path, token: str, *flags: str) -> Iterator[str]:
    """``python -m zoom_qss_exporter.cli`` with ``token`` as its secret and ``flags``; yields
    its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")}
    env["ZOOM_WEBHOOK_SECRET_TOKEN"] = token
    argv = [sys.executable, "-m", "zoom_qss_exporter.cli", f"--web.listen-address=127.0.0.1:{port}"]
    argv += flags
    with serving("the exporter", argv, port, directory / "exporter.log", env=env) as url:
        yield url


@contextlib.contextmanager
def prometheus(
    directory: Path, target: str, rule_files: Sequence[Path] = (), alertmanager: str = ""
) -> Iterator[str]:
    """Debian's Prometheus scraping ``target`` and evaluating rules every second, sending its
    alerts to ``alertmanager`` (a URL) if given."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: run scripts/setup (installs Debian's prometheus)"
    port = free_port()
    config = directory / "prometheus.yml"
    rules = "".join(f"  - {path}\n" for path in rule_files)
    alerting = (
        "alerting:\n  alertmanagers:\n    - static_configs:\n"
        f"        - targets: ['{alertmanager.removeprefix('http://')}']\n"
        if alertmanager
        else ""
    )
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        + alerting
        + (f"rule_files:\n{rules}" if rules else "")
        + f"scrape_configs:\n  - job_name: {JOB}\n"
        f"    static_configs:\n      - targets: ['{target.removeprefix('http://')}']\n"
    )
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with serving("Prometheus", argv, port, directory / "prometheus.log") as url:
        yield url


def api(prometheus_url: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{prometheus_url}/api/v1/{path}", params=params, timeout=10)
    if response.status_code == 400:  # a PromQL error: say which
        raise AssertionError(f"{params}: {response.json().get('error')}")
    response.raise_for_status()
    return response.json()["data"]


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api(prometheus_url, "query", query=promql)["result"]
    return result


def scalar(prometheus_url: str, promql: str) -> float | None:
    result = query(prometheus_url, promql)
    return float(result[0]["value"][1]) if result else None


def by_label(results: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in results}
