"""The status page: what the webhook has seen lately, for whoever is setting it up.

Most trouble with a webhook integration happens at setup (the URL validation fails, the
secret token is the old one, the summary events were never subscribed, a proxy cuts bodies),
and this page shows it without reading logs: the last deliveries with their outcome, a table
of the events Zoom sends, and a checklist computed from what was seen.

Memory is fixed whatever the traffic: a ring of the last ``RING`` deliveries, one row per
known event name, a ring of clock-skew samples. No personal data is kept: event names,
outcomes, statuses, times and request ids (cut short) only. Everything shown comes from the
internet, so the page escapes every value.
"""

from __future__ import annotations

import html
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from zoom_qss_exporter import __version__
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.outcomes import OTHER_EVENT, UNVERIFIED, URL_VALIDATION

STATUS_JSON = "/status.json"
RING = 100  # deliveries kept
REQUEST_ID_CHARS = 40  # of a request id shown
SKEW_SAMPLES = 64
HOUR = 3600.0
URL_VALIDATION_CYCLE = 72 * HOUR  # Zoom validates the endpoint again every 72 hours
SKEW_LIMIT = 60.0  # seconds between Zoom's event_ts and our clock before the checklist warns

SUMMARY_EVENTS = frozenset(
    name for name in EVENT_MODELS if name.endswith("_summary") and "qos" in name
)
DATA_EVENTS = frozenset(name for name in EVENT_MODELS if "_data" in name)
EVENTS = (*sorted(EVENT_MODELS), URL_VALIDATION)  # the rows of the events table


class Delivery(NamedTuple):
    """One answered request to the webhook."""

    time: float  # when it was answered (Unix seconds)
    event: str  # a known event name, endpoint.url_validation, "other" or "unverified"
    outcome: str  # an Outcome value
    status: int
    reason: str  # why it was refused; "" when accepted
    seconds: float  # handling time
    request_id: str  # cut to REQUEST_ID_CHARS


@dataclass
class EventTally:
    accepted: int = 0
    stale: int = 0
    refused: int = 0
    last_accepted: float | None = None
    last_outcome: str = ""


@dataclass
class Deliveries:
    """What the webhook answered lately; fed by the receiver, read by the page."""

    clock: Callable[[], float] = time.time
    started: float = field(default=0.0)
    recent: deque[Delivery] = field(default_factory=lambda: deque(maxlen=RING))
    events: dict[str, EventTally] = field(default_factory=dict)
    last_token: int | None = None  # position (1-based) of the token that verified the last one
    skews: deque[float] = field(default_factory=lambda: deque(maxlen=SKEW_SAMPLES))

    def __post_init__(self) -> None:
        self.started = self.started or self.clock()
        for name in (*EVENTS, OTHER_EVENT, UNVERIFIED):
            self.events[name] = EventTally()

    def record(
        self,
        event: str,
        outcome: str,
        status: int,
        reason: str,
        seconds: float,
        request_id: str,
        token: int | None = None,
        event_ts: float | None = None,
    ) -> None:
        """One answered request. ``event`` must be a bounded label (``health.event_label``);
        ``event_ts`` is Zoom's time of an authentic event (Unix seconds), for the skew."""
        now = self.clock()
        self.recent.append(
            Delivery(
                now, event, outcome, status, reason[:200], seconds, request_id[:REQUEST_ID_CHARS]
            )
        )
        tally = self.events.get(event)
        if tally is None:  # not a bounded label: never a new row
            tally = self.events[OTHER_EVENT]
        if outcome == "accepted":
            tally.accepted += 1
            tally.last_accepted = now
        elif outcome == "stale":
            tally.stale += 1
        else:
            tally.refused += 1
        tally.last_outcome = outcome
        if token is not None:
            self.last_token = token
        if event_ts is not None and outcome in ("accepted", "stale"):
            self.skews.append(now - event_ts)

    def skew(self) -> float | None:
        """The median of our time minus Zoom's ``event_ts`` over the last authentic events:
        the delivery delay plus the clocks' difference (Zoom's retries, minutes late, are
        outvoted by the first deliveries)."""
        return statistics.median(self.skews) if self.skews else None


class Check(NamedTuple):
    name: str
    state: str  # "ok", "warn" or "wait" (not known yet)
    detail: str


def checklist(deliveries: Deliveries, now: float, webhook_path: str) -> list[Check]:
    """The setup checklist, from what the webhook has seen: each line ok, or with a hint."""
    tallies = deliveries.events
    up = now - deliveries.started
    checks: list[Check] = []

    def last(names: Iterable[str]) -> float | None:
        times = [tallies[n].last_accepted for n in names if tallies[n].last_accepted is not None]
        return max(times) if times else None  # type: ignore[type-var]

    newest = last(EVENT_MODELS)
    if newest is not None and now - newest <= HOUR:
        checks.append(Check("events arriving", "ok", f"last accepted {_ago(now - newest)} ago"))
    else:
        refused = sum(t.refused for t in tallies.values())
        hint = (
            "no QSS event accepted in the last hour: check that "
            f"the subscription is active and its endpoint URL ends in {webhook_path}"
        )
        if tallies[UNVERIFIED].refused:
            hint += (
                f"; {tallies[UNVERIFIED].refused} deliveries failed the signature check: the "
                "secret token is probably the old one (give both while rotating)"
            )
        elif refused:
            hint += f"; {refused} deliveries were refused (see below)"
        checks.append(Check("events arriving", "warn" if up > HOUR else "wait", hint))

    validated = tallies[URL_VALIDATION].last_accepted
    if validated is not None and now - validated <= URL_VALIDATION_CYCLE:
        checks.append(Check("URL validation", "ok", f"answered {_ago(now - validated)} ago"))
    elif tallies[URL_VALIDATION].refused:
        checks.append(
            Check(
                "URL validation",
                "warn",
                "Zoom's endpoint.url_validation was refused: check the secret token",
            )
        )
    else:
        checks.append(
            Check(
                "URL validation",
                "warn" if up > URL_VALIDATION_CYCLE else "wait",
                "not seen since the start: Zoom validates when the subscription is saved and "
                "every 72 hours (save the subscription again to validate now)",
            )
        )

    for name, names, missing in (
        (
            "summary events",
            SUMMARY_EVENTS,
            "no *_qos_summary or phone.call_qos_summary accepted: participation and whole-call "
            "metrics stay empty; subscribe to the summary events",
        ),
        (
            "data events",
            DATA_EVENTS,
            "no *_data or *_data_summary accepted: device, network and data center stay "
            "unknown; subscribe to the data events",
        ),
    ):
        seen = last(names)
        if seen is not None:
            checks.append(Check(name, "ok", f"last accepted {_ago(now - seen)} ago"))
        else:
            checks.append(Check(name, "warn" if newest is not None else "wait", missing))

    skew = deliveries.skew()
    if skew is None:
        checks.append(Check("clock", "wait", "no authentic event yet to compare clocks with"))
    elif skew < -5 or skew > SKEW_LIMIT:
        checks.append(
            Check(
                "clock",
                "warn",
                f"events arrive {skew:+.0f} s after Zoom's event_ts (median): check this "
                "machine's clock (NTP), or a proxy that holds requests",
            )
        )
    else:
        checks.append(Check("clock", "ok", f"events arrive {skew:+.1f} s after Zoom's event_ts"))
    return checks


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * HOUR:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / HOUR:.1f} h"


def snapshot(
    deliveries: Deliveries,
    now: float,
    webhook_path: str,
    parts: dict[str, Any],
    checks: Iterable[Check] = (),
) -> dict[str, Any]:
    """The page's data, as ``/status.json`` serves it (docs/status.md); ``checks`` are the
    checklist lines of the other parts (the sites file)."""
    return {
        "version": __version__,
        "now": now,
        "started": deliveries.started,
        "uptime_seconds": now - deliveries.started,
        "last_token_position": deliveries.last_token,
        "clock_skew_seconds": deliveries.skew(),
        "checklist": [c._asdict() for c in (*checklist(deliveries, now, webhook_path), *checks)],
        "events": {name: asdict(deliveries.events[name]) for name in EVENTS},
        "deliveries": [d._asdict() for d in reversed(deliveries.recent)],
        **parts,
    }


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}th{background:#f4f4f4}.num{text-align:right}
.ok{color:#1a7f37}.warn{color:#b35900;font-weight:bold}.wait{color:#666}
code{font-size:.95em}
"""
_MARK = {"ok": "\u2714 ok", "warn": "\u26a0 check", "wait": "\u2026 not yet"}


def render_html(data: dict[str, Any]) -> str:
    """The page: plain HTML, no script, no external asset; every value escaped."""
    e = html.escape

    def when(stamp: float | None) -> str:
        if stamp is None:
            return "never"
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))
        return f"{text} UTC ({_ago(data['now'] - stamp)} ago)"

    def table(head: Iterable[str], rows: Iterable[Iterable[object]], cls: str = "") -> str:
        out = [f'<table class="{e(cls)}"><tr>' + "".join(f"<th>{e(h)}</th>" for h in head)]
        out.append("</tr>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{e(str(cell))}</td>" for cell in row) + "</tr>")
        out.append("</table>")
        return "".join(out)

    checks = "".join(
        f'<tr class="check" data-state="{e(c["state"])}"><td>{e(c["name"])}</td>'
        f'<td class="{e(c["state"])}">{e(_MARK.get(c["state"], c["state"]))}</td>'
        f"<td>{e(c['detail'])}</td></tr>"
        for c in data["checklist"]
    )
    events = "".join(
        f'<tr class="event" data-event="{e(name)}"><td><code>{e(name)}</code></td>'
        f'<td class="num">{t["accepted"]}</td><td class="num">{t["stale"]}</td>'
        f'<td class="num">{t["refused"]}</td><td>{e(when(t["last_accepted"]))}</td>'
        f"<td>{e(t['last_outcome'] or '-')}</td></tr>"
        for name, t in data["events"].items()
    )
    deliveries = "".join(
        f'<tr class="delivery" data-event="{e(d["event"])}" data-outcome="{e(d["outcome"])}">'
        f"<td>{e(time.strftime('%H:%M:%S', time.gmtime(d['time'])))}</td>"
        f"<td><code>{e(d['event'])}</code></td><td>{e(d['outcome'])}</td>"
        f'<td class="num">{d["status"]}</td><td>{e(d["reason"])}</td>'
        f'<td class="num">{d["seconds"] * 1000:.1f} ms</td>'
        f"<td><code>{e(d['request_id'])}</code></td></tr>"
        for d in data["deliveries"]
    )
    token = data["last_token_position"]
    parts = []
    for title, key in (
        ("Store", "store"),
        ("Analytics", "analytics"),
        ("Remote write", "remote_write"),
        ("Archive", "archive"),
    ):
        part = data.get(key)
        if part:
            parts.append(f"<h2>{e(title)}</h2>" + table(("", ""), part.items(), key))
    listeners = ", ".join(str(x) for x in data.get("listeners", []))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Zoom QSS exporter</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Zoom QSS exporter</h1><p>Version {e(data['version'])}, up "
        f"{e(_ago(data['uptime_seconds']))}, listening on {e(listeners)}; Zoom posts to "
        f"<code>{e(data.get('webhook_path', ''))}</code>. Last delivery verified with "
        f"{e('no token yet' if token is None else f'secret token #{token}')}. "
        f'<a href="{e(data.get("telemetry_path", "/metrics"))}">metrics</a> · '
        '<a href="/status.json">status.json</a> · <a href="/-/healthy">healthy</a> · '
        '<a href="/-/ready">ready</a> · <a href="/openapi.json">OpenAPI</a></p>'
        '<h2>Setup checklist</h2><table id="checklist">'
        f"<tr><th>check</th><th>state</th><th>detail</th></tr>{checks}</table>"
        '<h2>Events</h2><table id="events"><tr><th>event</th><th>accepted</th><th>stale</th>'
        f"<th>refused</th><th>last accepted</th><th>last outcome</th></tr>{events}</table>"
        f"<h2>Last {len(data['deliveries'])} deliveries</h2>"
        '<table id="deliveries"><tr><th>time (UTC)</th><th>event</th><th>outcome</th>'
        "<th>status</th><th>reason</th><th>handling</th><th>request id</th></tr>"
        f"{deliveries}</table>{''.join(parts)}</body></html>"
    )
