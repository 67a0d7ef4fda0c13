"""Exporter health: events, signature failures, series against the cap, scrapes."""

from __future__ import annotations

from ..config import Config
from ..grafana import (
    GREEN,
    ORANGE,
    RED,
    Json,
    Panel,
    Row,
    dashboard,
    stat,
    steps,
    target,
    timeseries,
    variable,
)
from .common import EXPORTER_UID, UP


def exporter_health(config: Config) -> Json:
    sel = 'job=~"$job", instance=~"$instance"'
    events = f"zoom_qss_exporter_events_total{{{sel}}}"
    cap = (
        f"sum by (job, instance) (zoom_qss_exporter_series{{{sel}}})\n/ on (job, instance)\n"
        f"zoom_qss_exporter_series_limit{{{sel}}}"
    )
    items: list[Panel | Row] = [
        Row("Status"),
        stat(
            "Up",
            "Whether Prometheus can scrape the exporter.",
            [target(f"up{{{sel}}}", "{{instance}}")],
            "none",
            mappings=UP,
            thresholds=steps(RED, (1, GREEN)),
            options={"graphMode": "none"},
        ),
        stat(
            "Version",
            "The exporter's version and Python version (zoom_qss_exporter_build_info).",
            [
                target(
                    f"zoom_qss_exporter_build_info{{{sel}}}",
                    "{{version}} (Python {{python_version}})",
                )
            ],
            "none",
            options={"textMode": "name", "graphMode": "none", "colorMode": "none"},
        ),
        stat(
            "Since the last event",
            "Time since the exporter last accepted a Zoom event; red from the no-events "
            "alert's threshold.",
            [
                target(
                    f"time() - zoom_qss_exporter_last_event_timestamp_seconds{{{sel}}}",
                    "{{instance}}",
                )
            ],
            "s",
            thresholds=steps(GREEN, (config.no_events_for.seconds, RED)),
        ),
        stat(
            "Live series of the cap",
            "Live series in the store as a share of --store.max-series.",
            [target(cap, "{{instance}}")],
            "percentunit",
            thresholds=steps(GREEN, (config.series_cap_ratio, ORANGE), (1, RED)),
            minimum=0,
            maximum=1,
        ),
        Row("Events"),
        timeseries(
            "Events by type and outcome",
            "Webhook deliveries per second by event and outcome (accepted, stale, "
            "invalid_signature, invalid_payload, unknown_event, rate_limited, rejected_overload, "
            "error: answered 500).",
            [
                target(
                    f"sum by (event, outcome) (rate({events}[$__rate_interval]))",
                    "{{event}} {{outcome}}",
                )
            ],
            "reqps",
            minimum=0,
            width=24,
        ),
        timeseries(
            "Signature failures",
            "Deliveries refused for a missing or invalid signature or an old timestamp, and "
            "those rate-limited after repeated failures: a wrong secret token, or someone "
            "probing the webhook.",
            [
                target(
                    f"sum by (instance) (rate(zoom_qss_exporter_events_total"
                    f'{{{sel}, outcome=~"invalid_signature|rate_limited"}}[$__rate_interval]))',
                    "{{instance}}",
                )
            ],
            "reqps",
            thresholds=steps(GREEN, (0.001, RED)),
            minimum=0,
            width=8,
        ),
        timeseries(
            "Items skipped",
            "QoS items or fields ignored per second, by reason (unknown type or field, "
            "unreadable value, redelivered sample...).",
            [
                target(
                    f"sum by (reason) (rate(zoom_qss_exporter_items_skipped_total{{{sel}}}"
                    "[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            "cps",
            minimum=0,
            width=8,
        ),
        timeseries(
            "Processing latency",
            "Time to handle one delivery, median and 99th percentile, by event.",
            [
                target(
                    f"histogram_quantile({q}, sum by (le, event) (rate("
                    f"zoom_qss_exporter_event_processing_seconds_bucket{{{sel}}}"
                    "[$__rate_interval])))",
                    f"p{q * 100:g} {{{{event}}}}",
                )
                for q in (0.5, 0.99)
            ],
            "s",
            minimum=0,
            width=8,
        ),
        Row("Series"),
        timeseries(
            "Live series and cap",
            "Live series in the store, and the cap (--store.max-series) past which new ones "
            "are dropped.",
            [
                target(
                    f"sum by (instance) (zoom_qss_exporter_series{{{sel}}})", "live {{instance}}"
                ),
                target(f"zoom_qss_exporter_series_limit{{{sel}}}", "cap {{instance}}"),
            ],
            "short",
            minimum=0,
            width=8,
        ),
        timeseries(
            "Live series by family",
            "Live series per metric family.",
            [target(f"zoom_qss_exporter_series{{{sel}}}", "{{family}}")],
            "short",
            minimum=0,
            width=8,
        ),
        timeseries(
            "Dropped and expired series",
            "Series dropped at the cap and expired after their TTL, per second.",
            [
                target(
                    f"rate(zoom_qss_exporter_series_dropped_total{{{sel}}}[$__rate_interval])",
                    "dropped {{instance}}",
                ),
                target(
                    f"rate(zoom_qss_exporter_series_expired_total{{{sel}}}[$__rate_interval])",
                    "expired {{instance}}",
                ),
            ],
            "cps",
            minimum=0,
            width=8,
        ),
        Row("Scrapes and process"),
        timeseries(
            "Scrape size",
            "Samples in each scrape of /metrics (Prometheus' scrape_samples_scraped).",
            [target(f"scrape_samples_scraped{{{sel}}}", "{{instance}}")],
            "short",
            minimum=0,
            width=8,
        ),
        timeseries(
            "Scrape duration",
            "How long each scrape of /metrics took (Prometheus' scrape_duration_seconds).",
            [target(f"scrape_duration_seconds{{{sel}}}", "{{instance}}")],
            "s",
            minimum=0,
            width=8,
        ),
        timeseries(
            "QoS samples received",
            "QoS samples counted into the fleet metrics per second, by product "
            "(recording rule product_qos_type:zoom_qos_samples:rate5m).",
            [target("sum by (product) (product_qos_type:zoom_qos_samples:rate5m)", "{{product}}")],
            "cps",
            minimum=0,
            width=8,
        ),
        timeseries(
            "Memory",
            "Resident memory of the exporter process.",
            [target(f"process_resident_memory_bytes{{{sel}}}", "{{instance}}")],
            "bytes",
            minimum=0,
        ),
        timeseries(
            "CPU",
            "CPU seconds used per second by the exporter process.",
            [target(f"rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval])", "{{instance}}")],
            "percentunit",
            minimum=0,
        ),
    ]
    variables = [
        variable("job", "Job", "label_values(zoom_qss_exporter_build_info, job)", multi=True),
        variable(
            "instance",
            "Instance",
            'label_values(zoom_qss_exporter_build_info{job=~"$job"}, instance)',
            multi=True,
        ),
    ]
    return dashboard(
        EXPORTER_UID,
        "Exporter health",
        "The Zoom QSS exporter itself: events by type and outcome, signature failures, live "
        "series against the cap, drops, expiry, processing latency and scrape size.",
        items,
        variables,
        time_from="now-6h",
    )
