"""Soak: meeting churn for a quarter of an hour, RSS and live series sampled every minute.

The simulator (``zoom-qss-exporter simulate``) keeps ``meetings x participants`` people in
meetings, webinars and Video SDK sessions plus a few phone calls; each round a participant
leaves with the chance ``--churn`` (its ``*_qos_summary`` and ``*_data_summary`` arrive) and a
newcomer takes the seat, so participant ids never repeat. The exporter runs with a 5-minute
lifetime for every kind of state (``--store.ttl``, ``--store.summary-ttl``, and a 2.5-minute
``--store.dedup-window``, as the redelivery ledger keeps a stream one to two windows), so the
TTL window is full after about 6 minutes; from then on both RSS and the live series must stay
flat.

    .venv/bin/python -m hardening.soak                  # 15 minutes
    .venv/bin/python -m hardening.soak --minutes 3      # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.events import value
from bench.harness import executable, exit_on_sigterm
from hardening.common import TOKEN, Exporter, mib, verdict

WINDOW_MINUTES = 5  # every lifetime of the soak's exporter
SETTLE_MINUTES = WINDOW_MINUTES + 1  # the window is full, plus one minute of slack
# Flat: over the minutes after SETTLE_MINUTES, the largest value is at most this much above
# the smallest one.
RSS_TOLERANCE = 0.10
SERIES_TOLERANCE = 0.15


@dataclass
class Sample:
    minute: int
    rss_bytes: int  # process_resident_memory_bytes
    vm_rss_bytes: int  # /proc/<pid>/status, a cross-check
    series: int  # zoom_qss_exporter_series, all families
    accepted: int  # events accepted so far, all kinds
    expired: int
    dropped: int


def sample(exporter: Exporter, minute: int) -> Sample:
    text = exporter.metrics_text()
    return Sample(
        minute=minute,
        rss_bytes=int(value(text, "process_resident_memory_bytes")),
        vm_rss_bytes=exporter.rss_bytes(),
        series=int(value(text, "zoom_qss_exporter_series")),
        accepted=int(value(text, "zoom_qss_exporter_events_total", outcome="accepted")),
        expired=int(value(text, "zoom_qss_exporter_series_expired_total")),
        dropped=int(value(text, "zoom_qss_exporter_series_dropped_total")),
    )


def spread(values: list[int]) -> float:
    """(max - min) / min: how far a flat line strays."""
    return (max(values) - min(values)) / max(min(values), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=15)
    parser.add_argument("--meetings", type=int, default=120)
    parser.add_argument("--participants", type=int, default=10, help="per meeting")
    parser.add_argument("--phone-calls", type=int, default=60)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds")
    parser.add_argument("--churn", type=float, default=0.1, help="chance to leave per round")
    parser.add_argument("--json", type=Path, help="write the samples here")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    window = f"{WINDOW_MINUTES}m"
    lifetimes = (f"--store.ttl={window}", f"--store.summary-ttl={window}")
    # The redelivery ledger keeps a stream one to two dedup windows after its last sample:
    # half the TTL, so that it too holds nothing older than the TTL window.
    dedup = f"--store.dedup-window={WINDOW_MINUTES * 30}s"
    with Exporter(*lifetimes, dedup) as exporter:
        exporter.start()
        simulator = subprocess.Popen(
            [
                executable("zoom-qss-exporter"),
                "simulate",
                f"--target={exporter.url}/webhook",
                f"--secret-token={TOKEN}",
                f"--meetings={args.meetings}",
                f"--participants={args.participants}",
                f"--phone-calls={args.phone_calls}",
                f"--interval={args.interval}",
                f"--churn={args.churn}",
                "--rate=2000",
                "--concurrency=32",
                "--seed=7",
                f"--duration={args.minutes * 60 + 5}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        samples: list[Sample] = []
        start = time.monotonic()
        try:
            print("minute        RSS    VmRSS   series   accepted  expired  dropped", flush=True)
            for minute in range(args.minutes + 1):
                time.sleep(max(0.0, start + 60 * minute - time.monotonic()))  # the schedule
                s = sample(exporter, minute)
                samples.append(s)
                print(
                    f"{s.minute:6d} {mib(s.rss_bytes):>10} {mib(s.vm_rss_bytes):>10} "
                    f"{s.series:8d} {s.accepted:10d} {s.expired:8d} {s.dropped:8d}",
                    flush=True,
                )
            output, _ = simulator.communicate(timeout=60)
        finally:
            if simulator.poll() is None:
                simulator.terminate()
                simulator.wait()
        report = output.decode(errors="replace")
        print("simulator:", *report.splitlines()[-24:], sep="\n  ")
    settled = [s for s in samples if s.minute >= SETTLE_MINUTES]
    problems = []
    if simulator.returncode != 0:
        problems.append("the simulator saw answers other than 2xx, or transport errors")
    if settled:
        rss = spread([s.rss_bytes for s in settled])
        series = spread([s.series for s in settled])
        print(
            f"after minute {SETTLE_MINUTES}: RSS spread {rss:.1%} (max {RSS_TOLERANCE:.0%}), "
            f"series spread {series:.1%} (max {SERIES_TOLERANCE:.0%})"
        )
        if rss > RSS_TOLERANCE:
            problems.append(f"RSS not flat: spread {rss:.1%}")
        if series > SERIES_TOLERANCE:
            problems.append(f"series not flat: spread {series:.1%}")
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in samples], indent=2) + "\n")
    return verdict("soak", problems)


if __name__ == "__main__":
    sys.exit(main())
