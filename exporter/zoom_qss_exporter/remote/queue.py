"""The remote-write queue: bounded, batched, retried, drained on shutdown.

Backpressure instead of loss. The queue is bounded in samples, and a sample counts against
the bound from the moment it is offered until the receiver has answered for it (2xx, or a 4xx
that no retry would change). :meth:`RemoteWriteQueue.offer` refuses what does not fit, and the
webhook then answers 503 so that Zoom delivers the event again later: every event answered 2xx
is either delivered or still here. 5xx, 429 and transport errors are retried without limit
(exponential backoff with jitter, ``Retry-After`` honoured up to the maximum backoff): giving
up would lose accepted data, and a full queue already pushes back on Zoom.

Retries end where retrying cannot help: a 5xx that says the samples are too old (Prometheus'
500 for samples older than its out-of-order window), and any other 5xx but 502, 503 and 504
once the batch has been retried for ``retry_budget`` seconds: those samples are dropped and
counted by reason, and the queue moves on. 429, 502, 503, 504 and transport errors (an engine
that is down or pushing back) are retried without limit. Each request, answer included, ends
within ``timeout`` seconds, however slowly the receiver trickles its bytes.

One sender sends one batch at a time, oldest first, so the samples of each series reach the
receiver in the order they were offered. A chunk marked ``alone`` (samples older than what was
already sent for their series) is sent in a request of its own: a receiver that refuses it
(Prometheus without an out-of-order window refuses the *whole* request) then loses only it.
A refused ``redelivery`` chunk (Zoom sent its samples before, and they were queued then) is
counted as already present, not as a failure.

With a write-ahead log (:mod:`.wal`), every offer is written to it first and refused
if it cannot be; each batch answered for moves the log's checkpoint on; what a stop leaves
queued stays in the log, and the next start queues it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import httpx
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zoom_qss_exporter.remote.client import (
    UNAVAILABLE,
    RemoteWriteError,
    RemoteWriteOptions,
    failure_reason,
    hopeless,
    new_client,
    retry_after,
)
from zoom_qss_exporter.remote.protocol import Point, encode
from zoom_qss_exporter.remote.wal import Position, Recovered, WALError, WriteAheadLog

log = logging.getLogger("zoom_qss_exporter.remote_write")

FAILURE_REASONS = (
    "out_of_order",
    "too_old",
    "duplicate_timestamp",
    "unauthorized",
    "rejected",
    "unencodable",
    "retries_exhausted",
)
# Refusals that, for a redelivery, say the engine has the samples already.
_ALREADY_PRESENT = frozenset(("out_of_order", "duplicate_timestamp", "too_old"))


class Chunk(NamedTuple):
    points: list[Point]
    alone: bool = False  # send in a request of its own
    redelivery: bool = False  # every item in it was queued before (Zoom sent it again)
    position: Position | None = None  # where its event ends in the log, on its last chunk


class _Retry(NamedTuple):
    delay: float  # the least wait before the next attempt
    budgeted: bool  # counts against the retry budget (a 500, not an unavailable engine)


class RemoteWriteQueue(Collector):
    """Chunks of points waiting to be sent, and the task that sends them."""

    def __init__(
        self,
        options: RemoteWriteOptions,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        wal: WriteAheadLog | None = None,
    ) -> None:
        self.options = options
        self.wal = wal
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._chunks: deque[tuple[float, Chunk]] = deque()  # (monotonic time offered, chunk)
        self.queued = 0  # samples offered and not yet answered for (waiting or in flight)
        self._waiting = 0  # of those, not yet taken into a batch
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent_total = 0
        self.retried_total = 0
        self.failed_total = dict.fromkeys(FAILURE_REASONS, 0)
        self.dropped_total = 0
        self.already_present_total = 0
        self.last_success = 0.0
        self.last_error = ""  # the last failed attempt, for the status page
        if wal is not None:
            wal.counters_source = self._lasting_counters

    # --- offering ---------------------------------------------------------------------------

    def has_room(self, samples: int) -> bool:
        """Whether ``samples`` more fit; an empty queue takes any one offer, so that an event
        larger than the whole queue is not refused forever."""
        if self._closing.is_set():
            return False
        return self.queued == 0 or self.queued + samples <= self.options.queue_capacity

    def offer(self, chunks: Sequence[Chunk]) -> bool:
        """Queue all of ``chunks`` or nothing (nothing when the log cannot take them)."""
        samples = sum(len(chunk.points) for chunk in chunks)
        if not self.has_room(samples):
            return False
        kept = [chunk for chunk in chunks if chunk.points]
        if self.wal is not None and kept:  # a record no batch would answer for is never logged
            try:
                position = self.wal.append([(chunk.alone, chunk.points) for chunk in kept])
            except WALError as error:
                log.error("remote write: %s: the event is refused (503)", error)
                return False
            chunks = [*kept[:-1], kept[-1]._replace(position=position)]
        now = time.monotonic()
        for chunk in chunks:
            if chunk.points:
                self._chunks.append((now, chunk))
        self.queued += samples
        self._waiting += samples
        if self._waiting >= self.options.batch_size or self._waiting == samples:
            self._wakeup.set()
        return True

    def resume(self, recovered: Recovered) -> None:
        """Queue what an earlier process left unanswered in the log, ahead of anything new,
        whatever the capacity (it held them); take over its loss counters."""
        counters = recovered.counters
        for reason, count in dict(counters.get("failed", {})).items():
            if reason in self.failed_total:
                self.failed_total[reason] += int(count)
        self.dropped_total += int(counters.get("dropped", 0))
        self.already_present_total += int(counters.get("already_present", 0))
        now = time.monotonic()
        samples = 0
        for position, chunks in recovered.backlog:
            kept = [Chunk(points, alone) for alone, points in chunks if points]
            if kept:
                kept[-1] = kept[-1]._replace(position=position)
            for chunk in kept:
                self._chunks.append((now, chunk))
                samples += len(chunk.points)
        self.queued += samples
        self._waiting += samples
        if samples:
            self._wakeup.set()

    def _lasting_counters(self) -> dict[str, object]:
        """What the log's checkpoint keeps across restarts: what was lost, and why."""
        return {
            "failed": dict(self.failed_total),
            "dropped": self.dropped_total,
            "already_present": self.already_present_total,
        }

    async def wait_for_room(self) -> None:
        """Until some samples were answered for (for callers that wait instead of refusing);
        raises if the sender has stopped, since then no room would ever come."""
        self._room.clear()
        waiter = asyncio.ensure_future(self._room.wait())
        others = {self._task} if self._task is not None else set()
        await asyncio.wait({waiter, *others}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task is None or self._task.done():
            raise RemoteWriteError("the remote-write sender is not running")

    # --- running ----------------------------------------------------------------------------

    def start(self) -> None:
        # httpx logs every request at INFO, URL and all (user info included): one line per
        # batch is noise, and that URL may hold a credential. Our own lines say what matters.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
        self._task = asyncio.create_task(self._run(), name="remote-write")

    async def close(self, timeout: float | None = None) -> int:
        """Refuse new offers, send what is queued without waiting for full batches, and stop;
        past ``timeout`` seconds give up and count what is left as dropped. Returns that."""
        self._closing.set()
        self._wakeup.set()
        if self._task is None:
            self.start()
        assert self._task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            left = self.queued  # in flight included: no answer, so not known delivered
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.queued = self._waiting = 0
            self._chunks.clear()
            if self.wal is not None:
                log.warning(
                    "remote write: %d samples still queued after the %gs shutdown timeout "
                    "stay in the log (%s): the next start sends them",
                    left,
                    timeout or 0,
                    self.wal.directory,
                )
                return 0
            self.dropped_total += left
            log.error(
                "remote write: %d samples still queued after the %gs shutdown timeout were "
                "dropped (no write-ahead log: --no-remote-write.wal)",
                left,
                timeout or 0,
            )
            return left
        return 0

    async def _run(self) -> None:
        async with new_client(self.options) as client:
            while True:
                batch = await self._next_batch()
                if batch is None:
                    return
                await self._send(client, batch)

    async def _next_batch(self) -> list[Chunk] | None:
        """Wait until a batch is due: ``batch_size`` samples waiting, the oldest waiting for
        ``flush_interval``, or closing; ``None`` once closed and empty."""
        o = self.options
        while True:
            closing = self._closing.is_set()
            if not self._chunks:
                if closing:
                    return None
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            due = self._chunks[0][0] + o.flush_interval - time.monotonic()
            if closing or self._waiting >= o.batch_size or due <= 0 or self._chunks[0][1].alone:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), due)
        batch: list[Chunk] = []
        size = 0
        while self._chunks and size < o.batch_size:
            offered, chunk = self._chunks[0]
            if batch and (chunk.alone or batch[0].alone or _apart(batch[0], chunk)):
                break
            room = o.batch_size - size
            if len(chunk.points) > room and not chunk.alone:  # the rest goes in the next batch
                self._chunks[0] = (offered, chunk._replace(points=chunk.points[room:]))
                chunk = chunk._replace(points=chunk.points[:room], position=None)
            else:
                self._chunks.popleft()
            batch.append(chunk)
            size += len(chunk.points)
        self._waiting -= size
        return batch

    async def _send(self, client: httpx.AsyncClient, batch: list[Chunk]) -> None:
        points = [point for chunk in batch for point in chunk.points]
        size = len(points)
        attempt = 0
        failing_since: float | None = None  # the first answer that counts against the budget
        answered = False
        try:
            try:
                body = await asyncio.to_thread(encode, points)  # ~10 ms per 2000 series
            except (ValueError, TypeError) as error:  # a bug, not the receiver's doing
                self.failed_total["unencodable"] += size
                log.error("remote write: cannot encode %d samples: %s", size, error)
                answered = True
                return
            redelivery = all(chunk.redelivery for chunk in batch)
            while True:
                retry = await self._attempt(client, body, size, redelivery)
                if retry is None:
                    answered = True
                    return
                if retry.budgeted:
                    now = time.monotonic()
                    failing_since = now if failing_since is None else failing_since
                    if now - failing_since >= self.options.retry_budget:
                        self.failed_total["retries_exhausted"] += size
                        log.error(
                            "remote write: %d samples dropped: the receiver kept failing for "
                            "%gs (--remote-write.retry-budget)",
                            size,
                            self.options.retry_budget,
                            extra={"samples": size, "reason": "retries_exhausted"},
                        )
                        answered = True
                        return
                self.retried_total += size
                backoff = min(self.options.max_backoff, self.options.min_backoff * 2**attempt)
                backoff *= self._rng.uniform(0.5, 1.0)  # jitter: replicas do not retry in step
                attempt += 1
                if self._closing.is_set():  # the shutdown timeout is the limit now
                    backoff = min(backoff, self.options.min_backoff)
                await asyncio.sleep(max(backoff, retry.delay))
        finally:
            self.queued -= size
            self._room.set()
            if answered and self.wal is not None:
                positions = [chunk.position for chunk in batch if chunk.position is not None]
                if positions:
                    self.wal.confirm(max(positions))

    async def _attempt(
        self, client: httpx.AsyncClient, body: bytes, size: int, redelivery: bool
    ) -> _Retry | None:
        """One request, answer included, within the timeout; ``None`` when done with this
        batch."""
        try:
            async with asyncio.timeout(self.options.timeout):
                response = await client.post(self.options.url, content=body)
                text = (await response.aread())[:300].decode("utf-8", "replace").strip()
        except TimeoutError:
            self.last_error = f"no complete answer within {self.options.timeout:g}s"
            log.warning("remote write: %s (%d samples will be retried)", self.last_error, size)
            return _Retry(0.0, False)
        except (httpx.TransportError, RemoteWriteError) as error:
            self.last_error = _describe(error)
            log.warning("remote write: %s (%d samples will be retried)", self.last_error, size)
            return _Retry(0.0, False)
        except Exception:  # a garbled answer (httpx.DecodingError), or a bug: never the end
            # of the sender, which would leave the queue filling with nothing sent
            log.exception("remote write: unexpected error (%d samples will be retried)", size)
            return _Retry(0.0, True)
        status = response.status_code
        if not 200 <= status < 300:
            self.last_error = f"{status} {text}"[:200]
        if 200 <= status < 300:
            self.sent_total += size
            self.last_success = self._wall_clock()
            return None
        if status == 429 or (status >= 500 and not hopeless(status, text)):
            log.warning(
                "remote write: receiver answered %d (%d samples will be retried): %s",
                status,
                size,
                text,
            )
            budgeted = status != 429 and status not in UNAVAILABLE
            return _Retry(retry_after(response, self.options.max_backoff), budgeted)
        reason = failure_reason(status, text)
        if redelivery and reason in _ALREADY_PRESENT:
            self.already_present_total += size
            log.debug("remote write: %d redelivered samples were already present", size)
            return None
        self.failed_total[reason] += size
        log.warning(
            "remote write: receiver refused %d samples with %d (%s, not retried): %s",
            size,
            status,
            reason,
            text,
            extra={"samples": size, "status": status, "reason": reason},
        )
        return None

    # --- health -----------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        prefix = "zoom_qss_exporter_remote_write_"
        yield GaugeMetricFamily(
            prefix + "queue_samples",
            "Samples accepted for remote write and not yet answered for by the receiver.",
            value=self.queued,
        )
        yield GaugeMetricFamily(
            prefix + "queue_capacity_samples",
            "--remote-write.queue-capacity: past it the webhook answers 503.",
            value=self.options.queue_capacity,
        )
        yield CounterMetricFamily(
            prefix + "samples_sent", "Samples the receiver accepted (2xx).", value=self.sent_total
        )
        failed = CounterMetricFamily(
            prefix + "samples_failed",
            "Samples lost: refused by the receiver (a 4xx other than 429, a 5xx saying they "
            "are too old) or dropped after --remote-write.retry-budget, by reason.",
            labels=["reason"],
        )
        for reason, count in self.failed_total.items():
            failed.add_metric([reason], count)
        yield failed
        yield CounterMetricFamily(
            prefix + "samples_retried",
            "Samples sent again after a 5xx, a 429 or a transport error (once per retry).",
            value=self.retried_total,
        )
        yield CounterMetricFamily(
            prefix + "samples_dropped",
            "Samples still queued when the shutdown timeout ran out, without a write-ahead log.",
            value=self.dropped_total,
        )
        yield CounterMetricFamily(
            prefix + "samples_already_present",
            "Samples of Zoom's redeliveries that the receiver refused because it had them "
            "already (not a loss).",
            value=self.already_present_total,
        )
        yield GaugeMetricFamily(
            prefix + "last_success_timestamp_seconds",
            "When the receiver last accepted a request (Unix seconds; 0: never).",
            value=self.last_success,
        )


# Samples further apart than this go in separate requests: an engine refuses a whole request
# for samples older than it takes (Prometheus: its head's hour and out-of-order window), so a
# backfill reaching back hours loses only its too-old requests, not the newer samples with them.
SPAN = 30 * 60.0


def _apart(first: Chunk, chunk: Chunk) -> bool:
    return abs(chunk.points[0].timestamp - first.points[0].timestamp) > SPAN


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
