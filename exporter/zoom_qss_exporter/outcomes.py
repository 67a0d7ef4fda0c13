"""The webhook's outcome vocabulary: what a delivery became, and the bounded event labels of
``zoom_qss_exporter_events_total`` (part of the metric contract)."""

from __future__ import annotations

from enum import Enum

EVENT_NAMES = frozenset(
    {
        "meeting.participant_qos",
        "meeting.participant_qos_summary",
        "meeting.participant_data",
        "meeting.participant_data_summary",
        "webinar.participant_qos",
        "webinar.participant_qos_summary",
        "webinar.participant_data",
        "webinar.participant_data_summary",
        "session.user_qos",
        "session.user_qos_summary",
        "session.user_data",
        "session.user_data_summary",
        "phone.call_qos",
        "phone.call_qos_summary",
    }
)
"""The 14 QSS events (``events.EVENT_MODELS`` has a model for each, and checks it)."""

URL_VALIDATION = "endpoint.url_validation"
OTHER_EVENT = "other"  # an authentic event whose name we do not know
UNVERIFIED = "unverified"  # the signature failed, so the claimed name is not trusted


class Outcome(Enum):
    ACCEPTED = "accepted"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_PAYLOAD = "invalid_payload"
    UNKNOWN_EVENT = "unknown_event"
    STALE = "stale"
    REJECTED_OVERLOAD = "rejected_overload"
    RATE_LIMITED = "rate_limited"  # failed the signature check too often (429)
    ERROR = "error"  # answered 500: a bug, counted so that failing events are never silent


def event_label(name: object) -> str:
    """Bounded label value for an event name taken from an authenticated body."""
    if isinstance(name, str) and (name in EVENT_NAMES or name == URL_VALIDATION):
        return name
    return OTHER_EVENT
