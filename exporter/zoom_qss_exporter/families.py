"""The metric contract: every per-participant and per-call family, its labels and lifetime.

This is the one place names and labels are spelled; conversion, the store, the exposition and
the metrics reference (docs/metrics.md, written by ``python -m docgen``) all refer to these
objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_LABEL_VALUE = 256
"""Characters a label value may have. Remote-write receivers refuse longer ones (Mimir and
Cortex: 2,048 bytes by default, and the whole request with them), and no Zoom id or device
name comes near it. Values that key series (ids, a call party's role) longer than this are
refused with the event; descriptive ones (the info series' labels) are cut, ending in "…"."""


class Lifetime(Enum):
    """Which TTL a series lives by (``--store.ttl`` or ``--store.summary-ttl``)."""

    SAMPLE = "sample"  # per-minute and phone per-sample series; ended by a departure
    SUMMARY = "summary"  # participation, whole-call and info series


@dataclass(frozen=True, slots=True, eq=False)  # identity: hashed on every sample written
class Family:
    name: str
    help: str
    labels: tuple[str, ...]
    lifetime: Lifetime
    source: str  # the Zoom field(s) it comes from, for the reference
    # An info family (value 1, metadata in its labels) has one series per owner, named by
    # its first ``key`` labels; the others describe it, and a change of them replaces the
    # series. 0: every label but ``stat`` names a series.
    key: int = 0


PARTICIPANT = ("product", "meeting_id", "participant_id", "qos_type")
PARTICIPANT_STAT = (*PARTICIPANT, "stat")
CALL_PARTY = ("call_id", "user_id", "role", "direction")
CALL_PARTY_STAT = (*CALL_PARTY, "stat")
INFO_LABELS = (
    "product",
    "meeting_id",
    "participant_id",
    "user_name",
    "device",
    "network_type",
    "connection_type",
    "data_center",
    "site",
    "client_version",
    "location",
    "microphone",
    "speaker",
    "camera",
    "meeting_number",
    "session_name",
    "client",
    "device_detail",
)
# The info labels only a data item gives (``*_data``, ``*_data_summary``): all but the owner's
# and those that come with QoS events too.
INFO_FROM_DATA = tuple(
    label
    for label in INFO_LABELS[3:]
    if label not in ("user_name", "meeting_number", "session_name")
)
PARTY_INFO_LABELS = ("call_id", "user_id", "role", "network")


def _minute(name: str, help: str, source: str, labels: tuple[str, ...] = PARTICIPANT) -> Family:
    return Family(f"zoom_qos_{name}", help, labels, Lifetime.SAMPLE, source)


def _stay(name: str, help: str, source: str, labels: tuple[str, ...] = PARTICIPANT) -> Family:
    return Family(f"zoom_qos_participation_{name}", help, labels, Lifetime.SUMMARY, source)


def _phone(name: str, help: str, source: str) -> Family:
    return Family(f"zoom_phone_{name}", help, CALL_PARTY, Lifetime.SAMPLE, source)


def _call(name: str, help: str, source: str, labels: tuple[str, ...] = CALL_PARTY_STAT) -> Family:
    return Family(f"zoom_phone_call_{name}", help, labels, Lifetime.SUMMARY, source)


# Per-minute gauges (*.participant_qos, session.user_qos).
BITRATE = _minute("bitrate_bytes_per_second", "Bitrate in the last minute.", "bitrate (kbps)")
LATENCY = _minute("latency_seconds", "Latency in the last minute.", "latency (ms)")
JITTER = _minute("jitter_seconds", "Jitter in the last minute.", "jitter (ms)")
LOSS_AVG = _minute(
    "packet_loss_avg_ratio", "Average packet loss in the last minute (0-1).", "avg_loss (%)"
)
LOSS_MAX = _minute(
    "packet_loss_max_ratio", "Maximum packet loss in the last minute (0-1).", "max_loss (%)"
)
FRAME_RATE = _minute("frame_rate_fps", "Video frame rate in the last minute.", "frame_rate")
WIDTH = _minute("resolution_width_pixels", "Video width.", "resolution (W*H)")
HEIGHT = _minute("resolution_height_pixels", "Video height.", "resolution (W*H)")
QUALITY_SCORE = _minute("quality_score", "Zoom's quality score.", "quality_score")
QUALITY_LEVEL = _minute(
    "quality_level", "Zoom's quality: good=3, fair=2, poor=1, bad=0.", "quality"
)
RSSI = _minute(
    "wifi_rssi_dbm", "Wi-Fi signal strength (RSSI).", "min/avg/max_rssi", PARTICIPANT_STAT
)
ZOOM_CPU = _minute(
    "zoom_cpu_usage_ratio",
    "CPU used by the Zoom client (0-1).",
    "zoom_min/avg/max_cpu_usage (%)",
    PARTICIPANT_STAT,
)
SYSTEM_CPU_MAX = _minute(
    "system_cpu_usage_max_ratio",
    "Maximum CPU used by the whole system (0-1).",
    "system_max_cpu_usage (%)",
)
CPU_PRESSURE = _minute(
    "system_cpu_pressure_level",
    "System CPU pressure: normal=0, fair=1, serious=2, critical=3.",
    "system_min/avg/max_cpu_pressure_level",
    PARTICIPANT_STAT,
)
SAMPLE_TIMESTAMP = _minute(
    "sample_timestamp_seconds", "Zoom's time of the newest sample (Unix seconds).", "date_time"
)
MOS_ESTIMATE = _minute(
    "mos_estimate",
    "Estimated MOS (1-5) of audio, from latency, jitter and loss (simplified E-model).",
    "latency, jitter, avg_loss (audio types)",
)

# Participation gauges (*_qos_summary): a participant's whole stay.
P_BITRATE = _stay(
    "bitrate_bytes_per_second",
    "Bitrate over the stay.",
    "min/avg/max_bitrate (kbps)",
    PARTICIPANT_STAT,
)
P_LATENCY = _stay(
    "latency_seconds", "Latency over the stay.", "min/avg/max_latency (ms)", PARTICIPANT_STAT
)
P_JITTER = _stay(
    "jitter_seconds", "Jitter over the stay.", "min/avg/max_jitter (ms)", PARTICIPANT_STAT
)
P_LOSS = _stay(
    "packet_loss_ratio",
    "Packet loss over the stay (0-1).",
    "min/avg/max_loss (%)",
    PARTICIPANT_STAT,
)
P_FRAME_RATE = _stay(
    "frame_rate_fps",
    "Video frame rate over the stay.",
    "min/avg/max_frame_rate",
    PARTICIPANT_STAT,
)
P_RSSI = _stay(
    "wifi_rssi_dbm",
    "Wi-Fi signal strength over the stay.",
    "min/avg/max_rssi",
    PARTICIPANT_STAT,
)
P_ZOOM_CPU = _stay(
    "zoom_cpu_usage_ratio",
    "CPU used by the Zoom client over the stay (0-1).",
    "zoom_min/avg/max_cpu_usage (%)",
    PARTICIPANT_STAT,
)
P_CPU_PRESSURE = _stay(
    "system_cpu_pressure_level",
    "System CPU pressure over the stay: normal=0, fair=1, serious=2, critical=3.",
    "system_min/avg/max_cpu_pressure_level",
    PARTICIPANT_STAT,
)
P_SYSTEM_CPU_MAX = _stay(
    "system_cpu_usage_max_ratio",
    "Maximum system CPU over the stay (0-1).",
    "system_max_cpu_usage (%)",
)
P_QUALITY_LEVEL = _stay(
    "quality_level", "Quality over the stay: good=3, fair=2, poor=1, bad=0.", "quality"
)
P_QUALITY_SCORE = _stay("quality_score", "Quality score over the stay.", "quality_score")
P_WIDTH = _stay("resolution_width_pixels", "Video width over the stay.", "resolution")
P_HEIGHT = _stay("resolution_height_pixels", "Video height over the stay.", "resolution")

# Phone, per sample (phone.call_qos).
PHONE_MOS = _phone("mos", "Mean opinion score (1-5) of the newest sample.", "mos")
PHONE_JITTER = _phone("jitter_seconds", "Jitter of the newest sample.", "jitter (ms)")
PHONE_DELAY = _phone(
    "network_delay_seconds", "Network delay of the newest sample.", "network_delay (ms)"
)
PHONE_LOSS_AVG = _phone(
    "packet_loss_avg_ratio", "Average packet loss of the newest sample (0-1).", "avg_loss (%)"
)
PHONE_LOSS_MAX = _phone(
    "packet_loss_max_ratio", "Maximum packet loss of the newest sample (0-1).", "max_loss (%)"
)
PHONE_BITRATE = _phone(
    "bitrate_bytes_per_second", "Bitrate of the newest sample.", "bitrate (kbps)"
)

# Phone, whole call (phone.call_qos_summary): statistics over the call's samples.
CALL_MOS = _call("mos", "Mean opinion score over the call.", "mos")
CALL_JITTER = _call("jitter_seconds", "Jitter over the call.", "jitter (ms)")
CALL_DELAY = _call("network_delay_seconds", "Network delay over the call.", "network_delay (ms)")
CALL_LOSS = _call("packet_loss_ratio", "Average packet loss over the call (0-1).", "avg_loss (%)")
CALL_BITRATE = _call("bitrate_bytes_per_second", "Bitrate over the call.", "bitrate (kbps)")
CALL_LOSS_PEAK = _call(
    "packet_loss_peak_ratio",
    "Largest maximum packet loss of the call (0-1).",
    "max_loss (%)",
    CALL_PARTY,
)

# Metadata (*_data, *_data_summary and the identity fields of every event).
PARTICIPANT_INFO = Family(
    "zoom_participant_info",
    "Device, network and client of a participant, and the meeting's number or session's "
    "name (value 1).",
    INFO_LABELS,
    Lifetime.SUMMARY,
    "device, network_type, connection_type, data_center, version, location, microphone, "
    "speaker, camera, client, device_detail, user_name, object.id, session_name; site: the "
    "internal and public addresses matched to --analytics.sites-file",
    key=3,
)
PHONE_PARTY_INFO = Family(
    "zoom_phone_party_info",
    "The network of a call party, as Zoom names it (LAN, WiFi, VPN...; value 1).",
    PARTY_INFO_LABELS,
    Lifetime.SUMMARY,
    "network",
    key=3,
)
INFO_FAMILIES = (PARTICIPANT_INFO, PHONE_PARTY_INFO)

ALL_FAMILIES: tuple[Family, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Family)
)
