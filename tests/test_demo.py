"""scripts/demo as a user runs it: its exporter, simulator and Prometheus start, and the alerts
page it prints answers on that Prometheus with the alerts and rules of rules/ in it."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from prometheus_harness import free_port

ROOT = Path(__file__).resolve().parents[1]
ANALYTICS_RULE = "product_account:zoom_qos_stream_minutes:rate5m"  # rules/zoom-qss-analytics.yaml
SLO_RULE = "product_account:zoom_qos_poor_stream_minutes:ratio_rate1h"  # rules/zoom-qss-slo.yaml
ALERTS_LINE = re.compile(r"alerts at (?P<alerts>http://\S+) .*rules at (?P<rules>http://\S+)")


def lines_of(process: subprocess.Popen[str]) -> tuple[queue.Queue[str | None], threading.Thread]:
    """The process's output, a line at a time, without blocking the test on a silent process;
    the thread ends at the end of the output."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return lines, reader


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_demo_prints_alerts_and_rules_pages_that_answer() -> None:
    exporter, prometheus = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    environment = dict(
        os.environ,
        DEMO_DURATION="15",
        ZOOM_QSS_WEB_LISTEN_ADDRESS=exporter,
        DEMO_PROMETHEUS_ADDRESS=prometheus,
    )
    process = subprocess.Popen(
        ["scripts/demo"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    lines, reader = lines_of(process)
    try:
        deadline = time.monotonic() + 120
        found = None
        while found is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            output.append(line)
            found = ALERTS_LINE.search(line)
        assert found, "the demo printed no alerts page:\n" + "".join(output)
        assert found["alerts"].startswith(f"http://{prometheus}/")
        alerts = httpx.get(found["alerts"], timeout=10)
        rules = httpx.get(found["rules"], timeout=10)
        assert alerts.status_code == 200 and rules.status_code == 200
        if found["alerts"].endswith("/classic/alerts"):  # server-rendered: names in the page
            for name in ("ZoomQSSExporterDown", "ZoomSiteDegraded", "ZoomParticipantPoorQuality"):
                assert name in alerts.text
            assert SLO_RULE in rules.text
            assert ANALYTICS_RULE in rules.text  # every rule file of rules/
        else:  # a single-page UI: the names come from its API
            api = httpx.get(f"http://{prometheus}/api/v1/rules").text
            assert "ZoomSiteDegraded" in api and ANALYTICS_RULE in api and SLO_RULE in api
        assert process.wait(timeout=120) == 0, "".join(output)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
