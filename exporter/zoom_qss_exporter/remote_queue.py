"""The remote-write queue: bounded, batched, retried, drained on shutdown.

Backpressure instead of loss. The queue is bounded in samples, and a sample counts against
the bound from the moment it is offered until the receiver has answered for it (2xx, or a 4xx
that no retry would change). :meth:`RemoteWriteQueue.offer` refuses what does not fit, and the
webhook then answers 503 so that Zoom delivers the event again later: every event answered 2xx
is either delivered or still here. 5xx, 429 and transport errors are retried without limit
(exponential backoff with jitter, ``Retry-After`` honoured up to the maximum backoff): giving
up would lose accepted data, and a full queue already pushes back on Zoom.

One sender sends one batch at a time, oldest first, so the samples of each series reach the
receiver in the order they were offered. A chunk marked ``alone`` (samples older than what was
already sent for their series) is sent in a request of its own: a receiver that refuses it
(Prometheus without an out-of-order window refuses the *whole* request) then loses only it.
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

from .remote_client import (
    RemoteWriteError,
    RemoteWriteOptions,
    failure_reason,
    new_client,
    retry_after,
)
from .remote_write import Point, encode

log = logging.getLogger("zoom_qss_exporter.remote_write")

FAILURE_REASONS = (
    "out_of_order",
    "too_old",
    "duplicate_timestamp",
    "unauthorized",
    "rejected",
    "unencodable",
)


class Chunk(NamedTuple):
    points: list[Point]
    alone: bool = False  # send in a request of its own


class RemoteWriteQueue(Collector):
    """Chunks of points waiting to be sent, and the task that sends them."""

    def __init__(
        self,
        options: RemoteWriteOptions,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
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
        self.last_success = 0.0

    # --- offering ---------------------------------------------------------------------------

    def has_room(self, samples: int) -> bool:
        """Whether ``samples`` more fit; an empty queue takes any one offer, so that an event
        larger than the whole queue is not refused forever."""
        if self._closing.is_set():
            return False
        return self.queued == 0 or self.queued + samples <= self.options.queue_capacity

    def offer(self, chunks: Sequence[Chunk]) -> bool:
        """Queue all of ``chunks`` or nothing."""
        samples = sum(len(chunk.points) for chunk in chunks)
        if not self.has_room(samples):
            return False
        now = time.monotonic()
        for chunk in chunks:
            if chunk.points:
                self._chunks.append((now, chunk))
        self.queued += samples
        self._waiting += samples
        if self._waiting >= self.options.batch_size or self._waiting == samples:
            self._wakeup.set()
        return True

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
            dropped = self.queued  # in flight included: no answer, so not known delivered
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.dropped_total += dropped
            self.queued = self._waiting = 0
            self._chunks.clear()
            log.error(
                "remote write: %d samples still queued after the %gs shutdown timeout were "
                "dropped; the archive (--archive.directory) holds their events for "
                "`zoom-qss-exporter replay`",
                dropped,
                timeout or 0,
            )
            return dropped
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
            if batch and (chunk.alone or batch[0].alone):
                break
            room = o.batch_size - size
            if len(chunk.points) > room and not chunk.alone:  # the rest goes in the next batch
                self._chunks[0] = (offered, Chunk(chunk.points[room:]))
                chunk = Chunk(chunk.points[:room])
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
        try:
            try:
                body = await asyncio.to_thread(encode, points)  # ~10 ms per 2000 series
            except (ValueError, TypeError) as error:  # a bug, not the receiver's doing
                self.failed_total["unencodable"] += size
                log.error("remote write: cannot encode %d samples: %s", size, error)
                return
            while True:
                delay = await self._attempt(client, body, size)
                if delay is None:
                    return
                self.retried_total += size
                backoff = min(self.options.max_backoff, self.options.min_backoff * 2**attempt)
                backoff *= self._rng.uniform(0.5, 1.0)  # jitter: replicas do not retry in step
                attempt += 1
                if self._closing.is_set():  # the shutdown timeout is the limit now
                    backoff = min(backoff, self.options.min_backoff)
                await asyncio.sleep(max(backoff, delay))
        finally:
            self.queued -= size
            self._room.set()

    async def _attempt(self, client: httpx.AsyncClient, body: bytes, size: int) -> float | None:
        """One request; ``None`` when done with this batch, else the least delay to retry."""
        try:
            response = await client.post(self.options.url, content=body)
        except (httpx.TransportError, RemoteWriteError) as error:
            log.warning("remote write: %s (%d samples will be retried)", _describe(error), size)
            return 0.0
        except Exception:  # a garbled answer (httpx.DecodingError), or a bug: never the end
            # of the sender, which would leave the queue filling with nothing sent
            log.exception("remote write: unexpected error (%d samples will be retried)", size)
            return 0.0
        status = response.status_code
        if 200 <= status < 300:
            self.sent_total += size
            self.last_success = self._wall_clock()
            return None
        text = response.text[:300].strip()
        if status == 429 or status >= 500:
            log.warning(
                "remote write: receiver answered %d (%d samples will be retried): %s",
                status,
                size,
                text,
            )
            return retry_after(response, self.options.max_backoff)
        reason = failure_reason(status, text)
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
            "Samples the receiver refused with a 4xx other than 429 (not retried), by reason.",
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
            "Samples still queued when the shutdown timeout ran out.",
            value=self.dropped_total,
        )
        yield GaugeMetricFamily(
            prefix + "last_success_timestamp_seconds",
            "When the receiver last accepted a request (Unix seconds; 0: never).",
            value=self.last_success,
        )


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
