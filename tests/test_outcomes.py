"""The webhook's outcome vocabulary: the event labels are exactly the events with a model."""

from __future__ import annotations

from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.outcomes import EVENT_NAMES, OTHER_EVENT, URL_VALIDATION, event_label


def test_the_event_names_are_the_models_names() -> None:
    assert set(EVENT_MODELS) == EVENT_NAMES


def test_event_labels_are_bounded() -> None:
    assert event_label("meeting.participant_qos") == "meeting.participant_qos"
    assert event_label(URL_VALIDATION) == URL_VALIDATION
    assert event_label("meeting.something_new") == OTHER_EVENT
    assert event_label(None) == OTHER_EVENT
