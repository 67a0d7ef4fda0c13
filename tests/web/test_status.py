"""The status page's parts on their own: the deliveries it keeps (bounded, no personal data),
the setup checklist's rules one by one, and HTML that escapes what came from the internet."""

from __future__ import annotations

from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.web.status import (
    HOUR,
    RING,
    Deliveries,
    checklist,
    render_html,
    snapshot,
)

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def fresh() -> tuple[Deliveries, Clock]:
    clock = Clock()
    return Deliveries(clock=clock), clock


def accept(deliveries: Deliveries, event: str, lag: float = 1.0, token: int = 1) -> None:
    deliveries.record(
        event, "accepted", 200, "", 0.001, "rid", token, event_ts=deliveries.clock() - lag
    )


def states(deliveries: Deliveries, now: float) -> dict[str, str]:
    return {c.name: c.state for c in checklist(deliveries, now, "/webhook")}


def test_the_ring_keeps_the_last_deliveries_and_cuts_request_ids() -> None:
    deliveries, clock = fresh()
    for n in range(RING + 50):
        clock.now += 1
        deliveries.record("unverified", "invalid_signature", 401, "bad", 0.0, "x" * 10_000 + str(n))
    assert len(deliveries.recent) == RING
    assert deliveries.recent[-1].time == clock.now
    assert all(len(d.request_id) <= 40 for d in deliveries.recent)
    assert deliveries.events["unverified"].refused == RING + 50


def test_an_unbounded_event_name_never_adds_a_row() -> None:
    deliveries, _ = fresh()
    rows = set(deliveries.events)
    deliveries.record("meeting.something_new", "accepted", 200, "", 0.0, "")
    assert set(deliveries.events) == rows
    assert deliveries.events["other"].accepted == 1


def test_just_started_nothing_seen_is_waiting_not_wrong() -> None:
    deliveries, clock = fresh()
    assert set(states(deliveries, clock.now + 60).values()) == {"wait"}


def test_no_event_for_an_hour_warns_and_names_signature_failures() -> None:
    deliveries, clock = fresh()
    deliveries.record("unverified", "invalid_signature", 401, "signature mismatch", 0.0, "")
    now = clock.now + HOUR + 1
    (check,) = [c for c in checklist(deliveries, now, "/zoom") if c.name == "events arriving"]
    assert check.state == "warn"
    assert "/zoom" in check.detail and "secret token is probably the old one" in check.detail


def test_events_arriving_within_the_hour_is_ok() -> None:
    deliveries, clock = fresh()
    accept(deliveries, "meeting.participant_qos")
    assert states(deliveries, clock.now + HOUR - 1)["events arriving"] == "ok"
    assert states(deliveries, clock.now + HOUR + 1)["events arriving"] == "warn"


def test_url_validation_within_72_hours() -> None:
    deliveries, clock = fresh()
    deliveries.record("endpoint.url_validation", "accepted", 200, "", 0.0, "", 1)
    assert states(deliveries, clock.now + 71 * HOUR)["URL validation"] == "ok"
    assert states(deliveries, clock.now + 73 * HOUR)["URL validation"] == "warn"


def test_a_refused_url_validation_warns_at_once() -> None:
    deliveries, clock = fresh()
    deliveries.record("endpoint.url_validation", "invalid_signature", 401, "mismatch", 0.0, "")
    assert states(deliveries, clock.now + 1)["URL validation"] == "warn"


def test_summary_and_data_events_are_asked_for_once_events_arrive() -> None:
    deliveries, clock = fresh()
    accept(deliveries, "meeting.participant_qos")
    got = states(deliveries, clock.now + 1)
    assert got["summary events"] == "warn" and got["data events"] == "warn"
    accept(deliveries, "phone.call_qos_summary")
    accept(deliveries, "session.user_data")
    got = states(deliveries, clock.now + 1)
    assert got["summary events"] == "ok" and got["data events"] == "ok"


def test_clock_skew_uses_the_median_so_zooms_late_retries_do_not_warn() -> None:
    deliveries, clock = fresh()
    for _ in range(10):
        accept(deliveries, "meeting.participant_qos", lag=0.8)
    for _ in range(3):
        accept(deliveries, "meeting.participant_qos", lag=300)  # Zoom's retries, minutes late
    assert states(deliveries, clock.now)["clock"] == "ok"
    for _ in range(20):
        accept(deliveries, "meeting.participant_qos", lag=-30)  # our clock is behind
    assert states(deliveries, clock.now)["clock"] == "warn"


def test_the_token_position_not_the_token() -> None:
    deliveries, clock = fresh()
    accept(deliveries, "meeting.participant_qos", token=2)
    data = snapshot(deliveries, clock.now, "/webhook", {})
    assert data["last_token_position"] == 2
    assert set(data["events"]) == {*EVENT_MODELS, "endpoint.url_validation"}


def test_the_page_escapes_everything_from_the_internet() -> None:
    deliveries, clock = fresh()
    deliveries.record(
        "unverified", "invalid_payload", 400, "<script>alert(1)</script>", 0.0, '"><img src=x>'
    )
    page = render_html(snapshot(deliveries, clock.now, "/webhook", {"listeners": ["[::]:9981"]}))
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x&gt;" in page
    assert "<script" not in page.lower(), "no script of its own either"
    assert "http://" not in page and "https://" not in page, "no external asset"
