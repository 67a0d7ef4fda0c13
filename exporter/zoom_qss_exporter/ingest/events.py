"""Pydantic models of the 14 QSS events, as lenient as Zoom's payloads require.

Identity (meeting uuid / session id, participant id, call id) is required: without it no
series can be keyed, so such an event is rejected, as is one whose ids are longer than a label
value may be (``families.MAX_LABEL_VALUE``). Everything else is optional, unknown
fields are allowed, and QoS ``details`` stay raw: the conversion step reads them value by
value so that one bad value or item never sinks the whole event.

Each model knows every field Zoom documents for it, read or not (``_documented``: e-mails,
MAC addresses and the like are documented but deliberately never read; IP addresses are read
only to be matched to a site, then dropped), so that a field Zoom adds is counted
(:meth:`_Model.unknown_fields`) instead of passing unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from zoom_qss_exporter.families import MAX_LABEL_VALUE

__all__ = [
    "EVENT_MODELS",
    "CallQosEvent",
    "CallQosSummaryEvent",
    "DataItem",
    "Event",
    "MeetingEvent",
    "QosItem",
    "SessionEvent",
    "ValidationError",
    "as_text",
    "describe_validation_error",
    "parse_event",
]


def as_text(value: object) -> str:
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
Text = Annotated[str, BeforeValidator(as_text)]
# Unix milliseconds; bounded so that no arithmetic on it can overflow a float (year < 33658)
EventTime = Annotated[int, Field(ge=0, lt=10**15)]
# A label value that keys series: too long is refused, not cut, so two keys never become one.
Key = Annotated[str, BeforeValidator(as_text), Field(max_length=MAX_LABEL_VALUE)]
Id = Annotated[str, BeforeValidator(as_text), Field(min_length=1, max_length=MAX_LABEL_VALUE)]


class _Model(BaseModel):
    # unknown fields: accepted (kept in ``model_extra`` only to be counted), never read
    model_config = ConfigDict(extra="allow", frozen=True)
    # fields Zoom documents here that no model field reads (personal data among them)
    _documented: ClassVar[frozenset[str]] = frozenset()

    def unknown_fields(self) -> int:
        """Fields neither read nor documented, here and in the objects and lists below (QoS
        ``details`` excepted: the conversion counts those, field by field)."""
        extra = self.__pydantic_extra__
        count = sum(1 for name in extra if name not in self._documented) if extra else 0
        values = self.__dict__
        for name, many in _nested(type(self)):
            if many:
                for item in values[name]:
                    count += item.unknown_fields()
            else:
                count += values[name].unknown_fields()
        return count


@cache
def _nested(model: type[_Model]) -> tuple[tuple[str, bool], ...]:
    """The fields of ``model`` that hold models: (name, a list of them?). Read once per class:
    counting unknown fields runs on every event."""
    out = []
    for name, info in model.model_fields.items():
        kind, args = get_origin(info.annotation), get_args(info.annotation)
        if isinstance(info.annotation, type) and issubclass(info.annotation, _Model):
            out.append((name, False))
        elif kind is list and isinstance(args[0], type) and issubclass(args[0], _Model):
            out.append((name, True))
    return tuple(out)


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

    _documented = frozenset(
        {
            "pc_name",
            "domain",
            "mac_addr",
            "harddisk_id",
            "destination_ip_domain",
            "destination_ip_port",
            *(f"{what}_internal_ip_port" for what in ("signaling", "audio", "video", "as")),
        }
    )

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
    client: Text = ""  # *_data_summary: e.g. "Web video sdk 1.12.10"
    device_detail: Text = ""  # *_data_summary: e.g. "GoogleChromeSAB 130" (browser, version)
    # read only to find the participant's site (analytics): never a label, never kept
    signaling_ip_address: Text = ""  # the public address Zoom sees
    signaling_internal_ip_address: Text = ""
    audio_internal_ip_address: Text = ""
    video_internal_ip_address: Text = ""
    as_internal_ip_address: Text = ""

    @property
    def internal_addresses(self) -> tuple[str, ...]:
        found = (
            self.signaling_internal_ip_address,
            self.audio_internal_ip_address,
            self.video_internal_ip_address,
            self.as_internal_ip_address,
        )
        return tuple(dict.fromkeys(a for a in found if a))


class Participant(_Model):
    """A meeting/webinar participant; which id field is set depends on the event."""

    _documented = frozenset({"email", "participant_user_id", "id"})

    user_id: Key = ""
    participant_id: Key = ""
    user_name: Text = ""
    qos: list[QosItem] = Field(default_factory=list)
    data: list[DataItem] = Field(default_factory=list)


class SessionUser(_Model):
    _documented = frozenset({"user_key", "is_original_host"})

    id: Id
    name: Text = ""
    qos: list[QosItem] = Field(default_factory=list)
    data: list[DataItem] = Field(default_factory=list)


class MeetingObject(_Model):
    uuid: Id
    id: Text = ""  # the meeting number people type to join (Zoom sends it in some events)
    participant: Participant


class SessionObject(_Model):
    _documented = frozenset({"session_key"})

    session_id: Id
    session_name: Text = ""
    user: SessionUser


class _Payload(_Model):
    account_id: Text = ""  # the Zoom account the event is about (analytics' ``account``)


class _MeetingPayload(_Payload):
    object: MeetingObject


class _SessionPayload(_Payload):
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
    def meeting_number(self) -> str:
        return self.payload.object.id

    @property
    def session_name(self) -> str:
        return ""

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
    def meeting_number(self) -> str:
        return ""

    @property
    def session_name(self) -> str:
        return self.payload.object.session_name

    @property
    def qos(self) -> list[QosItem]:
        return self.payload.object.user.qos

    @property
    def data(self) -> list[DataItem]:
        return self.payload.object.user.data


class CallParty(_Model):
    """One side of a call in ``phone.call_qos`` (``id``) or its summary (``user_id``)."""

    _documented = frozenset({"user_email"})

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
    _documented = frozenset({"call_start_time"})

    call_id: Id
    call_end_time: Text = ""  # set once the call has ended


class CallQosObject(_CallObject):
    call_qos: CallPartySample


class CallQosSummaryObject(_CallObject):
    call_qos: list[CallPartySamples]


class _CallQosPayload(_Payload):
    object: CallQosObject


class _CallQosSummaryPayload(_Payload):
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


def parse_event(document: Mapping[str, Any]) -> Event | None:
    """The event a JSON document holds; ``None`` for an event name with no model (Zoom's new
    events are ignored, not refused). Raises ``ValidationError`` for a known event that is
    not valid. The webhook and ``replay`` both read events through here."""
    name = document.get("event")
    model = EVENT_MODELS.get(name) if isinstance(name, str) else None
    return None if model is None else model.model_validate(document)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the first offending field, for the 422 answer."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function"))
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
