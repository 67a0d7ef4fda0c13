"""Pydantic models of the 14 QSS events, as lenient as Zoom's payloads require.

Identity (meeting uuid / session id, participant id, call id) is required: without it no
series can be keyed, so such an event is rejected, as is one whose ids are longer than a label
value may be (``families.MAX_LABEL_VALUE``). Everything else is optional, unknown
fields are allowed, and QoS ``details`` stay raw: the conversion step reads them value by
value so that one bad value or item never sinks the whole event.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .families import MAX_LABEL_VALUE

__all__ = [
    "EVENT_MODELS",
    "CallQosEvent",
    "CallQosSummaryEvent",
    "DataItem",
    "MeetingEvent",
    "QosItem",
    "SessionEvent",
    "ValidationError",
    "describe_validation_error",
]


def _text(value: object) -> str:
    """Scalars become text; anything else (objects, lists, null) counts as absent. A lone
    surrogate (no UTF-8 for it: no label or archive line could hold it) becomes U+FFFD; the
    receiver refuses bodies with one, this covers every other way in (replay, tests)."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATES.sub("\ufffd", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def _item(value: object) -> object:
    """An item that is not an object, or whose details are not one, becomes an empty item
    marked invalid: it is skipped and counted later instead of sinking the whole event."""
    if isinstance(value, dict) and isinstance(value.get("details", {}), dict):
        return value
    return {"invalid": True}


_SURROGATES = re.compile("[\ud800-\udfff]")
Text = Annotated[str, BeforeValidator(_text)]
# Unix milliseconds; bounded so that no arithmetic on it can overflow a float (year < 33658)
EventTime = Annotated[int, Field(ge=0, lt=10**15)]
# A label value that keys series: too long is refused, not cut, so two keys never become one.
Key = Annotated[str, BeforeValidator(_text), Field(max_length=MAX_LABEL_VALUE)]
Id = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=MAX_LABEL_VALUE)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # unknown fields: accepted, unused


class _Item(_Model):
    """An element of a list Zoom sends; a malformed one is marked, not fatal."""

    invalid: bool = False

    @model_validator(mode="before")
    @classmethod
    def _tolerate(cls, value: object) -> object:
        return _item(value)


class QosItem(_Item):
    """One QoS entry: a ``type`` (QoS type, or direction for phone) with raw ``details``."""

    type: Text = ""
    date_time: Text = ""
    details: dict[str, Any] = Field(default_factory=dict)


class DataItem(_Item):
    """Device and network data of a participant (``*_data`` events)."""

    device: Text = ""
    location: Text = ""
    Location: Text = ""  # deprecated spelling, still sent in meeting.participant_data
    network_type: Text = ""
    connection_type: Text = ""
    data_center: Text = ""
    version: Text = ""
    microphone: Text = ""
    speaker: Text = ""
    camera: Text = ""


class Participant(_Model):
    """A meeting/webinar participant; which id field is set depends on the event."""

    user_id: Key = ""
    participant_id: Key = ""
    user_name: Text = ""
    qos: list[QosItem] = Field(default_factory=list)
    data: list[DataItem] = Field(default_factory=list)


class SessionUser(_Model):
    id: Id
    name: Text = ""
    qos: list[QosItem] = Field(default_factory=list)
    data: list[DataItem] = Field(default_factory=list)


class MeetingObject(_Model):
    uuid: Id
    participant: Participant


class SessionObject(_Model):
    session_id: Id
    user: SessionUser


class _MeetingPayload(_Model):
    object: MeetingObject


class _SessionPayload(_Model):
    object: SessionObject


class MeetingEvent(_Model):
    """Any ``meeting.*`` or ``webinar.*`` event: one participant of one instance."""

    event: Text  # chose the model; labels (product) are made from it too
    event_ts: EventTime
    payload: _MeetingPayload

    @property
    def meeting_id(self) -> str:
        return self.payload.object.uuid

    @property
    def participant_id(self) -> str:
        part = self.payload.object.participant
        if self.event.endswith("_qos"):  # per-minute events name it user_id
            return part.user_id or part.participant_id
        return part.participant_id or part.user_id

    @property
    def user_name(self) -> str:
        return self.payload.object.participant.user_name

    @property
    def qos(self) -> list[QosItem]:
        return self.payload.object.participant.qos

    @property
    def data(self) -> list[DataItem]:
        return self.payload.object.participant.data

    @model_validator(mode="after")
    def _has_participant_id(self) -> MeetingEvent:
        if not self.participant_id:
            field = "user_id" if self.event.endswith("_qos") else "participant_id"
            raise ValueError(f"payload.object.participant.{field} is required")
        return self


class SessionEvent(_Model):
    """Any ``session.*`` (Video SDK) event: one user of one session."""

    event: Text  # chose the model; labels (product) are made from it too
    event_ts: EventTime
    payload: _SessionPayload

    @property
    def meeting_id(self) -> str:
        return self.payload.object.session_id

    @property
    def participant_id(self) -> str:
        return self.payload.object.user.id

    @property
    def user_name(self) -> str:
        return self.payload.object.user.name

    @property
    def qos(self) -> list[QosItem]:
        return self.payload.object.user.qos

    @property
    def data(self) -> list[DataItem]:
        return self.payload.object.user.data


class CallParty(_Model):
    """One side of a call in ``phone.call_qos`` (``id``) or its summary (``user_id``)."""

    id: Key = ""
    user_id: Key = ""
    type: Key = ""

    @property
    def party_id(self) -> str:
        return self.id or self.user_id


class CallPartySample(CallParty):
    qos: QosItem


class CallPartySamples(CallParty):
    qos: list[QosItem] = Field(default_factory=list)


class _CallObject(_Model):
    call_id: Id


class CallQosObject(_CallObject):
    call_qos: CallPartySample


class CallQosSummaryObject(_CallObject):
    call_qos: list[CallPartySamples]


class _CallQosPayload(_Model):
    object: CallQosObject


class _CallQosSummaryPayload(_Model):
    object: CallQosSummaryObject


class CallQosEvent(_Model):
    """``phone.call_qos``: one sample of one party, every few seconds."""

    event: Text  # chose the model; labels (product) are made from it too
    event_ts: EventTime
    payload: _CallQosPayload

    @model_validator(mode="after")
    def _has_party_id(self) -> CallQosEvent:
        if not self.payload.object.call_qos.party_id:
            raise ValueError("payload.object.call_qos.id is required")
        return self


class CallQosSummaryEvent(_Model):
    """``phone.call_qos_summary``: every sample of the call, per party, at its end."""

    event: Text  # chose the model; labels (product) are made from it too
    event_ts: EventTime
    payload: _CallQosSummaryPayload


ParticipantEvent = MeetingEvent | SessionEvent
Event = ParticipantEvent | CallQosEvent | CallQosSummaryEvent

EVENT_MODELS: dict[str, type[Event]] = {
    **{
        f"{product}.participant_{kind}": MeetingEvent
        for product in ("meeting", "webinar")
        for kind in ("qos", "qos_summary", "data", "data_summary")
    },
    **{
        f"session.user_{kind}": SessionEvent
        for kind in ("qos", "qos_summary", "data", "data_summary")
    },
    "phone.call_qos": CallQosEvent,
    "phone.call_qos_summary": CallQosSummaryEvent,
}


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the first offending field, for the 422 answer."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function"))
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
