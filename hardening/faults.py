"""Faults: SIGTERM in the middle of load, then a restart.

While 32 clients post valid events over keep-alive connections, 8 more requests are left
half-sent (headers and half the body). Once the exporter has read what was sent of them
(their rx queues in ``/proc/net/tcp`` are empty), it gets SIGTERM; once it has stopped
accepting connections the 8 send the rest of their bodies. Every request it answered must be
a 2xx (the shutdown itself answers nothing 5xx); the 8 in flight must be answered 200 (drained);
requests that found the connection closed are transport errors, which Zoom retries. The
exporter logs every accepted delivery's request id (JSON, debug level): an event accepted
whose answer was lost would show there, so the run checks there is none. Then the exporter is
started again on the same port and the time until it serves is measured.

    .venv/bin/python -m hardening.faults
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.harness import exit_on_sigterm
from hardening.common import Exporter, verdict
from hardening.traffic import Traffic

WORKERS = 32
IN_FLIGHT = 8


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server will close the connection) of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() == "close"


class Load:
    def __init__(self, port: int, traffic: Traffic) -> None:
        self.port = port
        self.traffic = traffic
        self.answers: Counter[int] = Counter()
        self.answered_ids: set[str] = set()
        self.transport_errors: Counter[str] = Counter()
        self.sent = 0
        self.stopped = asyncio.Event()
        self._next = 0

    def request(self) -> tuple[str, bytes]:
        n = self._next
        self._next += 1
        request = self.traffic.valid(n % self.traffic.participants, n // self.traffic.participants)
        return f"r{n}", request.http(request_id=f"r{n}")

    async def worker(self) -> None:
        """Post until the server refuses connections (it has gone) or the run is stopped."""
        while not self.stopped.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.transport_errors["connect refused"] += 1
                return
            try:
                while not self.stopped.is_set():
                    request_id, data = self.request()
                    writer.write(data)
                    self.sent += 1
                    status, close = await read_answer(reader)
                    self.answers[status] += 1
                    if status == 200:
                        self.answered_ids.add(request_id)
                    if close:
                        break
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                self.transport_errors[type(error).__name__] += 1
            finally:
                writer.close()


async def half_sent(
    port: int, request: tuple[str, bytes]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = request[1]
    cut = len(data) - 400  # the body's last 400 bytes come after the SIGTERM
    writer.write(data[:cut])
    await writer.drain()
    return reader, writer, data[cut:]


def unread_bytes(server_port: int, client_ports: set[int]) -> int | None:
    """Bytes the kernel holds that the server has not read yet, over its connections from
    ``client_ports`` (``/proc/net/tcp``: rx_queue of the server's side); None if any of those
    connections is not there (yet)."""
    found: dict[int, int] = {}
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) != server_port:
                continue
            client = int(remote.split(":")[1], 16)
            if client in client_ports:
                found[client] = int(queues.split(":")[1], 16)
    return sum(found.values()) if found.keys() == client_ports else None


async def until_read(server_port: int, writers: list[asyncio.StreamWriter]) -> float:
    """Wait until the server has read all that was sent on ``writers``: then their requests'
    headers are parsed and they are in flight, which a graceful shutdown must finish.
    (uvicorn closes a connection whose request it has not started, as it should: the client
    sees a transport error and retries.) Returns the seconds waited."""
    ports = {writer.get_extra_info("sockname")[1] for writer in writers}
    started = time.monotonic()
    while unread_bytes(server_port, ports) != 0:  # polling the kernel's view of the sockets
        if time.monotonic() - started > 10:
            raise RuntimeError("the exporter did not read the half-sent requests within 10 s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def sigterm_under_load(exporter: Exporter, load_seconds: float) -> dict[str, object]:
    load = Load(exporter.port, Traffic("faults", 5000, int(time.time())))
    workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
    await asyncio.sleep(load_seconds)  # the load runs this long before the fault
    requests = [load.request() for _ in range(IN_FLIGHT)]
    pending = [await half_sent(exporter.port, request) for request in requests]
    read_within = await until_read(exporter.port, [writer for _, writer, _ in pending])
    assert exporter.proc is not None
    answered_before = sum(load.answers.values())
    signalled = time.monotonic()
    exporter.proc.send_signal(signal.SIGTERM)
    while not await refused(exporter.port):  # polling: has it stopped accepting?
        if time.monotonic() - signalled > 10:
            break
        await asyncio.sleep(0.005)
    stopped_accepting = time.monotonic() - signalled
    drained: Counter[str] = Counter()
    for (request_id, _), (reader, writer, rest) in zip(requests, pending, strict=True):
        try:
            writer.write(rest)
            status, _ = await asyncio.wait_for(read_answer(reader), timeout=15)
            drained[str(status)] += 1
            if status == 200:
                load.answered_ids.add(request_id)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as error:
            drained[type(error).__name__] += 1
        finally:
            writer.close()
    await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    code = await asyncio.to_thread(exporter.proc.wait, 30)
    logged = set()
    for line in exporter.log_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("outcome") == "accepted" and record.get("request_id"):
                logged.add(record["request_id"])
    return {
        "accepted_by_exporter": len(logged),
        "accepted_but_unanswered": len(logged - load.answered_ids),
        "answered_but_not_accepted": len(load.answered_ids - logged),
        "load_seconds": load_seconds,
        "answered_before_sigterm": answered_before,
        "answered_total": sum(load.answers.values()),
        "answers": dict(load.answers),
        "server_errors": sum(n for status, n in load.answers.items() if status >= 500),
        "transport_errors_after_sigterm": dict(load.transport_errors),
        "in_flight_at_sigterm": IN_FLIGHT,
        "in_flight_read_by_server_s": round(read_within, 3),
        "in_flight_answers": dict(drained),
        "stopped_accepting_s": round(stopped_accepting, 3),
        "exit_code": code,
        "shutdown_s": round(time.monotonic() - signalled, 3),
    }


def restart(exporter: Exporter) -> dict[str, object]:
    """Start the exporter again on the same port: seconds until ready, and until it accepts."""
    started = time.monotonic()
    exporter.spawn()
    ready = exporter.wait_ready()
    request = Traffic("restart", 10, int(time.time())).valid(0, 0)
    answer = httpx.post(
        f"{exporter.url}/webhook",
        content=request.body,
        headers={
            "content-type": request.content_type,
            "x-zm-signature": request.signature,
            "x-zm-request-timestamp": request.timestamp,
        },
        timeout=10,
    )
    return {
        "ready_s": round(ready, 3),
        "first_event_s": round(time.monotonic() - started, 3),
        "first_event_status": answer.status_code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    debug = ("--log.level=debug", "--log.format=json")  # a line per accepted delivery
    with Exporter("--zoom.replay-window=2h", *debug) as exporter:
        exporter.start()
        shutdown = asyncio.run(sigterm_under_load(exporter, args.load_seconds))
        again = restart(exporter)
    result = {"sigterm": shutdown, "restart": again}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    problems = []
    if shutdown["server_errors"]:
        problems.append("answers 5xx during the shutdown")
    if shutdown["in_flight_answers"] != {"200": IN_FLIGHT}:
        problems.append(f"in-flight requests not all drained: {shutdown['in_flight_answers']}")
    # uvicorn drains, then re-raises the SIGTERM it caught: 0 or -15 are both a clean stop
    if shutdown["accepted_but_unanswered"] or shutdown["answered_but_not_accepted"]:
        problems.append("the exporter's accepted deliveries and the 200s seen differ")
    if shutdown["exit_code"] not in (0, -signal.SIGTERM):
        problems.append(f"exit code {shutdown['exit_code']}")
    if again["first_event_status"] != 200 or float(str(again["first_event_s"])) > 10:
        problems.append("the restart did not serve within 10 s")
    return verdict("faults", problems)


if __name__ == "__main__":
    sys.exit(main())
