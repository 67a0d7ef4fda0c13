"""Debian's Alertmanager as a real process on loopback, and a webhook receiver that records
every notification it is sent, by receiver (the path of its URL)."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from mixin_harness import load_yaml
from prometheus_harness import free_port, serving

EXAMPLE = Path(__file__).resolve().parents[1] / "alertmanager" / "alertmanager.yml"


@dataclass
class Notifications:
    """What the webhook receiver got: each notification's JSON, by receiver name."""

    url: str = ""
    by_receiver: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self, receiver: str) -> list[dict[str, Any]]:
        """Every alert of every notification the receiver got, firing or resolved."""
        with self.lock:
            return [a for n in self.by_receiver.get(receiver, []) for a in n["alerts"]]

    def names(self, receiver: str) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts(receiver)}


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Notifications]:
    """A loopback HTTP server; POST /<receiver> records the body under that receiver."""
    got = Notifications()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with got.lock:
                got.by_receiver[self.path.strip("/")].append(json.loads(body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def alertmanager(directory: Path, config: dict[str, Any]) -> Iterator[str]:
    """``prometheus-alertmanager`` with ``config`` (a parsed alertmanager.yml), without
    clustering; yields its URL once ready."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "Alertmanager missing: run scripts/setup (Debian's prometheus-alertmanager)"
    path = directory / "alertmanager.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    argv = [
        binary,
        f"--config.file={path}",
        f"--storage.path={directory / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with serving("Alertmanager", argv, port, directory / "alertmanager.log") as url:
        yield url


def example_config(receiver_url: str, group_wait: str = "100ms") -> dict[str, Any]:
    """The shipped example with its webhooks on ``receiver_url``/<receiver name> and
    notifications sent after ``group_wait`` rather than the production wait."""
    config: dict[str, Any] = load_yaml(EXAMPLE)
    for entry in config["receivers"]:
        for webhook in entry.get("webhook_configs", []):
            webhook["url"] = f"{receiver_url}/{entry['name']}"

    def fast(route: dict[str, Any]) -> None:
        if "group_wait" in route or route is config["route"]:
            route["group_wait"] = group_wait
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    return config


def alerts(alertmanager_url: str, **filters: str) -> list[dict[str, Any]]:
    """Alertmanager's view of its alerts (API v2), inhibited and silenced ones included."""
    params = {"active": "true", "inhibited": "true", "silenced": "true", **filters}
    response = httpx.get(f"{alertmanager_url}/api/v2/alerts", params=params, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result
