"""End to end, remote write that loses nothing it acknowledged: the console script with its
write-ahead log, killed and restarted, writing to Debian's Prometheus (strict, and with an
out-of-order window) and VictoriaMetrics, everything read back through their HTTP APIs.

- SIGKILL with the engine down and a backlog, then a restart: every sample answered 200 arrives,
  at Zoom's time; nothing the engine had taken before is sent again (VictoriaMetrics, which
  keeps duplicates, has each sample once).
- A restart, then Zoom's redeliveries of old events among fresh traffic, on a strict
  Prometheus: no fresh sample is lost, and the refused redeliveries count as already present.
- Prometheus with an out-of-order window answers 500 "too old" for samples older than it: the
  queue drops them (counted) and moves on.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from prometheus_harness import free_port, wait_for
from remote_harness import (
    FAST,
    Event,
    Samples,
    drained,
    exporter_metrics,
    exporter_process,
    merge,
    metric,
    post,
    receiver,
    rounds,
    samples_of,
    stored,
)
from zoom_qss_exporter.ingest.archive import Archive, ArchiveOptions


@dataclass
class Figures:
    acknowledged: int = 0  # events answered 200
    expected: int = 0  # their samples
    found: int = 0  # of those, in the engine with Zoom's time and value
    lost: int = 0
    duplicated: int = 0  # samples the engine holds more than once (VictoriaMetrics)


def small_disk(limit: int) -> Callable[[], None]:
    """In the child before it runs the exporter: no file can grow past ``limit`` bytes, and
    a write past it fails with EFBIG (instead of the signal), as on a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@contextlib.contextmanager
def victoria_metrics(directory: Path, port: int) -> Iterator[str]:
    binary = shutil.which("victoria-metrics")
    assert binary, "victoria-metrics missing: run scripts/setup (Debian's victoria-metrics)"
    argv = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={directory}",
        "-retentionPeriod=1y",
        "-search.latencyOffset=0s",  # recent samples are queried at once
    ]
    url = f"http://127.0.0.1:{port}"
    with (directory.parent / f"victoria-metrics-{port}.log").open("a") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for("VictoriaMetrics", lambda: _vm_ready(url, process))
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _vm_ready(url: str, process: subprocess.Popen[bytes]) -> bool | None:
    if process.poll() is not None:
        raise AssertionError(f"VictoriaMetrics exited with {process.returncode}")
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url + "/health").status_code == 200 or None
    return None


def exported(url: str) -> dict[frozenset[tuple[str, str]], list[tuple[int, float]]]:
    """Every raw sample VictoriaMetrics holds of the zoom_ series, duplicates included."""
    httpx.get(url + "/internal/force_flush", timeout=30)
    answer = httpx.post(
        url + "/api/v1/export",
        data={"match[]": '{__name__=~"zoom_.+"}', "start": "0"},
        timeout=60,
    )
    answer.raise_for_status()
    out: dict[frozenset[tuple[str, str]], list[tuple[int, float]]] = {}
    for line in answer.text.splitlines():
        if not line.strip():
            continue
        record: dict[str, Any] = httpx.Response(200, content=line).json()
        series = frozenset(record["metric"].items())
        out.setdefault(series, []).extend(zip(record["timestamps"], record["values"], strict=True))
    return out


def count(figures: Figures, accepted: Samples, got: Samples, exact: bool = True) -> Figures:
    def same(value: float, found: float | None) -> bool:
        if found is None:
            return False
        return value == found if exact else math.isclose(value, found, rel_tol=1e-11)

    figures.expected = sum(len(p) for p in accepted.values())
    figures.found = sum(
        1
        for series, points in accepted.items()
        for stamp, value in points.items()
        if same(value, got.get(series, {}).get(stamp))
    )
    figures.lost = figures.expected - figures.found
    return figures


def accept(url: str, events: list[Event], accepted: Samples, figures: Figures) -> None:
    for event in events:
        assert post(url, event).status_code == 200
        merge(accepted, samples_of(event))
        figures.acknowledged += 1


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["prometheus", "victoria-metrics"])
def test_sigkill_with_the_engine_down_loses_nothing_acknowledged(
    tmp_path: Path, engine: str
) -> None:
    start = (time.time() // 60 - 30) * 60
    batches = rounds(11, 9, start, meetings=3, participants=3, phone_calls=2)
    figures = Figures()
    accepted: Samples = {}
    port = free_port()
    storage = tmp_path / "engine"
    storage.mkdir()
    wal = tmp_path / "wal"

    @contextlib.contextmanager
    def engine_up() -> Iterator[str]:
        """The engine on the same port and storage each time."""
        if engine == "prometheus":
            with receiver(storage, port) as (url, _):
                yield url
        else:
            with victoria_metrics(storage, port) as url:
                yield url

    remote = f"http://127.0.0.1:{port}/api/v1/write"
    with exporter_process(tmp_path, remote, wal, *FAST) as (url, process):
        with engine_up():
            accept(url, [e for batch in batches[:3] for e in batch], accepted, figures)
            wait_for("the queue to drain", lambda: drained(url))
        sent_before = metric(url, "zoom_qss_exporter_remote_write_samples_sent_total")
        # the engine is down: events are answered 200 and wait in the queue and the log
        accept(url, [e for batch in batches[3:6] for e in batch], accepted, figures)
        backlog = metric(url, "zoom_qss_exporter_remote_write_queue_samples")
        assert backlog > 0
        kill(process)

    with engine_up() as engine_url:
        with exporter_process(tmp_path, remote, wal, *FAST) as (url, _):
            wait_for("the backlog to drain", lambda: drained(url), timeout=60)
            resent = metric(url, "zoom_qss_exporter_remote_write_samples_sent_total")
            assert resent == backlog, "the backlog, and nothing the engine had taken before"
            accept(url, [e for batch in batches[6:] for e in batch], accepted, figures)
            wait_for("the queue to drain", lambda: drained(url))
            health = exporter_metrics(url)
            assert not [v for (n, _), v in health.items() if n.endswith("failed_total") and v]
            assert (
                health[("zoom_qss_exporter_remote_write_samples_dropped_total", frozenset())] == 0
            )
        if engine == "prometheus":
            got = stored(engine_url)
        else:
            raw = exported(engine_url)
            figures.duplicated = sum(len(p) - len({t for t, _ in p}) for p in raw.values())
            got = {series: dict(points) for series, points in raw.items()}
    # VictoriaMetrics keeps 12 significant digits (0.07200000000000001 comes back as 0.072)
    count(figures, accepted, got, exact=engine == "prometheus")
    print(f"\n{engine} SIGKILL figures: {figures} (sent before the kill {sent_before:g})")
    assert figures.lost == 0
    assert figures.duplicated == 0


def test_restart_then_redeliveries_among_fresh_traffic_lose_no_fresh_sample(
    tmp_path: Path,
) -> None:
    """On a strict Prometheus a redelivered (older) sample in a request makes it refuse the
    whole request: after a restart the exporter must still know which samples are old."""
    start = (time.time() // 60 - 30) * 60
    batches = rounds(12, 9, start, meetings=3, participants=3, phone_calls=2)
    figures = Figures()
    accepted: Samples = {}
    port = free_port()
    storage = tmp_path / "prometheus"
    storage.mkdir()
    wal = tmp_path / "wal"
    remote = f"http://127.0.0.1:{port}/api/v1/write"
    with receiver(storage, port) as (prometheus, _):
        with exporter_process(tmp_path, remote, wal, *FAST) as (url, _):
            accept(url, [e for batch in batches[:5] for e in batch], accepted, figures)
            wait_for("the queue to drain", lambda: drained(url))
        # SIGTERM, and a new process on the same log
        old = [
            e
            for batch in batches[2:5]
            for e in batch
            if e["event"] in ("meeting.participant_qos", "phone.call_qos")
        ]
        with exporter_process(tmp_path, remote, wal, *FAST) as (url, _):
            fresh = [e for batch in batches[5:] for e in batch]
            mixed: list[Event] = []
            for n, event in enumerate(fresh):
                mixed.append(event)
                if n % 3 == 0 and old:
                    mixed.append(old.pop())  # Zoom's redelivery, between fresh deliveries
            for event in mixed:
                assert post(url, event).status_code == 200
                if event in fresh:
                    merge(accepted, samples_of(event))
                    figures.acknowledged += 1
            wait_for("the queue to drain", lambda: drained(url))
            health = exporter_metrics(url)
            present = health[
                ("zoom_qss_exporter_remote_write_samples_already_present_total", frozenset())
            ]
            assert present > 0, "the redeliveries went alone, and Prometheus had them"
            assert not [v for (n, _), v in health.items() if n.endswith("failed_total") and v]
        got = stored(prometheus)
    print(f"\nrestart and redeliveries figures: {count(figures, accepted, got)}")
    assert figures.lost == 0


def test_a_too_old_500_is_dropped_and_the_queue_moves_on(tmp_path: Path) -> None:
    """Prometheus 2.42 with an out-of-order window answers 500 for samples older than the
    window; before, the queue retried that batch forever and nothing behind it was sent."""
    now = (time.time() // 60) * 60
    fresh_batches = rounds(13, 3, now - 4 * 60, meetings=2, participants=2)
    # older than the head's 1 h and the 10 m window: "too old" (the exporter sends items more
    # than 45 minutes old on their own, so nothing fresh is in those requests)
    ancient = rounds(14, 2, now - 150 * 60, meetings=2, participants=2)
    figures = Figures()
    accepted: Samples = {}
    failed = "zoom_qss_exporter_remote_write_samples_failed_total"
    with receiver(tmp_path, ooo_window="10m") as (prometheus, _):
        remote, wal = f"{prometheus}/api/v1/write", tmp_path / "wal"
        with exporter_process(tmp_path, remote, wal, *FAST) as (url, _):
            accept(url, fresh_batches[0] + fresh_batches[1], accepted, figures)
            wait_for("the queue to drain", lambda: drained(url))
            for event in [e for batch in ancient for e in batch]:
                assert post(url, event).status_code == 200
            accept(url, fresh_batches[2] + fresh_batches[3], accepted, figures)
            wait_for("the queue to drain", lambda: drained(url), timeout=60)
            too_old = metric(url, failed, reason="too_old")
            assert too_old > 0
        got = stored(prometheus)
        # what was lost is still counted after a restart (the log's checkpoint keeps it)
        with exporter_process(tmp_path, remote, wal, *FAST) as (url, _):
            assert metric(url, failed, reason="too_old") == too_old
    assert count(figures, accepted, got).lost == 0


def test_replay_of_an_archive_reaching_hours_back_sends_what_the_engine_takes(
    tmp_path: Path,
) -> None:
    """A backfill into an engine that has today's data: Prometheus answers 500 "too old" to
    samples older than its head and its out-of-order window. Before, the first of those was
    retried forever: 0 sent, everything dropped, and with an archive larger than the queue
    no report at all."""
    now = (time.time() // 60) * 60

    def events(seed: int, start: float) -> list[Event]:
        return [e for b in rounds(seed, 4, start, meetings=2, participants=2) for e in b]

    live, ancient, recent = (
        events(15, now - 4 * 60),
        events(16, now - 180 * 60),
        events(17, now - 20 * 60),
    )
    batch = 100
    with receiver(tmp_path, ooo_window="30m") as (prometheus, _):
        assert replay(tmp_path / "live", live, prometheus, batch).returncode == 0
        done = replay(tmp_path / "outage", ancient + recent, prometheus, batch)
        got = stored(prometheus)
    print(done.stdout)
    assert done.returncode == 1, done.stderr  # samples were refused: too old
    assert "refused (too_old" in done.stdout and "not replayed" not in done.stdout
    figures = count(Figures(), merge_all(recent), got)
    print(f"replay figures (recent events): {figures}")
    assert figures.lost == 0, "no request mixes samples hours apart"
    assert figures.found > 0


def replay(
    directory: Path, events: list[Event], prometheus: str, batch: int
) -> subprocess.CompletedProcess[str]:
    """``zoom-qss-exporter replay`` of an archive of ``events`` into ``prometheus``, with a
    queue smaller than the archive."""
    archive = Archive(ArchiveOptions(str(directory)))
    for event in events:
        archive.append(json.dumps(event).encode(), event, time.time(), "")
    archive.close()
    argv = [
        sys.executable,
        "-m",
        "zoom_qss_exporter.cli",
        "replay",
        f"--remote-write.url={prometheus}/api/v1/write",
        f"--remote-write.batch-size={batch}",
        "--remote-write.queue-capacity=500",
        "--timeout=2m",
        *map(str, sorted(directory.iterdir())),
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180)


def merge_all(events: list[Event]) -> Samples:
    out: Samples = {}
    for event in events:
        merge(out, samples_of(event))
    return out


def test_a_full_disk_answers_503_and_keeps_serving(tmp_path: Path) -> None:
    """The log cannot grow (a file size limit stands in for a full disk): events are refused
    with a 503 that says why, Zoom delivers them again; once the engine has taken the backlog
    the log makes room and events are accepted again, and nothing answered 200 is lost (on
    an engine with an out-of-order window, which Zoom's redeliveries need: docs/remote-write.md)."""
    start = (time.time() // 60 - 30) * 60
    events = [e for b in rounds(18, 8, start, meetings=3, participants=3) for e in b]
    port = free_port()
    storage = tmp_path / "prometheus"
    storage.mkdir()
    remote = f"http://127.0.0.1:{port}/api/v1/write"
    accepted: Samples = {}
    refused: list[Event] = []
    figures = Figures()
    flags = (*FAST, "--no-remote-write.wal-fsync")
    with exporter_process(
        tmp_path, remote, tmp_path / "wal", *flags, preexec_fn=small_disk(60_000)
    ) as (url, process):
        for event in events:  # the engine is down: the log fills up
            answer = post(url, event)
            assert answer.status_code in (200, 503), answer.text
            if answer.status_code == 200:
                merge(accepted, samples_of(event))
                figures.acknowledged += 1
            else:
                assert "log cannot be written" in answer.json()["error"]
                refused.append(event)
        assert refused, "the log filled up"
        assert httpx.get(url + "/-/healthy").status_code == 200
        overload = metric(
            url,
            "zoom_qss_exporter_events_total",
            event="meeting.participant_qos",
            outcome="rejected_overload",
        )
        assert overload > 0
        # an out-of-order window: a redelivery taken after a newer event of its stream is late
        with receiver(storage, port, ooo_window="2h") as (prometheus, _):
            for _ in range(20):  # Zoom's redeliveries, until each is taken (bounded)
                wait_for("the queue to drain", lambda: drained(url), timeout=60)
                again, refused = refused, []
                for event in again:
                    answer = post(url, event)
                    if answer.status_code == 200:
                        merge(accepted, samples_of(event))
                        figures.acknowledged += 1
                    else:
                        refused.append(event)
                if not refused:
                    break
            assert not refused, "the log made room once the engine took the backlog"
            wait_for("the queue to drain", lambda: drained(url), timeout=60)
            got = stored(prometheus)
            health = exporter_metrics(url)
            assert not [v for (n, _), v in health.items() if n.endswith("failed_total") and v]

        assert process.poll() is None, "still running"
    count(figures, accepted, got)
    print(f"\nfull disk figures: {figures}, {overload:g} QoS events answered 503 first")
    assert figures.lost == 0
