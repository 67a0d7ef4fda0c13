"""``hardening/run floods``: what an unauthenticated flood and a signed departure flood cost.

Against a real exporter on loopback (docs/reliability.md, "Hardening, round 2"): 2 s of
over-limit bodies (413) and of client disconnects from 8 connections, requests with 256 KiB
request ids, 8 connections sending 64 MiB of headers each, and 150 signed 1 MB
``phone.call_qos_summary`` events naming 585,000 departed parties with ``--store.max-series``
1,000. It prints requests, log lines and bytes, and RSS, and fails when a bound does not hold:
more log lines than the budget allows, RSS growing by more than 64 MiB, or more departure
records held than the cap.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

import httpx

from zoom_qss_exporter.ingest.signature import sign_headers

from .common import TOKEN, Exporter, mib, verdict

BUDGET = 20  # LogBudget's lines per 10 s
GROWTH = 64 << 20  # RSS a flood may add at most


def flood(port: int, request: bytes, seconds: float, connections: int = 8) -> int:
    """Send ``request`` on fresh connections for ``seconds``; waits for an answer when the
    request announces more than it sends (the 413 case), else hangs up at once."""
    stop = time.monotonic() + seconds
    done = [0] * connections

    def worker(n: int) -> None:
        while time.monotonic() < stop:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(request)
                    if request.endswith(b"\r\n\r\n"):
                        sock.recv(1000)
                done[n] += 1
            except OSError:
                pass

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


def log_size(exporter: Exporter) -> tuple[int, int]:
    data = exporter.log.read_bytes()
    return data.count(b"\n"), len(data)


def refusals(exporter: Exporter) -> int:
    return sum(line.count(b'"refused') for line in exporter.log.read_bytes().splitlines())


def unauthenticated(problems: list[str], seconds: float) -> None:
    exporter = Exporter("--log.level=info", "--log.format=json").start()
    try:
        port = int(exporter.url.rsplit(":", 1)[1])
        head = b"POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        n = flood(port, head + b"content-length: 5000000\r\n\r\n", seconds)
        lines = refusals(exporter)
        print(f"413 flood: {n} requests in {seconds:g} s, {lines} refusal log lines")
        if lines > BUDGET * (1 + int(seconds // 10)):
            problems.append(f"413 flood: {lines} log lines")
        time.sleep(10.5)  # a new budget interval, so the next flood is measured on its own
        before = refusals(exporter)
        n = flood(port, head + b"content-length: 1000\r\n\r\n{", seconds)
        lines = refusals(exporter) - before
        print(f"disconnect flood: {n} requests in {seconds:g} s, {lines} refusal log lines")
        if lines > BUDGET * (1 + int(seconds // 10)):
            problems.append(f"disconnect flood: {lines} log lines")
        before_bytes = log_size(exporter)[1]
        ids = 0
        with httpx.Client(timeout=10) as client:
            for _ in range(228):
                headers = {"content-type": "application/json", "x-zm-request-id": "r" * 262144}
                headers["x-zm-signature"] = "v0=" + "0" * 64
                headers["x-zm-request-timestamp"] = str(int(time.time()))
                ids += (
                    client.post(
                        exporter.url + "/webhook", content=b"{}", headers=headers
                    ).status_code
                    == 431
                )
        grown = log_size(exporter)[1] - before_bytes
        print(f"228 requests with 256 KiB request ids: {ids} answered 431, log grew {grown} bytes")
        if grown > 64 * 1024:
            problems.append(f"request ids: the log grew {grown} bytes")
        before_rss = exporter.rss_bytes()
        sockets = []
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /webhook HTTP/1.1\r\nhost: x\r\nx-zm-request-id: ")
            try:
                for _ in range(1024):
                    sock.sendall(b"a" * 65536)
            except OSError:
                pass
            sockets.append(sock)
        after_rss = exporter.rss_bytes()
        for sock in sockets:
            sock.close()
        print(f"8 x 64 MiB of headers: RSS {mib(before_rss)} -> {mib(after_rss)}")
        if after_rss - before_rss > GROWTH:
            problems.append("headers: RSS grew by more than 64")
    finally:
        exporter.stop()


def departures(problems: list[str]) -> None:
    exporter = Exporter("--store.max-series=1000").start()
    try:
        before = exporter.rss_bytes()
        with httpx.Client(timeout=30) as client:
            for event in range(150):
                parties = [
                    {"type": "callee", "user_id": f"e{event}-p{n}-" + "x" * 200, "qos": []}
                    for n in range(3900)
                ]
                document = {
                    "event": "phone.call_qos_summary",
                    "event_ts": int(time.time() * 1000),
                    "payload": {"object": {"call_id": f"call-{event}", "call_qos": parties}},
                }
                body = json.dumps(document).encode()
                headers = {"content-type": "application/json"}
                headers.update(sign_headers(TOKEN, int(time.time()), body))
                response = client.post(exporter.url + "/webhook", content=body, headers=headers)
                if response.status_code != 200:
                    problems.append(f"departures: answered {response.status_code}")
                    return
            text = client.get(exporter.url + "/metrics").text
        after = exporter.rss_bytes()
        held = next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("zoom_qss_exporter_departures ")
        )
        print(
            f"150 x {len(body)} bytes of call summaries (585,000 departed parties), cap 1,000: "
            f"RSS {mib(before)} -> {mib(after)}, {held:.0f} departure records held"
        )
        if held > 1000 or after - before > GROWTH:
            problems.append(f"departures: {held:.0f} held, RSS +{mib(after - before)}")
    finally:
        exporter.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each flood")
    args = parser.parse_args()
    problems: list[str] = []
    unauthenticated(problems, args.seconds)
    departures(problems)
    return verdict("floods", problems)


if __name__ == "__main__":
    raise SystemExit(main())
