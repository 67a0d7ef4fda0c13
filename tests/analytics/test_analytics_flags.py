"""--analytics.* as serve reads them, and what a real process does with the sites file."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from zoom_qss_exporter.analytics.flags import load_accounts
from zoom_qss_exporter.config import load_settings
from zoom_qss_exporter.flags import ConfigError

TOKEN_ENV = {"ZOOM_WEBHOOK_SECRET_TOKEN": "t"}
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_QSS_", "ZOOM_WEBHOOK"))}
SITES = "sites:\n  - name: Paris HQ\n    subnets: [10.20.0.0/16]\n"


def test_on_by_default_with_the_shipped_thresholds() -> None:
    analytics = load_settings([], TOKEN_ENV).analytics
    assert analytics is not None
    assert analytics.sites_file is None and analytics.thresholds.latency == 0.4
    assert load_settings(["--no-analytics.enabled"], TOKEN_ENV).analytics is None


def test_files_from_flags_and_environment(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(SITES)
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("accounts:\n  - {id: abc, name: Europe}\n")
    env = {**TOKEN_ENV, "ZOOM_QSS_ANALYTICS_SITES_FILE": str(sites)}
    analytics = load_settings([f"--analytics.accounts-file={accounts}"], env).analytics
    assert analytics is not None
    assert analytics.sites_file == sites and analytics.accounts == {"abc": "Europe"}


def test_a_bad_sites_file_stops_the_start_naming_the_line(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  - name: A\n    subnets: [10.0.0.1/8]\n")
    with pytest.raises(ConfigError, match=re.escape(f"{sites}:3: '10.0.0.1/8' has host bits")):
        load_settings([f"--analytics.sites-file={sites}"], TOKEN_ENV)
    result = subprocess.run(
        [sys.executable, "-m", "zoom_qss_exporter.cli", f"--analytics.sites-file={sites}"],
        env={**CLEAN, **TOKEN_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{sites}:3:" in result.stderr and "did you mean 10.0.0.0/8" in result.stderr


def test_a_bad_thresholds_file_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "quality.yaml"
    bad.write_text("poor: {}\ncause: {}\n")
    with pytest.raises(ConfigError, match=r"poor\.latency"):
        load_settings([f"--analytics.thresholds-file={bad}"], TOKEN_ENV)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts: 3\n", "one key, 'accounts'"),
        ("accounts: []\nother: 1\n", "one key, 'accounts'"),
        ("accounts:\n  - {id: abc}\n", "entry 1: 'id' and 'name'"),
        ("accounts:\n  - {id: a, name: A}\n  - {id: a, name: B}\n", "entry 2: id 'a' is repeated"),
        ("accounts:\n  - {id: a, name: '" + "x" * 65 + "'}\n", "at most 64"),
        ("accounts: [\n", "not valid YAML"),
    ],
)
def test_bad_accounts_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_accounts(path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    sites = tmp_path / "sites.yaml"
    sites.write_text(SITES)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        sys.executable,
        "-m",
        "zoom_qss_exporter.cli",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--analytics.sites-file={sites}",
        "--web.metrics-cache=0s",
    ]
    process = subprocess.Popen(
        argv,
        env={**CLEAN, **TOKEN_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _get(url + "/-/ready") == 200, process)
        yield process, url, sites
    finally:
        process.terminate()
        process.wait(timeout=15)


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


def _until(condition: object, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, "the exporter exited"
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


def _metric(url: str, line_start: str) -> float | None:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_sighup_reloads_and_a_bad_reload_keeps_the_sites(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, url, sites = served
    assert _metric(url, "zoom_qss_exporter_analytics_sites") == 1
    sites.write_text(SITES + "  - name: Lyon\n    subnets: [10.30.0.0/16]\n")
    process.send_signal(signal.SIGHUP)
    _until(lambda: _metric(url, "zoom_qss_exporter_analytics_sites") == 2, process)
    sites.write_text("sites: [\n")
    process.send_signal(signal.SIGHUP)
    failures = 'zoom_qss_exporter_analytics_sites_reloads_total{result="failure"}'
    _until(lambda: (_metric(url, failures) or 0) >= 1, process)
    assert _metric(url, "zoom_qss_exporter_analytics_sites") == 2  # the sites in force stay
    status = httpx.get(url + "/status.json", timeout=5).json()
    assert "not valid YAML" in status["analytics"]["last reload error"]
    assert process.poll() is None


def test_a_changed_file_is_reloaded_without_a_signal(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, url, sites = served
    replacement = sites.with_suffix(".new")
    replacement.write_text(SITES + "  - name: Lyon\n    subnets: [10.30.0.0/16]\n")
    replacement.replace(sites)  # as a ConfigMap update swaps the file
    # checked every --store.expiry-interval (10 s by default)
    _until(lambda: _metric(url, "zoom_qss_exporter_analytics_sites") == 2, process, timeout=40)
