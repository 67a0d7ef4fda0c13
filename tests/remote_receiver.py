"""A loopback remote-write receiver for tests: real HTTP, decodes every request through the
protobuf and snappy libraries, counts them, and answers with the statuses a test scripts.
Also the small helpers the remote-write tests share."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from zoom_qss_exporter import families as f
from zoom_qss_exporter.remote.client import RemoteWriteOptions
from zoom_qss_exporter.remote.protocol import Labels, Point, decode

DROP = -1  # a scripted "status": close the connection without answering
T0 = 1_700_000_000.0
T = TypeVar("T")


def points(n: int, participant: str = "p", start: float = T0) -> list[Point]:
    """``n`` samples of one series, one a second from ``start``; the value is the second's
    offset from T0 in thousandths."""
    return [
        Point(
            f.LATENCY,
            ("meeting", "m", participant, "audio_input"),
            (start - T0 + i) / 1000,
            start + i,
        )
        for i in range(n)
    ]


def options(url: str, **overrides: Any) -> RemoteWriteOptions:
    fast = RemoteWriteOptions(
        url=url,
        batch_size=100,
        flush_interval=0.05,
        min_backoff=0.01,
        max_backoff=0.05,
        timeout=5.0,
        queue_capacity=10_000,
    )
    return replace(fast, **overrides)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 60))


async def until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Received:
    headers: dict[str, str]
    series: dict[Labels, list[tuple[int, float]]]
    status: int

    @property
    def samples(self) -> int:
        return sum(len(s) for s in self.series.values())


@dataclass
class FakeReceiver:
    url: str = ""
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int, headers: dict[str, str] | None = None, text: str = "") -> None:
        """The next requests get these statuses, in order; afterwards 204 again."""
        with self.lock:
            self.script.extend((status, headers or {}, text) for status in statuses)

    def accepted(self) -> dict[Labels, list[tuple[int, float]]]:
        """Every sample of the requests answered 2xx, per series, in arrival order."""
        out: dict[Labels, list[tuple[int, float]]] = {}
        with self.lock:
            for request in self.requests:
                if 200 <= request.status < 300:
                    for labels, samples in request.series.items():
                        out.setdefault(labels, []).extend(samples)
        return out

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def handler(receiver: FakeReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                status, headers, text = receiver.script.pop(0) if receiver.script else (204, {}, "")
                receiver.requests.append(Received(dict(self.headers), decode(body), status))
            if status == DROP:
                self.close_connection = True
                return
            payload = b"" if status == 204 else text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 204:
                self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def fake_receiver() -> Iterator[FakeReceiver]:
    receiver = FakeReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/write"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
