"""Scrape speed and memory per series: ours against the obvious implementation.

The baseline is what most exporters do: one labelled ``prometheus_client.Gauge`` per family
holding the same series, rendered by ``generate_latest`` (gzip as prometheus-client's own
ASGI app does it, ``gzip.compress`` at its default level). Ours is the exporter's
``/metrics`` path: the store's pre-rendered lines plus the small registry, gzip at level 1.
Both are timed in this process, in the same run, and reported as ratios; memory is measured
in a fresh subprocess per implementation as RSS growth from empty to N series.

    .venv/bin/python -m bench.scrape                 # 10k, 50k, 200k series
    .venv/bin/python -m bench.scrape --sizes 20000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bench.harness import REPO
from zoom_qss_exporter.app import Exporter
from zoom_qss_exporter.config import Settings, WebSettings, ZoomSettings
from zoom_qss_exporter.families import ALL_FAMILIES
from zoom_qss_exporter.ingest.convert import ConvertOptions, convert
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.store.series import SeriesStore

TYPES = ("audio_input", "audio_output", "video_input", "video_output", "as_input", "cpu_usage")
TARGET_PLAIN, TARGET_GZIP, TARGET_BYTES = 20.0, 10.0, 350.0


def participant_event(n: int, minute: int = 0) -> dict[str, Any]:
    """A meeting.participant_qos event of participant ``n`` with six QoS items."""
    items = []
    for qos_type in TYPES:
        if qos_type == "cpu_usage":
            details = {
                "zoom_min_cpu_usage": f"{n % 5}%",
                "zoom_avg_cpu_usage": f"{n % 9 + 2}%",
                "zoom_max_cpu_usage": f"{n % 13 + 5}%",
                "system_max_cpu_usage": f"{n % 40 + 20}%",
            }
        else:
            details = {
                "bitrate": f"{40 + n % 900} kbps",
                "latency": f"{20 + n % 80} ms",
                "jitter": f"{n % 12}ms",
                "avg_loss": f"{n % 7 / 10:.1f}%",
                "max_loss": f"{n % 30 / 10:.1f}%",
            }
            if qos_type.startswith("video"):
                details |= {"frame_rate": f"{15 + n % 16} fps", "resolution": "1280*720"}
        items.append(
            {"date_time": f"2026-11-26T10:{minute:02d}:00Z", "type": qos_type, "details": details}
        )
    return {
        "event": "meeting.participant_qos",
        "event_ts": 1_795_000_000_000 + minute * 60_000,
        "payload": {
            "account_id": "bench",
            "object": {
                "uuid": f"{n // 8:08d}AAiAAAAAiAiAii==",  # 24 characters, as Zoom's
                "participant": {"user_id": f"{16_780_000 + n}", "qos": items},
            },
        },
    }


def events() -> Iterator[Any]:
    model = EVENT_MODELS["meeting.participant_qos"]
    n = 0
    while True:
        yield model.model_validate(participant_event(n))
        n += 1


def fill_exporter(size: int) -> Exporter:
    """An exporter whose store holds ``size`` series (give or take one participant's)."""
    exporter = Exporter(
        Settings(zoom=ZoomSettings(secret_tokens=("bench",)), web=WebSettings(metrics_cache=0.0))
    )
    for event in events():
        if len(exporter.store) >= size:
            break
        exporter.pipeline.ingest(event, time.time())
    return exporter


def baseline_registry(store: SeriesStore) -> CollectorRegistry:
    """The same series held by labelled Gauges, the obvious way."""
    registry = CollectorRegistry()
    for family in ALL_FAMILIES:
        gauge = Gauge(family.name, family.help, family.labels, registry=registry)
        for labels, view in store.series(family):
            gauge.labels(*labels).set(view.value)
    return registry


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_memory(kind: str, size: int) -> dict[str, float]:
    """Run in a fresh process: RSS growth from empty to ``size`` series."""
    gc.collect()
    before = rss()
    if kind == "ours":
        exporter = fill_exporter(size)
        count = len(exporter.store)
    else:
        registry = CollectorRegistry()
        gauges = {f: Gauge(f.name, f.help, f.labels, registry=registry) for f in ALL_FAMILIES}
        count = 0
        options = ConvertOptions()
        for event in events():
            if count >= size:
                break
            for sample in convert(event, options).samples:
                gauges[sample.family].labels(*sample.labels).set(sample.value)
                count += 1
    gc.collect()
    return {"series": count, "bytes_per_series": (rss() - before) / count}


def memory_in_subprocess(kind: str, size: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scrape", "--memory", kind, "--sizes", str(size)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def scrape_row(size: int, repeat: int) -> dict[str, float]:
    exporter = fill_exporter(size)
    baseline = baseline_registry(exporter.store)
    endpoint = exporter.exposition

    loop = asyncio.new_event_loop()

    def ours(compress: bool) -> list[bytes]:
        chunks, _ = loop.run_until_complete(endpoint.body("", "gzip" if compress else ""))
        return chunks

    plain_body, base_body = b"".join(ours(False)), generate_latest(baseline)
    row = {
        "series": float(len(exporter.store)),
        "ours_plain": best(lambda: ours(False), repeat),
        "base_plain": best(lambda: generate_latest(baseline), repeat),
        "ours_gzip": best(lambda: ours(True), repeat),
        "base_gzip": best(lambda: gzip.compress(generate_latest(baseline)), repeat),
        "base_gzip1": best(lambda: gzip.compress(generate_latest(baseline), 1), repeat),
        "ours_mb": len(plain_body) / 1e6,
        "base_mb": len(base_body) / 1e6,
    }
    loop.close()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--memory-size", type=int, default=200_000)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(measure_memory(args.memory, args.sizes[0])))
        return 0

    print(f"## /metrics render time (best of {args.repeat}), ours vs labelled Gauges")
    print()
    print(
        "| series | ours text | baseline text | ratio | ours gzip | baseline gzip | ratio "
        "| (vs baseline gzip level 1) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for size in args.sizes:
        r = scrape_row(size, args.repeat)
        plain, zipped = r["base_plain"] / r["ours_plain"], r["base_gzip"] / r["ours_gzip"]
        if size >= 200_000:
            ok &= plain >= TARGET_PLAIN and zipped >= TARGET_GZIP
        print(
            f"| {r['series']:,.0f} | {r['ours_plain'] * 1e3:.1f} ms | "
            f"{r['base_plain'] * 1e3:.0f} ms | **{plain:.1f}x** | "
            f"{r['ours_gzip'] * 1e3:.1f} ms | {r['base_gzip'] * 1e3:.0f} ms | "
            f"**{zipped:.1f}x** | {r['base_gzip1'] / r['ours_gzip']:.1f}x |"
        )
        gc.collect()
    print()
    print(f"targets at 200k series: text ≥ {TARGET_PLAIN:.0f}x, gzip ≥ {TARGET_GZIP:.0f}x")
    print()
    size = args.memory_size
    ours = memory_in_subprocess("ours", size)
    base = memory_in_subprocess("baseline", size)
    per_ours, per_base = ours["bytes_per_series"], base["bytes_per_series"]
    ok &= per_ours <= TARGET_BYTES
    print("## memory: RSS growth from empty to N series, divided by N (fresh process each)")
    print()
    print("| series | ours | baseline | ratio | target |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {ours['series']:,.0f} | {per_ours:.0f} B | {per_base:.0f} B | "
        f"{per_base / per_ours:.1f}x less | ≤ {TARGET_BYTES:.0f} B |"
    )
    print()
    print("scrape and memory targets:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
