"""Zoom's free-text client and network fields, normalised to the small fixed sets that the
analytics label with. Absent is ``unknown``; present but not recognised is ``other``."""

from __future__ import annotations

import re

UNKNOWN = "unknown"
OTHER = "other"

NETWORK_TYPES = ("wired", "wifi", "cellular", "ppp", OTHER, UNKNOWN)
CONNECTION_TYPES = ("udp", "tcp", "ssl", "p2p", OTHER, UNKNOWN)
PLATFORMS = ("windows", "mac", "linux", "ios", "android", "web", "rooms", OTHER, UNKNOWN)
MEDIA = ("audio", "video", "screen_share")

# Zoom's documented network_type values (Wired, Wifi, PPP, 3G, Others) and those seen in the
# field and in Zoom Phone's ``network`` (LAN, WiFi, Cellular, 4G, 5G, LTE, Ethernet).
_NETWORKS = {
    "wired": "wired",
    "lan": "wired",
    "ethernet": "wired",
    "wifi": "wifi",
    "wi-fi": "wifi",
    "wlan": "wifi",
    "wireless": "wifi",
    "cellular": "cellular",
    "mobile": "cellular",
    "2g": "cellular",
    "3g": "cellular",
    "4g": "cellular",
    "5g": "cellular",
    "lte": "cellular",
    "ppp": "ppp",
}
_CONNECTIONS = {"udp": "udp", "tcp": "tcp", "ssl": "ssl", "tls": "ssl", "p2p": "p2p"}
# first match wins: "Zoom Rooms" before "Windows" (a Room may run on Windows), "iPad" as iOS
_PLATFORMS = (
    ("rooms", re.compile(r"\broom", re.I)),
    ("web", re.compile(r"\bweb\b|browser|chrome|firefox|safari|edge", re.I)),
    ("ios", re.compile(r"\bios\b|iphone|ipad", re.I)),
    ("android", re.compile(r"android", re.I)),
    ("windows", re.compile(r"windows|\bwin(?:32|64)?\b", re.I)),
    ("mac", re.compile(r"\bmac|os ?x\b|darwin", re.I)),
    ("linux", re.compile(r"linux|ubuntu|fedora|debian", re.I)),
)
_VERSION = re.compile(r"\s*v?(\d{1,3})\.(\d{1,3})(?:[.\s(]|$)")
# a data center as Zoom names one: "SC", "AMS (Sub)", "US(Virginia)", "Hong Kong"
_DATA_CENTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ()._,/-]{0,39}")
_MEDIA = {
    "audio_input": "audio",
    "audio_output": "audio",
    "video_input": "video",
    "video_output": "video",
    "as_input": "screen_share",
    "as_output": "screen_share",
}
# the QoS types whose per-minute items are stream-minutes: audio, video and screen share, each way
MEDIA_TYPES = frozenset(_MEDIA)


def network_type(text: str) -> str:
    key = text.strip().lower()
    return _NETWORKS.get(key, OTHER) if key else UNKNOWN


def connection_type(text: str) -> str:
    key = text.strip().lower()
    return _CONNECTIONS.get(key, OTHER) if key else UNKNOWN


def platform(device: str, client: str = "") -> str:
    """From ``device`` ("Windows", "Mac", "iOS", "Zoom Rooms") or, when it names nothing
    known, the ``client`` of a summary ("Web video sdk 1.12.10")."""
    if not device.strip() and not client.strip():
        return UNKNOWN
    for text in (device, client):
        for name, pattern in _PLATFORMS:
            if pattern.search(text):
                return name
    return OTHER


def version(text: str) -> str:
    """Major.minor of a client version ("5.17.11 (34827)" is "5.17")."""
    if not text.strip():
        return UNKNOWN
    match = _VERSION.match(text)
    if match is None:
        return OTHER
    return f"{int(match.group(1))}.{int(match.group(2))}"


def data_center(text: str) -> str:
    """Zoom's name with its spacing tidied; ``other`` for what does not look like one (the
    number of names is bounded separately, by :class:`Vocabulary`)."""
    name = " ".join(text.split())
    if not name:
        return UNKNOWN
    return name if _DATA_CENTER.fullmatch(name) else OTHER


def media(qos_type: str) -> str:
    return _MEDIA.get(qos_type, OTHER)


class Vocabulary:
    """The first ``limit`` distinct values of an open-ended dimension (data centers, client
    versions, accounts); later new values fold into ``other`` and are counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: dict[str, str] = {UNKNOWN: UNKNOWN, OTHER: OTHER}
        self.folds = 0

    def __len__(self) -> int:
        return len(self._known) - 2

    def __call__(self, value: str) -> str:
        known = self._known.get(value)
        if known is not None:
            return known
        if len(self._known) - 2 >= self.limit:
            self.folds += 1
            return OTHER
        self._known[value] = value
        return value
