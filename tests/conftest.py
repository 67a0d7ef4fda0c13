"""Shared fixtures: a real exporter on loopback with an injectable clock, and signed posts."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from zoom_qss_exporter.app import Exporter, create_app
from zoom_qss_exporter.config import (
    LogSettings,
    Settings,
    StoreSettings,
    WebSettings,
    ZoomSettings,
)
from zoom_qss_exporter.ingest.archive import ArchiveOptions
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.remote.client import RemoteWriteOptions
from zoom_qss_exporter.web.transport import CoalescingHttpToolsProtocol

_GROUPS: dict[str, tuple[str, type[Any]]] = {
    **{f: ("web", WebSettings) for f in WebSettings.__dataclass_fields__},
    **{f: ("zoom", ZoomSettings) for f in ZoomSettings.__dataclass_fields__},
    **{f: ("store", StoreSettings) for f in StoreSettings.__dataclass_fields__},
}
_OWN = {"log_level": ("log", "level"), "log_format": ("log", "format"), "convert": ("privacy", "")}


def flat_settings(**fields: Any) -> Settings:
    """Settings from the flat field names the tests use (``max_series=10``), put into their
    records (``store.max_series``); ``remote_write``, ``wal``, ``archive`` as they are."""
    grouped: dict[str, dict[str, Any]] = {"web": {}, "zoom": {}, "store": {}, "log": {}}
    top: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _GROUPS:
            grouped[_GROUPS[name][0]][name] = value
        elif name in _OWN:
            group, field_name = _OWN[name]
            if field_name:
                grouped[group][field_name] = value
            else:
                top[group] = value
        else:
            top[name] = value
    return Settings(
        web=WebSettings(**grouped["web"]),
        zoom=ZoomSettings(**grouped["zoom"]),
        store=StoreSettings(**grouped["store"]),
        log=LogSettings(**grouped["log"]),
        **top,
    )


# Zoom's published example payloads, one per event, as Zoom's QSS documentation prints them.
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "zoom-examples"
TOKEN = "test-secret-token"
START = 1_700_000_000.0

# The families of /metrics that families.py does not define: fleet metrics and the exporter's own.
FLEET_AND_HEALTH = (
    "zoom_qos_fleet_latency_seconds",
    "zoom_qos_fleet_jitter_seconds",
    "zoom_qos_fleet_packet_loss_ratio",
    "zoom_phone_fleet_mos",
    "zoom_qos_samples_total",
    "zoom_network_notifications_total",
    "zoom_qss_exporter_events_total",
    "zoom_qss_exporter_items_skipped_total",
    "zoom_qss_exporter_series",
    "zoom_qss_exporter_series_expired_total",
    "zoom_qss_exporter_series_dropped_total",
    "zoom_qss_exporter_dedup_entries",
    "zoom_qss_exporter_last_event_timestamp_seconds",
    "zoom_qss_exporter_event_processing_seconds",
    "zoom_qss_exporter_build_info",
)


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def ongoing_call() -> dict[str, Any]:
    """Zoom's phone.call_qos example as sent during the call: its ``call_end_time`` is "" (the
    example's is set, and a set one ends the call's per-sample series)."""
    event = example("phone.call_qos")
    event["payload"]["object"]["call_end_time"] = ""
    return event


class FakeClock:
    """The exporter's clock, moved by the test instead of by sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


SeriesKey = tuple[str, frozenset[tuple[str, str]]]


def parse_metrics(text: str) -> dict[SeriesKey, float]:
    out: dict[SeriesKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def series_of(
    metrics: dict[SeriesKey, float], name: str
) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (n, labels), value in metrics.items() if n == name}


def key(name: str, **labels: str) -> SeriesKey:
    return (name, frozenset(labels.items()))


@dataclass
class LiveExporter:
    """An exporter served by uvicorn on 127.0.0.1, as Zoom and Prometheus would reach it."""

    exporter: Exporter
    clock: FakeClock
    url: str
    client: httpx.Client

    def post(
        self,
        event: dict[str, Any] | bytes,
        *,
        token: str = TOKEN,
        timestamp: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        signed = sign_headers(token, int(self.clock() if timestamp is None else timestamp), body)
        all_headers = {"content-type": "application/json", **signed, **(headers or {})}
        return self.client.post(self.url + "/webhook", content=body, headers=all_headers)

    def metrics_text(self) -> str:
        response = self.client.get(self.url + "/metrics")
        assert response.status_code == 200
        return response.text

    def metrics(self) -> dict[SeriesKey, float]:
        return parse_metrics(self.metrics_text())


def signed(live: LiveExporter, body: bytes, **extra: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        **sign_headers(TOKEN, int(live.clock()), body),
        **extra,
    }


def request_head(live: LiveExporter, body: bytes, *lines: str) -> bytes:
    headers = signed(live, body)
    text = "POST /webhook HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    text += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    text += "".join(f"{line}\r\n" for line in lines)
    return (text + "\r\n").encode()


def serve(
    app: Any, http: type[asyncio.Protocol] = CoalescingHttpToolsProtocol
) -> tuple[uvicorn.Server, threading.Thread, str]:
    # IPPROTO_TCP, as getaddrinfo gives it: asyncio sets TCP_NODELAY only on such sockets,
    # and without it every answer after the first on a connection waits ~40 ms (Nagle)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=http,
            loop="uvloop",
            log_level="warning",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    return server, thread, f"http://127.0.0.1:{port}"


LiveFactory = Callable[..., LiveExporter]


@pytest.fixture
def live_factory() -> Iterator[LiveFactory]:
    running: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(**overrides: Any) -> LiveExporter:
        # no reuse of rendered bodies: tests scrape right after they post
        settings = flat_settings(**{"secret_tokens": (TOKEN,), "metrics_cache": 0.0, **overrides})
        clock = FakeClock()
        exporter = Exporter(settings, clock=clock)
        server, thread, url = serve(create_app(exporter), exporter.http_protocol)
        client = httpx.Client(timeout=10)
        running.append((server, thread, client))
        return LiveExporter(exporter, clock, url, client)

    yield start
    for server, thread, client in running:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live(live_factory: LiveFactory) -> LiveExporter:
    return live_factory()


# --- an archive -----------------------------------------------------------------------------


def qos(participant: str, minute: int) -> dict[str, Any]:
    """Zoom's example participant_qos event, of ``participant`` at 22:``minute`` on 2023-11-14."""
    document = copy.deepcopy(example("meeting.participant_qos"))
    document["payload"]["object"]["participant"]["user_id"] = participant
    for item in document["payload"]["object"]["participant"]["qos"]:
        item["date_time"] = f"2023-11-14T22:{minute:02d}:00Z"
    return document


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("events-*.jsonl"))


def archive_of_a_meeting(
    tmp_path: Path, live_factory: LiveFactory, remote: str
) -> tuple[Path, LiveExporter]:
    """Events of three participants over three minutes, a data event and a summary, through
    an exporter that archives them and writes them to ``remote``."""
    live = live_factory(
        archive=ArchiveOptions(str(tmp_path / "archive")),
        remote_write=RemoteWriteOptions(remote, flush_interval=0.05),
    )
    data = copy.deepcopy(example("meeting.participant_data"))
    for minute in (10, 11, 12):
        for participant in ("a", "b", "c"):
            assert live.post(qos(participant, minute)).status_code == 200
    data["payload"]["object"]["participant"]["participant_id"] = "a"
    assert live.post(data).status_code == 200
    summary = example("meeting.participant_qos_summary")
    assert live.post(summary).status_code == 200
    return tmp_path / "archive", live


# promtool's lint takes any name part "minutes" for a time unit. A stream-minute is a count
# (one per-minute QoS item), and the issue that defined the analytics fixed these names: the one
# piece of its advice the exporter does not follow (docs/analytics.md says why).
_STREAM_MINUTES = re.compile(
    r'zoom_qos_(?:client_|path_)?(?:poor_)?stream_minutes_total use base unit "seconds" '
    r'instead of "minutes"'
)


def promtool_check_metrics(text: str | bytes) -> tuple[int, str]:
    """``promtool check metrics`` on an exposition: (exit status, what it printed), both
    without the stream-minute names' unit advice."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/setup (installs Debian's prometheus)"
    data = text.encode() if isinstance(text, str) else text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=data, capture_output=True, timeout=60
    )
    output = (result.stdout + result.stderr).decode()
    problems = [
        line for line in output.splitlines() if line and not _STREAM_MINUTES.fullmatch(line)
    ]
    status = result.returncode if problems else 0
    return status, "\n".join(problems)
