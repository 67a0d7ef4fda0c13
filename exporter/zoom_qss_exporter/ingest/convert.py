"""Pure conversion of a validated event into samples, metadata, departures and fleet samples.

Nothing here holds state or knows the time: the same event always gives the same
:class:`Conversion`, which the pipeline then applies to the store and the fleet metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from zoom_qss_exporter import families as f
from zoom_qss_exporter.analytics.dimensions import MEDIA_TYPES
from zoom_qss_exporter.ingest.events import (
    CallQosEvent,
    CallQosSummaryEvent,
    DataItem,
    Event,
    MeetingEvent,
    QosItem,
    SessionEvent,
    as_text,
)
from zoom_qss_exporter.ingest.mos import mos_estimate
from zoom_qss_exporter.ingest.values import (
    InvalidValue,
    ValueParser,
    parse_cpu_pressure,
    parse_dbm,
    parse_fps,
    parse_kbps,
    parse_ms,
    parse_number,
    parse_percent,
    parse_quality,
    parse_resolution,
)
from zoom_qss_exporter.samples import (
    ClientReport,
    Conversion,
    FleetSample,
    InfoUpdate,
    Owner,
    Sample,
    StreamSummary,
)

Parser = ValueParser[float]
_fast_new = tuple.__new__  # a NamedTuple without its Python-level __new__ (hot path)
QOS_TYPES = frozenset(
    {
        *MEDIA_TYPES,
        "cpu_usage",
        "wifi_rssi",
        "notification",
        "audio_quality",
        "video_quality",
        "as_quality",
        *(
            f"{media}_device_{way}_{hop}"
            for media in ("audio", "video", "as")
            for way in ("from", "to")
            for hop in ("crc", "rwg")
        ),
    }
)
NOTIFICATIONS = frozenset({"network bandwidth low", "internet connection unstable"})
PHONE_DIRECTIONS = frozenset({"sending", "receiving"})


class UserNameMode(Enum):
    PLAIN = "plain"
    HASH = "hash"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    user_name: UserNameMode = UserNameMode.PLAIN
    hash_salt: str = field(default="", repr=False)


def convert(event: Event, options: ConvertOptions) -> Conversion:
    if isinstance(event, CallQosEvent):
        out = _call_qos(event)
    elif isinstance(event, CallQosSummaryEvent):
        out = _call_qos_summary(event)
    else:
        out = _participant_event(event, options)
    # fields Zoom added outside ``details`` (those inside are counted as they are read)
    out.skipped.extend(["unknown_field"] * event.unknown_fields())
    out.account = event.payload.account_id
    return out


# --- meetings, webinars and Video SDK sessions ------------------------------------------------

_STATS = ("min", "avg", "max")

_MINUTE_FIELDS: dict[str, tuple[f.Family, Parser, str]] = {
    "bitrate": (f.BITRATE, parse_kbps, ""),
    "latency": (f.LATENCY, parse_ms, ""),
    "jitter": (f.JITTER, parse_ms, ""),
    "avg_loss": (f.LOSS_AVG, parse_percent, ""),
    "max_loss": (f.LOSS_MAX, parse_percent, ""),
    "frame_rate": (f.FRAME_RATE, parse_fps, ""),
    "quality_score": (f.QUALITY_SCORE, parse_number, ""),
    "quality": (f.QUALITY_LEVEL, parse_quality, ""),
    "system_max_cpu_usage": (f.SYSTEM_CPU_MAX, parse_percent, ""),
    **{f"{s}_rssi": (f.RSSI, parse_dbm, s) for s in _STATS},
    **{f"zoom_{s}_cpu_usage": (f.ZOOM_CPU, parse_percent, s) for s in _STATS},
    **{f"system_{s}_cpu_pressure_level": (f.CPU_PRESSURE, parse_cpu_pressure, s) for s in _STATS},
}

_SUMMARY_FIELDS: dict[str, tuple[f.Family, Parser, str]] = {
    "system_max_cpu_usage": (f.P_SYSTEM_CPU_MAX, parse_percent, ""),
    "quality": (f.P_QUALITY_LEVEL, parse_quality, ""),
    "quality_score": (f.P_QUALITY_SCORE, parse_number, ""),
    **{f"{s}_bitrate": (f.P_BITRATE, parse_kbps, s) for s in _STATS},
    **{f"{s}_latency": (f.P_LATENCY, parse_ms, s) for s in _STATS},
    **{f"{s}_jitter": (f.P_JITTER, parse_ms, s) for s in _STATS},
    **{f"{s}_loss": (f.P_LOSS, parse_percent, s) for s in _STATS},
    **{f"{s}_frame_rate": (f.P_FRAME_RATE, parse_fps, s) for s in _STATS},
    **{f"{s}_rssi": (f.P_RSSI, parse_dbm, s) for s in _STATS},
    **{f"zoom_{s}_cpu_usage": (f.P_ZOOM_CPU, parse_percent, s) for s in _STATS},
    **{f"system_{s}_cpu_pressure_level": (f.P_CPU_PRESSURE, parse_cpu_pressure, s) for s in _STATS},
}

# Known fields that feed no gauge of their own (read elsewhere, or deliberately not exported).
_MINUTE_OTHER = frozenset({"resolution", "rssi_unit", "network_notification"})
_SUMMARY_OTHER = frozenset({"resolution", "rssi_unit"})
_RSSI_FIELDS = frozenset(f"{s}_rssi" for s in _STATS)


def _participant_event(event: MeetingEvent | SessionEvent, options: ConvertOptions) -> Conversion:
    product = event.event.partition(".")[0]
    owner: Owner = (product, event.meeting_id, event.participant_id)
    kind = event.event.rpartition("_")[2]  # qos | summary ("qos_summary" / "data_summary") | data
    out = Conversion(owner=owner)
    event_time = event.event_ts / 1000.0
    values = _info_values(event, options)
    out.info.append(InfoUpdate(f.PARTICIPANT_INFO, owner, values, event_time))
    if kind == "qos":
        for item in event.qos:
            _minute_item(item, owner, out)
    elif event.event.endswith("_qos_summary"):
        out.departures.append(owner)
        out.summary_of, out.summary_time = owner, event_time
        for item in event.qos:
            _summary_item(item, owner, event_time, out)
    if event.data:
        out.client = _client_report(event.data)
    return out


def _client_report(items: Sequence[DataItem]) -> ClientReport:
    """Later items are newer: their non-empty values win, as for the info series."""
    found: dict[str, str] = {}
    internal: tuple[str, ...] = ()
    for item in items:
        if item.invalid:
            continue
        for name in _CLIENT_FIELDS:
            text = getattr(item, name)
            if text:
                found[name] = text
        internal = item.internal_addresses or internal
    return ClientReport(
        found.get("network_type", ""),
        found.get("connection_type", ""),
        found.get("data_center", ""),
        found.get("device", ""),
        found.get("client", ""),
        found.get("version", ""),
        internal,
        found.get("signaling_ip_address", ""),
    )


_CLIENT_FIELDS = (
    "network_type",
    "connection_type",
    "data_center",
    "device",
    "client",
    "version",
    "signaling_ip_address",
)


def _known_type(item: QosItem, out: Conversion, types: frozenset[str] = QOS_TYPES) -> bool:
    if item.invalid:
        out.skipped.append("invalid_item")
        return False
    if item.type not in types:
        out.skipped.append("unknown_qos_type")
        return False
    return True


def _minute_item(item: QosItem, owner: Owner, out: Conversion) -> None:
    if not _known_type(item, out):
        return
    when = parse_time(item.date_time)
    if when is None:
        out.skipped.append("invalid_date_time")
        return
    labels = (*owner, item.type)
    details = item.details
    values = _read_fields(details, _MINUTE_FIELDS, _MINUTE_OTHER, labels, when, out)
    if "resolution" in details:
        out.samples.extend(_resolution(details, f.WIDTH, f.HEIGHT, labels, when, out))
    out.samples.append(_fast_new(Sample, (f.SAMPLE_TIMESTAMP, labels, when, when, "")))
    mos = _mos(item.type, values, "latency", "jitter", "avg_loss")
    if mos is not None:
        out.samples.append(_fast_new(Sample, (f.MOS_ESTIMATE, labels, mos, when, "")))
    elif item.type in _CONDITION_TYPES:
        _conditions(item.type, values, out)
    notification = None
    raw_note = details.get("network_notification")
    if isinstance(raw_note, str) and raw_note.strip():
        notification = raw_note.strip().lower()
        if notification not in NOTIFICATIONS:
            notification = "other"
        if any(sample.notification == notification for sample in out.fleet):
            notification = None  # Zoom's schema allows it on every item: counted once an event
    latency, jitter, loss = values.get("latency"), values.get("jitter"), values.get("avg_loss")
    fleet = (labels, when, owner[0], item.type, latency, jitter, loss, mos, notification)
    out.fleet.append(_fast_new(FleetSample, fleet))


# Audio QoS types: Zoom's latency, jitter and loss of these make an estimated MOS.
_MOS_TYPES = frozenset(
    {"audio_input", "audio_output", *(t for t in QOS_TYPES if t.startswith("audio_device_"))}
)


def _mos(
    qos_type: str, values: dict[str, float], latency: str, jitter: str, loss: str
) -> float | None:
    """The estimated MOS of an audio stream, only from all three figures: a missing one is
    unknown, not perfect."""
    if qos_type not in _MOS_TYPES:
        return None
    try:
        return mos_estimate(values[latency], values[jitter], values[loss])
    except KeyError:
        return None


_CONDITION_TYPES = frozenset({"wifi_rssi", "cpu_usage"})


def _conditions(qos_type: str, values: dict[str, float], out: Conversion) -> None:
    """The minute's Wi-Fi signal and CPU load, which the analytics read a poor stream's
    cause from."""
    if qos_type == "wifi_rssi":
        out.wifi_rssi = values.get("avg_rssi")
        return
    cpu = [
        values[name] for name in ("zoom_max_cpu_usage", "system_max_cpu_usage") if name in values
    ]
    if cpu:
        out.cpu_usage = max(cpu)


def _summary_item(item: QosItem, owner: Owner, when: float, out: Conversion) -> None:
    if not _known_type(item, out):
        return
    labels = (*owner, item.type)
    values = _read_fields(item.details, _SUMMARY_FIELDS, _SUMMARY_OTHER, labels, when, out)
    out.samples.extend(_resolution(item.details, f.P_WIDTH, f.P_HEIGHT, labels, when, out))
    if item.type in MEDIA_TYPES:
        get = values.get
        mos = _mos(item.type, values, "avg_latency", "avg_jitter", "avg_loss")
        summary = (item.type, get("avg_latency"), get("avg_jitter"), get("avg_loss"), mos)
        out.summary.append(StreamSummary(*summary))


def _read_fields(
    details: dict[str, object],
    table: dict[str, tuple[f.Family, Parser, str]],
    other: frozenset[str],
    labels: tuple[str, ...],
    when: float,
    out: Conversion,
) -> dict[str, float]:
    """Append a sample for every readable field; return the values read, by field name."""
    values: dict[str, float] = {}
    samples, skipped = out.samples, out.skipped
    rssi_unit = details.get("rssi_unit")
    rssi_ok = rssi_unit in (None, "") or (
        isinstance(rssi_unit, str) and rssi_unit.strip().lower() == "dbm"
    )
    for name, raw in details.items():
        spec = table.get(name)
        if spec is None:
            if name not in other:
                skipped.append("unknown_field")
            continue
        if not rssi_ok and name in _RSSI_FIELDS:
            skipped.append("unsupported_rssi_unit")
            continue
        family, parser, stat = spec
        try:
            value = parser.cache[raw]  # type: ignore[index]
        except (KeyError, TypeError):  # not read before, or not a string
            try:
                value = parser(raw)
            except InvalidValue:
                skipped.append("invalid_value")
                continue
        if value is not None:
            values[name] = value
            samples.append(_fast_new(Sample, (family, labels, value, when, stat)))
    return values


def _resolution(
    details: dict[str, object],
    width: f.Family,
    height: f.Family,
    labels: tuple[str, ...],
    when: float,
    out: Conversion,
) -> Iterator[Sample]:
    try:
        size = parse_resolution(details.get("resolution"))
    except InvalidValue:
        out.skipped.append("invalid_value")
        return
    if size is not None:
        yield Sample(width, labels, size[0], when)
        yield Sample(height, labels, size[1], when)


_INFO_FIELDS = (
    ("device", "device"),
    ("network_type", "network_type"),
    ("connection_type", "connection_type"),
    ("data_center", "data_center"),
    ("client_version", "version"),
    ("location", "location"),
    ("microphone", "microphone"),
    ("speaker", "speaker"),
    ("camera", "camera"),
    ("client", "client"),
    ("device_detail", "device_detail"),
)


def _info_values(event: MeetingEvent | SessionEvent, options: ConvertOptions) -> dict[str, str]:
    items: Sequence[DataItem] = event.data
    known = {
        "user_name": _user_name(event.user_name, options),
        "meeting_number": _cut(event.meeting_number),
        "session_name": _cut(event.session_name),
    }
    if not items and not any(known.values()):
        return {}  # nothing new (most per-minute events): the info series is only refreshed
    values = dict.fromkeys(f.INFO_LABELS[3:], "")
    values.update(known)
    for item in items:  # later items are newer: their non-empty values win
        if item.invalid:
            continue
        for label, source in _INFO_FIELDS:
            text = getattr(item, source) or (item.Location if source == "location" else "")
            if text:
                values[label] = _cut(text)
    return values


def _user_name(name: str, options: ConvertOptions) -> str:
    if not name or options.user_name is UserNameMode.OFF:
        return ""
    if options.user_name is UserNameMode.HASH:
        digest = hashlib.sha256((options.hash_salt + name).encode("utf-8")).hexdigest()
        return digest[:16]
    return _cut(name)


def _cut(text: str) -> str:
    """A descriptive label value within ``MAX_LABEL_VALUE`` characters; a cut one ends in "…"."""
    if len(text) <= f.MAX_LABEL_VALUE:
        return text
    return text[: f.MAX_LABEL_VALUE - 1] + "…"


_TIMES: dict[str, float | None] = {}


def parse_time(text: str) -> float | None:
    """Zoom's ISO 8601 ``date_time`` ("2021-07-13T21:44:51Z") to Unix seconds.

    The items of one event, and the events of one minute, share their ``date_time``."""
    try:
        return _TIMES[text]
    except KeyError:
        if len(_TIMES) >= 4096:
            _TIMES.clear()
        when = _TIMES[text] = _read_time(text)
        return when


def _read_time(text: str) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # Zoom's times are UTC; tolerate a missing "Z"
        return moment.replace(tzinfo=_UTC).timestamp()
    return moment.timestamp()


_UTC = datetime.fromisoformat("1970-01-01T00:00:00+00:00").tzinfo


# --- Zoom Phone -------------------------------------------------------------------------------

_PHONE_FIELDS: dict[str, tuple[f.Family, f.Family | None, Parser]] = {
    # field: (per-sample family, whole-call family with stat, parser)
    "mos": (f.PHONE_MOS, f.CALL_MOS, parse_number),
    "jitter": (f.PHONE_JITTER, f.CALL_JITTER, parse_ms),
    "network_delay": (f.PHONE_DELAY, f.CALL_DELAY, parse_ms),
    "avg_loss": (f.PHONE_LOSS_AVG, f.CALL_LOSS, parse_percent),
    "max_loss": (f.PHONE_LOSS_MAX, None, parse_percent),
    "bitrate": (f.PHONE_BITRATE, f.CALL_BITRATE, parse_kbps),
}
_PHONE_OTHER = frozenset({"network"})


def _phone_values(details: dict[str, object], out: Conversion) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, raw in details.items():
        spec = _PHONE_FIELDS.get(name)
        if spec is None:
            if name not in _PHONE_OTHER:
                out.skipped.append("unknown_field")
            continue
        try:
            value = spec[2](raw)
        except InvalidValue:
            out.skipped.append("invalid_value")
            continue
        if value is not None:
            values[name] = value
    return values


def _network(details: dict[str, object], out: Conversion) -> str:
    """``network`` as Zoom sends it ("LAN", "WiFi", "VPN"); "" when absent or unreadable."""
    raw = details.get("network")
    if isinstance(raw, str):  # raw from details: lone surrogates go as in every other label
        return _cut(as_text(raw).strip())
    if raw is not None:
        out.skipped.append("invalid_value")
    return ""


def _party_info(call_id: str, party_id: str, role: str, network: str, when: float) -> InfoUpdate:
    return InfoUpdate(f.PHONE_PARTY_INFO, (call_id, party_id, role), {"network": network}, when)


def _call_ended(call_end_time: str, out: Conversion) -> bool:
    """A readable ``call_end_time`` says the call is over; Zoom leaves it "" before."""
    if not call_end_time.strip():
        return False
    if parse_time(call_end_time.strip()) is None:
        out.skipped.append("invalid_date_time")
        return False
    return True


def _call_qos(event: CallQosEvent) -> Conversion:
    call = event.payload.object
    party = call.call_qos
    owner: Owner = ("phone", call.call_id, party.party_id)
    out = Conversion(owner=owner)
    sample = party.qos
    network = _network(sample.details, out) if not sample.invalid else ""
    out.info.append(
        _party_info(call.call_id, party.party_id, party.type, network, event.event_ts / 1000.0)
    )
    out.client = ClientReport(network, "", "", "", "", "", (), "")
    if _call_ended(call.call_end_time, out):
        out.ended_calls.append(call.call_id)
    if not _known_type(sample, out, PHONE_DIRECTIONS):
        return out
    when = parse_time(sample.date_time)
    if when is None:
        out.skipped.append("invalid_date_time")
        return out
    labels = (call.call_id, party.party_id, party.type, sample.type)
    values = _phone_values(sample.details, out)
    for name, value in values.items():
        out.samples.append(Sample(_PHONE_FIELDS[name][0], labels, value, when))
    out.fleet.append(
        FleetSample(
            stream=labels,
            timestamp=when,
            product="phone",
            qos_type=sample.type,
            latency=values.get("network_delay"),
            jitter=values.get("jitter"),
            loss=values.get("avg_loss"),
            mos=values.get("mos"),
        )
    )
    return out


def _call_qos_summary(event: CallQosSummaryEvent) -> Conversion:
    call = event.payload.object
    when = event.event_ts / 1000.0
    out = Conversion(summary_of=("phone", call.call_id), summary_time=when)
    if _call_ended(call.call_end_time, out):
        out.ended_calls.append(call.call_id)
    for party in call.call_qos:
        if not party.party_id:
            out.skipped.append("invalid_item")
            continue
        out.departures.append(("phone", call.call_id, party.party_id))
        per_direction: dict[str, dict[str, list[float]]] = {}
        network = ""
        for sample in party.qos:
            if not _known_type(sample, out, PHONE_DIRECTIONS):
                continue
            network = _network(sample.details, out) or network  # the last one Zoom names
            series = per_direction.setdefault(sample.type, {})
            for name, value in _phone_values(sample.details, out).items():
                series.setdefault(name, []).append(value)
        out.info.append(_party_info(call.call_id, party.party_id, party.type, network, when))
        for direction, series in per_direction.items():
            means = {name: sum(values) / len(values) for name, values in series.items()}
            figures = ("network_delay", "jitter", "avg_loss", "mos")
            out.summary.append(StreamSummary(direction, *(means.get(name) for name in figures)))
            labels = (call.call_id, party.party_id, party.type, direction)
            for name, values in series.items():
                family = _PHONE_FIELDS[name][1]
                if family is None:  # max_loss: only its peak is meaningful
                    out.samples.append(Sample(f.CALL_LOSS_PEAK, labels, max(values), when))
                    continue
                for stat, value in zip(
                    _STATS, (min(values), sum(values) / len(values), max(values)), strict=True
                ):
                    out.samples.append(Sample(family, labels, value, when, stat))
    return out
