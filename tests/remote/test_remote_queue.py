"""The remote-write queue against a loopback receiver over real HTTP: batching, headers,
retries with backoff on 5xx/429/transport errors only, refusals counted by reason, the bound,
the drain on shutdown, and the webhook's 503 when the queue is full."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveFactory, example, key, promtool_check_metrics, series_of
from prometheus_harness import wait_for
from remote_receiver import DROP, T0, FakeReceiver, fake_receiver, options, points, run, until
from zoom_qss_exporter.ingest.archive import ArchiveOptions
from zoom_qss_exporter.remote.queue import Chunk, RemoteWriteQueue
from zoom_qss_exporter.remote.wal import WALOptions, WriteAheadLog


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with fake_receiver() as fake:
        yield fake


def test_batches_headers_and_every_sample_in_order(receiver: FakeReceiver) -> None:
    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url, headers=(("X-Scope-OrgID", "t1"),)))
        queue.start()
        for n in range(25):  # 25 events of 10 samples of one series
            assert queue.offer([Chunk(points(10, start=T0 + n * 10))])
        await queue.close(10)
        return queue

    queue = run(scenario)
    assert [r.samples for r in receiver.requests] == [100, 100, 50]
    (samples,) = receiver.accepted().values()
    assert samples == [(round((T0 + i) * 1000), i / 1000) for i in range(250)]
    headers = {k.lower(): v for k, v in receiver.requests[0].headers.items()}
    assert headers["content-encoding"] == "snappy"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-prometheus-remote-write-version"] == "0.1.0"
    assert headers["user-agent"].startswith("zoom-qss-exporter/")
    assert headers["x-scope-orgid"] == "t1"
    assert (queue.sent_total, queue.queued, queue.retried_total) == (250, 0, 0)
    assert queue.last_success > 0


def test_a_small_batch_waits_for_the_flush_interval_only(receiver: FakeReceiver) -> None:
    async def scenario() -> float:
        queue = RemoteWriteQueue(options(receiver.url, flush_interval=0.2))
        queue.start()
        started = time.monotonic()
        queue.offer([Chunk(points(3))])
        await until("the flush", lambda: receiver.count() == 1)
        waited = time.monotonic() - started
        await queue.close(10)
        return waited

    waited = run(scenario)
    assert 0.15 < waited < 5


@pytest.mark.parametrize(
    ("statuses", "headers"),
    [
        ((500, 502, 503), {}),
        ((429,), {"retry-after": "0"}),
        ((DROP, DROP), {}),  # transport errors: the connection closes without an answer
        ((502,), {"content-encoding": "gzip"}),  # an answer that cannot be decoded
    ],
    ids=["5xx", "429", "transport", "garbled"],
)
def test_retried_until_accepted(
    receiver: FakeReceiver, statuses: tuple[int, ...], headers: dict[str, str]
) -> None:
    receiver.answer(*statuses, headers=headers, text="try later")

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url))
        queue.start()
        queue.offer([Chunk(points(40))])
        await queue.close(10)
        return queue

    queue = run(scenario)
    assert receiver.count() == len(statuses) + 1
    assert [r.samples for r in receiver.requests] == [40] * (len(statuses) + 1)
    assert queue.sent_total == 40 and queue.retried_total == 40 * len(statuses)
    assert len(next(iter(receiver.accepted().values()))) == 40
    assert not any(queue.failed_total.values())


def test_backoff_grows_with_jitter_up_to_the_maximum(
    receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.answer(*[503] * 6)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float) -> None:  # the waits, without waiting them
        slept.append(delay)
        await real_sleep(0)

    async def scenario() -> None:
        queue = RemoteWriteQueue(
            options(receiver.url, min_backoff=1.0, max_backoff=8.0), rng=random.Random(7)
        )
        queue.start()
        queue.offer([Chunk(points(1))])
        await until("delivery", lambda: queue.sent_total == 1)
        await queue.close(10)

    monkeypatch.setattr(asyncio, "sleep", record)
    run(scenario)
    backoffs = [s for s in slept if s > 0.1]
    assert len(backoffs) == 6
    for n, delay in enumerate(backoffs):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling, (n, delay)
    assert len(set(backoffs)) == 6, "jittered"


@pytest.mark.parametrize(
    ("status", "text", "reason"),
    [
        (400, "out of order sample", "out_of_order"),
        (400, "out of bounds", "too_old"),
        (400, "duplicate sample for timestamp", "duplicate_timestamp"),
        (401, "", "unauthorized"),
        (404, "not found", "rejected"),
    ],
)
def test_other_4xx_is_counted_and_logged_not_retried(
    receiver: FakeReceiver,
    caplog: pytest.LogCaptureFixture,
    status: int,
    text: str,
    reason: str,
) -> None:
    receiver.answer(status, text=text)

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url))
        queue.start()
        queue.offer([Chunk(points(7))])
        await until("the answer", lambda: queue.queued == 0)
        queue.offer([Chunk(points(5, start=T0 + 100))])
        await queue.close(10)
        return queue

    with caplog.at_level(logging.WARNING, "zoom_qss_exporter.remote_write"):
        queue = run(scenario)
    assert [r.samples for r in receiver.requests] == [7, 5], "refused once, never retried"
    assert queue.failed_total[reason] == 7 and queue.sent_total == 5
    assert queue.retried_total == 0
    assert f"refused 7 samples with {status} ({reason}, not retried)" in caplog.text
    assert text in caplog.text


def test_a_chunk_marked_alone_gets_a_request_of_its_own(receiver: FakeReceiver) -> None:
    receiver.answer(204, 400, 204, text="out of order sample")

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url, flush_interval=10))
        queue.offer([Chunk(points(3, "a"))])
        queue.offer([Chunk(points(2, "late"), alone=True)])
        queue.offer([Chunk(points(4, "b"))])
        await queue.close(10)
        return queue

    queue = run(scenario)
    assert [r.samples for r in receiver.requests] == [3, 2, 4]
    assert queue.failed_total["out_of_order"] == 2 and queue.sent_total == 7


def test_bounded_all_or_nothing_and_an_empty_queue_takes_anything(
    receiver: FakeReceiver,
) -> None:
    async def scenario() -> None:
        queue = RemoteWriteQueue(options(receiver.url, queue_capacity=100, batch_size=50))
        assert queue.offer([Chunk(points(500))]), "larger than the queue, but the queue is empty"
        assert not queue.offer([Chunk(points(1))])
        await queue.close(10)
        queue = RemoteWriteQueue(options(receiver.url, queue_capacity=100, batch_size=50))
        assert queue.offer([Chunk(points(60))])
        assert not queue.offer([Chunk(points(20)), Chunk(points(30))])
        assert queue.queued == 60
        assert queue.offer([Chunk(points(40))])
        assert not queue.has_room(1)
        await queue.close(10)
        assert not queue.offer([Chunk(points(1))]), "closed"

    run(scenario)
    assert sum(r.samples for r in receiver.requests) == 600


def test_in_flight_samples_count_against_the_bound(receiver: FakeReceiver) -> None:
    receiver.answer(*[503] * 1000)

    async def scenario() -> None:
        queue = RemoteWriteQueue(options(receiver.url, queue_capacity=10, batch_size=10))
        queue.start()
        assert queue.offer([Chunk(points(10))])
        await until("the first attempt", lambda: receiver.count() >= 1)
        assert queue.queued == 10 and not queue.has_room(1)
        with receiver.lock:
            receiver.script.clear()
        await until("delivery", lambda: queue.queued == 0)
        assert queue.has_room(10)
        await queue.close(10)

    run(scenario)


def test_shutdown_sends_everything_without_waiting_for_the_flush_interval(
    receiver: FakeReceiver,
) -> None:
    async def scenario() -> tuple[int, float]:
        queue = RemoteWriteQueue(options(receiver.url, flush_interval=3600, batch_size=1000))
        queue.start()
        for n in range(5):
            queue.offer([Chunk(points(10, start=T0 + 10 * n))])
        started = time.monotonic()
        dropped = await queue.close(10)
        return dropped, time.monotonic() - started

    dropped, took = run(scenario)
    assert dropped == 0 and took < 5
    assert sum(r.samples for r in receiver.requests) == 50


def test_shutdown_gives_up_at_its_deadline_and_counts_the_rest(
    receiver: FakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer(*[503] * 10_000)

    async def scenario() -> tuple[RemoteWriteQueue, int]:
        queue = RemoteWriteQueue(options(receiver.url, batch_size=10))
        queue.start()
        queue.offer([Chunk(points(10))])
        queue.offer([Chunk(points(5, start=T0 + 50))])
        await until("the first attempt", lambda: receiver.count() >= 1)
        return queue, await queue.close(0.3)

    with caplog.at_level(logging.ERROR, "zoom_qss_exporter.remote_write"):
        queue, dropped = run(scenario)
    assert dropped == 15 == queue.dropped_total and queue.queued == 0
    assert "15 samples still queued after the 0.3s shutdown timeout were dropped" in caplog.text


# --- seen from the webhook -------------------------------------------------------------------


def _qos(participant: str, minute: int) -> dict[str, Any]:
    document = copy.deepcopy(example("meeting.participant_qos"))
    document["payload"]["object"]["participant"]["user_id"] = participant
    for item in document["payload"]["object"]["participant"]["qos"]:
        item["date_time"] = f"2023-11-14T22:{minute:02d}:00Z"
    return document


def test_a_full_queue_answers_503_and_applies_nothing(
    receiver: FakeReceiver, live_factory: LiveFactory
) -> None:
    receiver.answer(*[503] * 100_000)  # the receiver is down
    live = live_factory(
        remote_write=options(receiver.url, queue_capacity=200, batch_size=200, max_backoff=0.02)
    )
    statuses = [live.post(_qos(f"p{n}", 10)).status_code for n in range(20)]
    accepted = statuses.index(503)
    assert accepted > 0 and set(statuses[:accepted]) == {200}
    assert set(statuses[accepted:]) == {503}
    refused = live.post(_qos("refused", 10))
    assert refused.status_code == 503
    assert "its queue is full" in refused.json()["error"]
    metrics = live.metrics()
    rejected = key(
        "zoom_qss_exporter_events_total",
        event="meeting.participant_qos",
        outcome="rejected_overload",
    )
    assert metrics[rejected] == len(statuses) - accepted + 1
    assert not any("refused" in dict(labels).values() for (_, labels) in metrics), "no trace"
    counted = sum(series_of(metrics, "zoom_qos_samples_total").values())
    assert metrics[key("zoom_qss_exporter_remote_write_queue_samples")] >= 200 - 60

    with receiver.lock:
        receiver.script.clear()  # the receiver is back
    wait_for(
        "the queue to drain",
        lambda: live.metrics()[key("zoom_qss_exporter_remote_write_queue_samples")] == 0 or None,
    )
    again = live.post(_qos("refused", 10))  # Zoom's redelivery
    assert again.status_code == 200 and again.json() == {"status": "accepted"}, "not a repeat"
    after = live.metrics()
    assert sum(series_of(after, "zoom_qos_samples_total").values()) > counted
    participants = {
        dict(labels)["participant_id"] for labels in series_of(after, "zoom_qos_latency_seconds")
    }
    assert "refused" in participants

    def delivered() -> set[str]:
        return {dict(labels).get("participant_id", "") for labels in receiver.accepted()}

    wait_for("delivery", lambda: "refused" in delivered() or None)
    assert delivered() == {f"p{n}" for n in range(accepted)} | {"refused"}


def test_health_metrics_pass_promtool(
    receiver: FakeReceiver, live_factory: LiveFactory, tmp_path: Path
) -> None:
    live = live_factory(
        remote_write=options(receiver.url), archive=ArchiveOptions(str(tmp_path / "archive"))
    )
    assert live.post(_qos("p", 10)).status_code == 200
    text = live.metrics_text()
    for family in (
        "zoom_qss_exporter_remote_write_queue_samples",
        "zoom_qss_exporter_remote_write_queue_capacity_samples",
        "zoom_qss_exporter_remote_write_samples_sent_total",
        "zoom_qss_exporter_remote_write_samples_failed_total",
        "zoom_qss_exporter_remote_write_samples_retried_total",
        "zoom_qss_exporter_remote_write_samples_dropped_total",
        "zoom_qss_exporter_remote_write_last_success_timestamp_seconds",
        "zoom_qss_exporter_archive_events_total",
        "zoom_qss_exporter_archive_errors_total",
    ):
        assert f"\n{family}" in text, family
    status, output = promtool_check_metrics(text)
    assert status == 0, output


def test_a_token_file_that_turns_unreadable_is_retried_until_it_is_fixed(
    receiver: FakeReceiver, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("good\n")

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url, bearer_token_file=str(token)))
        queue.start()
        token.write_bytes(b"s3cr\xe9t\n")  # rotated to text that is not UTF-8
        queue.offer([Chunk(points(10))])
        await until("a retry", lambda: queue.retried_total > 0)
        token.write_text("fixed\n")
        await until("the batch sent", lambda: queue.sent_total == 10)
        await queue.close(10)
        return queue

    queue = run(scenario)
    assert receiver.requests[-1].headers["Authorization"] == "Bearer fixed"
    assert queue.retried_total >= 10 and not any(queue.failed_total.values())


# --- retries that end, a real timeout, redeliveries -------------------------------------------


def test_a_5xx_saying_too_old_is_dropped_and_the_queue_moves_on(
    receiver: FakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Prometheus with an out-of-order window answers 500 "too old sample" for samples older
    than the window; it would answer it forever."""
    receiver.answer(500, text="too old sample")

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url))
        queue.start()
        queue.offer([Chunk(points(7), alone=True)])
        queue.offer([Chunk(points(5, start=T0 + 100))])
        await queue.close(10)
        return queue

    with caplog.at_level(logging.WARNING, "zoom_qss_exporter.remote_write"):
        queue = run(scenario)
    assert [r.samples for r in receiver.requests] == [7, 5], "never retried"
    assert queue.failed_total["too_old"] == 7 and queue.sent_total == 5
    assert "refused 7 samples with 500 (too_old, not retried)" in caplog.text


def test_a_500_is_retried_for_the_budget_then_dropped_an_unavailable_engine_forever(
    receiver: FakeReceiver,
) -> None:
    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url, retry_budget=0.3))
        queue.start()
        receiver.answer(*[500] * 10_000, text="internal error")
        queue.offer([Chunk(points(7), alone=True)])
        await until("the budget to run out", lambda: queue.queued == 0)
        attempts = receiver.count()
        with receiver.lock:
            receiver.script[:] = [(503, {}, "unavailable")] * 60  # far more than 0.3 s of them
        queue.offer([Chunk(points(5, start=T0 + 100))])
        await queue.close(30)
        assert attempts >= 2
        return queue

    queue = run(scenario)
    assert queue.failed_total["retries_exhausted"] == 7
    assert queue.sent_total == 5, "503 is retried past the budget until it is taken"
    assert [r.samples for r in receiver.requests][-1] == 5


@contextlib.contextmanager
def dripping_receiver(drip_every: float) -> Iterator[tuple[str, list[float]]]:
    """Answers the first request with a head and then one byte of its body every
    ``drip_every`` seconds (for a minute), every later one with 204 at once; yields the URL
    and the times requests arrived."""
    server = socket.create_server(("127.0.0.1", 0))
    arrivals: list[float] = []
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            while not stop.is_set():
                head = b""
                while b"\r\n\r\n" not in head:
                    data = connection.recv(65536)
                    if not data:
                        return
                    head += data
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += connection.recv(65536)
                arrivals.append(time.monotonic())
                if len(arrivals) > 1:
                    connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                    continue
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                for _ in range(int(60 / drip_every)):
                    if stop.wait(drip_every):
                        return
                    try:
                        connection.sendall(b"x")
                    except OSError:
                        return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/api/v1/write", arrivals
    finally:
        stop.set()
        server.close()


def test_a_dripping_receiver_is_abandoned_at_the_timeout_and_retried() -> None:
    """An answer trickling one byte at a time never trips an inactivity timeout; the
    request's own timeout ends it and the batch goes again."""
    with dripping_receiver(drip_every=0.1) as (url, arrivals):

        async def scenario() -> RemoteWriteQueue:
            queue = RemoteWriteQueue(options(url, timeout=1.0))
            queue.start()
            queue.offer([Chunk(points(3))])
            await until("the retry", lambda: queue.sent_total == 3, timeout=30)
            await queue.close(5)
            return queue

        queue = run(scenario)
    assert len(arrivals) == 2 and queue.retried_total == 3
    assert arrivals[1] - arrivals[0] < 30, "long before the minute of dripping ended"


def test_a_refused_redelivery_counts_as_already_present(receiver: FakeReceiver) -> None:
    receiver.answer(400, 400, text="out of order sample")

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url))
        queue.start()
        queue.offer([Chunk(points(4), alone=True, redelivery=True)])
        queue.offer([Chunk(points(3, start=T0 - 50), alone=True)])  # late, never sent before
        await queue.close(10)
        return queue

    queue = run(scenario)
    assert queue.already_present_total == 4
    assert queue.failed_total["out_of_order"] == 3


def test_with_a_log_what_a_stop_leaves_is_sent_by_the_next_start(
    receiver: FakeReceiver, tmp_path: Path
) -> None:
    """The engine is down at the stop: nothing is dropped; the next queue on the same log
    sends it, once, in order, and not what the engine had taken before."""
    wal_options = WALOptions(str(tmp_path / "wal"))

    async def first() -> RemoteWriteQueue:
        wal = WriteAheadLog(wal_options, time.time)
        wal.recover()
        queue = RemoteWriteQueue(options(receiver.url, batch_size=10), wal=wal)
        wal.start()
        queue.start()
        queue.offer([Chunk(points(10))])
        await until("the first batch", lambda: queue.sent_total == 10)
        receiver.answer(*[503] * 100_000)
        for n in range(1, 4):
            queue.offer([Chunk(points(10, start=T0 + 10 * n))])
        assert await queue.close(0.3) == 0
        wal.close()
        return queue

    queue = run(first)
    assert queue.dropped_total == 0
    with receiver.lock:
        receiver.script.clear()
        receiver.requests.clear()

    async def second() -> RemoteWriteQueue:
        wal = WriteAheadLog(wal_options, time.time)
        queue = RemoteWriteQueue(options(receiver.url, batch_size=10), wal=wal)
        queue.resume(wal.recover())
        wal.start()
        assert queue.queued == 30
        queue.start()
        await queue.close(10)
        wal.close()
        return queue

    queue = run(second)
    (samples,) = receiver.accepted().values()
    assert samples == [(round((T0 + i) * 1000), i / 1000) for i in range(10, 40)]
    assert WriteAheadLog(wal_options, time.time).recover().backlog == []


def test_samples_hours_apart_go_in_separate_requests(receiver: FakeReceiver) -> None:
    async def scenario() -> None:
        queue = RemoteWriteQueue(options(receiver.url, batch_size=1000))
        queue.start()
        queue.offer([Chunk(points(5))])
        queue.offer([Chunk(points(5, start=T0 + 600))])  # 10 minutes on: the same request
        queue.offer([Chunk(points(5, start=T0 + 7200))])  # two hours on: another
        await queue.close(10)

    run(scenario)
    assert [r.samples for r in receiver.requests] == [10, 5]
