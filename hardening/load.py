"""Load: mixed valid and invalid webhook requests from wrk (another process, loopback) for
two minutes, as fast as the exporter answers them, up to 2x the benchmark's target rate.

The benchmark's target is 2,500 events/s, so the offered rate aims at 5,000 requests/s; wrk is
closed-loop (``--connections`` requests in flight), so on a machine where the exporter cannot
answer that many the achieved rate is what it sustains, and is reported as such. A scraper
reads /metrics every 15 s meanwhile, as Prometheus would.

Checks: no 5xx (there is no deliberate 503 in the pull mode), every kind got its documented
status, and every valid event wrk saw accepted is in the exporter's own counters (and its six
QoS samples in ``zoom_qos_samples_total``).

    .venv/bin/python -m hardening.load                    # 2 minutes
    .venv/bin/python -m hardening.load --duration 20      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.events import value
from bench.harness import exit_on_sigterm
from hardening.common import Exporter, mib, verdict
from hardening.traffic import ITEMS_PER_EVENT, MIX, Traffic, write

TARGET_RATE = 2 * 2500.0  # requests/s offered: twice the benchmark's target
LUA = Path(__file__).with_name("mixed.lua")


def ensure_wrk() -> str:
    """wrk from PATH; installed from Debian's package when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("load: installing wrk (Debian package)", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return shutil.which("wrk") or "wrk"


class Scraper(threading.Thread):
    """Scrapes /metrics every ``interval`` seconds until stopped; keeps the durations."""

    def __init__(self, url: str, interval: float = 15.0) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.durations: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.wait(self.interval):
                start = time.perf_counter()
                try:
                    ok = client.get(self.url, headers={"accept-encoding": "gzip"}).is_success
                except httpx.HTTPError:
                    ok = False
                self.durations.append(time.perf_counter() - start)
                self.failures += not ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=120, help="seconds")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument(
        "--max-rate",
        type=float,
        default=8000.0,
        help="highest plausible requests/s: sizes the request file so that it never wraps",
    )
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    wrk = ensure_wrk()
    now = int(time.time())
    count = int(args.max_rate * args.duration)  # a closed loop may go past the target rate
    with tempfile.TemporaryDirectory(prefix="hardening-load-") as tmp:
        requests = Path(tmp) / "requests.tsv"
        started = time.monotonic()
        kinds = write(requests, Traffic("load", args.participants, now).mixed(count))
        print(
            f"load: {count} requests written in {time.monotonic() - started:.0f}s: {kinds}",
            flush=True,
        )
        with Exporter("--zoom.replay-window=2h") as exporter:
            exporter.start()
            before = exporter.metrics_text()
            scraper = Scraper(f"{exporter.url}/metrics")
            scraper.start()
            run = subprocess.run(
                [
                    wrk,
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{args.duration}s",
                    "--timeout=10s",
                    "-s",
                    str(LUA),
                    exporter.url,
                ],
                env={**os.environ, "REQUESTS": str(requests)},
                capture_output=True,
                text=True,
                timeout=args.duration + 120,
            )
            scraper.stop.set()
            scraper.join()
            after = exporter.metrics_text()
            rss = exporter.rss_bytes()
            alive = exporter.proc is not None and exporter.proc.poll() is None
    line = next((x for x in run.stdout.splitlines() if x.startswith("mixed-result ")), None)
    if line is None:
        print(run.stdout, run.stderr, sep="\n")
        return 1
    result = json.loads(line.removeprefix("mixed-result "))
    statuses = {int(k): v for k, v in result["statuses"].items()}

    def delta(name: str, **labels: str) -> int:
        return int(value(after, name, **labels) - value(before, name, **labels))

    accepted = delta(
        "zoom_qss_exporter_events_total", event="meeting.participant_qos", outcome="accepted"
    )
    samples = delta("zoom_qos_samples_total", product="meeting")
    rate = result["requests"] / (result["duration_us"] / 1e6)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    expected = {status for _, allowed in MIX.values() for status in allowed}
    lat = result["latency_us"]
    summary = {
        "duration_s": result["duration_us"] / 1e6,
        "offered": f"closed loop, {args.connections} connections (aiming at {TARGET_RATE:.0f}/s)",
        "achieved_rate": round(rate, 1),
        "requests": result["requests"],
        "statuses": statuses,
        "server_errors": server_errors,
        "socket_errors": sum(result[k] for k in ("connect_errors", "read_errors", "write_errors"))
        + result["timeouts"],
        "wraps": result["wraps"],
        "latency_ms": {k: round(v / 1000, 2) for k, v in lat.items()},
        "valid_accepted_by_wrk": result["accepted"],
        "accepted_by_exporter": accepted,
        "stale": result["stale"],
        "fleet_samples": samples,
        "fleet_samples_expected": accepted * ITEMS_PER_EVENT,
        "rejected_overload": delta("zoom_qss_exporter_events_total", outcome="rejected_overload"),
        "rate_limited": delta("zoom_qss_exporter_events_total", outcome="rate_limited"),
        "series": int(value(after, "zoom_qss_exporter_series")),
        "rss": mib(rss),
        "scrapes": len(scraper.durations),
        "scrape_max_s": round(max(scraper.durations, default=0.0), 3),
        "scrape_failures": scraper.failures,
        "exporter_alive": alive,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    problems = []
    if server_errors:
        problems.append(f"{server_errors} answers 5xx")
    if set(statuses) - expected:
        problems.append(f"undocumented statuses {sorted(set(statuses) - expected)}")
    if accepted < result["accepted"] or accepted > result["accepted"] + args.connections:
        # requests in flight when wrk stopped may be accepted without wrk seeing the answer
        problems.append(f"exporter accepted {accepted}, wrk saw {result['accepted']}")
    if samples != accepted * ITEMS_PER_EVENT:
        problems.append(f"{samples} fleet samples for {accepted} events")
    if result["wraps"] or result["stale"]:
        problems.append("the request file wrapped: some valid events were repeats")
    if not alive or scraper.failures:
        problems.append("the exporter died or a scrape failed")
    return verdict("load", problems)


if __name__ == "__main__":
    sys.exit(main())
