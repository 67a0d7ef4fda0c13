"""What remote write's durability costs webhook ingest: signed ``meeting.participant_qos``
events (the benchmarks' usual event, 6 QoS items each) replayed by wrk against an exporter that
writes every sample to a receiver answering 204 at once (bench/receiver_app.py, on loopback),
in three modes, each on a fresh exporter process with a fresh log directory:

- ``--no-remote-write.wal``: samples queued in memory only (the baseline);
- ``--no-remote-write.wal-fsync``: every event appended to the write-ahead log before its
  answer (survives a crash of the process, not of the machine);
- the default: appended and fdatasync'ed before the answer, one sync shared by the events that
  arrive meanwhile (group commit).

Per mode: events/s, p50 and p99 answer latency (wrk's), each as a ratio to the baseline of the
same round; the log's bytes per event (its segments, sampled while the run goes: the log drops
segments the receiver has answered for) and what the exporter wrote to the file system per
event (``/proc/<pid>/io`` ``write_bytes``: segments, checkpoints and sink states, in pages).
The machine is shared and noisy: the ratios of one run are the figures, not the rates.

Checked, and the run fails otherwise: every request answered 2xx, the exporter's accepted count
equals wrk's 2xx answers (+ at most the requests in flight at wrk's deadline), and once the
queue is empty every sample of them was answered 2xx by the receiver (none failed or dropped).
No request is sent twice: the file holds enough distinct events for ``--max-rate`` x duration.

    .venv/bin/python -m bench.wal            # 3 rounds of 10 s per mode
    .venv/bin/python -m bench.wal --quick    # 1 round of 5 s per mode
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import events, harness
from bench.harness import Server, Table
from bench.ingest import WrkRun, ensure_wrk, wrk

PARTICIPANTS = 4000  # in meetings of 10: 192,000 series in the exporter's store
MODES: dict[str, tuple[str, ...]] = {
    "no log": ("--no-remote-write.wal",),
    "log, no fsync": ("--no-remote-write.wal-fsync",),
    "log + fsync": (),  # the default
}
BASELINE = "no log"
PREFIX = "zoom_qss_exporter_remote_write_"


@dataclass
class Result:
    run: WrkRun
    events: int  # events the exporter accepted during the whole life of the process
    sent: int  # samples the receiver answered 2xx
    failed: int  # samples failed (any reason) or dropped
    segment_bytes: int  # log segments' bytes
    written_bytes: int  # /proc/<pid>/io write_bytes over the exporter's life
    problems: list[str] = field(default_factory=list)

    @property
    def segment_per_event(self) -> float:
        return self.segment_bytes / self.events if self.events else 0.0

    @property
    def written_per_event(self) -> float:
        return self.written_bytes / self.events if self.events else 0.0


class SegmentWatch:
    """The largest size seen of each segment file in ``directory``, polled in a thread (the
    exporter removes a segment once the receiver has answered for it and a newer one began)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sizes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _look(self) -> None:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith("segment-"):
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:
                    continue
                self.sizes[entry.name] = max(size, self.sizes.get(entry.name, 0))

    def _poll(self) -> None:
        while not self._stop.wait(0.05):  # polling the directory, not waiting for a result
            self._look()

    def __enter__(self) -> SegmentWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._look()

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def drained(server: Server, at_least: int, timeout: float = 60.0) -> str:
    """Scrape until the exporter has accepted ``at_least`` events and its queue is empty."""
    deadline = time.monotonic() + timeout
    while True:
        text = harness.scrape(server).text
        done = events.value(text, PREFIX + "queue_samples") == 0
        if (done and events.accepted_events(text) >= at_least) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)  # polling the condition


def exporter_run(
    mode: str,
    receiver: Server,
    requests: Path,
    preload: list[bytes],
    warmup: list[bytes],
    work: Path,
    args: argparse.Namespace,
) -> Result:
    wal = Path(tempfile.mkdtemp(prefix="wal-", dir=work))
    flags = (
        f"--remote-write.url={receiver.url}/api/v1/write",
        f"--remote-write.wal-directory={wal}",
        "--web.metrics-cache=0s",
        *MODES[mode],
    )
    try:
        with SegmentWatch(wal) as segments, harness.exporter(*flags) as server:
            statuses = harness.post_all(server, preload)
            if set(statuses) != {200}:
                raise RuntimeError(f"preload answers ({mode}): {dict(statuses)}")
            harness.post_all(server, warmup)
            text = drained(server, len(preload) + len(warmup))
            before = events.accepted_events(text)
            run = wrk(server, requests, args.duration, args.connections, mode)
            text = drained(server, before + run.ok_2xx)
            written = write_bytes(server.pid)
            run.accepted = events.accepted_events(text) - before
            failed = events.value(text, PREFIX + "samples_failed_total") + events.value(
                text, PREFIX + "samples_dropped_total"
            )
            problems = server.problems()
            if mode == BASELINE:  # its start-up warning says what a crash would lose
                problems = [p for p in problems if "without a write-ahead log" not in p]
            result = Result(
                run,
                events.accepted_events(text),
                int(events.value(text, PREFIX + "samples_sent_total")),
                int(failed),
                0,
                written,
                problems,
            )
            if events.value(text, PREFIX + "queue_samples"):
                result.problems.append(f"{mode}: the queue did not drain within 60 s")
        result.segment_bytes = segments.total
        return result
    finally:
        shutil.rmtree(wal, ignore_errors=True)


def describe(result: Result) -> str:
    run = result.run
    return (
        f"  {run.label:<14} {run.rate:8,.0f} events/s  p50 {harness.ms(run.p50)}"
        f"  p99 {harness.ms(run.p99)}  max {harness.ms(run.max)}  non-2xx {run.non_2xx}"
        f"  socket errors {run.socket_errors}  wraps {run.wraps}  accepted {run.accepted:,}"
        f"  samples sent {result.sent:,}  failed {result.failed}"
        f"  log {result.segment_per_event:,.0f} B/event"
        f"  written {result.written_per_event:,.0f} B/event"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 5 s per mode")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, help="rounds of the three modes (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (default 16)")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=6000.0,
        help="highest plausible events/s: sizes the request file (default 6000)",
    )
    args = parser.parse_args()
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    harness.exit_on_sigterm()
    ensure_wrk()

    need = math.ceil(args.max_rate * args.duration)
    rounds = math.ceil(need / PARTICIPANTS)
    # Recent date_times (the exporter sends items over 45 minutes old in requests of their
    # own, as Zoom's late retries): round r is (rounds + 2 - r) minutes old at generation.
    now = int(time.time())
    base = (now // 60 - rounds - 3) * 60
    # The log lives on the disk the exporter would use (not a tmpfs): under the repository's
    # data/ (ignored by git, where the log's default directory is too).
    data = harness.REPO / "data"
    data.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-wal-", dir=data))
    try:
        start = time.perf_counter()
        update_file = work / "update.tsv"
        gen = events.Generator(namespace="steady", base_time=base)
        preload = [r.http() for r in gen.requests(range(PARTICIPANTS), [0])]
        events.write_tsv(update_file, gen.requests(range(PARTICIPANTS), range(1, rounds + 1)))
        warm = events.Generator(namespace="warm-up", base_time=base)
        warmup = [r.http() for r in warm.requests(range(400), range(2))]
        print(
            f"request file: {PARTICIPANTS:,} participants x {rounds} rounds = "
            f"{PARTICIPANTS * rounds:,} updates, date_time {rounds + 2} to 2 minutes old; "
            f"signed in {time.perf_counter() - start:.1f} s"
        )
        print(
            f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} round(s) of "
            f"{len(MODES)} modes, fresh exporter and log per run, log under {work}; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        results: dict[str, list[Result]] = {mode: [] for mode in MODES}
        with harness.trivial("receiver_app") as receiver:
            for n in range(args.rounds):
                print(f"round {n + 1}:")
                order = list(MODES)
                if n % 2:
                    order.reverse()
                for mode in order:
                    result = exporter_run(mode, receiver, update_file, preload, warmup, work, args)
                    results[mode].append(result)
                    print(describe(result), flush=True)
        table = report(results, args)
        print()
        print(table.render())
        logs = harness.exporter_logs([p for rs in results.values() for r in rs for p in r.problems])
        if logs:
            print("\n" + "\n".join(logs))
        return 1 if table.failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> Table:
    table = Table(
        f"Remote write durability: wrk -t1 -c{args.connections} -d{args.duration:g}s, receiver "
        f"answering 204, median of {args.rounds} round(s); ratio: median of the rounds' ratios "
        "to --no-remote-write.wal in the same round (each round's in brackets)"
    )
    base = results[BASELINE]
    base_rate = harness.median([r.run.rate for r in base])
    base_p50 = harness.median([r.run.p50 for r in base])
    base_p99 = harness.median([r.run.p99 for r in base])

    def ratio(runs: list[Result], figure: Callable[[WrkRun], float]) -> str:
        """The median of each round's ratio to the baseline of that round: a round's three
        runs are a minute apart, the rounds several minutes (other load comes and goes)."""
        per_round = [
            harness.ratio(figure(r.run), figure(b.run)) for r, b in zip(runs, base, strict=True)
        ]
        return f"{harness.median(per_round):.2f} ({', '.join(f'{x:.2f}' for x in per_round)})"

    for mode, runs in results.items():
        rate = harness.median([r.run.rate for r in runs])
        p50 = harness.median([r.run.p50 for r in runs])
        p99 = harness.median([r.run.p99 for r in runs])
        if mode == BASELINE:
            table.add(f"{mode}: events/s", f"{rate:,.0f}")
            table.add(f"{mode}: p50, p99 latency", f"{harness.ms(p50)}, {harness.ms(p99)}")
        else:
            table.add(
                f"{mode}: events/s",
                f"{rate:,.0f}",
                f"{base_rate:,.0f}",
                ratio(runs, lambda r: r.rate),
            )
            table.add(
                f"{mode}: p50 latency",
                harness.ms(p50),
                harness.ms(base_p50),
                ratio(runs, lambda r: r.p50),
            )
            table.add(
                f"{mode}: p99 latency",
                harness.ms(p99),
                harness.ms(base_p99),
                ratio(runs, lambda r: r.p99),
            )
            segment = harness.median([r.segment_per_event for r in runs])
            written = harness.median([r.written_per_event for r in runs])
            table.add(f"{mode}: log segment bytes per event", f"{segment:,.0f} B")
            table.add(f"{mode}: bytes written to the file system per event", f"{written:,.0f} B")
        answered = sum(r.run.ok_2xx for r in runs)
        accepted = sum(r.run.accepted or 0 for r in runs)
        in_flight = sum(r.run.sent - r.run.requests for r in runs)
        table.add(
            f"{mode}: accepted (exporter) vs 2xx (wrk)",
            f"{accepted:,}",
            f"{answered:,}",
            "",
            f"equal, + ≤ {in_flight} in flight",
            answered <= accepted <= answered + in_flight,
        )
        sent = sum(r.sent for r in runs) / sum(r.events for r in runs)
        base_sent = sum(r.sent for r in base) / sum(r.events for r in base)
        table.add(
            f"{mode}: samples answered 2xx by the receiver per event (queue empty)",
            f"{sent:.3f}",
            f"{base_sent:.3f}",
            "",
            "the same in every mode",
            abs(sent - base_sent) < 0.001,
        )
        errors = sum(r.run.non_2xx + r.run.socket_errors + r.failed + r.run.wraps for r in runs)
        table.add(
            f"{mode}: non-2xx, socket errors, samples failed, wraps",
            str(errors),
            "",
            "",
            "0",
            errors == 0,
        )
    return table


if __name__ == "__main__":
    sys.exit(main())
