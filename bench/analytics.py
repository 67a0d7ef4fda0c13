"""The quality analytics' cost, at a large configuration: 500 sites, 3 accounts.

1. **Ingest through HTTP**, analytics on against analytics off (``--no-analytics.enabled``) in
   the same run, alternating rounds, each on a fresh exporter: the participants' ``*_data``
   events (an internal address in one of 500 sites) and their first minute are preloaded, then
   wrk replays their later minutes (bench/events.py's ``meeting.participant_qos``, five media
   streams and a CPU item each). Target: on / off >= 0.9.
2. **Size**, in process: 30,000 participants of meetings, webinars and sessions over the 500
   sites and 3 accounts, on wired, Wi-Fi and unknown networks, 20 client versions, 10 data
   centers, some of them poor, fed to one exporter with the analytics on and one with them
   off (both ``--no-store.per-participant``). Prints the analytics' rows and series per family
   and the memory they add (tracemalloc: on minus off).

    .venv/bin/python -m bench.analytics            # 3 rounds of 10 s
    .venv/bin/python -m bench.analytics --quick    # 2 rounds of 5 s
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench import events, harness
from bench.harness import Table
from bench.ingest import FLEET_SERIES, WrkRun, describe, ensure_wrk, exporter_run
from zoom_qss_exporter.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_headers

TARGET_RATIO = 0.9
SITES = 500
ACCOUNTS = ("account-emea", "account-amer", "account-apac")
VERSIONS = tuple(f"{major}.{minor}.3 (1234)" for major in (5, 6) for minor in range(10))
DATA_CENTERS = ("SC", "NY", "DV", "AMS (Sub)", "FR", "SG", "HK", "SY", "TY", "SP")
NETWORKS = ("Wired", "Wifi", "")
PRODUCTS = ("meeting", "webinar", "session")


def site_subnet(site: int) -> str:
    return f"10.{site // 250}.{site % 250}.0/24"


def site_address(site: int, host: int) -> str:
    return f"10.{site // 250}.{site % 250}.{1 + host % 250}"


def write_sites(path: Path) -> None:
    lines = ["sites:"]
    for site in range(SITES):
        lines += [f"  - name: Site {site:03d}", f"    subnets: [{site_subnet(site)}]"]
    path.write_text("\n".join(lines) + "\n")


def data_event(gen: events.Generator, participant: int) -> dict[str, Any]:
    """The ``meeting.participant_data`` of a bench/events.py participant."""
    site = participant % SITES
    mix = participant // SITES  # the other dimensions vary independently of the site
    item = {
        "device": ("Windows", "Mac", "iOS")[mix % 3],
        "network_type": NETWORKS[(mix // 3) % len(NETWORKS)],
        "connection_type": ("UDP", "TCP")[participant % 2],
        "data_center": DATA_CENTERS[participant % len(DATA_CENTERS)],
        "version": VERSIONS[(participant // 7) % len(VERSIONS)],
        "audio_internal_ip_address": site_address(site, participant),
        "signaling_ip_address": "198.51.100.7",
    }
    user = events.participant_user_id(participant)
    return {
        "event": "meeting.participant_data",
        "event_ts": (gen.base_time + 1) * 1000,
        "payload": {
            "account_id": ACCOUNTS[site % len(ACCOUNTS)],  # a site belongs to one account
            "object": {
                "uuid": events.meeting_uuid(gen.namespace, participant // gen.meeting_size),
                "participant": {"participant_id": user, "data": [item]},
            },
        },
    }


def signed(body: dict[str, Any], now: int) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = sign_headers(events.TOKEN, now, raw)
    request = events.SignedRequest(headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], raw)
    return request.http()


def http_rounds(args: argparse.Namespace, work: Path) -> Table:
    sites = work / "sites.yaml"
    write_sites(sites)
    need = math.ceil(args.max_rate * args.duration)
    steady = events.participants_for(FLEET_SERIES)
    rounds = math.ceil(need / steady)
    gen = events.Generator(namespace="analytics")
    now = int(time.time())
    preload = [signed(data_event(gen, p), now) for p in range(steady)]
    preload += [r.http() for r in gen.requests(range(steady), [0])]
    update_file = work / "update.tsv"
    events.write_tsv(update_file, gen.requests(range(steady), range(1, rounds + 1)))
    warmup = [r.http() for r in events.generate(400, 2, namespace="warm-up")]
    print(
        f"ingest: {steady:,} participants over {SITES} sites, {steady:,} data events and "
        f"{steady:,} first minutes preloaded, {steady * rounds:,} later minutes to replay; "
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds"
    )
    results: dict[str, list[WrkRun]] = {"on": [], "off": []}
    problems: list[str] = []
    for n in range(args.rounds):
        print(f"round {n + 1}:")
        order = ["on", "off"] if n % 2 == 0 else ["off", "on"]
        for kind in order:
            extra = (
                [f"--analytics.sites-file={sites}"] if kind == "on" else ["--no-analytics.enabled"]
            )
            run, logs = exporter_run(
                f"analytics {kind}", update_file, preload, warmup, args, *extra
            )
            problems += logs
            results[kind].append(run)
            print(describe(run), flush=True)
    table = Table(
        f"Ingest with the analytics on and off: wrk -t1 -c{args.connections} "
        f"-d{args.duration:g}s, median of {args.rounds} rounds, {SITES} sites"
    )
    on = harness.median([r.rate for r in results["on"]])
    off = harness.median([r.rate for r in results["off"]])
    # each round's two runs are back to back: the median of their ratios shrugs off the
    # load that other processes put on a shared machine for part of the run
    runs = zip(results["on"], results["off"], strict=True)
    pairs = [harness.ratio(a.rate, b.rate) for a, b in runs]
    ratio = harness.median(pairs)
    table.add(
        "steady-state updates: events/s, on vs off (median of the rounds' ratios)",
        f"{on:,.0f}",
        f"{off:,.0f}",
        f"{ratio:.2f}",
        f"≥ {TARGET_RATIO:.2f}",
        ratio >= TARGET_RATIO,
    )
    table.add("  the rounds' ratios", ", ".join(f"{r:.2f}" for r in pairs))
    p99_on = harness.median([r.p99 for r in results["on"]])
    p99_off = harness.median([r.p99 for r in results["off"]])
    table.add(
        "steady-state updates: p99 latency, on vs off",
        harness.ms(p99_on),
        harness.ms(p99_off),
        f"{harness.ratio(p99_on, p99_off):.2f}",
    )
    errors = sum(r.non_2xx + r.socket_errors for runs in results.values() for r in runs)
    table.add("non-2xx answers and socket errors", str(errors), "", "", "0", errors == 0)
    logs = harness.exporter_logs(problems)
    if logs:
        print("\n".join(logs))
    return table


# --- size at the large configuration ----------------------------------------------------------


def fleet_events(participants: int) -> list[dict[str, Any]]:
    """Each participant's data event, two minutes and its summary; one in eight is poor."""
    base = int(time.time()) - 3600
    out: list[dict[str, Any]] = []
    generators = {product: events.Generator(namespace=f"size-{product}") for product in PRODUCTS}
    for p in range(participants):
        product = PRODUCTS[p % len(PRODUCTS)]
        data = data_event(generators[product], p // len(PRODUCTS))
        data["event"] = f"{product}.participant_data"
        out.append(data)
        poor = p % 8 == 0
        for minute in range(2):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 60 * minute))
            media = {
                "latency": "40 ms",
                "jitter": "80 ms" if poor else "4 ms",
                "avg_loss": "12%" if poor else "0.1%",
            }
            items: list[dict[str, Any]] = [
                {"type": t, "date_time": when, "details": media}
                for t in ("audio_input", "audio_output", "video_input", "video_output")
            ]
            rssi = "-80" if p % 16 == 0 else "-50"
            items.append({"type": "wifi_rssi", "date_time": when, "details": {"avg_rssi": rssi}})
            cpu = "97%" if p % 24 == 8 else "30%"
            items.append(
                {"type": "cpu_usage", "date_time": when, "details": {"system_max_cpu_usage": cpu}}
            )
            qos = json.loads(json.dumps(data))
            qos["event"] = f"{product}.participant_qos"
            person = qos["payload"]["object"]["participant"]
            person.pop("data")
            person["user_id"] = person.pop("participant_id")
            person["qos"] = items
            out.append(qos)
        summary = json.loads(json.dumps(out[-1]))
        summary["event"] = f"{product}.participant_qos_summary"
        avg = {f"avg_{name}": value for name, value in media.items()}
        summary["payload"]["object"]["participant"]["qos"] = [
            {"type": "audio_input", "details": avg}
        ]
        out.append(summary)
    return out


def _sessions(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Video SDK events name their objects otherwise: reshape the session ones."""
    for doc in documents:
        if not doc["event"].startswith("session."):
            continue
        doc["event"] = doc["event"].replace("participant_", "user_")
        obj = doc["payload"]["object"]
        person = obj.pop("participant")
        user_id = person.pop("participant_id", None) or person.pop("user_id")
        doc["payload"]["object"] = {
            "session_id": obj["uuid"],
            "session_name": "bench",
            "user": {"id": user_id, **person},
        }
    return documents


def measure_size(participants: int, work: Path) -> Table:
    from zoom_qss_exporter.app import Exporter
    from zoom_qss_exporter.config import load_settings
    from zoom_qss_exporter.ingest.events import parse_event

    sites = work / "size-sites.yaml"
    write_sites(sites)
    documents = _sessions(fleet_events(participants))
    parsed = [parse_event(doc) for doc in documents]
    now = time.time()
    figures: dict[str, tuple[int, float]] = {}
    exporters: dict[str, Exporter] = {}
    for kind in ("off", "on", "off", "on"):  # timed twice each, alternating; memory once
        argv = ["--zoom.skip-signature-verification", "--no-store.per-participant"]
        argv += [f"--analytics.sites-file={sites}"] if kind == "on" else ["--no-analytics.enabled"]
        gc.collect()
        traced = kind not in exporters
        if traced:
            tracemalloc.start()
        exporter = Exporter(load_settings(argv, {}), clock=lambda: now)
        start = time.perf_counter()
        for event in parsed:
            assert event is not None
            exporter.pipeline.ingest(event, now)
        elapsed = time.perf_counter() - start
        if traced:
            gc.collect()
            size = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            figures[kind] = (size, math.inf)
            exporters[kind] = exporter
        else:
            figures[kind] = (figures[kind][0], elapsed)
    analytics = exporters["on"].analytics
    assert analytics is not None
    table = Table(
        f"Analytics at {SITES} sites, {len(ACCOUNTS)} accounts: {participants:,} participants, "
        f"{len(documents):,} events in process"
    )
    total_series = 0
    for family in analytics.tables:
        series = sum(len(metric.samples) for metric in family.collect())
        total_series += series
        table.add(
            f"{family.family}: rows (series)",
            f"{len(family):,} ({series:,})",
            "",
            "",
            f"≤ {family.max_rows:,} rows",
            len(family) <= family.max_rows + 4,
        )
    folds = sum(t.folds for t in analytics.tables)
    table.add("analytics series in all, folds", f"{total_series:,}, {folds}")
    memory = figures["on"][0] - figures["off"][0]
    table.add(
        "memory the analytics add (tracemalloc, on - off)",
        harness.mib(memory, 1),
        harness.mib(figures["off"][0], 1),
        f"{memory / participants:,.0f} B a participant",
    )
    rate_on, rate_off = (len(parsed) / figures[k][1] for k in ("on", "off"))
    table.add(
        "in-process ingest, no HTTP: events/s, on vs off",
        f"{rate_on:,.0f}",
        f"{rate_off:,.0f}",
        f"{harness.ratio(rate_on, rate_off):.2f}",
    )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, help="alternating rounds; medians (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (default 16)")
    parser.add_argument("--max-rate", type=float, default=8000.0, help="sizes the request files")
    parser.add_argument(
        "--participants", type=int, default=30_000, help="the size part's fleet (default 30000)"
    )
    parser.add_argument("--exporter-arg", action="append", default=[], metavar="ARG")
    args = parser.parse_args()
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    args.rounds = args.rounds or (2 if args.quick else 3)
    harness.exit_on_sigterm()
    ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    try:
        tables = [http_rounds(args, work), measure_size(args.participants, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for table in tables:
        print()
        print(table.render())
    return 1 if any(table.failed for table in tables) else 0


if __name__ == "__main__":
    raise SystemExit(main())
