"""``zoom-qss-exporter simulate``: sign and POST Zoom-like QSS traffic to a running exporter.

The demo, the end-to-end tests and the benchmarks need realistic load without a Zoom account.
The events come from :mod:`zoom_qss_exporter.simulate.events`; this module paces, signs and
sends them (and sends some per-minute QoS events again, as Zoom does), and reports what the
exporter answered and how many stream-minutes it was given, each counted once.
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
from typing import Any

import httpx

from zoom_qss_exporter.flags import TOKEN_ENV, first_token
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.simulate.events import (
    CAUSES,
    CPU_STARVED_VERSION,
    GOOD,
    LATENCY_SHARE,
    SITES,
    VERSIONS,
    WEAK_WIFI_SITE,
    Event,
    Fleet,
    Turn,
    sites_yaml,
    stream_minutes,
)

DEFAULT_TARGET = "http://127.0.0.1:9981/webhook"
TARGET_ENV = "ZOOM_QSS_SIMULATE_TARGET"
SITES_FILE_ENV = "ZOOM_QSS_SIMULATE_SITES_FILE"
REQUEST_TIMEOUT = 10.0  # seconds; Zoom itself gives up after 3
KEEPALIVE_EXPIRY = 2.0  # seconds an idle connection is kept for reuse
PROGRESS_EVERY = 5.0  # seconds between progress lines
# Timers fire a millisecond or so late; missed send slots up to this many seconds old are
# caught up, so high rates are reached, while idle time earns no burst.
RATE_SLACK = 0.01
# A redelivery follows its event by this many seconds: Zoom sends an event again when it did
# not see the answer in time, and now and then for no visible reason.
REDELIVERY_DELAY = (1.0, 5.0)


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
    accounts: int = 1  # instances and calls go round them
    weak_wifi_site: str = WEAK_WIFI_SITE  # "": none
    cpu_starved_version: str = CPU_STARVED_VERSION  # "": none
    latency_share: float = LATENCY_SHARE  # of the degraded_share participants
    redeliver_share: float = 0.0  # chance that a per-minute QoS event is sent again
    seed: int | None = None  # None: a random one, shown in the report
    concurrency: int = 16  # requests in flight, at most
    manifest: Path | None = None
    sites_file: Path | None = None  # written at the start
    sites_only: bool = False  # write sites_file, send nothing

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
        sites = [site.name for site in SITES]
        return [
            (
                bool(self.secret_token) or self.sites_only,
                f"no secret token: pass --secret-token or set {TOKEN_ENV}",
            ),
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
            (self.accounts >= 1, "--accounts must be at least 1"),
            (
                self.weak_wifi_site in ("", *sites),
                f"--weak-wifi-site must be empty or one of {', '.join(sites)}",
            ),
            (
                self.cpu_starved_version in ("", *VERSIONS),
                f"--cpu-starved-version must be empty or one of {', '.join(VERSIONS)}",
            ),
            (0 <= self.latency_share <= 1, "--latency-share must be between 0 and 1"),
            (0 <= self.redeliver_share <= 1, "--redeliver-share must be between 0 and 1"),
            (self.concurrency >= 1, "--concurrency must be at least 1"),
            (not self.manifest or self.manifest.parent.is_dir(), "--manifest: no such directory"),
            (
                not self.sites_file or self.sites_file.parent.is_dir(),
                "--sites-file: no such directory",
            ),
            (bool(self.sites_file) or not self.sites_only, "--sites-only needs --sites-file"),
        ]


@dataclass
class SimulationReport:
    seed: int
    sent: Counter[str] = field(default_factory=Counter)  # by event name, redeliveries too
    responses: Counter[int] = field(default_factory=Counter)  # by HTTP status
    errors: Counter[str] = field(default_factory=Counter)  # transport errors, by exception
    elapsed: float = 0.0  # seconds
    first_failure: str | None = None  # why, for the first non-2xx answer or transport error
    # Stream-minutes (events.stream_minutes) of the per-minute QoS events answered 2xx, each
    # event counted once however often it was delivered: by cause ("good": not poor), and by
    # participant or call id.
    stream_minutes: Counter[str] = field(default_factory=Counter)
    stream_minutes_by_owner: Counter[str] = field(default_factory=Counter)
    # Redeliveries answered 2xx (also in sent and responses), by event name, and the
    # stream-minutes they carried again (not in stream_minutes).
    redelivered: Counter[str] = field(default_factory=Counter)
    redelivered_stream_minutes: int = 0

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
            f"stream-minutes delivered (each once): {sum(self.stream_minutes.values())}",
            *(f"  {cause:<34} {n:>8}" for cause, n in self._by_cause()),
            f"redeliveries answered 2xx: {sum(self.redelivered.values())} events,"
            f" {self.redelivered_stream_minutes} stream-minutes (not counted again above)",
        ]
        if self.first_failure:
            lines.append(f"first failure: {self.first_failure}")
        return "\n".join(lines)

    def _by_cause(self) -> list[tuple[str, int]]:
        order = [GOOD, *CAUSES]
        return sorted(self.stream_minutes.items(), key=lambda item: order.index(item[0]))

    def totals(self) -> dict[str, Any]:
        """The manifest's ``stream_minutes``."""
        return {
            "delivered": sum(self.stream_minutes.values()),
            "by_cause": dict(self._by_cause()),
            "redelivered_events": sum(self.redelivered.values()),
            "redelivered": self.redelivered_stream_minutes,
        }


@dataclass
class _Minutes:
    """The stream-minutes of one per-minute QoS event: counted at its first 2xx answer."""

    owner: str  # participant or call id
    count: int
    cause: str  # the owner's, or GOOD
    counted: bool = False


@dataclass
class _Delivery:
    """One POST to make: an event, its body (a redelivery's is the same bytes), and its
    stream-minutes, shared with its redeliveries."""

    event: Event
    minutes: _Minutes | None
    body: bytes = b""
    redelivery: bool = False


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
            accounts=config.accounts,
            weak_wifi_site=config.weak_wifi_site,
            cpu_starved_version=config.cpu_starved_version,
            latency_share=config.latency_share,
        )
        # Its own generator: redeliveries on or off, the fleet's events are the same.
        self.redeliveries = random.Random(f"redeliver-{seed}")
        self.report = SimulationReport(seed=seed)

    async def run(self, progress: Callable[[str], None] | None = None) -> SimulationReport:
        if self.config.sites_file:
            write_sites(self.config.sites_file)
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
                manifest = {
                    "seed": self.report.seed,
                    **self.fleet.manifest(self.report.stream_minutes_by_owner),
                    "stream_minutes": self.report.totals(),
                }
                self.config.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        return self.report

    def _delivery(self, event: Event) -> _Delivery:
        owner, count = stream_minutes(event)
        if not count:
            return _Delivery(event, None)
        return _Delivery(event, _Minutes(owner, count, self.fleet.causes[owner] or GOOD))

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
        order = itertools.count()  # tie-breaker: turns and deliveries do not compare
        # Everyone's first round is due at once, so a short run shows every participant; the
        # rate limit spreads them out, and each next round is due one interval after the last.
        # Redeliveries wait here too, due a few seconds after their event.
        schedule: list[tuple[float, int, Turn | _Delivery]] = [
            (start, next(order), turn) for turn in self.fleet.turns()
        ]
        pending = deque(map(self._delivery, self.fleet.join_events(time.time())))
        next_slot, sent = start, 0
        while sent < limit:
            if not pending:
                due, _, item = heapq.heappop(schedule)
                if due >= deadline:
                    await _sleep_until(deadline)  # --duration is how long the run lasts
                    break
                await _sleep_until(due)
                if isinstance(item, _Delivery):
                    pending.append(item)
                    continue
                events, following = self.fleet.step(item, time.time())
                pending.extend(map(self._delivery, events))
                for later in following:
                    heapq.heappush(schedule, (time.monotonic() + cfg.interval, next(order), later))
                continue
            next_slot = max(next_slot, time.monotonic() - RATE_SLACK)
            if next_slot >= deadline:
                break
            await _sleep_until(next_slot)
            next_slot += 1 / cfg.rate
            await slots.acquire()
            delivery = pending.popleft()
            if not delivery.redelivery:
                delivery.body = json.dumps(delivery.event).encode()
                if delivery.minutes and self.redeliveries.random() < cfg.redeliver_share:
                    again = dataclasses.replace(delivery, redelivery=True)
                    due = time.monotonic() + self.redeliveries.uniform(*REDELIVERY_DELAY)
                    heapq.heappush(schedule, (due, next(order), again))
            self.report.sent[delivery.event["event"]] += 1
            sent += 1
            tasks.create_task(self._send(client, delivery, slots))

    async def _send(
        self, client: httpx.AsyncClient, delivery: _Delivery, slots: asyncio.Semaphore
    ) -> None:
        name = delivery.event["event"]
        try:
            headers = {  # signed now: a redelivery has the same body and a new timestamp
                **sign_headers(self.config.secret_token, int(time.time()), delivery.body),
                "content-type": "application/json",
                "user-agent": "Zoom Marketplace/1.0a",
                "x-zm-request-id": str(uuid.uuid4()),
            }
            try:
                response = await client.post(
                    self.config.target, content=delivery.body, headers=headers
                )
            except httpx.HTTPError as exc:  # counted, not fatal: the exporter may be restarting
                self.report.errors[type(exc).__name__] += 1
                self._failed(f"{name}: {type(exc).__name__}: {exc}")
                return
            self.report.responses[response.status_code] += 1
            if response.is_success:
                self._delivered(delivery)
            else:
                self._failed(f"{name}: HTTP {response.status_code} {response.text[:200]}")
        finally:
            slots.release()

    def _delivered(self, delivery: _Delivery) -> None:
        minutes, report = delivery.minutes, self.report
        if minutes is None:
            return
        if delivery.redelivery:
            report.redelivered[delivery.event["event"]] += 1
            report.redelivered_stream_minutes += minutes.count
        if not minutes.counted:
            minutes.counted = True
            report.stream_minutes[minutes.cause] += minutes.count
            report.stream_minutes_by_owner[minutes.owner] += minutes.count

    def _failed(self, why: str) -> None:
        if self.report.first_failure is None:
            self.report.first_failure = why

    async def _tick(self, progress: Callable[[str], None], start: float) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            progress(self.report.progress_line(time.monotonic() - start))


def write_sites(path: Path) -> None:
    """The simulated sites, for the exporter's ``--analytics.sites-file``."""
    path.write_text(sites_yaml())


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
    "degraded_share": (
        float,
        "share of the phone calls, and of the participants outside --weak-wifi-site and"
        " --cpu-starved-version, on a bad network, 0..1",
    ),
    "churn": (float, "chance per round that a participant leaves or a call ends"),
    "accounts": (int, "Zoom accounts; the instances and calls go round them"),
    "weak_wifi_site": (
        str,
        "site whose participants are all on a weak Wi-Fi (avg RSSI -85 to -72 dBm; jitter and"
        ' loss degraded): cause wifi; "" for none',
    ),
    "cpu_starved_version": (
        str,
        "client version whose participants all have a saturated CPU (system max 95 to 100"
        ' percent; jitter and loss degraded): cause cpu; "" for none',
    ),
    "latency_share": (
        float,
        "share of the --degraded-share participants whose only problem is latency (450 to 700"
        " ms): cause latency; the others lose packets with high jitter: cause network",
    ),
    "redeliver_share": (
        float,
        "chance that a per-minute QoS event is sent again 1 to 5 s later, the same body signed"
        " anew, as Zoom sometimes does; its stream-minutes count once",
    ),
    "seed": (int, "random seed, for a repeatable run (default: random)"),
    "concurrency": (int, "requests in flight, at most"),
    "manifest": (
        Path,
        "write the instances, participants and calls, their sites, versions and causes, and"
        " the stream-minutes delivered, as JSON",
    ),
    "sites_file": (
        Path,
        "write the simulated sites as YAML, the exporter's --analytics.sites-file format",
    ),
}
_ENVIRONMENT = {"sites_file": SITES_FILE_ENV}  # options whose default a variable sets


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
        if name in _ENVIRONMENT:  # argparse converts a string default with ``type``
            default = env.get(_ENVIRONMENT[name]) or default
            shown = f" (env {_ENVIRONMENT[name]}; default {defaults[name] or 'none'})"
        else:
            shown = "" if default is None else f" (default {default})"
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=default, help=text + shown)
    parser.add_argument(
        "--sites-only",
        action="store_true",
        help="write --sites-file and exit, sending nothing (needs no secret token)",
    )


def run(args: argparse.Namespace) -> int:
    """Run from parsed arguments: 0 if every event got a 2xx answer, 1 if not, 2 on bad options."""
    try:
        config = SimulationConfig(
            secret_token=args.secret_token or "",
            target=args.target,
            sites_only=args.sites_only,
            **{name: getattr(args, name) for name in _OPTIONS},
        )
    except ValueError as exc:
        print(f"zoom-qss-exporter simulate: error: {exc}", file=sys.stderr)
        return 2
    if config.sites_only and config.sites_file:
        write_sites(config.sites_file)
        return 0
    simulation = _Simulation(config)
    try:
        asyncio.run(simulation.run(functools.partial(print, flush=True)))
    except KeyboardInterrupt:
        print("simulate: interrupted", file=sys.stderr)
    print(simulation.report.render(), flush=True)
    return 0 if simulation.report.ok else 1
