"""The HTTP application: webhook, metrics, probes and the status page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from zoom_qss_exporter.analytics.collector import (
    AnalyticsLimits,
    AnalyticsOptions,
    QualityAnalytics,
)
from zoom_qss_exporter.analytics.sites import SitesFile
from zoom_qss_exporter.config import Settings
from zoom_qss_exporter.ingest.archive import Archive
from zoom_qss_exporter.ingest.pipeline import Pipeline, PipelineOptions
from zoom_qss_exporter.ingest.receiver import ReceiverOptions, WebhookReceiver
from zoom_qss_exporter.logs import LogBudget
from zoom_qss_exporter.remote.client import check_options, redact
from zoom_qss_exporter.remote.queue import RemoteWriteQueue
from zoom_qss_exporter.remote.sink import RemoteWriteSink
from zoom_qss_exporter.remote.wal import WriteAheadLog
from zoom_qss_exporter.store.exposition import MetricsEndpoint, StoreHealthCollector
from zoom_qss_exporter.store.fleet import FleetMetrics, SampleLedger
from zoom_qss_exporter.store.health import HealthMetrics
from zoom_qss_exporter.store.series import SeriesStore, StoreLimits
from zoom_qss_exporter.web.openapi import OPENAPI_PATH, openapi_bytes
from zoom_qss_exporter.web.server import FastRoute, ListenerFilter, require_auth
from zoom_qss_exporter.web.status import STATUS_JSON, Check, Deliveries, render_html, snapshot
from zoom_qss_exporter.web.transport import CoalescingHttpToolsProtocol, reporting_to

log = logging.getLogger("zoom_qss_exporter")


class Exporter:
    """Everything one process holds: the pipeline's parts and the registry that exposes them."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` is noise here
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = SeriesStore(
            StoreLimits(settings.store.ttl, settings.store.summary_ttl, settings.store.max_series)
        )
        self.health = HealthMetrics(self.registry)
        # what clients without the secret can make the exporter log (receiver, HTTP layer)
        self.log_budget = LogBudget(clock)
        # the server's protocol: bounds request heads on both listeners, reports refusals here
        self.http_protocol: type[CoalescingHttpToolsProtocol] = reporting_to(self.refused_request)
        self.fleet = FleetMetrics(SampleLedger(settings.store.dedup_window))
        self.registry.register(self.fleet)
        self.registry.register(StoreHealthCollector(self.store))
        self.exposition = MetricsEndpoint(self.store, self.registry, settings.web.metrics_cache)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.remote_write: RemoteWriteQueue | None = None
        self.wal: WriteAheadLog | None = None
        sink = None
        if settings.remote_write is not None:
            check_options(settings.remote_write)
            if settings.wal is not None:
                self.wal = WriteAheadLog(settings.wal, clock)
            self.remote_write = RemoteWriteQueue(settings.remote_write, wal=self.wal)
            self.health.expect_overload()
            self.registry.register(self.remote_write)
            sink = RemoteWriteSink(
                self.remote_write,
                settings.store.dedup_window,
                settings.store.summary_ttl,
                settings.store.max_series,
                settings.remote_write.participant_info,
            )
            self._recover(sink)
        self.analytics: QualityAnalytics | None = None
        if settings.analytics is not None:
            self.analytics = _analytics(settings, clock())
            self.registry.register(self.analytics)
        self.archive: Archive | None = None
        if settings.archive is not None:
            self.archive = Archive(settings.archive, clock)
            self.registry.register(self.archive)
        self.pipeline = Pipeline(
            self.store,
            self.fleet,
            self.health,
            PipelineOptions(settings.privacy, settings.store.per_participant),
            sink,
            self.analytics,
        )
        self.deliveries = Deliveries(clock=clock)
        self.receiver = WebhookReceiver(
            ReceiverOptions(
                settings.zoom.secret_tokens,
                settings.zoom.skip_signature_verification,
                settings.zoom.replay_window,
                settings.web.max_request_bytes,
                read_timeout=settings.web.read_timeout,
                unauthenticated_rate_limit=settings.web.unauthenticated_rate_limit,
            ),
            self.pipeline,
            self.health,
            clock,
            self.archive,
            self.log_budget,
            durable=self.wal.synced if self.wal is not None else None,
            deliveries=self.deliveries,
        )

    def _recover(self, sink: RemoteWriteSink) -> None:
        """Take over what an earlier process left in the write-ahead log (WALError if it
        cannot be used), or say what running without one risks."""
        queue, wal = self.remote_write, self.wal
        assert queue is not None
        if wal is None:
            log.warning(
                "remote write without a write-ahead log (--no-remote-write.wal): a crash loses "
                "every sample accepted and not yet delivered (up to --remote-write.queue-capacity)"
                ", a stop those still queued after --remote-write.shutdown-timeout"
            )
            return
        recovered = wal.recover()
        sink.restore(recovered.state, recovered.replayed, self.clock())
        queue.resume(recovered)
        wal.state_source = sink.state
        wal.start()
        lost = {reason: n for reason, n in queue.failed_total.items() if n}
        log.info(
            "remote write: log %s: %d samples not yet delivered are queued again%s; lost so "
            "far: %s refused or given up (%s), %d dropped",
            wal.directory,
            queue.queued,
            f" ({recovered.torn} bytes of a record cut short by a crash removed)"
            if recovered.torn
            else "",
            sum(lost.values()),
            ", ".join(f"{r} {n}" for r, n in lost.items()) or "none",
            queue.dropped_total,
        )

    def expire(self) -> int:
        return self.pipeline.expire(self.clock())

    def reload_sites(self, *, only_if_changed: bool = False) -> None:
        """Read the sites file again (SIGHUP, or it changed); a bad one keeps the sites."""
        if self.analytics is None:
            return
        sites = self.analytics.sites
        if only_if_changed:
            sites.reload_if_changed(self.clock())
        else:
            sites.reload(self.clock())

    def refused_request(self, reason: str, status: int) -> None:
        """A request the HTTP layer refused (head too large, malformed): counted, and logged
        within the budget of what clients without the secret may make us log."""
        self.health.count_refused(reason)
        if self.log_budget.allow(reason):
            log.info("refused request", extra={"reason": reason, "status": status})

    async def metrics(self, request: Request) -> Response:
        self.expire()  # a scrape never shows a series past its TTL
        chunks, headers = await self.exposition.body(
            request.headers.get("accept", ""), request.headers.get("accept-encoding", "")
        )
        return ChunksResponse(chunks, headers)

    def status(self) -> dict[str, Any]:
        """The status page's data (docs/status.md)."""
        s = self.settings
        listeners = [_address(s.web.host, s.web.port)]
        if s.web.internal_listen is not None:
            listeners.append(_address(*s.web.internal_listen) + " (internal)")
        parts: dict[str, Any] = {
            "webhook_path": s.web.webhook_path,
            "telemetry_path": s.web.telemetry_path,
            "listeners": listeners,
            "store": {
                "live series": len(self.store),
                "cap (--store.max-series)": s.store.max_series,
                "dropped at the cap": self.store.dropped_total,
                "expired": self.store.expired_total,
                "per-participant series": "on" if s.store.per_participant else "off",
            },
        }
        queue = self.remote_write
        if queue is not None:
            failed = {r: n for r, n in queue.failed_total.items() if n}
            parts["remote_write"] = {
                "queued samples": f"{queue.queued} of {queue.options.queue_capacity}",
                "samples sent": queue.sent_total,
                "samples lost (by reason)": failed or "none",
                "already present (redeliveries)": queue.already_present_total,
                "last success": _when(queue.last_success),
                "last error": queue.last_error or "none",
                "write-ahead log": str(self.wal.directory) if self.wal else "off",
            }
        if self.analytics is not None:
            parts["analytics"] = _analytics_status(self.analytics)
        if self.archive is not None:
            parts["archive"] = {
                "file": str(self.archive.path),
                "events archived": self.archive.events_total,
                "write errors": self.archive.errors_total,
            }
        checks = [_sites_check(self.analytics)] if self.analytics is not None else []
        return snapshot(self.deliveries, self.clock(), s.web.webhook_path, parts, checks)

    async def landing(self, request: Request) -> Response:
        return HTMLResponse(render_html(self.status()))

    async def status_json(self, request: Request) -> Response:
        return JSONResponse(self.status())


def _analytics(settings: Settings, now: float) -> QualityAnalytics:
    """The analytics with their sites file loaded (SitesError if it cannot be)."""
    a = settings.analytics
    assert a is not None
    sites = SitesFile(a.sites_file)
    sites.load(now)
    limits = AnalyticsLimits(
        max_rows=a.max_rows, max_participants=a.max_participants, window=settings.store.dedup_window
    )
    return QualityAnalytics(AnalyticsOptions(a.thresholds, sites, a.accounts, limits))


def _analytics_status(analytics: QualityAnalytics) -> dict[str, Any]:
    sites = analytics.sites
    if sites.path is None:
        loaded = "no sites file (--analytics.sites-file): sites are external or unknown"
    else:
        loaded = f"{sites.path}: {len(sites.sites)} sites, loaded {_when(sites.loaded_at)}"
    return {
        "sites file": loaded,
        "last reload error": sites.last_error or "none",
        "participants remembered": len(analytics.profiles),
        "rows (site, client, path)": f"{len(analytics.site)}, {len(analytics.client)}, "
        f"{len(analytics.path)} of {analytics.options.limits.max_rows} each",
    }


def _sites_check(analytics: QualityAnalytics) -> Check:
    sites = analytics.sites
    if sites.path is None:
        return Check(
            "sites file",
            "wait",
            "no --analytics.sites-file: every participant's site is external or unknown "
            "(docs/analytics.md)",
        )
    if sites.last_error:
        return Check(
            "sites file",
            "warn",
            f"the last reload failed, the {len(sites.sites)} sites in force stay: "
            f"{sites.last_error}",
        )
    return Check("sites file", "ok", f"{len(sites.sites)} sites from {sites.path}")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"


def _when(stamp: float) -> str:
    if not stamp:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


class ChunksResponse(Response):
    """A body sent as the chunks it was rendered in, with its full length announced, so that
    tens of megabytes are never copied into one buffer."""

    def __init__(self, chunks: list[bytes], headers: dict[str, str]) -> None:
        super().__init__(headers=headers)
        self.chunks = chunks
        self.headers["content-length"] = str(sum(len(chunk) for chunk in chunks))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        last = len(self.chunks) - 1
        for n, chunk in enumerate(self.chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": n < last})
        if last < 0:
            await send({"type": "http.response.body", "body": b""})


async def _healthy(request: Request) -> Response:
    return PlainTextResponse("Healthy.\n")


async def _ready(request: Request) -> Response:
    return PlainTextResponse("Ready.\n")


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"no such path: {request.url.path}"}, status_code=404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": f"method {request.method} not allowed on {request.url.path}"}, status_code=405
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


def create_app(exporter: Exporter) -> ASGIApp:
    """The routes; with an internal address, the public one serves only the webhook and the
    OpenAPI document."""
    s = exporter.settings
    app: ASGIApp = FastRoute(_routes(exporter), s.web.webhook_path, exporter.receiver)
    if s.web.internal_listen is not None:
        public = (s.web.webhook_path, OPENAPI_PATH)
        internal = (s.web.telemetry_path, "/-/healthy", "/-/ready", "/", STATUS_JSON, OPENAPI_PATH)
        app = ListenerFilter(app, s.web.internal_listen, public, internal)
    return app


def _routes(exporter: Exporter) -> Starlette:
    s = exporter.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if s.zoom.skip_signature_verification:
            log.warning(
                "signature verification is OFF: anyone who can reach %s can write metrics",
                s.web.webhook_path,
            )
        task = asyncio.create_task(_expire_forever(exporter))
        loop, hangup = asyncio.get_running_loop(), False
        if exporter.analytics is not None and exporter.analytics.sites.path is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(signal.SIGHUP, exporter.reload_sites)
                hangup = True
        remote = exporter.remote_write
        if remote is not None:
            log.info("remote write to %s", redact(remote.options.url))
            remote.start()
        try:
            yield
        finally:
            if hangup:
                loop.remove_signal_handler(signal.SIGHUP)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if remote is not None:  # the server takes no more events now: drain the queue
                await remote.close(remote.options.shutdown_timeout)
            if exporter.wal is not None:
                exporter.wal.close()
            if exporter.archive is not None:
                exporter.archive.close()

    document = openapi_bytes(s.web.routes())
    auth = s.web.metrics_auth.load() if s.web.metrics_auth is not None else None  # MetricsAuthError

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return Starlette(
        routes=[
            # POST is served by FastRoute before the router; this route answers the rest
            Route(s.web.webhook_path, exporter.receiver, methods=["POST"]),
            Route(s.web.telemetry_path, require_auth(exporter.metrics, auth), methods=["GET"]),
            Route(OPENAPI_PATH, openapi, methods=["GET"]),
            Route("/-/healthy", _healthy, methods=["GET", "HEAD"]),
            Route("/-/ready", _ready, methods=["GET", "HEAD"]),
            Route("/", exporter.landing, methods=["GET"]),
            Route(STATUS_JSON, exporter.status_json, methods=["GET"]),
        ],
        exception_handlers={404: _not_found, 405: _not_allowed, 500: _server_error},
        lifespan=lifespan,
    )


async def _expire_forever(exporter: Exporter) -> None:
    while True:
        await asyncio.sleep(exporter.settings.store.expiry_interval)
        exporter.log_budget.flush()  # the summary of lines left out, also when a flood stops
        exporter.reload_sites(only_if_changed=True)
        expired = exporter.expire()
        if expired:
            log.debug("expired %d series", expired)
