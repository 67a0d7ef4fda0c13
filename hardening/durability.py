"""Durability of remote write: nothing answered 200 is lost or stored twice, through engine
outages, SIGKILLs of the exporter with a backlog, restarts on the same write-ahead log, and
Zoom's redeliveries, against a real engine on loopback:

- ``prometheus``: Debian's Prometheus with ``--web.enable-remote-write-receiver``, strict (no
  out-of-order window: it refuses a sample older than the newest of its series);
- ``prometheus-ooo``: the same with an out-of-order window (``--ooo-window``, 1h);
- ``victoria-metrics``: Debian's VictoriaMetrics, without deduplication, so that
  ``/api/v1/export`` shows every sample stored twice.

A simulated account (``zoom_qss_exporter.simulate.events.Fleet``: meetings and phone calls)
sends signed events at a steady rate, one simulated minute every ``--round-seconds``, for
``--seconds``. Meanwhile, ``--cycles`` times: the engine stops (SIGTERM) and the backlog grows
in the exporter's queue and log; the exporter is SIGKILLed; it starts again on the same log;
the engine comes back. Zoom's side behaves as Zoom does: an event that got no 200 (connection
refused while the exporter is down, a request cut by the kill) is delivered again after the
restart, between fresh events, and after each restart some events that were answered 200
minutes ago are delivered again too (Zoom's retries when an answer was slow).

At the end every sample is read back from the engine (Prometheus' query API over the range;
VictoriaMetrics' export, duplicates included) and compared with what the acknowledged events
convert into, at Zoom's time with the right value (VictoriaMetrics keeps about 12
significant digits: compared with a relative tolerance of 1e-11 there).

A sample is *late* when an event answered 200 before it already gave its series a newer one
(Zoom's delivery again, after the restart, of an event that got no 200 in time): a strict
Prometheus refuses those by design and the exporter counts them (``out_of_order``); every
other engine must have them. A sample is *redelivered* when Zoom sent its event more than once
in a way that may have reached the exporter: VictoriaMetrics without
``-dedup.minScrapeInterval`` stores what it is sent twice twice (docs/remote-write.md).

The run fails when an acknowledged sample is missing (a late one on a strict Prometheus only
when the exporter did not count it), or stored twice without a redelivery explaining it.

    .venv/bin/python -m hardening.durability --engine prometheus
    .venv/bin/python -m hardening.durability --engine prometheus-ooo --json result.json
    .venv/bin/python -m hardening.durability --engine victoria-metrics
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Server, exit_on_sigterm, free_port
from hardening.common import TOKEN, Exporter, verdict
from zoom_qss_exporter.ingest.convert import ConvertOptions, convert
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.remote.protocol import milliseconds, series_labels
from zoom_qss_exporter.simulate.events import Fleet

Event = dict[str, Any]
Series = frozenset[tuple[str, str]]
Samples = dict[Series, dict[int, float]]
ENGINES = ("prometheus", "prometheus-ooo", "victoria-metrics")
PREFIX = "zoom_qss_exporter_remote_write_"
QOS_EVENTS = ("meeting.participant_qos", "webinar.participant_qos", "phone.call_qos")


# --- the engines -------------------------------------------------------------------------------


def _answers(path: str) -> Callable[[Server], bool]:
    def ready(server: Server) -> bool:
        return httpx.get(server.url + path, timeout=1.0).status_code == 200

    return ready


def engine(kind: str, storage: Path, ooo_window: str) -> Server:
    """The engine on a fixed port and storage, so that it can stop and start again."""
    port = free_port()
    if kind == "victoria-metrics":
        binary = shutil.which("victoria-metrics")
        if binary is None:
            sys.exit("victoria-metrics missing: run scripts/setup (Debian's victoria-metrics)")
        argv = [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={storage}",
            "-retentionPeriod=1y",
            "-search.latencyOffset=0s",
        ]
        return Server(kind, argv, port, {}, _answers("/health"), log_prefix="hardening")
    binary = shutil.which("prometheus")
    if binary is None:
        sys.exit("prometheus missing: run scripts/setup (Debian's prometheus)")
    config = storage / "prometheus.yml"
    window = ""
    if kind == "prometheus-ooo":
        window = f"storage:\n  tsdb:\n    out_of_order_time_window: {ooo_window}\n"
    config.write_text("global:\n  scrape_interval: 1m\n" + window)
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        "--log.level=warn",
    ]
    return Server(kind, argv, port, {}, _answers("/-/ready"), log_prefix="hardening")


def stored(server: Server, kind: str) -> dict[Series, list[tuple[int, float]]]:
    """Every sample of the zoom_ series the engine holds (VictoriaMetrics: duplicates too)."""
    out: dict[Series, list[tuple[int, float]]] = {}
    if kind == "victoria-metrics":
        httpx.get(server.url + "/internal/force_flush", timeout=60)
        answer = httpx.post(
            server.url + "/api/v1/export",
            data={"match[]": '{__name__=~"zoom_.+"}', "start": "0"},
            timeout=120,
        )
        answer.raise_for_status()
        for line in answer.text.splitlines():
            if line.strip():
                record = json.loads(line)
                pairs = zip(record["timestamps"], record["values"], strict=True)
                out.setdefault(frozenset(record["metric"].items()), []).extend(pairs)
        return out
    answer = httpx.get(
        server.url + "/api/v1/query",
        params={"query": '{__name__=~"zoom_.+"}[3h]', "time": str(time.time() + 60)},
        timeout=120,
    )
    answer.raise_for_status()
    for result in answer.json()["data"]["result"]:
        points = [(round(float(t) * 1000), float(v)) for t, v in result["values"]]
        out.setdefault(frozenset(result["metric"].items()), []).extend(points)
    return out


# --- what an event becomes -----------------------------------------------------------------------


def samples_of(event: Event) -> Samples:
    """The gauge samples the exporter writes for ``event`` (not zoom_participant_info, which
    is merged per participant), by series and millisecond."""
    parsed = EVENT_MODELS[event["event"]].model_validate(event)
    out: Samples = {}
    for sample in convert(parsed, ConvertOptions()).samples:
        series = frozenset(series_labels(sample.family, sample.labels))
        out.setdefault(series, {})[milliseconds(sample.timestamp)] = sample.value
    return out


# --- Zoom's side ---------------------------------------------------------------------------------


class Zoom:
    """Sends the account's events to the webhook at a steady rate, in a thread; keeps what was
    answered 200 and delivers again what was not (once the exporter is back)."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.client = httpx.Client(timeout=10, limits=httpx.Limits(keepalive_expiry=2.0))
        self.events: list[Event] = []
        self.reached: Counter[int] = Counter()  # attempts that may have reached the exporter
        self.acknowledged: set[int] = set()
        self.answers: Counter[str] = Counter()
        self.samples: Samples = {}  # of the acknowledged events
        self.late: set[tuple[Series, int]] = set()
        self.redelivered_samples: set[tuple[Series, int]] = set()
        self.newest: dict[Series, int] = {}
        self.retry: deque[int] = deque()
        self.old: deque[int] = deque()  # acknowledged events Zoom delivers again
        self.up = threading.Event()
        self.up.set()
        self.lock = threading.Lock()
        self.posts = 0
        self.redeliveries_of_acknowledged = 0
        self.retries = 0
        self.error: BaseException | None = None

    def post(self, index: int) -> bool:
        event = self.events[index]
        body = json.dumps(event).encode()
        headers = {
            "content-type": "application/json",
            **sign_headers(TOKEN, int(time.time()), body),
        }
        self.posts += 1
        try:
            answer = self.client.post(self.url + "/webhook", content=body, headers=headers)
        except httpx.ConnectError:
            self.answers["connection refused"] += 1
            return False
        except httpx.TransportError as error:
            self.reached[index] += 1
            self.answers[type(error).__name__] += 1
            return False
        self.reached[index] += 1
        self.answers[str(answer.status_code)] += 1
        if answer.status_code != 200:
            return False
        with self.lock:
            if index in self.acknowledged:
                return True
            self.acknowledged.add(index)
            for series, points in samples_of(event).items():
                have = self.samples.setdefault(series, {})
                newest = self.newest.get(series, -1)
                for stamp, value in points.items():
                    if stamp in have:
                        continue
                    have[stamp] = value
                    if stamp < newest:
                        self.late.add((series, stamp))
                    newest = max(newest, stamp)
                self.newest[series] = newest
        return True

    def deliver(self, index: int) -> None:
        if not self.post(index):
            self.retry.append(index)

    def redeliver_some(self) -> None:
        """Zoom delivers again what got no 200, and (after each restart) a few events answered
        200 minutes ago."""
        if not self.up.is_set():
            return
        for _ in range(2):
            if self.retry:
                self.retries += 1
                self.deliver(self.retry.popleft())
        if self.old:
            self.redeliveries_of_acknowledged += 1
            self.deliver(self.old.popleft())

    def queue_old(self, count: int, minutes_back: int) -> None:
        """``count`` acknowledged QoS events at least ``minutes_back`` simulated minutes older
        than the newest acknowledged event."""
        with self.lock:
            acknowledged = sorted(self.acknowledged)
        if not acknowledged:
            return
        newest = max(self._minute(i) for i in acknowledged)
        picks = [
            i
            for i in acknowledged
            if self.events[i]["event"] in QOS_EVENTS and self._minute(i) <= newest - minutes_back
        ]
        step = max(1, len(picks) // count) if picks else 1
        self.old.extend(picks[::step][-count:])

    def _minute(self, index: int) -> int:
        return int(self.events[index]["event_ts"]) // 60_000

    def run(self, fleet: Fleet, start: float, rounds: int) -> None:
        try:
            self._run(fleet, start, rounds)
        except BaseException as error:  # reported by the main thread
            self.error = error

    def _run(self, fleet: Fleet, start: float, rounds: int) -> None:
        began = time.monotonic()
        for event in fleet.join_events(start):
            self.events.append(event)
            self.deliver(len(self.events) - 1)
        turns = fleet.turns()
        for n in range(rounds):
            batch: list[Event] = []
            following = []
            for turn in turns:
                produced, after = fleet.step(turn, start + 60 * (n + 1))
                batch += produced
                following += after
            turns = following
            for k, event in enumerate(batch):
                due = began + (n + k / len(batch)) * self.args.round_seconds
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # the steady rate: Zoom's clock, not a wait for a result
                self.events.append(event)
                self.deliver(len(self.events) - 1)
                self.redeliver_some()

    def finish(self, deadline: float) -> None:
        """Deliver again until everything was answered 200, or ``deadline``."""
        while (self.retry or self.old) and time.monotonic() < deadline:
            before = len(self.retry) + len(self.old)
            self.redeliver_some()
            if len(self.retry) + len(self.old) >= before:
                time.sleep(0.5)  # Zoom's next retry, not a wait for a result


# --- the run -------------------------------------------------------------------------------------


def metrics(exporter: Exporter) -> dict[str, float]:
    """The exporter's remote-write counters, by name and reason."""
    out: dict[str, float] = {}
    for line in exporter.metrics_text().splitlines():
        if not line.startswith(PREFIX):
            continue
        name, _, value = line.rpartition(" ")
        out[name.removeprefix(PREFIX)] = float(value)
    return out


def wait_for(what: str, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)  # polling the condition


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    storage = work / "engine"
    storage.mkdir()
    db = engine(args.engine, storage, args.ooo_window)
    rounds = math.ceil(args.seconds / args.round_seconds)
    # Zoom's minutes end a few minutes ago: within Prometheus' head and the exporter's 45
    # minutes after which an item is sent on its own.
    start = (time.time() // 60 - rounds - 4) * 60
    flags = [
        f"--remote-write.url={db.url}/api/v1/write",
        f"--remote-write.wal-directory={work / 'wal'}",
        "--remote-write.max-backoff=1s",
        "--web.metrics-cache=0s",
    ]
    cycles: list[dict[str, Any]] = []
    sent = retried = 0.0  # per process: added up over the processes
    with db, Exporter(*flags) as exporter:
        db.start()
        exporter.start()
        zoom = Zoom(exporter.url, args)
        fleet = Fleet(
            args.seed,
            meetings=args.meetings,
            participants=args.participants,
            phone_calls=args.phone_calls,
        )
        sender = threading.Thread(target=zoom.run, args=(fleet, start, rounds), daemon=True)
        began = time.monotonic()
        sender.start()
        steady = (args.seconds - 10) / args.cycles - args.engine_down - args.exporter_down
        for n in range(args.cycles):
            time.sleep(max(5.0, steady))  # traffic with everything up
            cycle: dict[str, Any] = {"at_s": round(time.monotonic() - began, 1)}
            db.stop()
            time.sleep(args.engine_down / 2)  # the backlog grows in the queue and the log
            counters = metrics(exporter)
            cycle["backlog_samples"] = counters.get("queue_samples", 0)
            assert exporter.proc is not None
            zoom.up.clear()
            exporter.proc.send_signal(signal.SIGKILL)
            exporter.proc.wait()
            sent += counters.get("samples_sent_total", 0)
            retried += counters.get("samples_retried_total", 0)
            time.sleep(args.exporter_down)  # Zoom's deliveries meanwhile are refused
            exporter.spawn()
            cycle["restart_s"] = round(exporter.wait_ready(60), 2)
            cycle["queued_after_restart"] = metrics(exporter).get("queue_samples", 0)
            zoom.up.set()
            zoom.queue_old(args.redeliveries, minutes_back=3)
            time.sleep(args.engine_down / 2)  # the engine is still down
            db.start()
            cycle["engine_down_s"] = round(time.monotonic() - began - cycle["at_s"], 1)
            cycles.append(cycle)
            print(f"cycle {n + 1}: {cycle}", flush=True)
        sender.join(timeout=args.seconds * 3)
        if zoom.error is not None:
            raise zoom.error
        if sender.is_alive():
            raise RuntimeError("the traffic did not end")
        traffic_s = time.monotonic() - began
        zoom.finish(time.monotonic() + 60)
        wait_for(
            "the exporter's queue to drain",
            lambda: metrics(exporter).get("queue_samples", 1) == 0,
            timeout=120,
        )
        final = metrics(exporter)
        sent += final.get("samples_sent_total", 0)
        retried += final.get("samples_retried_total", 0)
        exporter.stop()
        got = stored(db, args.engine)
        problems = exporter.problems()
    figures = count(zoom, got, exact=args.engine != "victoria-metrics")
    failed = {
        name.split('reason="')[1].rstrip('"}'): value
        for name, value in final.items()
        if name.startswith("samples_failed_total{")
    }
    return {
        "engine": args.engine,
        "ooo_window": args.ooo_window if args.engine == "prometheus-ooo" else None,
        "traffic_s": round(traffic_s, 1),
        "events_generated": len(zoom.events),
        "posts": zoom.posts,
        "answers": dict(zoom.answers),
        "events_acknowledged": len(zoom.acknowledged),
        "events_never_acknowledged": len(zoom.events) - len(zoom.acknowledged),
        "zoom_retries_of_unanswered": zoom.retries,
        "zoom_redeliveries_of_acknowledged": zoom.redeliveries_of_acknowledged,
        "cycles": cycles,
        **figures,
        "exporter": {
            "samples_sent": sent,
            "samples_failed": failed,
            "samples_already_present": final.get("samples_already_present_total", 0),
            "samples_dropped": final.get("samples_dropped_total", 0),
            "samples_retried": retried,
        },
        "exporter_log_lines": len(problems),
        "exporter_log_kinds": dict(log_kinds(problems).most_common(12)),
    }


def log_kinds(lines: list[str]) -> Counter[str]:
    """The exporter's warnings by message, numbers left out."""
    kinds: Counter[str] = Counter()
    for line in lines:
        message = line.partition(" msg=")[2] or line
        kinds[re.sub(r"\d+(\.\d+)?", "N", message)[:160]] += 1
    return kinds


def count(zoom: Zoom, got: dict[Series, list[tuple[int, float]]], exact: bool) -> dict[str, Any]:
    def same(value: float, found: float) -> bool:
        return value == found if exact else math.isclose(value, found, rel_tol=1e-11)

    redelivered = {
        (series, stamp)
        for index, times in zoom.reached.items()
        if times > 1 and index in zoom.acknowledged
        for series, points in samples_of(zoom.events[index]).items()
        for stamp in points
    }
    expected = found = lost_late = 0
    duplicated = duplicated_redelivered = 0
    lost_examples: list[str] = []
    for series, points in zoom.samples.items():
        have: dict[int, list[float]] = {}
        for stamp, value in got.get(series, []):
            have.setdefault(stamp, []).append(value)
        for stamp, value in points.items():
            expected += 1
            values = have.get(stamp, [])
            if any(same(value, v) for v in values):
                found += 1
            elif (series, stamp) in zoom.late:
                lost_late += 1
            elif len(lost_examples) < 5:
                lost_examples.append(f"{dict(series)} @ {stamp}: {value} (engine: {values})")
            if len(values) > 1:
                if (series, stamp) in redelivered:
                    duplicated_redelivered += len(values) - 1
                else:
                    duplicated += len(values) - 1
    lost = expected - found
    return {
        "samples_expected": expected,
        "samples_late": len(zoom.late),
        "samples_found": found,
        "samples_lost": lost,
        "samples_lost_late": lost_late,
        "samples_lost_fresh": lost - lost_late,
        "samples_duplicated": duplicated,
        "samples_duplicated_of_redeliveries": duplicated_redelivered,
        "lost_examples": lost_examples,
    }


def judge(result: dict[str, Any]) -> list[str]:
    problems = []
    if result["samples_lost_fresh"]:
        problems.append(f"{result['samples_lost_fresh']} acknowledged samples lost")
    late = result["samples_lost_late"]
    counted = result["exporter"]["samples_failed"].get("out_of_order", 0)
    if result["engine"] != "prometheus" and late:
        problems.append(f"{late} late acknowledged samples lost on an engine that takes them")
    elif late > counted:
        problems.append(f"{late} late samples lost, only {counted:g} counted as out_of_order")
    if result["samples_duplicated"]:
        problems.append(f"{result['samples_duplicated']} samples stored twice by the exporter")
    if result["exporter"]["samples_dropped"]:
        problems.append("samples dropped")
    if result["events_never_acknowledged"]:
        problems.append(f"{result['events_never_acknowledged']} events never answered 200")
    if not result["samples_expected"]:
        problems.append("no traffic")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=ENGINES, default="prometheus")
    parser.add_argument("--ooo-window", default="1h", help="prometheus-ooo's (default 1h)")
    parser.add_argument("--seconds", type=float, default=150.0, help="traffic (default 150)")
    parser.add_argument("--round-seconds", type=float, default=4.0, help="per simulated minute")
    parser.add_argument("--cycles", type=int, default=3, help="outage and kill cycles (3)")
    parser.add_argument("--engine-down", type=float, default=14.0, help="seconds per cycle")
    parser.add_argument("--exporter-down", type=float, default=3.0, help="seconds per cycle")
    parser.add_argument("--redeliveries", type=int, default=20, help="per restart (20)")
    parser.add_argument("--meetings", type=int, default=12)
    parser.add_argument("--participants", type=int, default=6, help="per meeting")
    parser.add_argument("--phone-calls", type=int, default=8)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="hardening-durability-"))
    try:
        result = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return verdict("durability", judge(result))


if __name__ == "__main__":
    sys.exit(main())
