"""No stall: webhook latency while /metrics with ~200,000 series is scraped once a second.

One exporter holds ~200k series. A rate-limited webhook load (open loop: request i is due at
start + i/rate, and its latency counts from then, so a stalled server cannot hide queueing)
runs in a separate process, first alone (the baseline) and then while this process scrapes
/metrics once a second with ``Accept-Encoding: gzip``, as Prometheus does. Every request is
a fresh one-minute-newer update of a loaded participant. Target: p99 webhook latency under
100 ms while scraping.

    .venv/bin/python -m bench.stall            # 30 s per phase at 400 events/s
    .venv/bin/python -m bench.stall --quick    # 15 s per phase
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import events, harness
from bench.harness import Connection, Server, Table

TARGET_P99 = 0.100
SERIES = 200_000
REQUEST_TIMEOUT = 10.0


# --- the load, in its own process -------------------------------------------------------------


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, from each due time
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # first due time to last answer
    behind: float = 0.0  # how late the generator itself was, at worst

    def to_json(self) -> str:
        return json.dumps(
            {
                "latencies": self.latencies,
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "errors": dict(self.errors),
                "seconds": self.seconds,
                "behind": self.behind,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        raw = json.loads(text)
        statuses = Counter({int(k): v for k, v in raw["statuses"].items()})
        return cls(
            raw["latencies"], statuses, Counter(raw["errors"]), raw["seconds"], raw["behind"]
        )


async def open_loop(port: int, requests: list[bytes], rate: float) -> LoadResult:
    """Send ``requests[i]`` at ``start + i / rate`` on an idle keep-alive connection (a new
    one when all are busy) and time each answer from its due time."""
    loop = asyncio.get_running_loop()
    idle = [await Connection.open(port) for _ in range(8)]
    result = LoadResult()
    start = loop.time() + 0.1

    async def connection() -> Connection:
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof():  # uvicorn closes connections idle for 5 s
                return conn
            await conn.close()
        return await Connection.open(port)

    async def one(data: bytes, due: float) -> None:
        conn = await connection()
        try:
            status = await asyncio.wait_for(conn.request(data), REQUEST_TIMEOUT)
        except TimeoutError:
            result.errors["timeout"] += 1
            await conn.close()
            return
        except (OSError, asyncio.IncompleteReadError) as error:
            result.errors[type(error).__name__] += 1
            await conn.close()
            return
        result.latencies.append(loop.time() - due)
        result.statuses[status] += 1
        idle.append(conn)

    tasks = []
    for i, data in enumerate(requests):
        due = start + i / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)  # pacing the schedule
        else:
            result.behind = max(result.behind, -wait)
        tasks.append(asyncio.create_task(one(data, due)))
    await asyncio.gather(*tasks)
    result.seconds = loop.time() - start
    for conn in idle:
        await conn.close()
    return result


def worker(args: argparse.Namespace) -> int:
    count = math.ceil(args.rate * args.seconds)
    with Path(args.requests).open("rb") as f:
        lines = [line for i, line in enumerate(f) if args.skip <= i < args.skip + count]
    if len(lines) < count:
        sys.exit(f"stall worker: {args.requests} has too few lines")
    requests = []
    for line in lines:
        sig, ts, body = line.rstrip(b"\n").split(b"\t", 2)
        requests.append(events.SignedRequest(sig.decode(), ts.decode(), body).http())
    result = asyncio.run(open_loop(args.port, requests, args.rate))
    Path(args.out).write_text(result.to_json())
    return 0


class LoadProcess:
    """The load in its own process (the exporter and this scraper have the other core);
    killed on the way out if it is still running."""

    def __init__(self, server: Server, requests: Path, skip: int, args: argparse.Namespace):
        self.out = requests.with_name(f"latencies-{skip}.json")
        argv = [
            sys.executable,
            "-m",
            "bench.stall",
            "--worker",
            f"--port={server.port}",
            f"--requests={requests}",
            f"--skip={skip}",
            f"--rate={args.rate}",
            f"--seconds={args.seconds}",
            f"--out={self.out}",
        ]
        self.timeout = args.seconds + REQUEST_TIMEOUT + 30
        self.proc = subprocess.Popen(argv, cwd=harness.REPO)

    def running(self) -> bool:
        return self.proc.poll() is None

    def result(self) -> LoadResult:
        if self.proc.wait(timeout=self.timeout) != 0:
            raise RuntimeError(f"load process failed ({self.proc.returncode})")
        return LoadResult.from_json(self.out.read_text())

    def __enter__(self) -> LoadProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class Scrapes:
    seconds: list[float] = field(default_factory=list)
    wire_bytes: list[int] = field(default_factory=list)
    body_bytes: list[int] = field(default_factory=list)
    failures: int = 0


def scrape_while(server: Server, load: LoadProcess, interval: float = 1.0) -> Scrapes:
    """Scrape every ``interval`` seconds (gzip) until the load process ends."""
    scrapes = Scrapes()
    next_at = time.monotonic()
    while load.running():
        try:
            s = harness.scrape(server, compressed=True)
        except Exception:  # a failed scrape is a finding, not a crash of the benchmark
            scrapes.failures += 1
        else:
            scrapes.seconds.append(s.seconds)
            scrapes.wire_bytes.append(s.wire_bytes)
            scrapes.body_bytes.append(len(s.text))
        next_at += interval
        while load.running() and time.monotonic() < next_at:
            time.sleep(0.01)  # the next scrape is due, or the load has finished
    return scrapes


def load_store(server: Server, participants: int) -> int:
    """POST every participant's first event; wait until /metrics shows their series."""
    gen = events.Generator(namespace="stall")
    statuses = harness.post_all(server, (r.http() for r in gen.requests(range(participants), [0])))
    if set(statuses) != {200}:
        raise RuntimeError(f"loading answers: {dict(statuses)}")
    deadline = time.monotonic() + 30
    while True:
        count = events.series_count(harness.scrape(server).text)
        if count >= events.expected_series(participants) or time.monotonic() > deadline:
            return count
        time.sleep(0.2)  # polling the condition


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="15 s per phase")
    parser.add_argument("--seconds", type=float, help="length of each phase (default 30)")
    parser.add_argument("--rate", type=float, default=400.0, help="events/s (default 400)")
    parser.add_argument("--series", type=int, default=SERIES, help="store size (default 200000)")
    parser.add_argument(
        "--exporter-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for zoom-qss-exporter serve (repeatable), "
        "e.g. --exporter-arg=--web.metrics-cache=0",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", help=argparse.SUPPRESS)
    parser.add_argument("--skip", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seconds = args.seconds or (15.0 if args.quick else 30.0)
    if args.worker:
        return worker(args)
    harness.exit_on_sigterm()

    participants = events.participants_for(args.series)
    per_phase = math.ceil(args.rate * args.seconds)
    rounds = math.ceil(2 * per_phase / participants)
    work = Path(tempfile.mkdtemp(prefix="bench-stall-"))
    try:
        updates = work / "updates.tsv"
        gen = events.Generator(namespace="stall")
        events.write_tsv(updates, gen.requests(range(participants), range(1, rounds + 1)))
        print(
            f"{participants:,} participants, then {args.rate:g} updates/s for {args.seconds:g} s "
            f"without and {args.seconds:g} s with a gzip scrape every second; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        with harness.exporter(*args.exporter_arg) as server:
            series = load_store(server, participants)
            text = harness.scrape(server).text
            accepted_before = events.accepted_events(text)
            print(f"store loaded: {series:,} series, RSS {harness.mib(events.rss_bytes(text))}")
            with LoadProcess(server, updates, 0, args) as load:
                quiet = load.result()
            print(f"baseline done: {len(quiet.latencies):,} answers")
            with LoadProcess(server, updates, per_phase, args) as load:
                scrapes = scrape_while(server, load)
                busy = load.result()
            print(f"scraped phase done: {len(busy.latencies):,} answers")
            text = harness.scrape(server).text
            accepted = events.accepted_events(text) - accepted_before
            final_series = events.series_count(text)
            problems = server.problems()
        table = report(quiet, busy, scrapes, series, final_series, accepted, args)
        print()
        print(table.render())
        logs = harness.exporter_logs(problems)
        if logs:
            print("\n" + "\n".join(logs))
        return 1 if table.failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(
    quiet: LoadResult,
    busy: LoadResult,
    scrapes: Scrapes,
    series: int,
    final_series: int,
    accepted: int,
    args: argparse.Namespace,
) -> Table:
    table = Table(
        f"No stall: webhook latency at {args.rate:g} events/s, {args.seconds:g} s with a "
        "gzip scrape every second (ours) and without (baseline)"
    )
    for q, name in ((50, "p50"), (90, "p90"), (99, "p99"), (100, "max")):
        ours = harness.percentile(busy.latencies, q)
        base = harness.percentile(quiet.latencies, q)
        target, ok = ("< 100 ms", ours < TARGET_P99) if q == 99 else ("", None)
        table.add(
            f"webhook latency {name}",
            harness.ms(ours),
            harness.ms(base),
            f"{harness.ratio(ours, base):.2f}",
            target,
            ok,
        )
    busy_rate = len(busy.latencies) / busy.seconds
    quiet_rate = len(quiet.latencies) / quiet.seconds
    table.add(
        "events answered per second",
        f"{busy_rate:,.0f}",
        f"{quiet_rate:,.0f}",
        f"{harness.ratio(busy_rate, quiet_rate):.2f}",
    )
    errors = sum(busy.errors.values()) + sum(v for k, v in busy.statuses.items() if k != 200)
    base_errors = sum(quiet.errors.values()) + sum(v for k, v in quiet.statuses.items() if k != 200)
    table.add("non-200 answers and errors", str(errors), str(base_errors), "", "0", errors == 0)
    for name, result in (("ours", busy), ("baseline", quiet)):
        odd = {**{str(k): v for k, v in result.statuses.items() if k != 200}, **result.errors}
        if odd:
            print(f"{name}: non-200 answers and errors: {odd}")
    ok_answers = busy.statuses[200] + quiet.statuses[200]
    table.add(
        "accepted (exporter) vs 200 answers",
        f"{accepted:,}",
        f"{ok_answers:,}",
        f"{harness.ratio(accepted, ok_answers):.4f}",
        "equal",
        accepted == ok_answers,
    )
    table.add(
        "scrapes (gzip)", f"{len(scrapes.seconds)} ok, {scrapes.failures} failed", "", "", "", None
    )
    for q, name in ((50, "p50"), (100, "max")):
        table.add(f"scrape duration {name}", harness.ms(harness.percentile(scrapes.seconds, q)))
    if scrapes.body_bytes:
        table.add(
            "scrape size (gzip / text)",
            f"{harness.mib(max(scrapes.wire_bytes))} / {harness.mib(max(scrapes.body_bytes))}",
        )
    table.add(
        "series in the store (before / after)",
        f"{series:,} / {final_series:,}",
        "",
        "",
        f"≥ {args.series:,}",
        series >= args.series,
    )
    table.add(
        "load generator behind schedule, at worst",
        harness.ms(busy.behind),
        harness.ms(quiet.behind),
    )
    return table


if __name__ == "__main__":
    sys.exit(main())
