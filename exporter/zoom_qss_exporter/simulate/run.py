"""``zoom-qss-exporter simulate``: sign and POST Zoom-like QSS traffic to a running exporter.

The demo, the end-to-end tests and the benchmarks need realistic load without a Zoom account.
The events come from :mod:`zoom_qss_exporter.simulate.events`; this module paces, signs and
sends them, and reports what the exporter answered.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import heapq
import itertools
import json
import math
import os
import random
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from zoom_qss_exporter.flags import TOKEN_ENV, first_token
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.simulate.events import Event, Fleet

DEFAULT_TARGET = "http://127.0.0.1:9981/webhook"
TARGET_ENV = "ZOOM_QSS_SIMULATE_TARGET"
REQUEST_TIMEOUT = 10.0  # seconds; Zoom itself gives up after 3
KEEPALIVE_EXPIRY = 2.0  # seconds an idle connection is kept for reuse
PROGRESS_EVERY = 5.0  # seconds between progress lines
# Timers fire a millisecond or so late; missed send slots up to this many seconds old are
# caught up, so high rates are reached, while idle time earns no burst.
RATE_SLACK = 0.01


@dataclass(frozen=True)
class SimulationConfig:
    secret_token: str
    target: str = DEFAULT_TARGET
    meetings: int = 3  # instances, round-robin over meeting, webinar, session
    participants: int = 4  # per instance
    phone_calls: int = 2
    rate: float = 50.0  # events per second, at most
    duration: float = 30.0  # seconds; 0: until count or Ctrl-C
    count: int = 0  # events; 0: unlimited
    interval: float = 60.0  # seconds between QoS rounds of one participant or call
    degraded_share: float = 0.25
    churn: float = 0.05  # chance per round that a participant leaves or a call ends
    seed: int | None = None  # None: a random one, shown in the report
    concurrency: int = 16  # requests in flight, at most
    manifest: Path | None = None

    def __post_init__(self) -> None:
        problems = [text for ok, text in self._checks() if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    def _checks(self) -> list[tuple[bool, str]]:
        try:
            url = httpx.URL(self.target)
            web = url.scheme in ("http", "https") and bool(url.host)
        except httpx.InvalidURL:
            web = False
        return [
            (bool(self.secret_token), f"no secret token: pass --secret-token or set {TOKEN_ENV}"),
            (web, f"--target must be an http(s) URL, not {self.target!r}"),
            (min(self.meetings, self.phone_calls) >= 0, "--meetings/--phone-calls below 0"),
            (self.meetings + self.phone_calls > 0, "nothing to simulate: no meetings, no calls"),
            (self.participants >= 1, "--participants must be at least 1"),
            (0 < self.rate < math.inf, "--rate must be a positive number"),
            (0 <= self.duration < math.inf and self.count >= 0, "--duration/--count below 0"),
            # date_time has second resolution: two rounds in one second look like a redelivery.
            (1 <= self.interval < math.inf, "--interval must be at least 1 second"),
            (0 <= self.degraded_share <= 1, "--degraded-share must be between 0 and 1"),
            (0 <= self.churn <= 1, "--churn must be between 0 and 1"),
            (self.concurrency >= 1, "--concurrency must be at least 1"),
            (not self.manifest or self.manifest.parent.is_dir(), "--manifest: no such directory"),
        ]


@dataclass
class SimulationReport:
    seed: int
    sent: Counter[str] = field(default_factory=Counter)  # by event name
    responses: Counter[int] = field(default_factory=Counter)  # by HTTP status
    errors: Counter[str] = field(default_factory=Counter)  # transport errors, by exception
    elapsed: float = 0.0  # seconds
    first_failure: str | None = None  # why, for the first non-2xx answer or transport error

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def ok(self) -> bool:
        """Every event was answered, and with 2xx."""
        return not self.errors and all(200 <= status < 300 for status in self.responses)

    def progress_line(self, elapsed: float) -> str:
        answered = sum(self.responses.values())
        good = sum(n for status, n in self.responses.items() if 200 <= status < 300)
        return (
            f"simulate: {elapsed:5.1f}s sent={self.total} ({self.total / max(elapsed, 1e-9):.1f}/s)"
            f" 2xx={good} other={answered - good} errors={sum(self.errors.values())}"
        )

    def render(self) -> str:
        lines = [
            f"sent {self.total} events in {self.elapsed:.2f}s (seed {self.seed})",
            "events sent:",
            *(f"  {name:<34} {n:>8}" for name, n in sorted(self.sent.items())),
            "responses:",
            *(f"  {status:<34} {n:>8}" for status, n in sorted(self.responses.items())),
            f"transport errors: {sum(self.errors.values())}",
            *(f"  {kind:<34} {n:>8}" for kind, n in sorted(self.errors.items())),
        ]
        if self.first_failure:
            lines.append(f"first failure: {self.first_failure}")
        return "\n".join(lines)


class _Simulation:
    """One run; the report lives here so that an interrupted run can still be reported."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
        self.fleet = Fleet(
            seed,
            meetings=config.meetings,
            participants=config.participants,
            phone_calls=config.phone_calls,
            degraded_share=config.degraded_share,
            churn=config.churn,
        )
        self.report = SimulationReport(seed=seed)

    async def run(self, progress: Callable[[str], None] | None = None) -> SimulationReport:
        start = time.monotonic()
        ticker = asyncio.create_task(self._tick(progress, start)) if progress else None
        try:
            # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout: at
            # the same 5 s (httpx's default) a reused connection can meet the server's close.
            limits = httpx.Limits(
                max_connections=self.config.concurrency, keepalive_expiry=KEEPALIVE_EXPIRY
            )
            async with (
                httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client,
                asyncio.TaskGroup() as tasks,
            ):
                await self._pump(client, tasks, start)
        finally:
            if ticker:
                ticker.cancel()
            self.report.elapsed = time.monotonic() - start
            if self.config.manifest:
                manifest = {"seed": self.report.seed, **self.fleet.manifest()}
                self.config.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        return self.report

    async def _pump(
        self, client: httpx.AsyncClient, tasks: asyncio.TaskGroup, start: float
    ) -> None:
        """Step turns as they fall due and send their events, paced to ``rate``.

        A turn is stepped only when nothing is waiting, so each event is built just before it
        is sent: its ``date_time`` is the send time even when the rate limit holds things up.
        """
        cfg = self.config
        deadline = start + cfg.duration if cfg.duration else math.inf
        limit = cfg.count or math.inf
        slots = asyncio.Semaphore(cfg.concurrency)
        order = itertools.count()  # tie-breaker: turns do not compare
        # Everyone's first round is due at once, so a short run shows every participant; the
        # rate limit spreads them out, and each next round is due one interval after the last.
        schedule = [(start, next(order), turn) for turn in self.fleet.turns()]
        pending: deque[Event] = deque(self.fleet.join_events(time.time()))
        next_slot, sent = start, 0
        while sent < limit:
            if not pending:
                due, _, turn = heapq.heappop(schedule)
                if due >= deadline:
                    await _sleep_until(deadline)  # --duration is how long the run lasts
                    break
                await _sleep_until(due)
                events, following = self.fleet.step(turn, time.time())
                pending.extend(events)
                for later in following:
                    heapq.heappush(schedule, (time.monotonic() + cfg.interval, next(order), later))
                continue
            next_slot = max(next_slot, time.monotonic() - RATE_SLACK)
            if next_slot >= deadline:
                break
            await _sleep_until(next_slot)
            next_slot += 1 / cfg.rate
            await slots.acquire()
            event = pending.popleft()
            self.report.sent[event["event"]] += 1
            sent += 1
            tasks.create_task(self._send(client, event, slots))

    async def _send(
        self, client: httpx.AsyncClient, event: Event, slots: asyncio.Semaphore
    ) -> None:
        try:
            body = json.dumps(event).encode()
            headers = {
                **sign_headers(self.config.secret_token, int(time.time()), body),
                "content-type": "application/json",
                "user-agent": "Zoom Marketplace/1.0a",
                "x-zm-request-id": str(uuid.uuid4()),
            }
            try:
                response = await client.post(self.config.target, content=body, headers=headers)
            except httpx.HTTPError as exc:  # counted, not fatal: the exporter may be restarting
                self.report.errors[type(exc).__name__] += 1
                self._failed(f"{event['event']}: {type(exc).__name__}: {exc}")
                return
            self.report.responses[response.status_code] += 1
            if not response.is_success:
                self._failed(f"{event['event']}: HTTP {response.status_code} {response.text[:200]}")
        finally:
            slots.release()

    def _failed(self, why: str) -> None:
        if self.report.first_failure is None:
            self.report.first_failure = why

    async def _tick(self, progress: Callable[[str], None], start: float) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            progress(self.report.progress_line(time.monotonic() - start))


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def simulate(
    config: SimulationConfig, progress: Callable[[str], None] | None = None
) -> SimulationReport:
    """Run one simulation in the current event loop; ``progress`` gets a line every 5 s."""
    return await _Simulation(config).run(progress)


# Options besides --target and --secret-token: (type, help); their defaults are the config's.
_OPTIONS: dict[str, tuple[Callable[[str], object], str]] = {
    "meetings": (int, "concurrent instances, round-robin over meeting, webinar and session"),
    "participants": (int, "participants per instance"),
    "phone_calls": (int, "concurrent phone calls"),
    "rate": (float, "events per second, at most"),
    "duration": (float, "seconds to run; 0: until --count or Ctrl-C"),
    "count": (int, "events to send, at most; 0: no limit"),
    "interval": (float, "seconds between QoS rounds of a participant or call, at least 1"),
    "degraded_share": (float, "share of participants and calls on a bad network, 0..1"),
    "churn": (float, "chance per round that a participant leaves or a call ends"),
    "seed": (int, "random seed, for a repeatable run (default: random)"),
    "concurrency": (int, "requests in flight, at most"),
    "manifest": (Path, "write the instances, participants and calls, degraded or not, as JSON"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument(
        "--target",
        default=env.get(TARGET_ENV) or DEFAULT_TARGET,
        help=f"URL of the exporter's webhook (env {TARGET_ENV}; default %(default)s)",
    )
    parser.add_argument(  # no %(default)s: --help must not show the secret
        "--secret-token",
        default=first_token(env) or None,
        help=f"secret token to sign with (default: the first entry of {TOKEN_ENV})",
    )
    defaults = {f.name: f.default for f in dataclasses.fields(SimulationConfig)}
    for name, (kind, text) in _OPTIONS.items():
        default = defaults[name]
        shown = "" if default is None else f" (default {default})"
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=default, help=text + shown)


def run(args: argparse.Namespace) -> int:
    """Run from parsed arguments: 0 if every event got a 2xx answer, 1 if not, 2 on bad options."""
    try:
        config = SimulationConfig(
            secret_token=args.secret_token or "",
            target=args.target,
            **{name: getattr(args, name) for name in _OPTIONS},
        )
    except ValueError as exc:
        print(f"zoom-qss-exporter simulate: error: {exc}", file=sys.stderr)
        return 2
    simulation = _Simulation(config)
    try:
        asyncio.run(simulation.run(functools.partial(print, flush=True)))
    except KeyboardInterrupt:
        print("simulate: interrupted", file=sys.stderr)
    print(simulation.report.render(), flush=True)
    return 0 if simulation.report.ok else 1
