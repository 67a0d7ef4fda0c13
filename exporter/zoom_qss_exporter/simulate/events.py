"""Pure builders for the simulator: a fleet of meetings, webinars, Video SDK sessions and phone
calls, and the 14 QSS events Zoom would send about it.

Everything draws from one seeded ``random.Random`` and takes the send time as an argument, so a
seed and a clock give the same events: tests and benchmarks need no network. The shapes mirror
Zoom's published examples key for key, including their inconsistencies between products.

The fleet works at the offices of :data:`SITES` (and from home: remote workers), and each
degraded participant has one known cause, so that quality analytics has answers to find. A
stream-minute (one per-minute media item, or one phone sample) is poor when latency > 400 ms,
jitter > 30 ms, avg_loss > 10 % or an audio MOS < 3.5; its cause is the first that applies of
``wifi`` (the minute's avg_rssi <= -70 dBm), ``cpu`` (its Zoom or system max CPU >= 90 %),
``network`` (loss or jitter over) and ``latency`` (latency alone over). Here:

- everyone at the weak-Wi-Fi site is on Wi-Fi at -85 to -72 dBm, with high jitter and loss
  and low latency, and a healthy CPU: every stream-minute poor, cause ``wifi``;
- everyone on the CPU-starved client version has a system CPU at 95 % or more, high jitter
  and loss, low latency, and a good signal if on Wi-Fi: cause ``cpu``;
- a share of the others (``degraded_share``) has a bad network, with a good signal and a
  healthy CPU: high jitter, loss and latency (cause ``network``) or, for ``latency_share`` of
  them, a latency of 450 ms or more alone (cause ``latency``);
- healthy participants stay far inside every threshold, at -60 to -40 dBm and under 60 % CPU.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import math
import random
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from zoom_qss_exporter.analytics.dimensions import MEDIA_TYPES

Event = dict[str, Any]

PRODUCTS = ("meeting", "webinar", "session")

# -- quality analytics: stream-minutes, sites, and the causes the fleet has -------------------

# One per-minute QoS item of these types is one stream-minute (and so is one phone.call_qos
# sample); cpu_usage, wifi_rssi and the rest are not streams: the analytics' own list.
STREAM_TYPES = MEDIA_TYPES
QOS_EVENTS = ("meeting.participant_qos", "webinar.participant_qos", "session.user_qos")
PHONE_QOS_EVENT = "phone.call_qos"

Cause = Literal["wifi", "cpu", "network", "latency"]
CAUSES: tuple[Cause, ...] = ("wifi", "cpu", "network", "latency")  # in the order they apply
GOOD = "good"  # the manifest's and report's key for stream-minutes that are not poor


@dataclass(frozen=True)
class Site:
    """An office: its participants' LAN addresses come from ``internal``, their public
    (signaling) address from ``egress``, the office's NAT range."""

    name: str
    internal: str
    egress: str
    location: str  # Zoom's "location" of its participants
    weight: int  # share of the fleet, relative to the other sites and REMOTE_WEIGHT

    @property
    def subnets(self) -> tuple[str, str]:
        return self.internal, self.egress


# The offices, from documentation ranges (RFC 5737 egress, RFC 1918 and RFC 4193 LANs).
SITES = (
    Site("Paris HQ", "10.20.0.0/16", "198.51.100.0/26", "Paris (FR)", 30),
    Site("Lyon Office", "10.30.0.0/16", "198.51.100.64/26", "Lyon (FR)", 10),
    Site("New York Office", "10.40.0.0/16", "198.51.100.128/26", "New York (US)", 20),
    Site("Singapore Office", "10.50.0.0/16", "198.51.100.192/26", "Singapore (SG)", 10),
    Site("Berlin Lab", "fd00:20:1::/48", "203.0.113.0/26", "Berlin (DE)", 10),
)
# Remote workers: a home LAN and a home public address, neither in any site. The exporter
# places a public address that matches no site at "external".
EXTERNAL = "external"
REMOTE_LAN = "192.168.0.0/16"
REMOTE_PUBLIC = "203.0.113.128/25"
REMOTE_WEIGHT = 20
WEAK_WIFI_SITE = "Lyon Office"  # default: everyone there is on a weak Wi-Fi
VERSIONS = ("5.17.11.34827", "5.16.10.26186", "6.0.2.33403")  # of the Zoom client
_VERSION_WEIGHTS = (60, 15, 25)
CPU_STARVED_VERSION = "5.16.10.26186"  # default: everyone on it has a saturated CPU
LATENCY_SHARE = 0.25  # default: of the --degraded-share participants, those with latency only


def sites_yaml(sites: Sequence[Site] = SITES) -> str:
    """The sites in the exporter's ``--analytics.sites-file`` format (strings JSON-quoted,
    which YAML reads as they are: names with spaces, IPv6 ranges with colons)."""
    lines = [
        "# The sites of zoom-qss-exporter simulate: each office's LAN and egress (NAT) ranges.",
        "sites:",
    ]
    for site in sites:
        lines.append(f"  - name: {json.dumps(site.name)}")
        lines.append(f"    subnets: [{', '.join(json.dumps(s) for s in site.subnets)}]")
    return "\n".join(lines) + "\n"


def stream_minutes(event: Event) -> tuple[str, int]:
    """Whose stream-minutes ``event`` carries (participant id, or call id for phone) and how
    many: each media item of a per-minute QoS event, each ``phone.call_qos`` sample; ``("",
    0)`` for the other events."""
    name, obj = event["event"], event["payload"]["object"]
    if name == PHONE_QOS_EVENT:
        return obj["call_id"], 1
    if name not in QOS_EVENTS:
        return "", 0
    if "user" in obj:
        who, items = obj["user"]["id"], obj["user"]["qos"]
    else:
        who, items = obj["participant"]["user_id"], obj["participant"]["qos"]
    return who, sum(item["type"] in STREAM_TYPES for item in items)


# (healthy, degraded) ranges; the gap between them is what tests and alerts rely on. Which
# figures of a participant are drawn degraded depends on its cause (_DEGRADED).
_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "audio_bitrate": ((40, 80), (8, 30)),
    "video_bitrate": ((600, 1800), (80, 300)),
    "phone_bitrate": ((24, 80), (6, 20)),
    "latency": ((20, 80), (300, 600)),
    "jitter": ((1, 10), (40, 120)),
    "avg_loss": ((0, 0.5), (5, 15)),
    "extra_loss": ((0, 0.5), (2, 15)),  # max_loss - avg_loss
    "frame_rate": ((24, 30), (5, 15)),
    "quality_score": ((4.0, 4.5), (1.5, 2.9)),
    "mos": ((4.0, 4.5), (2.0, 3.2)),
}
_MEDIA_FIGURES = frozenset(_RANGES) - {"phone_bitrate", "mos"}
# Whose figures are degraded: a bad network has all of them; a weak Wi-Fi and a saturated CPU
# lose and delay packets (jitter, loss) near the client, not on the way (latency stays low).
_DEGRADED: dict[Cause | None, frozenset[str]] = {
    None: frozenset(),
    "network": _MEDIA_FIGURES,
    "wifi": _MEDIA_FIGURES - {"latency"},
    "cpu": _MEDIA_FIGURES - {"latency"},
    "latency": frozenset({"quality_score"}),
}
_FAR_LATENCY = (450, 700)  # ms: cause latency, alone over its threshold every minute
_RSSI = {"healthy": (-60, -40), "weak": (-85, -72)}  # avg_rssi, dBm
_HEALTHY_CPU = (4, 20)  # zoom_avg_cpu_usage, %; healthy: every figure stays under 60 %
_STARVED_CPU = (45, 75)  # zoom_avg_cpu_usage, %, of the CPU-starved; system_max >= 95 %
_MEDIA_TYPES = ("audio_input", "audio_output", "video_input", "video_output")
_SUMMARY_TYPES = (*_MEDIA_TYPES, "cpu_usage", "wifi_rssi")
_PRESSURE = ("normal", "fair", "serious", "critical")
_QUALITY = ((3.5, "good"), (3.0, "fair"), (2.0, "poor"), (-math.inf, "bad"))  # score -> level
_NOTIFICATIONS = ("network bandwidth low", "internet connection unstable")
_NOTIFICATION_CHANCE = 0.3  # per round, degraded participants only
_MAX_CALL_ROUNDS = 120  # calls end by themselves, which bounds the samples a summary replays

_FIRST = ("Ada", "Grace", "Alan", "Linus", "Zoë", "José", "Mei", "Ravi", "Amara", "Chloé")
_LAST = ("Lovelace", "Hopper", "Turing", "Müller", "García", "Chen", "Patel", "Okafor", "Dubois")
_DEVICES = {
    "Windows": "Windows 11",
    "Mac": "macOS 14.5",
    "iOS": "iOS 17.5",
    "Android": "Android 14",
}
_NETWORKS, _NETWORK_WEIGHTS = ("Wired", "Wifi", "Cellular"), (40, 50, 10)
_MICROPHONES = ("Plantronics BT600", "MacBook Pro Microphone", "Jabra Evolve2 65")
_SPEAKERS = ("Plantronics BT600", "MacBook Pro Speakers", "Jabra Evolve2 65")
_CAMERAS = ("FaceTime HD Camera", "Logitech BRIO", "Integrated Camera")
_LOCATIONS = ("New York (US)", "Sunnyvale (US)", "Amsterdam (NL)", "Zürich (CH)", "São Paulo (BR)")
_DATA_CENTERS = ("SC", "NY", "AMS (Sub)", "SG", "DV")
_CONNECTIONS = ("UDP", "TCP", "P2P", "SSL")
_PHONE_NETWORKS = ("LAN", "WiFi", "VPN")
_URLSAFE = string.ascii_letters + string.digits + "-_"


@dataclass
class _Stat:
    """Running min/avg/max of one field as sent, so a summary agrees with the samples."""

    unit: str
    decimals: int
    low: float = math.inf
    high: float = -math.inf
    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.total += value
        self.count += 1

    @property
    def mean(self) -> float:
        return self.total / self.count


@dataclass
class Participant:
    participant_id: str  # user_id / participant_id in meetings, user.id in sessions
    user_name: str
    email: str
    participant_user_id: str
    zoom_user_id: str  # "id" in the qos summaries
    user_key: str
    is_host: bool
    cause: Cause | None  # why its stream-minutes are poor; None: healthy, never poor
    site: str  # a name of SITES, or EXTERNAL for a remote worker
    resolution: str
    data: dict[str, str]  # the join-time item of *_data events
    left: bool = False
    last_second: int = 0
    stats: dict[str, dict[str, _Stat]] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return self.cause is not None

    @property
    def wifi(self) -> bool:
        return self.data["network_type"] == "Wifi"


@dataclass
class Instance:
    product: str  # meeting | webinar | session
    meeting_id: str  # object.uuid, or session_id for sessions
    number: str  # meeting/webinar number (object.id), or session_key
    name: str  # session_name
    account_id: str
    participants: list[Participant] = field(default_factory=list)


@dataclass
class CallParty:
    role: str  # caller | callee
    user_id: str
    email: str
    network: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    last_second: dict[str, int] = field(default_factory=dict)  # by direction


@dataclass
class PhoneCall:
    call_id: str
    degraded: bool  # a bad network: every sample poor, cause "network" (jitter)
    account_id: str
    caller: CallParty
    callee: CallParty
    started: int | None = None  # Unix second of the first sample
    rounds: int = 0
    ended: bool = False


Turn = tuple[Instance, Participant] | PhoneCall


def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


class Fleet:
    """What is going on in the accounts: instances with participants, and phone calls."""

    def __init__(
        self,
        seed: int,
        *,
        meetings: int = 3,
        participants: int = 4,
        phone_calls: int = 2,
        degraded_share: float = 0.25,
        churn: float = 0.05,
        accounts: int = 1,
        weak_wifi_site: str = WEAK_WIFI_SITE,
        cpu_starved_version: str = CPU_STARVED_VERSION,
        latency_share: float = LATENCY_SHARE,
    ) -> None:
        """``degraded_share`` is the share of calls, and of the participants outside the
        weak-Wi-Fi site and the CPU-starved version, with a bad network; ``latency_share`` the
        share of those whose only problem is latency. "" turns the site or version off."""
        if weak_wifi_site and weak_wifi_site not in {site.name for site in SITES}:
            raise ValueError(f"no site named {weak_wifi_site!r}")
        if cpu_starved_version and cpu_starved_version not in VERSIONS:
            raise ValueError(f"no client version {cpu_starved_version!r}")
        if accounts < 1:
            raise ValueError("at least one account")
        self.rng = random.Random(seed)
        self.churn = churn
        self.weak_wifi_site = weak_wifi_site
        self.cpu_starved_version = cpu_starved_version
        self._shares = dict(participant=degraded_share, call=degraded_share, latency=latency_share)
        # Error diffusion with a random phase: the degraded share is exact over any stretch of
        # joins (a demo always shows some), yet which ones are degraded varies with the seed.
        self._quota = {kind: self.rng.random() for kind in self._shares}
        self._credits: dict[str, list[float]] = {}  # _pick's
        self._ids: set[str] = set()
        self.causes: dict[str, Cause | None] = {}  # of every participant and call, by id
        self.accounts = [self._token(22, _URLSAFE) for _ in range(accounts)]
        self._opened = Counter[str]()  # instances and calls so far, which spreads the accounts
        self.instances = [self._new_instance(PRODUCTS[i % 3]) for i in range(meetings)]
        for instance in self.instances:
            for seat in range(participants):
                instance.participants.append(self._new_participant(host=seat == 0))
        self.calls = [self._new_call() for _ in range(phone_calls)]

    # -- life cycle -------------------------------------------------------------------------

    def turns(self) -> list[Turn]:
        """Everyone who sends QoS now; each turn produces one round of events."""
        seats: list[Turn] = [(i, p) for i in self.instances for p in i.participants if not p.left]
        return seats + [c for c in self.calls if not c.ended]

    def join_events(self, now: float) -> list[Event]:
        """The ``*_data`` event of everyone present, as Zoom sends it when they join."""
        return [
            self.data_event(i, p, now) for i in self.instances for p in i.participants if not p.left
        ]

    def step(self, turn: Turn, now: float) -> tuple[list[Event], list[Turn]]:
        """One QoS round of ``turn``; returns its events and the turns that follow it."""
        if isinstance(turn, PhoneCall):
            return self._call_round(turn, now)
        instance, participant = turn
        events = [self.qos_event(instance, participant, now)]
        if self.rng.random() >= self.churn:
            return events, [turn]
        participant.left = True
        newcomer = self._new_participant(host=False)
        instance.participants.append(newcomer)
        events += [
            self.qos_summary_event(instance, participant, now),
            self.data_summary_event(instance, participant, now),
            self.data_event(instance, newcomer, now),
        ]
        return events, [(instance, newcomer)]

    def _call_round(self, call: PhoneCall, now: float) -> tuple[list[Event], list[Turn]]:
        events = [
            self.call_qos_event(call, party, direction, now)
            for party in (call.caller, call.callee)
            for direction in ("sending", "receiving")
        ]
        call.rounds += 1
        if self.rng.random() >= self.churn and call.rounds < _MAX_CALL_ROUNDS:
            return events, [call]
        call.ended = True
        for event in events:  # the last round's samples say that the call has ended
            event["payload"]["object"]["call_end_time"] = self._call(call, now)["call_end_time"]
        events.append(self.call_qos_summary_event(call, now))
        newcomer = self._new_call()
        self.calls.append(newcomer)
        return events, [newcomer]

    def manifest(self, delivered: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Who is (or was) where, and who is degraded and why: what a test checks metrics
        against. ``delivered``: stream-minutes by participant or call id (:func:`stream_minutes`
        of what was delivered, each once), added up per participant, site and version."""
        minutes = delivered or {}
        groups: dict[str, dict[str, Any]] = {"by_site": {}, "by_version": {}}
        for key, names in (
            ("by_site", [site.name for site in SITES] + [EXTERNAL]),
            ("by_version", list(VERSIONS)),
        ):
            for name in names:
                groups[key][name] = {"participants": [], "degraded": {}, "stream_minutes": {}}
        for p in (p for i in self.instances for p in i.participants):
            for key, name in (("by_site", p.site), ("by_version", p.data["version"])):
                group = groups[key][name]
                group["participants"].append(p.participant_id)
                if p.cause:
                    group["degraded"][p.participant_id] = p.cause
                if minutes.get(p.participant_id):
                    counts = group["stream_minutes"]
                    kind = p.cause or GOOD
                    counts[kind] = counts.get(kind, 0) + minutes[p.participant_id]
        return {
            "accounts": list(self.accounts),
            "sites": [{"name": site.name, "subnets": list(site.subnets)} for site in SITES],
            "weak_wifi_site": self.weak_wifi_site,
            "cpu_starved_version": self.cpu_starved_version,
            "instances": [
                {
                    "product": i.product,
                    "meeting_id": i.meeting_id,
                    # what people know it by: the meeting number (meetings, webinars; Zoom
                    # sends it in some events only) or the session's name
                    "known_as": i.name if i.product == "session" else i.number,
                    "account_id": i.account_id,
                    "participants": [
                        {
                            "participant_id": p.participant_id,
                            "user_name": p.user_name,
                            "site": p.site,
                            "internal_ip_address": p.data["signaling_internal_ip_address"],
                            "public_ip_address": p.data["signaling_ip_address"],
                            "network_type": p.data["network_type"],
                            "device": p.data["device"],
                            "version": p.data["version"],
                            "data_center": p.data["data_center"],
                            "degraded": p.degraded,
                            "cause": p.cause,
                            "left": p.left,
                            "stream_minutes": minutes.get(p.participant_id, 0),
                        }
                        for p in i.participants
                    ],
                }
                for i in self.instances
            ],
            "phone_calls": [
                {
                    "call_id": c.call_id,
                    "account_id": c.account_id,
                    "caller_id": c.caller.user_id,
                    "callee_id": c.callee.user_id,
                    "degraded": c.degraded,
                    "cause": "network" if c.degraded else None,
                    "ended": c.ended,
                    "stream_minutes": minutes.get(c.call_id, 0),
                }
                for c in self.calls
            ],
            **groups,
        }

    # -- the 14 events ----------------------------------------------------------------------

    def qos_event(self, instance: Instance, p: Participant, now: float) -> Event:
        """``meeting.participant_qos``, ``webinar.participant_qos`` or ``session.user_qos``."""
        p.last_second = max(int(now), p.last_second + 1)  # equal date_time = a redelivery
        when = _iso(p.last_second)
        items = [{"date_time": when, "type": t, "details": d} for t, d in self._minute(instance, p)]
        if instance.product == "session":
            obj = self._session(instance, with_key=True)
            obj["user"] = self._session_user(p, qos=items)
            return self._envelope(instance.account_id, "session.user_qos", now, obj)
        who = {"user_id": p.participant_id, "participant_user_id": p.participant_user_id}
        participant = {**who, "email": p.email, "qos": items}
        obj = {"uuid": instance.meeting_id, "participant": participant}
        return self._envelope(instance.account_id, f"{instance.product}.participant_qos", now, obj)

    def qos_summary_event(self, instance: Instance, p: Participant, now: float) -> Event:
        """The whole stay of ``p``: min/avg/max of what this fleet sent for it."""
        items = [{"type": t, "details": d} for t, d in self._summary(p)]
        if instance.product == "session":
            obj = self._session(instance, with_key=False)  # as in Zoom's example
            obj["user"] = self._session_user(p, qos=items)
            return self._envelope(instance.account_id, "session.user_qos_summary", now, obj)
        obj = {"uuid": instance.meeting_id}
        if instance.product == "webinar":
            obj["id"] = instance.number
        obj["participant"] = {
            "participant_id": p.participant_id,
            "user_name": p.user_name,
            "id": p.zoom_user_id,
            "email": p.email,
            "qos": items,
        }
        return self._envelope(
            instance.account_id, f"{instance.product}.participant_qos_summary", now, obj
        )

    def data_event(self, instance: Instance, p: Participant, now: float) -> Event:
        """Sent at join: the device, network and (personal) client details."""
        return self._data("data", instance, p, now, [dict(p.data)])

    def data_summary_event(self, instance: Instance, p: Participant, now: float) -> Event:
        item = dict(p.data)
        if instance.product != "webinar":  # Zoom's webinar example lacks these two
            item["device_detail"] = _DEVICES[item["device"]]
            session = instance.product == "session"
            item["client"] = "Web video sdk 1.12.10" if session else f"Zoom {item['version']}"
        return self._data("data_summary", instance, p, now, [item])

    def call_qos_event(
        self, call: PhoneCall, party: CallParty, direction: str, now: float
    ) -> Event:
        """One sample of one party and direction; also kept for the call's summary."""
        second = max(int(now), party.last_second.get(direction, 0) + 1)
        party.last_second[direction] = second
        if call.started is None:
            call.started = second
        sample = {
            "date_time": _iso(second),
            "type": direction,
            "details": self._phone_details(call, party, direction),
        }
        party.samples.append(sample)
        head = {"type": party.role, "id": party.user_id, "user_email": party.email}
        obj = {**self._call(call, now), "call_qos": {**head, "qos": sample}}
        return self._envelope(call.account_id, "phone.call_qos", now, obj)

    def call_qos_summary_event(self, call: PhoneCall, now: float) -> Event:
        """Replays every sample sent, so the exporter's statistics match the simulator's."""
        parties = [
            {"type": p.role, "user_id": p.user_id, "user_email": p.email, "qos": p.samples}
            for p in (call.caller, call.callee)
        ]
        obj = {**self._call(call, now), "call_qos": parties}
        return self._envelope(call.account_id, "phone.call_qos_summary", now, obj)

    # -- payload parts ----------------------------------------------------------------------

    @staticmethod
    def _envelope(account_id: str, name: str, now: float, obj: dict[str, Any]) -> Event:
        payload = {"account_id": account_id, "object": obj}
        return {"event": name, "event_ts": int(now * 1000), "payload": payload}

    def _data(
        self, kind: str, instance: Instance, p: Participant, now: float, data: list[dict[str, str]]
    ) -> Event:
        if instance.product == "session":
            obj = self._session(instance, with_key=True)
            obj["user"] = self._session_user(p, data=data)
            return self._envelope(instance.account_id, f"session.user_{kind}", now, obj)
        obj = {"uuid": instance.meeting_id}
        if instance.product == "meeting" and kind == "data_summary":
            obj["id"] = instance.number
        obj["participant"] = {
            "participant_id": p.participant_id,
            "participant_user_id": p.participant_user_id,
            "email": p.email,
            "data": data,
        }
        return self._envelope(
            instance.account_id, f"{instance.product}.participant_{kind}", now, obj
        )

    @staticmethod
    def _session(instance: Instance, *, with_key: bool) -> dict[str, Any]:
        obj: dict[str, Any] = {"session_id": instance.meeting_id, "session_name": instance.name}
        if with_key:
            obj["session_key"] = instance.number
        return obj

    @staticmethod
    def _session_user(p: Participant, **items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": p.participant_id,
            "name": p.user_name,
            "user_key": p.user_key,
            "is_original_host": p.is_host,
            **items,
        }

    @staticmethod
    def _call(call: PhoneCall, now: float) -> dict[str, str]:
        # "" while the call goes on (Zoom's schema example); set once it has ended, which ends
        # the call's per-sample series in the exporter at once.
        started = int(now) if call.started is None else call.started
        return {
            "call_id": call.call_id,
            "call_start_time": _iso(started),
            "call_end_time": _iso(max(int(now), started)) if call.ended else "",
        }

    # -- QoS values -------------------------------------------------------------------------

    def _draw(self, degraded: bool, name: str) -> float:
        healthy, bad = _RANGES[name]
        return self.rng.uniform(*(bad if degraded else healthy))

    def _figure(self, p: Participant, name: str) -> float:
        """A media figure of ``p``, degraded or not as its cause has it."""
        if name == "latency" and p.cause == "latency":
            return self.rng.uniform(*_FAR_LATENCY)
        return self._draw(name in _DEGRADED[p.cause], name)

    def _put(
        self,
        details: dict[str, str],
        p: Participant,
        qos_type: str,
        name: str,
        value: float,
        unit: str,
        decimals: int,
    ) -> None:
        """Round first, then format and remember: the summary must see what was sent."""
        value = round(value, decimals)
        stat = p.stats.setdefault(qos_type, {}).setdefault(name, _Stat(unit, decimals))
        stat.add(value)
        details[name] = self._fmt(value, unit, decimals)

    def _fmt(self, value: float, unit: str, decimals: int) -> str:
        # Zoom writes "134 ms" and "0ms", "63 kbps" and "27.15kbps"; percentages never spaced.
        space = " " if unit != "%" and self.rng.random() < 0.5 else ""
        return f"{value:.{decimals}f}{space}{unit}"

    def _minute(self, instance: Instance, p: Participant) -> list[tuple[str, dict[str, str]]]:
        rssi = self._rssi(p) if p.wifi else {}
        items = []
        for qos_type in _MEDIA_TYPES:
            details = self._media(instance, p, qos_type)
            if qos_type == "audio_input":
                details |= rssi  # where Zoom's meeting example puts it
            items.append((qos_type, details))
        items.append(("cpu_usage", self._cpu(p)))
        if rssi:
            items.append(("wifi_rssi", dict(rssi)))
        if p.degraded and self.rng.random() < _NOTIFICATION_CHANCE:
            items.append(
                ("notification", {"network_notification": self.rng.choice(_NOTIFICATIONS)})
            )
        return items

    def _media(self, instance: Instance, p: Participant, qos_type: str) -> dict[str, str]:
        details = dict[str, str]()
        video = qos_type.startswith("video")
        figure = functools.partial(self._figure, p)

        def put(name: str, value: float, unit: str, decimals: int) -> None:
            self._put(details, p, qos_type, name, value, unit, decimals)

        bitrate = figure("video_bitrate" if video else "audio_bitrate")
        put("bitrate", bitrate, "kbps", 0 if video else 2)
        put("latency", figure("latency"), "ms", 0)
        put("jitter", figure("jitter"), "ms", 0)
        avg_loss = figure("avg_loss")
        put("avg_loss", avg_loss, "%", 1)
        put("max_loss", avg_loss + figure("extra_loss"), "%", 1)
        if video:
            details["resolution"] = p.resolution
            put("frame_rate", figure("frame_rate"), "fps", 0)
        if instance.product != "session":  # Zoom's session example has no quality
            score = round(figure("quality_score"), 2)
            details["quality"] = next(q for s, q in _QUALITY if score >= s)
            details["quality_score"] = f"{score:.2f}"
        return details

    def _cpu(self, p: Participant) -> dict[str, str]:
        rng, details = self.rng, dict[str, str]()
        if p.cause == "cpu":  # Zoom and everything else saturate the machine
            avg = rng.uniform(*_STARVED_CPU)
            figures = (
                ("zoom_min_cpu_usage", avg * rng.uniform(0.5, 0.9)),
                ("zoom_avg_cpu_usage", avg),
                ("zoom_max_cpu_usage", min(100.0, avg * rng.uniform(1.2, 1.5))),
                ("system_max_cpu_usage", rng.uniform(95, 100)),
            )
            level = rng.randint(2, 3)
        else:  # every figure under 60 %
            avg = rng.uniform(*_HEALTHY_CPU)
            figures = (
                ("zoom_min_cpu_usage", avg * rng.uniform(0.2, 0.8)),
                ("zoom_avg_cpu_usage", avg),
                ("zoom_max_cpu_usage", avg * rng.uniform(1.2, 2.5)),
                ("system_max_cpu_usage", max(avg * 2.5, rng.uniform(20, 55))),
            )
            level = rng.choices(range(3), weights=(75, 20, 5))[0]
        for name, value in figures:
            self._put(details, p, "cpu_usage", name, value, "%", 0)
        details["system_min_cpu_pressure_level"] = _PRESSURE[rng.randint(0, level)]
        details["system_avg_cpu_pressure_level"] = _PRESSURE[level]
        details["system_max_cpu_pressure_level"] = _PRESSURE[min(3, level + rng.randint(0, 1))]
        return details

    def _rssi(self, p: Participant) -> dict[str, str]:
        avg = round(self.rng.uniform(*_RSSI["weak" if p.cause == "wifi" else "healthy"]))
        values = {"min_rssi": avg - self.rng.randint(2, 8), "avg_rssi": avg}
        values["max_rssi"] = avg + self.rng.randint(2, 8)
        stats = p.stats.setdefault("wifi_rssi", {})
        for name, value in values.items():
            stats.setdefault(name, _Stat("", 0)).add(value)
        return {**{k: str(v) for k, v in values.items()}, "rssi_unit": "dBm"}

    def _summary(self, p: Participant) -> list[tuple[str, dict[str, Any]]]:
        def spread(prefix: str, low: _Stat, avg: _Stat, high: _Stat) -> dict[str, str]:
            return {
                f"min_{prefix}": self._fmt(low.low, low.unit, low.decimals),
                f"avg_{prefix}": self._fmt(round(avg.mean, avg.decimals), avg.unit, avg.decimals),
                f"max_{prefix}": self._fmt(high.high, high.unit, high.decimals),
            }

        items: list[tuple[str, dict[str, Any]]] = []
        for qos_type in filter(p.stats.__contains__, _SUMMARY_TYPES):
            s, details = p.stats[qos_type], dict[str, Any]()
            if qos_type == "wifi_rssi":  # integers in summaries, unlike the per-minute strings
                details = {
                    "min_rssi": int(s["min_rssi"].low),
                    "avg_rssi": round(s["avg_rssi"].mean),
                    "max_rssi": int(s["max_rssi"].high),
                    "rssi_unit": "dBm",
                }
            elif qos_type == "cpu_usage":
                details = {
                    name: self._fmt(round(value), "%", 0)
                    for name, value in (
                        ("zoom_min_cpu_usage", s["zoom_min_cpu_usage"].low),
                        ("zoom_avg_cpu_usage", s["zoom_avg_cpu_usage"].mean),
                        ("zoom_max_cpu_usage", s["zoom_max_cpu_usage"].high),
                        ("system_max_cpu_usage", s["system_max_cpu_usage"].high),
                    )
                }
            else:
                for name in ("bitrate", "latency", "jitter"):
                    details |= spread(name, s[name], s[name], s[name])
                details |= spread("loss", s["avg_loss"], s["avg_loss"], s["max_loss"])
                if "frame_rate" in s:
                    # Received video has no single resolution; Zoom's example leaves it "".
                    details["resolution"] = p.resolution if qos_type == "video_input" else ""
                    rate = s["frame_rate"]
                    details |= spread("frame_rate", rate, rate, rate)
            items.append((qos_type, details))
        return items

    def _phone_details(self, call: PhoneCall, party: CallParty, direction: str) -> dict[str, str]:
        bad = call.degraded
        avg_loss = round(self._draw(bad, "avg_loss"), 1)
        details = {
            "bitrate": f"{self._draw(bad, 'phone_bitrate'):.0f}",
            "avg_loss": f"{avg_loss:.1f}",
            "max_loss": f"{avg_loss + self._draw(bad, 'extra_loss'):.1f}",
            "jitter": f"{self._draw(bad, 'jitter'):.0f}",
            "network_delay": f"{self._draw(bad, 'latency'):.0f}",
            "mos": f"{self._draw(bad, 'mos'):.1f}",
        }
        if direction == "sending":  # Zoom's examples name the network on sending samples only
            details["network"] = party.network
        return details

    # -- new entities -----------------------------------------------------------------------

    def _token(self, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choices(alphabet, k=length))

    def _uuid(self) -> str:
        return base64.b64encode(self.rng.randbytes(16)).decode()  # 22 chars + "=="

    def _digits(self, length: int) -> str:
        return str(self.rng.randrange(10 ** (length - 1), 10**length))

    def _new_id(self) -> str:
        """A participant id unique in the fleet, so the manifest can be keyed by it."""
        while (new := self._digits(self.rng.choice((8, 10)))) in self._ids:
            pass
        self._ids.add(new)
        return new

    def _in_share(self, kind: str) -> bool:
        """Whether the next of ``kind`` is in its share (error diffusion: exact over any run)."""
        self._quota[kind] += self._shares[kind]
        if self._quota[kind] < 1:
            return False
        self._quota[kind] -= 1
        return True

    def _pick(self, kind: str, weights: Sequence[float]) -> int:
        """An index, each in the share its weight gives over any run of picks (to within one or
        two), in an order that varies with the seed: smooth weighted round robin from a random
        phase. A small fleet still has people at every site and on every version."""
        total = sum(weights)
        credits = self._credits.get(kind)
        if credits is None:
            credits = self._credits[kind] = [self.rng.uniform(0, total) for _ in weights]
        for n, weight in enumerate(weights):
            credits[n] += weight
        best = max(range(len(weights)), key=credits.__getitem__)
        credits[best] -= total
        return best

    def _account(self, kind: str) -> str:
        """Instances, and calls, go round the accounts."""
        self._opened[kind] += 1
        return self.accounts[(self._opened[kind] - 1) % len(self.accounts)]

    def _address(self, subnet: str) -> str:
        network = _network(subnet)
        return str(network[self.rng.randrange(1, network.num_addresses - 1)])

    def _new_instance(self, product: str) -> Instance:
        topic = self.rng.choice(("Standup", "Design review", "Support", "Town hall"))
        number = self._token(12) if product == "session" else self._digits(11)
        name = f"{topic} {self._digits(3)}"
        return Instance(product, self._uuid(), number, name, self._account("instance"))

    def _new_participant(self, *, host: bool) -> Participant:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        spot = self._pick("site", [*(site.weight for site in SITES), REMOTE_WEIGHT])
        site = SITES[spot] if spot < len(SITES) else None
        site_name = site.name if site else EXTERNAL
        cause: Cause | None = None
        if site_name == self.weak_wifi_site:  # everyone there on Wi-Fi, no one CPU-starved
            network = "Wifi"
            others = [n for n, v in enumerate(VERSIONS) if v != self.cpu_starved_version]
            version = VERSIONS[rng.choices(others, [_VERSION_WEIGHTS[n] for n in others])[0]]
            cause = "wifi"
        else:
            network = rng.choices(_NETWORKS, _NETWORK_WEIGHTS)[0]
            version = VERSIONS[self._pick("version", _VERSION_WEIGHTS)]
            if version == self.cpu_starved_version:
                cause = "cpu"
            elif self._in_share("participant"):
                cause = "latency" if self._in_share("latency") else "network"
        device = rng.choice(list(_DEVICES))
        internal = self._address(site.internal if site else REMOTE_LAN)
        public = self._address(site.egress if site else REMOTE_PUBLIC)
        port = rng.randrange(50000, 60000)
        data = {
            "device": device,
            "location": site.location if site else rng.choice(_LOCATIONS),
            "network_type": network,
            "microphone": rng.choice(_MICROPHONES),
            "speaker": rng.choice(_SPEAKERS),
            "camera": rng.choice(_CAMERAS),
            "data_center": rng.choice(_DATA_CENTERS),
            "connection_type": rng.choice(_CONNECTIONS),
            # Personal data, from documentation ranges, so the privacy policy has work to do.
            "pc_name": _ascii(f"{first}s-{device}").upper(),
            "domain": "corp.example.com",
            "mac_addr": f"00:00:5E:00:53:{rng.randrange(256):02X}",
            "harddisk_id": f"WD-{rng.randrange(16**8):08X}",
            "version": version,
            "signaling_ip_address": public,  # where the site's NAT (or a home router) puts it
        }
        for stream, offset in (("signaling", 0), ("audio", 1), ("video", 2), ("as", 3)):
            data[f"{stream}_internal_ip_address"] = internal
            data[f"{stream}_internal_ip_port"] = str(port + offset)
        data |= {"destination_ip_domain": "zoom.example.com", "destination_ip_port": "8801"}
        participant_id = self._new_id()
        self.causes[participant_id] = cause
        return Participant(
            participant_id=participant_id,
            user_name=f"{first} {last}",
            email=_ascii(f"{first}.{last}@example.com").lower(),
            participant_user_id=self._token(22, _URLSAFE),
            zoom_user_id=self._token(22),
            user_key=self._token(12),
            is_host=host,
            cause=cause,
            site=site_name,
            resolution="640*360" if cause else rng.choice(("1280*720", "1920*1080")),
            data=data,
        )

    def _new_call(self) -> PhoneCall:
        def party(role: str) -> CallParty:
            name = _ascii(f"{self.rng.choice(_FIRST)}.{self.rng.choice(_LAST)}").lower()
            network = self.rng.choice(_PHONE_NETWORKS)
            return CallParty(role, self._token(22, _URLSAFE), f"{name}@example.com", network)

        degraded, call_id = self._in_share("call"), self._digits(19)
        self.causes[call_id] = "network" if degraded else None
        account = self._account("call")
        return PhoneCall(call_id, degraded, account, party("caller"), party("callee"))


@functools.cache
def _network(subnet: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(subnet)
