"""End to end, remote write: the console script writing to Debian's Prometheus started with
``--web.enable-remote-write-receiver``, everything read back through Prometheus' HTTP API.

- Zoom's ``date_time`` values arrive as sample timestamps, exactly, with the pull mode's
  labels and values; a late retry is refused alone, not with the good samples beside it.
- A stopping exporter drains its queue.
- Outage: the receiver stops, events keep coming, the queue fills and the webhook answers 503;
  the receiver returns, Zoom redelivers what got 503; then every event ever answered 2xx is
  in Prometheus, sample by sample (counted, not assumed), and nothing of a 503'd event got
  in before its redelivery.
- Two replicas behind a round-robin proxy give the same result as one: with
  ``--remote-write.participant-info=event``, every series, zoom_participant_info included;
  with ``merged`` (the default), every series but zoom_participant_info, which a replica that
  saw fewer of a participant's events can write with another, less complete label set (the
  same participants have info either way).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from prometheus_harness import free_port, wait_for
from remote_harness import (
    FAST,
    Event,
    Samples,
    Series,
    drained,
    exporter_metrics,
    exporter_process,
    merge,
    metric,
    receiver,
    rounds,
    samples_of,
    stored,
)
from remote_harness import (
    post as signed_post,
)

# idle connections closed by the client before uvicorn's 5 s keep-alive timeout can race a reuse
_SHORT_KEEPALIVE = httpx.Limits(keepalive_expiry=2.0)


# --- processes ---------------------------------------------------------------------------------


@contextlib.contextmanager
def exporter(directory: Path, name: str, remote: str, *flags: str) -> Iterator[str]:
    """The console script with remote write to ``remote``; yields its URL."""
    wal = directory / name / "wal"
    with exporter_process(directory, f"{remote}/api/v1/write", wal, *flags) as (url, _):
        yield url


@contextlib.contextmanager
def round_robin(backends: list[str]) -> Iterator[str]:
    """A loopback HTTP proxy handing each POST to the next backend in turn."""
    turn = iter(range(1 << 30))
    client = httpx.Client(timeout=10, limits=_SHORT_KEEPALIVE)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            backend = backends[next(turn) % len(backends)]
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            answer = client.post(backend + self.path, content=body, headers=headers)
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", "text/plain"))
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        client.close()


# --- events and what they should become ----------------------------------------------------------


_CLIENT = httpx.Client(timeout=10, limits=_SHORT_KEEPALIVE)  # keep-alive, as Zoom's deliveries


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    _CLIENT.close()


def post(url: str, event: Event) -> httpx.Response:
    return signed_post(url, event, _CLIENT)


INFO_NAMES = {("__name__", "zoom_participant_info"), ("__name__", "zoom_phone_party_info")}


def without_info(samples: Samples) -> Samples:
    """All but the info series (participants' and call parties'), which are checked apart."""
    return {s: p for s, p in samples.items() if not INFO_NAMES & s}


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus as it comes: no out-of-order window."""
    with receiver(tmp_path_factory.mktemp("prometheus")) as (url, _):
        yield url


def test_samples_arrive_with_zoom_timestamps_labels_and_values(
    tmp_path: Path, strict_prometheus: str
) -> None:
    start = (time.time() // 60 - 30) * 60  # within the receiver's head window
    batches = rounds(1, 6, start, meetings=3, participants=2, phone_calls=2)
    events = [e for batch in batches[:-1] for e in batch]
    expected: Samples = {}
    with exporter(tmp_path, "exporter", strict_prometheus, *FAST) as url:
        for event in events:
            assert post(url, event).status_code == 200
            merge(expected, samples_of(event))
        wait_for("the queue to drain", lambda: drained(url))
        got = {s: p for s, p in stored(strict_prometheus).items() if _ours(s, expected)}
        assert without_info(got) == expected, "every series, timestamp and value; no other"
        sent = metric(url, "zoom_qss_exporter_remote_write_samples_sent_total")
        assert sent == sum(len(p) for p in got.values())

        # zoom_participant_info (--remote-write.participant-info=merged, the default): the
        # metadata merged, at the time of each event about them
        info = {s: p for s, p in got.items() if ("__name__", "zoom_participant_info") in s}
        assert len(info) == len({(dict(s)["meeting_id"], dict(s)["participant_id"]) for s in info})
        for series, points in info.items():
            labels = dict(series)
            assert set(points.values()) == {1.0}
            assert labels.get("device") and labels.get("network_type"), "from the data events"
            stamps = {e["event_ts"] for e in events if _about(e, labels["participant_id"])}
            assert set(points) == stamps, "refreshed by each event, at its own time"
        # zoom_phone_party_info: one series per party, with the network the simulator gave
        # it, at the time of each phone event about the party (all name it: the sending
        # sample, which names the network, comes first in each round)
        parties = {s: p for s, p in got.items() if ("__name__", "zoom_phone_party_info") in s}
        phone = [e for e in events if e["event"].startswith("phone.")]
        assert len(parties) == 2 * len({e["payload"]["object"]["call_id"] for e in phone}) > 0
        for series, points in parties.items():
            labels = dict(series)
            assert labels["network"] in ("LAN", "WiFi", "VPN") and set(points.values()) == {1.0}
            stamps = {e["event_ts"] for e in phone if _in_call(e, labels["user_id"])}
            assert set(points) == stamps

        # Zoom redelivers an old event while fresh ones arrive: the old one is refused (this
        # Prometheus has no out-of-order window) alone, without the fresh samples, and counted
        # as already present (Prometheus has it), not as a loss
        late = next(e for e in batches[2] if e["event"] == "meeting.participant_qos")
        assert post(url, late).status_code == 200
        for event in batches[-1]:
            assert post(url, event).status_code == 200
            merge(expected, samples_of(event))
        wait_for("the queue to drain", lambda: drained(url))
        got = stored(strict_prometheus)
        assert without_info({s: p for s, p in got.items() if _ours(s, expected)}) == expected
        present = metric(url, "zoom_qss_exporter_remote_write_samples_already_present_total")
        assert present == sum(len(p) for p in samples_of(late).values()) > 0
        failed = exporter_metrics(url)
        assert not [v for (name, _), v in failed.items() if name.endswith("failed_total") and v]


def _ours(series: Series, expected: Samples) -> bool:
    """Of the meetings and calls in ``expected`` (tests share one Prometheus)."""
    keys = {dict(s).get("meeting_id") or dict(s).get("call_id") for s in expected}
    labels = dict(series)
    return (labels.get("meeting_id") or labels.get("call_id")) in keys


def _about(event: Event, participant: str) -> bool:
    obj = event["payload"]["object"]
    who = obj.get("participant") or obj.get("user") or {}
    return participant in (who.get("user_id"), who.get("participant_id"), who.get("id"))


def _in_call(event: Event, party: str) -> bool:
    holder = event["payload"]["object"]["call_qos"]
    ids = [
        p.get("id") or p.get("user_id") for p in (holder if isinstance(holder, list) else [holder])
    ]
    return party in ids


def test_a_stopping_exporter_drains_its_queue(tmp_path: Path, strict_prometheus: str) -> None:
    start = (time.time() // 60 - 20) * 60
    events = [e for batch in rounds(2, 2, start, meetings=2, participants=2) for e in batch]
    expected: Samples = {}
    with exporter(
        tmp_path,
        "exporter",
        strict_prometheus,
        "--remote-write.flush-interval=1h",
        "--web.metrics-cache=0s",
    ) as url:
        for event in events:
            assert post(url, event).status_code == 200
            merge(expected, samples_of(event))
        assert metric(url, "zoom_qss_exporter_remote_write_queue_samples") > 0
    # SIGTERM: uvicorn stops taking requests, then the queue is sent before the process ends
    got = stored(strict_prometheus)
    assert without_info({s: p for s, p in got.items() if _ours(s, expected)}) == expected


@dataclass
class OutageFigures:
    answered_2xx: int = 0
    answered_503: int = 0
    redelivered: int = 0
    samples_expected: int = 0
    samples_found: int = 0


def test_outage_loses_nothing_answered_2xx(tmp_path: Path) -> None:
    start = (time.time() // 60 - 40) * 60
    batches = rounds(3, 12, start, meetings=4, participants=3, phone_calls=2)
    figures = OutageFigures()
    accepted: Samples = {}
    refused: list[Event] = []
    data = tmp_path / "prometheus"
    data.mkdir()
    port = free_port()
    flags = [*FAST, "--remote-write.queue-capacity=1500", "--remote-write.batch-size=500"]
    with exporter(tmp_path, "exporter", f"http://127.0.0.1:{port}", *flags) as url:
        with receiver(data, port, ooo_window="2h"):
            for event in [e for batch in batches[:3] for e in batch]:
                assert post(url, event).status_code == 200
                merge(accepted, samples_of(event))
                figures.answered_2xx += 1
            wait_for("the queue to drain", lambda: drained(url))

        # The receiver is down; Zoom keeps sending.
        for event in [e for batch in batches[3:] for e in batch]:
            status = post(url, event).status_code
            assert status in (200, 503)
            if status == 200:
                merge(accepted, samples_of(event))
                figures.answered_2xx += 1
            else:
                refused.append(event)
                figures.answered_503 += 1
        assert figures.answered_503 > 0, "the queue filled up"
        queued = metric(url, "zoom_qss_exporter_remote_write_queue_samples")
        assert 1000 < queued <= 1500

        # The receiver is back, on the same port and storage.
        with receiver(data, port, ooo_window="2h") as (prometheus, _):
            wait_for("the queue to drain", lambda: drained(url), timeout=60)
            got = stored(prometheus)
            for event in refused:  # nothing of a 503'd event was applied anywhere
                for series, points in samples_of(event).items():
                    assert not set(points) & set(got.get(series, {})), "a 503'd event leaked"

            for event in refused:  # Zoom's redelivery, minutes later
                assert post(url, event).status_code == 200
                merge(accepted, samples_of(event))
                figures.redelivered += 1
            wait_for("the queue to drain", lambda: drained(url))

            got = stored(prometheus)
            figures.samples_expected = sum(len(p) for p in accepted.values())
            figures.samples_found = sum(
                1
                for series, points in accepted.items()
                for stamp, value in points.items()
                if got.get(series, {}).get(stamp) == value
            )
            print(f"\noutage figures: {figures}")
            assert figures.samples_found == figures.samples_expected
            health = exporter_metrics(url)
            assert (
                health[("zoom_qss_exporter_remote_write_samples_dropped_total", frozenset())] == 0
            )
            assert not any(
                value
                for (name, _), value in health.items()
                if name == "zoom_qss_exporter_remote_write_samples_failed_total"
            )
            assert health[("zoom_qss_exporter_remote_write_samples_retried_total", frozenset())] > 0
            overload = sum(
                value
                for (name, labels), value in health.items()
                if name == "zoom_qss_exporter_events_total"
                and ("outcome", "rejected_overload") in labels
            )
            assert overload == figures.answered_503


def one_and_two_replicas(tmp_path: Path, mode: str) -> tuple[Samples, Samples]:
    """The same events to one exporter and, through a round-robin proxy, to two, each side
    writing to its own Prometheus in ``--remote-write.participant-info`` ``mode``: what each
    Prometheus then holds."""
    start = (time.time() // 60 - 30) * 60
    events = [
        e
        for batch in rounds(4, 6, start, meetings=3, participants=2, phone_calls=2, churn=0.2)
        for e in batch
    ]
    stateless = [*FAST, "--no-store.per-participant", f"--remote-write.participant-info={mode}"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with (
        receiver(tmp_path / "one", ooo_window="2h") as (single_prometheus, _),
        receiver(tmp_path / "two", ooo_window="2h") as (pair_prometheus, _),
        exporter(tmp_path, "single", single_prometheus, *stateless) as single,
        exporter(tmp_path, "replica-a", pair_prometheus, *stateless) as a,
        exporter(tmp_path, "replica-b", pair_prometheus, *stateless) as b,
        round_robin([a, b]) as proxy,
    ):
        for event in events:
            assert post(single, event).status_code == 200
            assert post(proxy, event).status_code == 200
        for url in (single, a, b):
            wait_for("the queue to drain", functools.partial(drained, url))
        for replica in (a, b):
            health = exporter_metrics(replica)
            assert health[("zoom_qss_exporter_remote_write_samples_sent_total", frozenset())] > 0
            assert not any(
                value
                for (name, _), value in health.items()
                if name == "zoom_qss_exporter_remote_write_samples_failed_total"
            )
        one, two = stored(single_prometheus), stored(pair_prometheus)
    for name, samples in (("one replica", one), ("two replicas", two)):
        info = {s: p for s, p in samples.items() if s not in without_info(samples)}
        print(
            f"\n{mode}, {name}: {len(samples)} series, {sum(len(p) for p in samples.values())} "
            f"samples, of them zoom_participant_info {len(info)} series, "
            f"{sum(len(p) for p in info.values())} samples"
        )
    assert len(without_info(one)) > 100
    assert len(one) > len(without_info(one)), "info series are in the comparison"
    return one, two


def info_owners(samples: Samples) -> set[tuple[str, str, str]]:
    """Whose info series there are: participants' and call parties'."""
    return {
        (labels["product"], labels["meeting_id"], labels["participant_id"])
        if labels["__name__"] == "zoom_participant_info"
        else ("phone", labels["call_id"], labels["user_id"])
        for labels in map(dict, samples)
        if INFO_NAMES & set(labels.items())
    }


def test_two_replicas_behind_round_robin_equal_one(tmp_path: Path) -> None:
    """--remote-write.participant-info=event: every series, timestamp and value,
    zoom_participant_info included, since what is written is a function of the events only,
    not of which replica received which."""
    one, two = one_and_two_replicas(tmp_path, "event")
    assert two == one


def test_two_replicas_in_merged_mode_differ_only_in_info_label_sets(tmp_path: Path) -> None:
    """--remote-write.participant-info=merged (the default): every series but
    zoom_participant_info is the same. Info is merged per replica: the same participants have
    it, but a replica that saw fewer of a participant's events (not the summary with the user
    name, say) can write another, less complete label set (docs/remote-write.md)."""
    one, two = one_and_two_replicas(tmp_path, "merged")
    assert without_info(two) == without_info(one)
    assert info_owners(two) == info_owners(one)
