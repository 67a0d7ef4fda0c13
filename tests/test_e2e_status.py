"""The status page in a real browser: Debian's headless Chromium loads ``/`` of a real exporter
after the simulator and a forged request have run, and the test reads the rendered DOM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path

import httpx

from prometheus_harness import exporter
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.ingest.signature import sign_headers

TOKEN = "e2e-status-token"
CHROMIUM = shutil.which("chromium")


class Rows(HTMLParser):
    """The rows of the page's tables: their class, data attributes and cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict[str, str], list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append(({k: v or "" for k, v in attrs}, []))
        elif tag == "td" and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self.rows:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def of(self, cls: str) -> list[tuple[dict[str, str], list[str]]]:
        return [(attrs, cells) for attrs, cells in self.rows if attrs.get("class") == cls]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium as root in a sandbox-less container, with nothing reaching out."""
    assert CHROMIUM, "chromium missing: run scripts/setup (installs Debian's chromium)"
    with tempfile.TemporaryDirectory() as profile:
        argv = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def post_signed(url: str, document: Mapping[str, object], token: str) -> httpx.Response:
    body = json.dumps(document).encode()
    headers = {"content-type": "application/json", **sign_headers(token, int(time.time()), body)}
    return httpx.post(url + "/webhook", content=body, headers=headers, timeout=10)


def test_the_page_shows_every_simulated_event_and_the_forged_request(tmp_path: Path) -> None:
    with exporter(tmp_path, TOKEN) as url:
        simulated = subprocess.run(
            [
                sys.executable,
                "-m",
                "zoom_qss_exporter.cli",
                "simulate",
                f"--target={url}/webhook",
                f"--secret-token={TOKEN}",
                "--meetings=3",
                "--participants=3",
                "--phone-calls=2",
                "--interval=1",
                "--rate=300",
                "--churn=0.4",
                "--duration=8",
                "--seed=3",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")},
        )
        assert simulated.returncode == 0, simulated.stderr
        challenge = {"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}}
        assert post_signed(url, challenge, TOKEN).status_code == 200
        forged = post_signed(url, {"event": "meeting.participant_qos"}, "not-the-token")
        assert forged.status_code == 401

        page = chromium("--dump-dom", url + "/")
        assert page.returncode == 0, page.stderr
        shot = tmp_path / "status.png"
        picture = chromium("--window-size=1280,2400", f"--screenshot={shot}", url + "/")
        assert picture.returncode == 0 and shot.read_bytes().startswith(b"\x89PNG")
        if os.environ.get("ZOOM_QSS_UPDATE_SCREENSHOT"):  # docs/status.md's picture
            shutil.copy(shot, Path(__file__).resolve().parents[1] / "docs" / "status.png")
        data = httpx.get(url + "/status.json", timeout=10).json()

    rows = Rows()
    rows.feed(page.stdout)
    events = {attrs["data-event"]: cells for attrs, cells in rows.of("event")}
    assert set(events) == {*EVENT_MODELS, "endpoint.url_validation"}
    for name, cells in events.items():
        accepted, stale = int(cells[1]), int(cells[2])
        # stale is accepted too (answered 200): a *_data_summary that brings nothing new
        assert accepted + stale > 0, f"{name} listed as accepted"
        assert (data["events"][name]["accepted"], data["events"][name]["stale"]) == (
            accepted,
            stale,
        )
    deliveries = rows.of("delivery")
    assert deliveries and len(deliveries) <= 100
    newest = deliveries[0][0]
    assert (newest["data-event"], newest["data-outcome"]) == ("unverified", "invalid_signature")
    assert deliveries[0][1][3] == "401"
    checks = {cells[0]: attrs["data-state"] for attrs, cells in rows.of("check")}
    assert checks["events arriving"] == "ok" and checks["URL validation"] == "ok"
    assert checks["summary events"] == "ok" and checks["data events"] == "ok"
    assert data["last_token_position"] == 1
    text = json.dumps(data)
    assert "@" not in text, "no e-mail address, nor any other personal data"
