"""Ingest rate through real HTTP: signed ``meeting.participant_qos`` events (6 QoS items each)
replayed by wrk against one exporter process, and, in the same run as the baseline, against
bench/trivial_app.py (the same uvicorn settings, an endpoint that only reads the body and
answers 200), and bench/floor_app.py (the same stack doing the least any exporter must do:
verify the signature, parse the JSON, keep each QoS item; no exporter can be faster).

Two exporter figures, each on a fresh exporter process:

- steady state: the participants' first events (inserts) are preloaded, then wrk replays their
  later rounds, every request a one-minute-newer update of existing series (what Zoom sends);
- first contact: every request is a participant never seen before (inserts only).

No request is sent twice: the files hold enough distinct events for ``--max-rate`` x duration,
and a run whose file wrapped around is flagged. After each exporter run the exporter's own
``zoom_qss_exporter_events_total{event="meeting.participant_qos",outcome="accepted"}`` must
equal the 2xx answers wrk counted, plus at most the requests in flight when wrk stopped at its
deadline (the exporter still handles those; wrk no longer counts their answers).

    .venv/bin/python -m bench.ingest            # 3 rounds of 10 s each
    .venv/bin/python -m bench.ingest --quick    # 2 rounds of 5 s each
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import events, harness
from bench.harness import Server, Table

TARGET_RATE = 2500.0
TARGET_RATIO = 0.60
FLEET_SERIES = 200_000  # the store size of the steady-state runs


@dataclass
class WrkRun:
    label: str
    rate: float  # wrk's Requests/sec
    requests: int  # completed
    sent: int  # request() calls: completed + in flight when wrk stopped
    wraps: int
    non_2xx: int  # answers >= 400 (wrk counts no 3xx here)
    socket_errors: int
    p50: float  # seconds
    p99: float
    max: float
    accepted: int | None = None  # exporter's accepted-count increase
    stale: int | None = None
    series: int | None = None
    dropped: int | None = None

    @property
    def ok_2xx(self) -> int:
        return self.requests - self.non_2xx


def wrk(server: Server, requests: Path, seconds: float, connections: int, label: str) -> WrkRun:
    """``wrk -t1 -c<connections> -d<seconds>`` with bench/replay.lua over ``requests``."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout=5s",
        "-s",
        str(harness.BENCH / "replay.lua"),
        f"{server.url}/webhook",
    ]
    env = {**os.environ, "REQUESTS": str(requests)}
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    match = re.search(r"^replay-result (\{.*\})$", out, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if match is None or rate is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    r = json.loads(match.group(1))
    lat = r["latency_us"]
    errors = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return WrkRun(
        label,
        float(rate.group(1)),
        r["requests"],
        r["sent"],
        r["wraps"],
        r["status_errors"],
        errors,
        lat["p50"] / 1e6,
        lat["p99"] / 1e6,
        lat["max"] / 1e6,
    )


def wait_for_accepted(server: Server, at_least: int, timeout: float = 5.0) -> str:
    """Scrape until the accepted count reaches ``at_least`` (a rendered body may be up to
    1 s old) or ``timeout`` passes; returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        text = harness.scrape(server).text
        if events.accepted_events(text) >= at_least or time.monotonic() > deadline:
            return text
        time.sleep(0.2)  # polling the condition


def exporter_run(
    label: str,
    requests: Path,
    preload: list[bytes],
    warmup: list[bytes],
    args: argparse.Namespace,
    *extra: str,
) -> tuple[WrkRun, list[str]]:
    """A fresh exporter: preload, warm up, measure, then check the accepted count."""
    with harness.exporter(*extra, *args.exporter_arg) as server:
        if preload:
            statuses = harness.post_all(server, preload)
            if set(statuses) != {200}:
                raise RuntimeError(f"preload answers: {dict(statuses)}")
        harness.post_all(server, warmup)
        text = wait_for_accepted(server, len(preload) + len(warmup))
        before = events.accepted_events(text)
        stale_before = stale_events(text)
        run = wrk(server, requests, args.duration, args.connections, label)
        text = wait_for_accepted(server, before + run.ok_2xx)
        run.accepted = events.accepted_events(text) - before
        run.stale = stale_events(text) - stale_before
        run.series = events.series_count(text)
        run.dropped = int(events.value(text, "zoom_qss_exporter_series_dropped_total"))
        return run, server.problems()


def stale_events(text: str) -> int:
    return int(
        events.value(text, "zoom_qss_exporter_events_total", event=events.EVENT, outcome="stale")
    )


def stack_run(app: str, requests: Path, warmup: list[bytes], args: argparse.Namespace) -> WrkRun:
    """The trivial or the least-work endpoint (bench/floor_app.py) on the exporter's stack."""
    with harness.trivial(f"{app}_app") as server:
        statuses = harness.post_all(server, warmup)
        if set(statuses) != {200}:
            raise RuntimeError(f"{app} warm-up answers: {dict(statuses)}")
        return wrk(server, requests, args.duration, args.connections, app)


def describe(run: WrkRun) -> str:
    extra = ""
    if run.accepted is not None:
        extra = (
            f", accepted {run.accepted:,} (2xx {run.ok_2xx:,}, stale {run.stale}),"
            f" {run.series:,} series, {run.dropped:,} dropped"
        )
    return (
        f"  {run.label:<13} {run.rate:8,.0f} req/s  p50 {harness.ms(run.p50)}"
        f"  p99 {harness.ms(run.p99)}  max {harness.ms(run.max)}"
        f"  non-2xx {run.non_2xx}  socket errors {run.socket_errors}  wraps {run.wraps}{extra}"
    )


def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run bench/run (it installs it) or apt-get install -y wrk")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, help="alternating rounds; medians (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (default 16)")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=8000.0,
        help="highest plausible req/s: sizes the request files (default 8000)",
    )
    parser.add_argument(
        "--no-insert", action="store_true", help="skip the first-contact (insert) runs"
    )
    parser.add_argument(
        "--exporter-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for zoom-qss-exporter serve (repeatable)",
    )
    args = parser.parse_args()
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    args.rounds = args.rounds or (2 if args.quick else 3)
    harness.exit_on_sigterm()
    ensure_wrk()

    need = math.ceil(args.max_rate * args.duration)
    steady = events.participants_for(FLEET_SERIES)
    rounds = math.ceil(need / steady)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        start = time.perf_counter()
        update_file, insert_file = work / "update.tsv", work / "insert.tsv"
        gen = events.Generator(namespace="steady")
        preload = [r.http() for r in gen.requests(range(steady), [0])]
        events.write_tsv(update_file, gen.requests(range(steady), range(1, rounds + 1)))
        if not args.no_insert:
            fresh = events.Generator(namespace="insert")
            events.write_tsv(insert_file, fresh.requests(range(need), [0]))
        warmup = [r.http() for r in events.generate(400, 2, namespace="warm-up")]
        print(
            f"request files: {steady:,} participants x {rounds} update rounds = "
            f"{steady * rounds:,} updates (store: {steady:,} participants ≈ "
            f"{events.expected_series(steady):,} series); "
            f"{0 if args.no_insert else need:,} first-contact events; "
            f"signed in {time.perf_counter() - start:.1f} s"
        )
        print(
            f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds, "
            f"fresh server per run; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        results: dict[str, list[WrkRun]] = {k: [] for k in ("trivial", "floor", "update", "insert")}
        problems: list[str] = []
        for n in range(args.rounds):
            print(f"round {n + 1}:")
            order = ["trivial", "floor", "update", "insert"]
            if n % 2:
                order.reverse()
            for kind in order:
                if kind in ("trivial", "floor"):
                    run = stack_run(kind, update_file, warmup, args)
                elif kind == "update":
                    run, logs = exporter_run("update", update_file, preload, warmup, args)
                    problems += logs
                elif args.no_insert:
                    continue
                else:
                    # Room for every first contact: refused series would flatter the rate.
                    cap = f"--store.max-series={events.expected_series(need + 1000)}"
                    run, logs = exporter_run("first contact", insert_file, [], warmup, args, cap)
                    problems += logs
                results[kind].append(run)
                print(describe(run), flush=True)
        table = report(results, args)
        print()
        print(table.render())
        logs = harness.exporter_logs(problems)
        if logs:
            print("\n" + "\n".join(logs))
        return 1 if table.failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[WrkRun]], args: argparse.Namespace) -> Table:
    table = Table(
        f"Ingest through HTTP: wrk -t1 -c{args.connections} -d{args.duration:g}s, "
        f"median of {args.rounds} rounds"
    )
    trivial = harness.median([r.rate for r in results["trivial"]])
    floor = harness.median([r.rate for r in results["floor"]])
    # No exporter can be faster than the floor: it only authenticates and parses.
    table.add(
        "least-work endpoint (floor_app): req/s vs trivial app",
        f"{floor:,.0f}",
        f"{trivial:,.0f}",
        f"{harness.ratio(floor, trivial):.2f}",
        "(the most any exporter can reach)",
    )
    floor_errors = sum(r.non_2xx + r.socket_errors for r in results["floor"])
    table.add(
        "least-work endpoint: non-2xx, socket errors",
        str(floor_errors),
        "",
        "",
        "0",
        floor_errors == 0,
    )
    for kind, name in (("update", "steady-state updates"), ("insert", "first contact")):
        runs = results[kind]
        if not runs:
            continue
        rate = harness.median([r.rate for r in runs])
        share = harness.ratio(rate, trivial)
        table.add(
            f"{name}: events/s",
            f"{rate:,.0f}",
            "",
            "",
            f"≥ {TARGET_RATE:,.0f}/s",
            rate >= TARGET_RATE,
        )
        table.add(
            f"{name}: events/s vs trivial app",
            f"{rate:,.0f}",
            f"{trivial:,.0f}",
            f"{share:.2f}",
            f"≥ {TARGET_RATIO:.2f}",
            share >= TARGET_RATIO,
        )
        table.add(
            f"{name}: events/s vs least-work endpoint",
            f"{rate:,.0f}",
            f"{floor:,.0f}",
            f"{harness.ratio(rate, floor):.2f}",
        )
        p99 = harness.median([r.p99 for r in runs])
        base_p99 = harness.median([r.p99 for r in results["trivial"]])
        table.add(
            f"{name}: p99 latency at -c{args.connections}",
            harness.ms(p99),
            harness.ms(base_p99),
            f"{harness.ratio(p99, base_p99):.2f}",
        )
        accepted = sum(r.accepted or 0 for r in runs)
        answered = sum(r.ok_2xx for r in runs)
        in_flight = sum(r.sent - r.requests for r in runs)
        # wrk stops at its deadline with up to -c requests in flight: the exporter may accept
        # them although wrk never counts their answers.
        table.add(
            f"{name}: accepted (exporter) vs 2xx (wrk)",
            f"{accepted:,}",
            f"{answered:,}",
            f"{harness.ratio(accepted, answered):.4f}",
            f"equal, + ≤ {in_flight} in flight",
            answered <= accepted <= answered + in_flight,
        )
        errors = sum(r.non_2xx + r.socket_errors + (r.stale or 0) for r in runs)
        table.add(f"{name}: non-2xx, socket errors, stale", str(errors), "", "", "0", errors == 0)
        wraps = sum(r.wraps for r in runs)
        table.add(f"{name}: repeated requests (file wrapped)", str(wraps), "", "", "0", wraps == 0)
    return table


if __name__ == "__main__":
    sys.exit(main())
