"""What every dashboard panel costs Prometheus over 3 hours, at fleet scale.

A real Prometheus (Debian's) scrapes the exporter every 15 s, as is typical, and evaluates the
generated rules (every file of rules/) every 15 s, while the exporter is fed 20,000 simulated
participants (the simulator's ``Fleet``: sites, networks, data centers, names, a quarter or more
of them poor; a 1,000-person meeting and a 1,000-person webinar among meetings of 10; phone
calls; a few leaving and joining) with a QoS round a minute, for long enough that the rules'
5-minute windows are full.

The run holds only minutes of data, so the 3 hours before it are **backfilled**
(``promtool tsdb create-blocks-from openmetrics``) with a history shaped like the run's end:
every series a dashboard query can read (every series of each metric name the queries name),
at the scrape interval, as if the fleet had been as it is now for 3 hours. Per-participant and
per-call series are backfilled for the participants and calls the dashboards select (the
meeting dashboard's meeting and participants, the phone dashboard's calls), not for the whole
fleet: that is sound only while no range query reads them fleet-wide, which this benchmark
checks first (and tests/test_dashboards.py too). A query that did would fail that check
rather than be undercounted. The series the Trends dashboard reads over its window (one day)
and a week before are backfilled for 8 days (recorded rates at their 5-minute subquery step,
the raw counters at the scrape interval for a day).

Then every query of every dashboard runs as Grafana would send it: the variables at their
defaults (All, the first option, the pickers' own worst-first options, read from Prometheus as
Grafana reads them), range queries over the last 3 hours at a 15 s step (3 h over a panel of
about 1,000 pixels, no finer than the scrape interval; 5 minutes where a panel sets it),
instant queries (tables, pie charts, bar gauges, the pickers' ``query_result``) at the end.
Prometheus counts each query's samples (``stats=all``: ``totalQueryableSamples``); they are
extrapolated linearly to 100,000 participants (generous for the queries whose cost follows
the number of sites or meetings picked, not of participants), and each must stay under 10 % of
Prometheus' default ``--query.max-samples`` (50,000,000).

    .venv/bin/python -m bench.dashboards                 # 20,000 participants, 5 minutes
    .venv/bin/python -m bench.dashboards --minutes 2     # a shorter live run
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import harness
from bench.events import SignedRequest
from bench.harness import Server
from zoom_qss_exporter.families import ALL_FAMILIES
from zoom_qss_exporter.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_headers
from zoom_qss_exporter.simulate.events import Event, Fleet, sites_yaml

REPO = harness.REPO
JOB = "zoom-qss-exporter"  # the rules' exporter_selector
SCRAPE = 15  # seconds: scrape and rule evaluation interval, and the panels' smallest step
RANGE = 3 * 3600  # the dashboards' time range measured
TARGET = 100_000  # participants extrapolated to
MAX_SAMPLES = 50_000_000  # Prometheus' default --query.max-samples
BUDGET = MAX_SAMPLES // 10
BIG = 1_000  # a meeting and a webinar of this many
MEETING = 10  # the other instances' size
CALLS = 400
CHURN = 0.01  # chance a round that a participant leaves (and another joins) or a call ends
TRENDS_DAYS = 8  # the Trends window (1 day) a week before, and more
PER_PERSON = {
    f.name: f.labels for f in ALL_FAMILIES if {"participant_id", "call_id"} & set(f.labels)
}
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b")
_SELECTOR = re.compile(r"\b([a-z_:]+)(\{[^}]*\})?")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?([a-z_]+)\)$", re.S)
_QUERY_RESULT = re.compile(r"^query_result\((.*)\)$", re.S)


# --- Prometheus ---------------------------------------------------------------------------------


def _ready(server: Server) -> bool:
    return httpx.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200


def prometheus(directory: Path, exporter: Server) -> Server:
    binary = shutil.which("prometheus")
    if not binary:
        raise SystemExit("prometheus missing: run scripts/setup (installs Debian's prometheus)")
    rules = "".join(f"  - {path}\n" for path in sorted((REPO / "rules").glob("*.yaml")))
    config = directory / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE}s\n  scrape_timeout: {SCRAPE - 1}s\n"
        f"  evaluation_interval: {SCRAPE}s\nrule_files:\n{rules}"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    port = harness.free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=30d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return Server("prometheus", argv, port, dict(os.environ), _ready).start(60)


def api(url: str, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{url}/api/v1/{path}", params=params, timeout=120)
    if answer.status_code != 200:
        raise RuntimeError(f"{path} {params}: {answer.status_code} {answer.text[:500]}")
    return answer.json()["data"]


def wait_for(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while (result := probe()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(1)  # polling Prometheus for the condition
    return result


# --- the fleet ----------------------------------------------------------------------------------


def fleets(participants: int, seed: int) -> list[Fleet]:
    """A 1,000-person meeting and webinar, the others in meetings of 10, and phone calls."""
    rest = max(0, participants - 2 * BIG) // MEETING
    return [
        Fleet(seed, meetings=2, participants=BIG, phone_calls=0, churn=CHURN),
        Fleet(seed + 1, meetings=rest, participants=MEETING, phone_calls=CALLS, churn=CHURN),
    ]


def signed(events: list[Event], now: float) -> list[bytes]:
    out = []
    for event in events:
        body = json.dumps(event).encode()
        headers = sign_headers(harness.TOKEN, int(now), body)
        request = SignedRequest(headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], body)
        out.append(request.http())
    return out


def qos_round(all_fleets: list[Fleet], now: float, *, first: bool) -> list[bytes]:
    events: list[Event] = []
    for fleet in all_fleets:
        if first:
            events += fleet.join_events(now)
        for turn in fleet.turns():
            events += fleet.step(turn, now)[0]
    return signed(events, now)


# --- the dashboards' queries, as Grafana sends them -----------------------------------------


@dataclass
class Query:
    dashboard: str
    where: str  # panel title and refId, or "variable <name>"
    kind: str  # range | instant
    expr: str
    step: int  # seconds (range)


def grafana_escape(value: str) -> str:
    """Grafana's Prometheus data source, a value of a multi-value variable: regex characters
    escaped (twice the backslash: the value lands in a PromQL string)."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def regex_format(value: str) -> str:
    """Grafana's ``${name:regex}``."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def substitute(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return regex_format(values[name]) if match.group(2) == "regex" else values[name]

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", value, text)


def options(var: dict[str, Any], values: dict[str, str], url: str, end: float) -> list[str]:
    """The variable's option values, as Grafana reads them from Prometheus."""
    query = substitute(var["query"], values)
    if match := _QUERY_RESULT.match(query):
        pattern = re.compile(var["regex"].strip("/").replace("(?<", "(?P<"))
        found = []
        for result in api(url, "query", query=match.group(1), time=end)["result"]:
            labels = ",".join(f'{k}="{v}"' for k, v in result["metric"].items())
            line = f"{{{labels}}} {result['value'][1]} {int(end * 1000)}"
            if hit := pattern.search(line):
                found.append(hit.group("value"))
        return found
    match = _LABEL_VALUES.match(query)
    assert match, query
    selector = match.group(1) or '{__name__=~".+"}'
    params = {"match[]": selector, "start": end - RANGE, "end": end}
    found = api(url, f"label/{match.group(2)}/values", **params)
    return sorted(found) if var.get("sort", 1) else list(found)


def defaults(board: dict[str, Any], url: str, end: float) -> dict[str, str]:
    """Every variable at what Grafana selects on opening the dashboard: the saved value, else
    All (its allValue, or every option listed), else the first option."""
    values = {"__range": f"{RANGE}s"}
    for var in board["templating"]["list"]:
        name, kind = var["name"], var["type"]
        if kind == "datasource":
            continue
        if kind == "textbox":
            values[name] = var["query"]
        elif kind == "custom" and var["current"].get("value"):
            values[name] = var["current"]["value"]
        elif var.get("multi") and "allValue" in var:
            values[name] = var["allValue"]
        elif kind == "custom":
            values[name] = var["query"].split(",")[0]
        else:
            found = options(var, values, url, end)
            if not found:
                raise RuntimeError(f"{board['uid']}: variable {name} has no option")
            if var.get("multi"):  # All: every option listed, escaped
                escaped = [grafana_escape(v) for v in found]
                values[name] = escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})"
            else:
                values[name] = found[0]
    return values


def board_queries(board: dict[str, Any], values: dict[str, str]) -> Iterator[Query]:
    uid = board["uid"]
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            where = f"{panel['title']} {target['refId']}"
            if target.get("range"):
                step = max(SCRAPE, _seconds(panel.get("interval") or "0s"))
                rate = max(step + SCRAPE, 4 * SCRAPE)
                local = values | {"__interval": f"{step}s", "__rate_interval": f"{rate}s"}
                yield Query(uid, where, "range", substitute(target["expr"], local), step)
            else:
                yield Query(uid, where, "instant", substitute(target["expr"], values), 0)
    for var in board["templating"]["list"]:
        if var["type"] == "query" and (match := _QUERY_RESULT.match(var["query"])):
            expr = substitute(match.group(1), values)
            yield Query(uid, f"variable {var['name']}", "instant", expr, 0)


def _seconds(duration: str) -> int:
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def unbounded_reads(board: dict[str, Any]) -> list[str]:
    """Range queries reading per-participant or per-call series of more than the selected
    participants of one meeting or the selected calls: the backfill (and so the 3-hour figure)
    would understate them."""
    bad = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if not target.get("range"):
                continue
            for name, matchers in _SELECTOR.findall(target["expr"]):
                labels = PER_PERSON.get(name, ())
                bounded = (
                    'meeting_id="$meeting"' in matchers
                    and 'participant_id=~"$participant"' in matchers
                    if "participant_id" in labels
                    else 'call_id=~"$call"' in matchers
                )
                if labels and not bounded:
                    bad.append(f"{board['uid']}: {panel['title']}: {name}{matchers}")
    return bad


# --- the backfill -------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series_line(labels: dict[str, str]) -> str:
    name = labels["__name__"]
    rest = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name


def backfill_selectors(
    names: set[str], values: dict[str, dict[str, str]], url: str, end: float
) -> list[str]:
    """What to backfill: every series of the names the queries read, but of the per-person
    families only the selected meeting's selected participants and the selected calls."""
    meeting = values["zoom-qss-meeting"]
    phone = values["zoom-qss-phone"]
    selectors = []
    for name in sorted(names):
        labels = PER_PERSON.get(name)
        if labels is None:
            selectors.append(name)
        elif "participant_id" in labels:
            selectors.append(
                f'{name}{{product="{meeting["product"]}", meeting_id="{meeting["meeting"]}", '
                f'participant_id=~"{meeting["participant"]}"}}'
            )
        else:
            selectors.append(f'{name}{{call_id=~"{phone["call"]}"}}')
    return selectors


@dataclass
class History:
    start: float
    stop: float  # exclusive
    every: int


def write_history(
    path: Path, selectors: list[str], history: dict[str, list[History]], url: str, end: float
) -> int:
    """OpenMetrics with timestamps: each series at its value at the end, at every point of its
    histories. Returns the samples written."""
    written = 0
    with path.open("w") as out:
        for selector in selectors:
            name = selector.split("{")[0]
            spans = history.get(name)
            if not spans:
                continue
            results = api(url, "query", query=selector, time=end)["result"]
            for result in results:
                line = _series_line(result["metric"] | {"__name__": name})
                value = result["value"][1]
                for span in spans:
                    t = span.start
                    while t < span.stop:
                        out.write(f"{line} {value} {t:.3f}\n")
                        t += span.every
                        written += 1
        out.write("# EOF\n")
    return written


def create_blocks(source: Path, data: Path, work: Path) -> None:
    """promtool writes blocks from ``source``; moved into Prometheus' data directory, which
    loads them at its next block reload (every minute)."""
    blocks = work / f"blocks-{source.stem}"
    subprocess.run(
        [
            shutil.which("promtool") or "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=200h",
            str(source),
            str(blocks),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    for block in blocks.iterdir():
        block.rename(data / block.name)


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Measured:
    query: Query
    samples: int
    peak: int
    series: int
    seconds: float


def measure(query: Query, url: str, end: float) -> Measured:
    started = time.perf_counter()
    if query.kind == "range":
        stop = math.floor(end / query.step) * query.step
        params: dict[str, Any] = {
            "query": query.expr,
            "start": stop - RANGE,
            "end": stop,
            "step": query.step,
        }
        data = api(url, "query_range", stats="all", **params)
    else:
        data = api(url, "query", query=query.expr, time=end, stats="all")
    samples = data["stats"]["samples"]
    return Measured(
        query,
        int(samples["totalQueryableSamples"]),
        int(samples.get("peakSamples", 0)),
        len(data["result"]),
        time.perf_counter() - started,
    )


def baseline(url: str, end: float, meeting: str) -> list[tuple[str, float]]:
    """What some of the replaced queries cost: per step, measured over the live minutes (their
    series are the whole fleet's, not backfilled), times the 721 steps of 3 hours."""
    media = 'qos_type=~"audio_input|audio_output|video_input|video_output|as_input|as_output"'
    live = 'zoom_qos_sample_timestamp_seconds{product=~".+"}'
    queries = {
        "fleet: Participants live": (
            f"count by (product) (group by (product, meeting_id, participant_id) ({live}))"
        ),
        "fleet: Meetings live": f"count by (product) (group by (product, meeting_id) ({live}))",
        "phone: Calls live": "count(group by (call_id) (zoom_phone_mos or "
        "zoom_phone_jitter_seconds)) or vector(0)",
        "meeting: Latency, participant All": (
            f'zoom_qos_latency_seconds{{meeting_id="{meeting}", participant_id=~".+", {media}}}'
        ),
    }
    steps = 8
    stop = math.floor(end / SCRAPE) * SCRAPE
    out = []
    for where, expr in queries.items():
        params = {"start": stop - (steps - 1) * SCRAPE, "end": stop, "step": SCRAPE}
        data = api(url, "query_range", query=expr, stats="all", **params)
        per_step = int(data["stats"]["samples"]["totalQueryableSamples"]) / steps
        out.append((where, per_step * (RANGE // SCRAPE + 1)))
    return out


def names_read(boards: list[dict[str, Any]], url: str) -> set[str]:
    """The series names the dashboards' queries name (and Prometheus holds)."""
    known = set(api(url, "label/__name__/values"))
    text = json.dumps(
        [[t["expr"] for p in b["panels"] for t in p.get("targets", [])] for b in boards]
    )
    text += json.dumps([v.get("query", "") for b in boards for v in b["templating"]["list"]])
    return {name for name in _NAME.findall(re.sub(r'\\"[^"\\]*\\"', "", text)) if name in known}


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    boards = [json.loads(p.read_text()) for p in sorted((REPO / "dashboards").glob("*.json"))]
    unbounded = [read for board in boards for read in unbounded_reads(board)]
    if unbounded:
        print("range queries read per-person series fleet-wide:", *unbounded, sep="\n  ")
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
    sites = work / "sites.yaml"
    sites.write_text(sites_yaml())
    everyone = fleets(args.participants, args.seed)
    live = sum(len(f.turns()) for f in everyone)
    calls = sum(1 for f in everyone for c in f.calls)
    print(f"fleet: {live - calls:,} participants, {calls} phone calls; work in {work}")
    exporter = harness.Exporter(
        "--zoom.replay-window=2h",
        "--store.max-series=5000000",
        f"--analytics.sites-file={sites}",
    ).start()
    server: Server | None = None
    try:
        server = prometheus(work, exporter)
        url = server.url
        wait_for("a first scrape", lambda: api(url, "query", query="up == 1")["result"] or None, 60)
        first_sample = time.time()
        rounds = math.ceil(args.minutes)
        # each round is made (and signed) in the minute before it is due: sending starts on time
        due = started + 10
        requests = qos_round(everyone, time.time(), first=True)
        for number in range(rounds):
            time.sleep(max(0.0, due - time.monotonic()))  # one QoS round a minute, as Zoom
            sent = time.monotonic()
            statuses = harness.post_all(exporter, requests)
            print(
                f"round {number + 1}/{rounds}: {len(requests):,} events in "
                f"{time.monotonic() - sent:.1f} s, answers {dict(statuses)}",
                flush=True,
            )
            if set(statuses) != {200}:
                raise RuntimeError(f"the exporter refused events: {dict(statuses)}")
            due += 60
            if number + 1 < rounds:
                requests = qos_round(everyone, time.time() + due - time.monotonic(), first=False)
        time.sleep(max(0.0, first_sample + args.minutes * 60 - time.time()))  # the run's length
        # the rules have counted the last round: everyone who sent it (not those who left in
        # it: their summary ends their series; those who joined send from the next round)
        expected = 0.95 * (live - calls)
        recorded = "sum(product_site:zoom_qos_live_participants:count)"
        raw = "count(group by (product, meeting_id, participant_id) (zoom_qos_mos_estimate))"

        def counted() -> bool | None:
            have = [api(url, "query", query=q)["result"] for q in (recorded, raw)]
            values = [float(r[0]["value"][1]) if r else 0.0 for r in have]
            return True if values[0] == values[1] >= expected else None

        wait_for("the live rules to count the last round", counted, 120)
        end = time.time()
        series = api(url, "query", query='scrape_samples_scraped{job="zoom-qss-exporter"}')
        print(f"scraped series: {series['result'][0]['value'][1]}; run {end - first_sample:.0f} s")
        print(f"live run over at {time.monotonic() - started:.0f} s", flush=True)
        values = {board["uid"]: defaults(board, url, end) for board in boards}
        meeting = values["zoom-qss-meeting"]
        size = api(
            url,
            "query",
            query=f'count(zoom_participant_info{{meeting_id="{meeting["meeting"]}"}})',
        )["result"]
        print(
            f"the meeting dashboard opens on {meeting['product']} {meeting['meeting']}, "
            f"{size[0]['value'][1] if size else 0} participants"
        )
        for uid in ("zoom-qss-meeting", "zoom-qss-phone"):
            picked = {
                k: v for k, v in values[uid].items() if k in ("meeting", "participant", "call")
            }
            print(f"{uid} defaults: {picked}")
        names = names_read(boards, url)
        trends = names_read([b for b in boards if b["uid"] == "zoom-qss-trends"], url)
        start3h = end - RANGE - 600
        history: dict[str, list[History]] = {}
        for name in names:
            spans = [History(start3h, first_sample - SCRAPE / 2, SCRAPE)]
            if name in trends:
                long = end - TRENDS_DAYS * 86400 if ":" in name else end - 86400 - RANGE
                spans.insert(0, History(long, start3h, 300 if ":" in name else SCRAPE))
            history[name] = spans
        selectors = backfill_selectors(names, values, url, end)
        source = work / "history.om"
        written = write_history(source, selectors, history, url, end)
        size = source.stat().st_size / 2**20
        print(f"backfill: {written:,} samples of {len(names)} names; {size:,.0f} MiB", flush=True)
        create_blocks(source, work / "data", work)
        source.unlink()
        print(f"blocks written at {time.monotonic() - started:.0f} s", flush=True)
        probe = f"count(up offset {int(end - first_sample) + 3600}s)"
        wait_for(
            "Prometheus to load the backfill",
            lambda: api(url, "query", query=probe)["result"] or None,
            180,
        )
        before = baseline(url, end, values["zoom-qss-meeting"]["meeting"])
        print(f"backfill loaded at {time.monotonic() - started:.0f} s", flush=True)
        results = [
            measure(q, url, end)
            for board in boards
            for q in board_queries(board, values[board["uid"]])
        ]
        return report(results, before, live - calls, time.monotonic() - started)
    finally:
        if server is not None:
            server.stop()
        exporter.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(
    results: list[Measured], before: list[tuple[str, float]], participants: int, seconds: float
) -> int:
    scale = TARGET / participants
    print()
    print(
        f"### Dashboard queries over 3 h, {participants:,} participants extrapolated to {TARGET:,}"
    )
    print()
    print(
        "| dashboard | panel / variable | kind | samples | per participant | at 100k | of budget |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    worst: Measured | None = None
    failed = 0
    for m in results:
        at = m.samples * scale
        ok = at < BUDGET
        failed += not ok
        if worst is None or m.samples > worst.samples:
            worst = m
        print(
            f"| {m.query.dashboard.removeprefix('zoom-qss-')} | {m.query.where} | {m.query.kind}"
            f"{'' if m.query.kind == 'instant' else f' {m.query.step}s'} | {m.samples:,} | "
            f"{m.samples / participants:.2f} | {at:,.0f} | {at / BUDGET:.1%}"
            f"{'' if ok else ' FAIL'} |"
        )
    assert worst is not None
    print()
    print(
        f"{len(results)} queries; the most: {worst.query.dashboard} {worst.query.where}, "
        f"{worst.samples:,} samples, {worst.samples * scale:,.0f} at {TARGET:,} participants "
        f"({worst.samples * scale / BUDGET:.1%} of the {BUDGET:,} budget, 10 % of "
        f"--query.max-samples); benchmark {seconds:.0f} s"
    )
    print()
    print("Before (the replaced queries; per step over the live minutes, times 721 steps):")
    print()
    print("| query | samples over 3 h | at 100k | of --query.max-samples |")
    print("|---|---:|---:|---:|")
    for where, samples in before:
        at = samples * scale
        print(f"| {where} | {samples:,.0f} | {at:,.0f} | {at / MAX_SAMPLES:.0%} |")
    print()
    print("PASS" if not failed else f"FAIL: {failed} queries over budget")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=5, help="live run (rule windows: 5)")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    harness.exit_on_sigterm()
    sys.exit(run(args))


if __name__ == "__main__":
    main()
