"""``docs/metrics.md``: the per-participant and per-call families from ``families.py``, and the
exporter's own families as a real ``Exporter`` exposes them."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from zoom_qss_exporter import families
from zoom_qss_exporter.analytics import dimensions
from zoom_qss_exporter.analytics.classify import CAUSES
from zoom_qss_exporter.analytics.collector import AnalyticsOptions, QualityAnalytics
from zoom_qss_exporter.app import Exporter
from zoom_qss_exporter.config import Settings
from zoom_qss_exporter.families import Family, Lifetime
from zoom_qss_exporter.ingest.archive import ArchiveOptions
from zoom_qss_exporter.ingest.convert import NOTIFICATIONS
from zoom_qss_exporter.outcomes import EVENT_NAMES, OTHER_EVENT, UNVERIFIED, URL_VALIDATION, Outcome
from zoom_qss_exporter.remote.client import RemoteWriteOptions
from zoom_qss_exporter.remote.queue import FAILURE_REASONS
from zoom_qss_exporter.store.health import REFUSAL_REASONS
from zoom_qss_exporter.store.plain_metrics import Histogram

from .markdown import code, fill, table

LIFETIMES = {Lifetime.SAMPLE: "`--store.ttl`", Lifetime.SUMMARY: "`--store.summary-ttl`"}

PRODUCTS = ("meeting", "webinar", "session", "phone")
ANALYTICS_TABLES = tuple(table.family for table in QualityAnalytics(AnalyticsOptions()).tables)

# The values a label of the exporter's own families can take, where the code bounds them.
LABEL_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("zoom_qss_exporter_events_total", "event"): (
        *sorted(EVENT_NAMES),
        URL_VALIDATION,
        OTHER_EVENT,
        UNVERIFIED,
    ),
    ("zoom_qss_exporter_events_total", "outcome"): tuple(o.value for o in Outcome),
    ("zoom_qss_exporter_http_requests_refused_total", "reason"): REFUSAL_REASONS,
    ("zoom_qss_exporter_remote_write_samples_failed_total", "reason"): FAILURE_REASONS,
    ("zoom_network_notifications_total", "notification"): (*sorted(NOTIFICATIONS), "other"),
    **{
        (f"zoom_qos_{part}stream_minutes_total", label): values
        for part in ("", "poor_", "client_", "client_poor_", "path_", "path_poor_")
        for label, values in (
            ("product", PRODUCTS if part in ("", "poor_") else PRODUCTS[:3]),
            ("network_type", dimensions.NETWORK_TYPES),
            ("cause", CAUSES),
            ("platform", dimensions.PLATFORMS),
            ("connection_type", dimensions.CONNECTION_TYPES),
            ("media", dimensions.MEDIA),
        )
    },
    **{
        (f"zoom_qos_{part}participations_total", label): values
        for part in ("", "poor_")
        for label, values in (("product", PRODUCTS[:3]), ("network_type", dimensions.NETWORK_TYPES))
    },
    ("zoom_qss_exporter_analytics_folds_total", "family"): (
        *ANALYTICS_TABLES,
        "data_center",
        "version",
        "account",
        "participants",
    ),
    ("zoom_qss_exporter_analytics_rows", "family"): ANALYTICS_TABLES,
    ("zoom_qss_exporter_analytics_sites_reloads_total", "result"): ("success", "failure"),
}


def _group(predicate: Callable[[Family], bool]) -> list[Family]:
    return [f for f in families.ALL_FAMILIES if predicate(f)]


def _family_table(group: Iterable[Family], common: tuple[str, ...]) -> str:
    rows = [
        [
            code(f.name),
            ", ".join(code(label) for label in f.labels if label not in common),
            f.help,
            LIFETIMES[f.lifetime],
            f.source,
        ]
        for f in group
    ]
    header = ["family", "extra labels" if common else "labels", "help", "lifetime", "from Zoom's"]
    return table(header, rows)


def _minute(f: Family) -> bool:
    return f.name.startswith("zoom_qos_") and f.lifetime is Lifetime.SAMPLE


def _stay(f: Family) -> bool:
    return f.name.startswith("zoom_qos_participation_")


def _phone(f: Family) -> bool:
    return f.name.startswith("zoom_phone_") and f.lifetime is Lifetime.SAMPLE


def _call(f: Family) -> bool:
    return f.name.startswith("zoom_phone_call_")


def _info(f: Family) -> bool:
    return f in families.INFO_FAMILIES


@dataclass(frozen=True)
class OwnFamily:
    name: str  # as exposed: counters end in _total
    type: str
    labels: tuple[str, ...]
    help: str
    when: str  # the flag it needs; "" always there
    buckets: tuple[float, ...] = ()
    analytics: bool = False  # one of the quality analytics' counters


@contextmanager
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)  # the exporter's start-up warnings
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _exposed(exporter: Exporter) -> dict[str, Metric]:
    return {m.name: m for m in exporter.registry.collect() if m.name.startswith("zoom_")}


def own_families() -> list[OwnFamily]:
    """Every family a fresh exporter exposes beside the store's series (pull only, then with
    remote write and an archive, to tell which flag a family comes with)."""
    with _quiet(), tempfile.TemporaryDirectory() as directory:
        base = Exporter(Settings())
        full = Exporter(
            Settings(
                remote_write=RemoteWriteOptions(url="http://127.0.0.1:9/api/v1/write"),
                archive=ArchiveOptions(directory),
            )
        )
        try:
            always, everything = _exposed(base), _exposed(full)
            assert full.analytics is not None
            analytics = {m.name for m in full.analytics.collect()}
        finally:
            if full.archive is not None:
                full.archive.close()
    buckets = {
        metric.name: metric.bounds
        for part in (full.health, full.fleet)
        for metric in vars(part).values()
        if isinstance(metric, Histogram)
    }
    own = []
    for name, metric in everything.items():
        if name in always:
            when = ""
        elif "_remote_write_" in name:
            when = "--remote-write.url"
        elif "_archive_" in name:
            when = "--archive.directory"
        else:
            raise ValueError(f"{name}: which flag does it come with?")
        labels = getattr(metric, "_labelnames", None)  # prometheus-client's *MetricFamily
        if labels is None:  # a registry's metric: its labels are its samples'
            labels = tuple(dict.fromkeys(k for s in metric.samples for k in s.labels))
        exposed = name + "_total" if metric.type == "counter" else name
        own.append(
            OwnFamily(
                exposed,
                metric.type,
                labels,
                metric.documentation,
                when,
                buckets.get(name, ()),
                name in analytics and not name.startswith("zoom_qss_exporter_"),
            )
        )
    return own


def _labels(family: OwnFamily) -> str:
    parts, enumerated = [], False
    for label in family.labels:
        values = LABEL_VALUES.get((family.name, label))
        enumerated = enumerated or bool(values)
        parts.append(code(label) + (": " + ", ".join(map(code, values)) if values else ""))
    return ("; " if enumerated else ", ").join(parts)


def _own_table(fleet: bool, analytics: bool = False) -> str:
    rows = []
    for f in own_families():
        if f.name.startswith("zoom_qss_exporter_") == fleet or f.analytics != analytics:
            continue
        text = f.help
        if f.buckets:
            text += " Buckets: " + " ".join(f"{b:g}" for b in f.buckets) + "."
        row = [code(f.name), f.type, _labels(f), text]
        if not fleet:
            row.append(code(f.when) if f.when else "always")
        rows.append(row)
    header = ["family", "type", "labels", "help"] + ([] if fleet else ["with"])
    return table(header, rows)


GROUPS = (_minute, _stay, _info, _phone, _call)


def render() -> str:
    for family in families.ALL_FAMILIES:
        if sum(group(family) for group in GROUPS) != 1:
            raise ValueError(f"{family.name}: in no table of docs/metrics.md, or in several")
    p = families.PARTICIPANT
    tables = {
        "minute": lambda: _family_table(_group(_minute), p),
        "stay": lambda: _family_table(_group(_stay), p),
        "info": lambda: _family_table(_group(_info), ()),
        "phone": lambda: _family_table(_group(_phone), families.CALL_PARTY),
        "call": lambda: _family_table(_group(_call), families.CALL_PARTY),
        "fleet": lambda: _own_table(fleet=True),
        "analytics": lambda: _own_table(fleet=True, analytics=True),
        "health": lambda: _own_table(fleet=False),
    }
    banner = (
        "<!-- Generated by `python -m docgen` from exporter/zoom_qss_exporter/families.py, the "
        "exporter's collectors and docgen/templates/metrics.md: edit those, not this file. -->\n"
    )
    return fill("metrics.md", tables, banner)
