"""``zoom-qss-exporter replay FILE...``: send archived events again.

Two destinations:

- ``--remote-write.url``: through the same pipeline as ``serve`` (models, conversion, the
  remote-write sink and queue) to a remote-write receiver, with the samples' original Zoom
  timestamps: a backfill after an outage the queue could not ride out. A full queue makes the
  replay wait, never drop. The receiver must accept samples that old (Prometheus: inside its
  out-of-order window; docs/remote-write.md).
- ``--target``: POST each event, signed anew, to a running exporter's webhook (a fresh one,
  to reproduce what happened); a 503 or 5xx is retried with backoff, as Zoom would.

Whatever happens, a replay ends by ``--timeout`` and prints its report: what was sent, what
the engine refused or what was given up (samples older than the engine takes are refused
and counted, and the replay goes on with the rest), and the events it did not get to. Whatever
an archive holds (a cut line, a request id no HTTP header can carry, an event the target
refuses), the replay goes on with the next event, and the report says what was skipped and why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from zoom_qss_exporter.analytics.collector import AnalyticsOptions, QualityAnalytics
from zoom_qss_exporter.analytics.flags import add_site_arguments, sites_from_args
from zoom_qss_exporter.analytics.sites import SitesFile
from zoom_qss_exporter.config import add_privacy_arguments, convert_options_from_args
from zoom_qss_exporter.flags import TOKEN_ENV, ConfigError, first_token, parse_duration
from zoom_qss_exporter.ingest.archive import ArchivedEvent, read_archive
from zoom_qss_exporter.ingest.convert import ConvertOptions
from zoom_qss_exporter.ingest.events import ValidationError, parse_event
from zoom_qss_exporter.ingest.pipeline import Pipeline, PipelineOptions
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.outcomes import Outcome
from zoom_qss_exporter.remote.client import RemoteWriteError, RemoteWriteOptions, check_options
from zoom_qss_exporter.remote.flags import add_remote_write_arguments, remote_write_from_args
from zoom_qss_exporter.remote.queue import RemoteWriteQueue
from zoom_qss_exporter.remote.sink import RemoteWriteSink
from zoom_qss_exporter.store.fleet import FleetMetrics, SampleLedger
from zoom_qss_exporter.store.health import HealthMetrics
from zoom_qss_exporter.store.series import SeriesStore, StoreLimits

_FOREVER = float("inf")


@dataclass
class ReplayReport:
    files: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # per event
    problems: list[str] = field(default_factory=list)  # unreadable lines, refused events
    sent: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    not_replayed: int = 0  # events left when the deadline came

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and not any(self.failed.values())
            and not self.dropped
            and not self.not_replayed
        )

    def render(self) -> str:
        events = sum(self.outcomes.values())
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items()))
        lines = [f"replay: {events} events from {self.files} files ({parts or 'none'})"]
        if self.sent or self.failed or self.dropped:
            failed = sum(self.failed.values())
            reasons = ", ".join(f"{r} {n}" for r, n in self.failed.items() if n)
            lines.append(
                f"replay: remote write: {self.sent} samples sent, {failed} refused"
                + (f" ({reasons})" if reasons else "")
                + f", {self.dropped} dropped"
            )
        lines += [f"replay: {problem}" for problem in self.problems[:20]]
        if len(self.problems) > 20:
            lines.append(f"replay: ... and {len(self.problems) - 20} more problems")
        return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="archive files")
    parser.add_argument(
        "--target",
        default="",
        help="URL of a running exporter's webhook to POST the events to, instead of "
        "--remote-write.url",
    )
    parser.add_argument(  # no %(default)s: --help must not show the secret
        "--secret-token",
        default=first_token(environ),
        help=f"with --target: secret token to sign with (default: the first of {TOKEN_ENV}; "
        "none: unsigned)",
    )
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        default=3600.0,
        help="longest the whole replay may take; then the events not yet replayed are counted "
        "and reported, and what is still queued for remote write is dropped (default 1h; "
        "a large backfill needs more)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=parse_duration,
        default=300.0,
        help="to remote write: how long to keep sending once every event is queued; with "
        "--target: how long to keep retrying one event the exporter answers 5xx (default 5m)",
    )
    add_remote_write_arguments(parser, environ)
    add_privacy_arguments(parser, environ)  # the labels of the exporter that received them
    add_site_arguments(parser, environ)


def run(args: argparse.Namespace) -> int:
    """0 when every event was replayed and every sample accepted; 1 if not; 2 on bad options."""
    try:
        options = remote_write_from_args(args)
        if (options is None) == (not args.target):
            raise ConfigError("give exactly one of --remote-write.url and --target")
        if options is not None:
            check_options(options)
        sites = sites_from_args(args)
    except (ConfigError, RemoteWriteError) as error:
        print(f"zoom-qss-exporter replay: error: {error}", file=sys.stderr)
        return 2
    report = ReplayReport(files=len(args.files))
    events = read_archive(args.files, report.problems)
    deadline = time.monotonic() + args.timeout
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stop still prints the report
    try:
        if options is not None:
            convert = convert_options_from_args(args)
            asyncio.run(
                to_remote_write(
                    events, options, convert, args.drain_timeout, report, deadline, sites
                )
            )
        else:
            to_webhook(events, args.target, args.secret_token, args.drain_timeout, report, deadline)
    except Exception as error:  # an unreadable file, the receiver: the report still counts
        print(report.render(), flush=True)
        print(f"zoom-qss-exporter replay: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        report.problems.append("interrupted: the events after the last one counted were not sent")
        print(report.render(), flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if report.not_replayed:
        report.problems.append(
            f"--timeout ({args.timeout:g}s) reached: {report.not_replayed} events not replayed"
        )
    print(report.render(), flush=True)
    return 0 if report.ok else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def to_remote_write(
    events: Iterable[ArchivedEvent],
    options: RemoteWriteOptions,
    convert: ConvertOptions,
    drain_timeout: float,
    report: ReplayReport,
    deadline: float = math.inf,
    sites: SitesFile | None = None,
) -> None:
    """Each event through the pipeline into the queue, waiting whenever the queue is full,
    until ``deadline`` (monotonic); the rest is counted as not replayed. ``sites``: where
    the participants are placed, as the exporter did (None: analytics off, no site)."""
    queue = RemoteWriteQueue(options)
    # archived events are all old: sent together, in order (the engine needs an out-of-order
    # window for them anyway, docs/remote-write.md)
    sink = RemoteWriteSink(
        queue, _FOREVER, _FOREVER, 1 << 62, options.participant_info, late_after=math.inf
    )
    pipeline = Pipeline(
        SeriesStore(StoreLimits(max_series=1)),  # unused: per-participant series are off
        FleetMetrics(SampleLedger(_FOREVER)),
        HealthMetrics(CollectorRegistry()),
        PipelineOptions(convert, per_participant=False),
        sink,
        QualityAnalytics(AnalyticsOptions(sites=sites)) if sites is not None else None,
    )
    queue.start()
    remaining = iter(events)
    try:
        for archived in remaining:
            if time.monotonic() >= deadline:
                report.not_replayed = 1 + sum(1 for _ in remaining)
                break
            name = archived.event.get("event")
            try:
                event = parse_event(archived.event)
            except ValidationError as error:
                report.outcomes["invalid"] += 1
                report.problems.append(f"{archived.request_id or name}: {error.errors()[0]['msg']}")
                continue
            if event is None:
                report.outcomes["ignored"] += 1
                continue
            while (outcome := pipeline.ingest(event, archived.received_at)) is (
                Outcome.REJECTED_OVERLOAD
            ):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.wait_for_room(), deadline - time.monotonic())
                if time.monotonic() >= deadline:
                    break
            else:
                report.outcomes[outcome.value] += 1
                continue
            report.not_replayed = 1 + sum(1 for _ in remaining)
            break
    finally:
        left = max(0.0, min(drain_timeout, deadline - time.monotonic()))
        report.dropped = await queue.close(left)
        report.sent = queue.sent_total
        report.failed = dict(queue.failed_total)


def to_webhook(
    events: Iterable[ArchivedEvent],
    target: str,
    token: str,
    give_up_after: float,
    report: ReplayReport,
    deadline: float = math.inf,
) -> None:
    """POST each event as Zoom would: its archived body (not re-serialised: numbers such as
    1e400 would come out as invalid JSON), signed now, retried on 5xx and transport errors.
    An event that cannot be sent at all is skipped and reported; the next one is sent."""
    with httpx.Client(timeout=10.0) as client:
        remaining = iter(events)
        for archived in remaining:
            if time.monotonic() >= deadline:
                report.not_replayed = 1 + sum(1 for _ in remaining)
                return
            name = _shown(archived.request_id) or "-"
            give_up = min(deadline, time.monotonic() + give_up_after) - time.monotonic()
            try:
                status, answer, outcome = _post(client, archived, target, token, give_up)
            except Exception as error:  # never one record's fault to stop the replay
                report.outcomes["skipped"] += 1
                report.problems.append(f"{name}: skipped: {type(error).__name__}: {error}"[:300])
                continue
            if outcome:
                report.outcomes[outcome] += 1
            else:
                report.outcomes["refused"] += 1
                report.problems.append(f"{name}: {status} {answer}")


def _post(
    client: httpx.Client, archived: ArchivedEvent, target: str, token: str, give_up_after: float
) -> tuple[int, str, str]:
    """(status, answer, outcome) of one event; the outcome is "" unless answered 2xx."""
    body = archived.body
    deadline = time.monotonic() + give_up_after
    delay = 0.25
    request_id = _request_id_header(archived.request_id)
    while True:
        headers = {b"content-type": b"application/json"}
        if request_id:
            headers[b"x-zm-request-id"] = request_id
        if token:
            signed = sign_headers(token, int(time.time()), body)
            headers.update((k.encode(), v.encode()) for k, v in signed.items())
        try:
            response = client.post(target, content=body, headers=headers)
            status, answer = response.status_code, response.text[:200]
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol):
            raise  # this request can never be sent: retrying would not help
        except httpx.TransportError as error:
            status, answer = 0, str(error) or type(error).__name__
        if 0 < status < 500:
            break
        if time.monotonic() + delay > deadline:
            break
        time.sleep(delay)  # Zoom's retry, compressed: the exporter asked for it
        delay = min(delay * 2, 10.0)
    if not 200 <= status < 300:
        return status, answer, ""
    try:
        return status, answer, str(response.json().get("status", "accepted"))
    except (ValueError, AttributeError):
        return status, answer, "accepted"


def _request_id_header(request_id: str) -> bytes:
    """The archived request id as the header's bytes: the exporter read the header as
    latin-1, so encoding it so gives back what was sent. An id no header can carry (a
    character past U+00FF or a control character, from an edited archive) is left out."""
    try:
        raw = request_id.encode("latin-1")
    except UnicodeEncodeError:
        return b""
    if any(byte < 0x20 or byte == 0x7F for byte in raw):
        return b""
    return raw


def _shown(request_id: str) -> str:
    """A request id as the report prints it: printable, cut."""
    return "".join(c if c.isprintable() else "?" for c in request_id[:64])
