"""What a converted event is made of: the data types that conversion hands to the store, the
fleet metrics and remote write (each of them reads these, none of them reads the others)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from zoom_qss_exporter import families as f

Owner = tuple[str, str, str]
"""Whose per-sample series these are: (product, meeting_id, participant_id) or
("phone", call_id, user_id)."""


class Sample(NamedTuple):
    family: f.Family
    stream: tuple[str, ...]  # label values but ``stat``: shared by the samples of one item
    value: float
    timestamp: float  # Zoom's own time of the value, Unix seconds
    stat: str = ""  # "min", "avg" or "max" for families with a ``stat`` label

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.stream, self.stat) if self.stat else self.stream


class FleetSample(NamedTuple):
    """One QoS sample for the fleet histograms and counters, keyed for redelivery checks."""

    stream: tuple[str, ...]  # the sample stream: owner plus QoS type or direction
    timestamp: float
    product: str
    qos_type: str
    latency: float | None = None
    jitter: float | None = None
    loss: float | None = None
    mos: float | None = None
    notification: str | None = None


class ClientReport(NamedTuple):
    """What a ``*_data`` event says about a participant's client and network, as Zoom wrote
    it: the analytics normalise it and match the addresses to a site, then drop them."""

    network_type: str
    connection_type: str
    data_center: str
    device: str  # "Windows", "Mac", "iOS", "Zoom Rooms", ...
    client: str  # "Web video sdk 1.12.10" in *_data_summary events
    version: str  # "5.17.11 (34827)"
    internal_addresses: tuple[str, ...]
    public_address: str


class StreamSummary(NamedTuple):
    """The average figures of one media stream over a whole participation or call leg."""

    qos_type: str  # or a phone direction
    latency: float | None
    jitter: float | None
    loss: float | None
    mos: float | None


class InfoUpdate(NamedTuple):
    """New metadata of one info series (``family.key`` labels name it)."""

    family: f.Family  # an info family: PARTICIPANT_INFO or PHONE_PARTY_INFO
    key: tuple[str, ...]  # its first ``family.key`` label values
    values: dict[str, str]  # the other labels by name ("" or missing: unknown; {}: refresh)
    timestamp: float


@dataclass(slots=True)
class Conversion:
    owner: Owner | None = None  # owner of the Lifetime.SAMPLE samples
    samples: list[Sample] = field(default_factory=list)
    info: list[InfoUpdate] = field(default_factory=list)
    departures: list[Owner] = field(default_factory=list)  # ended before the samples
    ended_calls: list[str] = field(default_factory=list)  # call ids: ended after the samples
    fleet: list[FleetSample] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # reasons, for items_skipped_total
    # for the analytics
    account: str = ""  # payload.account_id
    client: ClientReport | None = None  # from a *_data event
    site: str = ""  # where the analytics placed ``client`` (the pipeline sets it)
    wifi_rssi: float | None = None  # this minute's average RSSI (dBm), from its wifi_rssi item
    cpu_usage: float | None = None  # this minute's highest Zoom or system CPU usage (0-1)
    summary: list[StreamSummary] = field(default_factory=list)  # a *_qos_summary's streams
    summary_of: tuple[str, ...] = ()  # whose summary: the owner, or ("phone", call_id)
    summary_time: float = 0.0  # event_ts of a summary (its redeliveries repeat it)
