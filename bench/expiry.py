"""Expiry at scale: ~200,000 series that stop updating must be gone from /metrics within
TTL + 30 s, and the process must give the memory back (its RSS drops, or a steady churn of
meetings does not grow it).

Default mode: an exporter with a short TTL is loaded with ~200k series (two rounds of every
participant), then left alone; /metrics is polled every few seconds for the live series
(``zoom_qss_exporter_series`` summed, cross-checked against the per-participant sample lines)
and the RSS (``process_resident_memory_bytes``) until nothing is left.

``--churn-minutes N`` instead runs N minutes of steady meeting churn: meetings of 10 start,
report once a round (every ``--round-seconds``, each round one minute newer in ``date_time``)
for ``--meeting-rounds`` rounds and end (they just stop reporting, so their series expire),
replaced by new meetings, keeping ~200k series reporting. RSS is printed once a minute; after
the first TTL + 1 minute (the store filling up to its steady size) it must stay within 10%.

    .venv/bin/python -m bench.expiry                     # about 1.5 minutes (--ttl 60)
    .venv/bin/python -m bench.expiry --quick             # under a minute (--ttl 30)
    .venv/bin/python -m bench.expiry --churn-minutes     # 10 minutes of churn
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass

from bench import events, harness
from bench.harness import Connection, Server, Table

SERIES = 200_000
GRACE = 30.0  # series must be gone within TTL + GRACE
CHURN_TOLERANCE = 0.10
RETURNED_SHARE = 0.5  # "RSS drops": at least half of what the loaded store took comes back
# Per-participant families: everything the store holds (the fleet metrics never expire).
_STORE_PREFIXES = ("zoom_qos_", "zoom_participant_info", "zoom_phone_")
_FLEET_PREFIXES = ("zoom_qos_fleet_", "zoom_qos_samples_total", "zoom_phone_fleet_")


def store_lines(text: str) -> int:
    """Sample lines of per-participant families in a scrape (what must vanish)."""
    return sum(
        1
        for line in text.splitlines()
        if line.startswith(_STORE_PREFIXES) and not line.startswith(_FLEET_PREFIXES)
    )


@dataclass
class Poll:
    at: float  # seconds since the last update
    series: int
    lines: int
    rss: int


def poll(server: Server, since: float) -> Poll:
    s = harness.scrape(server, compressed=True)
    return Poll(
        time.monotonic() - since,
        events.series_count(s.text),
        store_lines(s.text),
        events.rss_bytes(s.text),
    )


def show(p: Poll) -> None:
    print(
        f"  {p.at:6.1f} s  {p.series:>9,} series  {p.lines:>9,} lines  RSS {harness.mib(p.rss)}",
        flush=True,
    )


# --- default mode: load, stop, watch ----------------------------------------------------------


def expiry(args: argparse.Namespace) -> tuple[Table, list[str]]:
    participants = events.participants_for(args.series)
    gen = events.Generator(namespace="expiry")
    ttl_args = (f"--store.ttl={args.ttl:g}s", f"--store.summary-ttl={args.ttl:g}s")
    with harness.exporter(*ttl_args, *args.exporter_arg) as ex:
        before = events.rss_bytes(harness.scrape(ex, compressed=True).text)
        load_start = time.monotonic()
        statuses: Counter[int] = Counter()
        for round_ in range(2):  # inserts, then one-minute-newer updates
            batch = [r.http() for r in gen.requests(range(participants), [round_])]
            statuses += harness.post_all(ex, batch)
        last_update = time.monotonic()
        print(
            f"loaded {participants:,} participants x 2 rounds in "
            f"{last_update - load_start:.1f} s, answers {dict(statuses)}; TTL {args.ttl:g} s"
        )
        peak = poll(ex, last_update)
        show(peak)
        deadline = args.ttl + GRACE + args.overtime
        polls = [peak]
        gone: Poll | None = None
        while polls[-1].at < deadline:
            next_at = last_update + polls[-1].at + args.poll
            while time.monotonic() < next_at:
                time.sleep(0.05)  # the next poll is due
            p = poll(ex, last_update)
            polls.append(p)
            show(p)
            peak = max(peak, p, key=lambda q: q.rss) if p.series else peak
            if p.series == 0 and p.lines == 0:
                gone = gone or p
                if len([q for q in polls if q.series == 0]) > args.settle_polls:
                    break
        after = polls[-1]
        problems = ex.problems()

    table = Table(
        f"Expiry: {polls[0].series:,} series, --store.ttl={args.ttl:g}s, "
        f"polled every {args.poll:g} s"
    )
    limit = args.ttl + GRACE
    table.add(
        "series loaded (zoom_qss_exporter_series)",
        f"{polls[0].series:,}",
        f"{events.expected_series(participants):,}",
        f"{harness.ratio(polls[0].series, events.expected_series(participants)):.3f}",
        f"≥ {args.series:,}",
        polls[0].series >= args.series,
    )
    table.add(
        "time from last update to 0 series on /metrics",
        f"{gone.at:.0f} s" if gone else f"> {polls[-1].at:.0f} s",
        f"TTL {args.ttl:g} s",
        f"{harness.ratio(gone.at, args.ttl):.2f}" if gone else "",
        f"≤ TTL + {GRACE:g} s = {limit:g} s",
        gone is not None and gone.at <= limit,
    )
    loaded = polls[0].rss  # measured as the first scrape began, before it rendered anything
    table.add("RSS before load", harness.mib(before))
    table.add(
        "RSS with the store loaded",
        harness.mib(loaded),
        harness.mib(before),
        f"{loaded / before:.2f}",
    )
    table.add(
        "RSS at peak (while scrapes render)",
        harness.mib(peak.rss),
        harness.mib(before),
        f"{peak.rss / before:.2f}",
    )
    grown = loaded - before
    returned = (loaded - after.rss) / grown if grown > 0 else 0.0
    dropped = returned >= RETURNED_SHARE
    table.add(
        f"RSS after expiry (+{after.at - (gone.at if gone else after.at):.0f} s)",
        harness.mib(after.rss),
        harness.mib(loaded),
        f"{after.rss / loaded:.2f}",
        f"≥ {RETURNED_SHARE:.0%} of the store's growth given back",
        True if dropped else None,
    )
    table.add("share of the store's growth given back", f"{round(returned * 100)}%")
    notes = harness.exporter_logs(problems)
    if not dropped:
        notes.append(
            "RSS did not drop after expiry, so that half of the target is not met here; the "
            "other half is flat RSS under churn: python -m bench.expiry --churn-minutes 10"
        )
    return table, notes


# --- churn mode -------------------------------------------------------------------------------


@dataclass
class Slot:
    meeting: int  # meeting number: its participants are meeting * size .. + size - 1
    age: int  # rounds reported so far


async def _send(port: int, requests: list[bytes], concurrency: int = 8) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = list(reversed(requests))

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            while queue:
                statuses[await conn.request(queue.pop())] += 1
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def churn(args: argparse.Namespace) -> tuple[Table, list[str]]:
    size = 10
    slots_count = math.ceil(events.participants_for(args.series) / size)
    life = args.meeting_rounds
    # Staggered ages: every round about 1/life of the meetings end and as many start.
    slots = [Slot(meeting=i, age=i % life) for i in range(slots_count)]
    next_meeting = slots_count
    gen = events.Generator(namespace="churn", meeting_size=size)
    ttl_args = (f"--store.ttl={args.ttl:g}s", f"--store.summary-ttl={args.ttl:g}s")
    minutes = args.churn_minutes
    samples: list[tuple[float, int, int]] = []  # minute, series, RSS
    statuses: Counter[int] = Counter()
    started_meetings = 0
    with harness.exporter(*ttl_args, *args.exporter_arg) as ex:
        start = time.monotonic()
        rss0 = events.rss_bytes(harness.scrape(ex, compressed=True).text)
        print(
            f"churn: {slots_count * size:,} participants reporting in meetings of {size}, "
            f"a round every {args.round_seconds:g} s, meetings last {life} rounds, "
            f"TTL {args.ttl:g} s, {minutes:g} minutes; RSS at start {harness.mib(rss0)}"
            + (f"; exporter args {' '.join(args.exporter_arg)}" if args.exporter_arg else "")
        )
        round_no = 0
        next_minute = 1
        while next_minute <= minutes:
            batch = []
            for slot in slots:
                if slot.age >= life:  # the meeting ends: its series are left to expire
                    slot.meeting, slot.age = next_meeting, 0
                    next_meeting += 1
                    started_meetings += 1
                first = slot.meeting * size
                batch += [r.http() for r in gen.requests(range(first, first + size), [slot.age])]
                slot.age += 1
            statuses += asyncio.run(_send(ex.port, batch))
            round_no += 1
            s = harness.scrape(ex, compressed=True)  # as Prometheus would, and it runs expiry
            elapsed = time.monotonic() - start
            if elapsed >= next_minute * 60:
                series, rss = events.series_count(s.text), events.rss_bytes(s.text)
                samples.append((elapsed / 60, series, rss))
                print(
                    f"  minute {elapsed / 60:4.1f}: {series:>9,} series  RSS {harness.mib(rss)}"
                    f"  ({round_no} rounds, {started_meetings:,} meetings started)",
                    flush=True,
                )
                next_minute += 1
            next_round = start + round_no * args.round_seconds
            while time.monotonic() < next_round:
                time.sleep(0.05)  # the next round is due
        problems = ex.problems()

    # Meetings end from the first round on (staggered ages); the store is at its steady size
    # once the first leavers have had a TTL, an expiry pass and a round to go.
    settle = (args.ttl + 10 + args.round_seconds) / 60
    steady = [s for s in samples if s[0] >= settle]
    rss_values = [rss for _, _, rss in steady]
    table = Table(f"Churn: {minutes:g} minutes, {started_meetings:,} meetings started and ended")
    if len(rss_values) >= 2:
        spread = max(rss_values) / min(rss_values)
        table.add(
            f"RSS max vs min from minute {settle:.1f} on ({len(steady)} samples)",
            harness.mib(max(rss_values)),
            harness.mib(min(rss_values)),
            f"{spread:.3f}",
            f"≤ {1 + CHURN_TOLERANCE:.2f}",
            spread <= 1 + CHURN_TOLERANCE,
        )
    else:
        table.add(f"RSS max/min from minute {settle:.1f} on", "too short a run", "", "", "")
    all_rss = [rss for _, _, rss in samples]
    if all_rss:
        table.add("RSS max/min, all samples", f"{max(all_rss) / min(all_rss):.3f}")
        table.add(
            "RSS at the end",
            harness.mib(all_rss[-1]),
            harness.mib(rss0),
            f"{all_rss[-1] / rss0:.2f}",
        )
        live = [n for _, n, _ in steady or samples]
        table.add("live series (min-max)", f"{min(live):,}-{max(live):,}")
    bad = sum(v for k, v in statuses.items() if k != 200)
    table.add(
        "events sent / non-200",
        f"{sum(statuses.values()):,} / {bad}",
        "",
        "",
        "0 non-200",
        bad == 0,
    )
    return table, harness.exporter_logs(problems)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="--ttl 30 --poll 3")
    parser.add_argument("--ttl", type=float, help="--store.ttl, s (default 60)")
    parser.add_argument("--series", type=int, default=SERIES, help="store size (default 200000)")
    parser.add_argument("--poll", type=float, help="poll interval, s (default 5)")
    parser.add_argument(
        "--overtime", type=float, default=30.0, help="keep polling past TTL + 30 s (default 30)"
    )
    parser.add_argument("--settle-polls", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--churn-minutes",
        type=float,
        nargs="?",
        const=10.0,
        help="run meeting churn for N minutes instead (default N: 10)",
    )
    parser.add_argument(
        "--round-seconds", type=float, default=10.0, help="churn: seconds per round (default 10)"
    )
    parser.add_argument(
        "--meeting-rounds", type=int, default=6, help="churn: rounds a meeting lasts (default 6)"
    )
    parser.add_argument(
        "--exporter-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for zoom-qss-exporter serve (repeatable), "
        "e.g. --exporter-arg=--store.dedup-window=2m",
    )
    args = parser.parse_args()
    args.ttl = args.ttl or (30.0 if args.quick else 60.0)
    args.poll = args.poll or (3.0 if args.quick else 5.0)
    harness.exit_on_sigterm()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    table, notes = churn(args) if args.churn_minutes else expiry(args)
    print()
    print(table.render())
    if notes:
        print()
        print("\n".join(notes))
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
