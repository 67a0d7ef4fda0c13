"""Signed ``meeting.participant_qos`` requests for the HTTP benchmarks, and readers for /metrics.

Every request is distinct: ``participants`` participants (in meetings of ``meeting_size``) send
``rounds`` rounds, round-major, and each round's ``date_time`` is one minute after the previous
one, so a later round is an *update* of the same series and never a stale repeat (stale events
are cheaper to handle and would flatter a benchmark). Values vary per participant and round.

Requests are signed with :func:`zoom_qss_exporter.ingest.signature.sign_headers` at generation time;
start the exporter with ``--zoom.replay-window 2h`` so that they stay valid for a whole run.
The TSV format (``signature<TAB>timestamp<TAB>body``, one request a line) is what
``bench/replay.lua`` feeds to wrk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from zoom_qss_exporter.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_headers

TOKEN = "bench-token"
EVENT = "meeting.participant_qos"
QOS_TYPES = ("audio_input", "audio_output", "video_input", "video_output", "as_input", "cpu_usage")
_RESOLUTIONS = ("640*360", "960*540", "1280*720", "1920*1080")
_SHARE_RESOLUTIONS = ("1440*900", "1920*1080", "2560*1440")
_PRESSURE = ("normal", "fair", "serious", "critical")
_QUALITY = ((3.5, "good"), (3.0, "fair"), (2.0, "poor"), (float("-inf"), "bad"))

# Series one participant makes with the items above, per the metrics reference (docs/metrics.md):
# audio: bitrate, latency, jitter, avg/max loss, quality, quality score, sample time, MOS;
# video: the same but MOS, plus frame rate, width, height; screen share: no quality either;
# cpu: zoom min/avg/max, system max, pressure min/avg/max, sample time; one info series.
SERIES_PER_PARTICIPANT = 9 + 9 + 11 + 11 + 9 + 8 + 1


@dataclass(frozen=True, slots=True)
class SignedRequest:
    signature: str
    timestamp: str
    body: bytes

    def tsv(self) -> bytes:
        return f"{self.signature}\t{self.timestamp}\t".encode("ascii") + self.body + b"\n"

    def http(self, path: str = "/webhook", host: str = "127.0.0.1") -> bytes:
        """The whole HTTP/1.1 request, for the raw-socket load generators."""
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"{SIGNATURE_HEADER}: {self.signature}\r\n{TIMESTAMP_HEADER}: {self.timestamp}\r\n"
            f"content-length: {len(self.body)}\r\n\r\n"
        )
        return head.encode("ascii") + self.body


def meeting_uuid(namespace: str, meeting: int) -> str:
    """A Zoom-looking instance uuid (base64 of 16 bytes), stable per namespace and number."""
    digest = hashlib.sha256(f"{namespace}/{meeting}".encode()).digest()[:16]
    return base64.b64encode(digest).decode("ascii")


def participant_user_id(participant: int) -> str:
    return str(16_778_240 + participant)


def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Values:
    """Unit strings as Zoom writes them: sometimes spaced ("63 kbps"), sometimes not ("0ms")."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def unit(self, value: float, unit: str, decimals: int = 0) -> str:
        space = " " if unit != "%" and self.rng.random() < 0.5 else ""
        return f"{value:.{decimals}f}{space}{unit}"

    def media(self, qos_type: str, resolution: str) -> dict[str, str]:
        u = self.rng.uniform
        video = qos_type.startswith("video")
        share = qos_type == "as_input"
        bitrate = u(600, 1800) if video else u(150, 900) if share else u(20, 80)
        loss = u(0, 1.5)
        details = {
            "bitrate": self.unit(bitrate, "kbps", 0 if video or share else 2),
            "latency": self.unit(u(15, 220), "ms"),
            "jitter": self.unit(u(0, 25), "ms"),
            "avg_loss": self.unit(loss, "%", 1),
            "max_loss": self.unit(loss + u(0, 3), "%", 1),
        }
        if video or share:
            details["resolution"] = resolution
            details["frame_rate"] = self.unit(u(5, 15) if share else u(15, 30), "fps")
        if not share:
            score = round(u(1.8, 4.6), 2)
            details["quality"] = next(level for low, level in _QUALITY if score >= low)
            details["quality_score"] = f"{score:.2f}"
        return details

    def cpu(self) -> dict[str, str]:
        u = self.rng.uniform
        avg = u(3, 25)
        level = self.rng.choices(range(4), weights=(70, 20, 8, 2))[0]
        return {
            "zoom_min_cpu_usage": self.unit(avg * u(0.2, 0.8), "%"),
            "zoom_avg_cpu_usage": self.unit(avg, "%"),
            "zoom_max_cpu_usage": self.unit(avg * u(1.2, 2.5), "%"),
            "system_max_cpu_usage": self.unit(max(avg * 2.5, u(20, 80)), "%"),
            "system_min_cpu_pressure_level": _PRESSURE[self.rng.randint(0, level)],
            "system_avg_cpu_pressure_level": _PRESSURE[level],
            "system_max_cpu_pressure_level": _PRESSURE[min(3, level + self.rng.randint(0, 1))],
        }


class Generator:
    """Builds the events of participant ``p`` in round ``r``; ``first`` offsets participant
    numbers so that several generators (warm-up, preload, churn) never share a participant."""

    def __init__(
        self,
        *,
        namespace: str = "bench",
        meeting_size: int = 10,
        base_time: int | None = None,
        seed: int = 1,
        token: str = TOKEN,
    ) -> None:
        self.namespace = namespace
        self.meeting_size = meeting_size
        # date_time of round 0; rounds advance one minute each and stay in the past.
        self.base_time = int(time.time()) - 6 * 3600 if base_time is None else base_time
        self.rng = random.Random(seed)
        self.values = _Values(self.rng)
        self.token = token
        self.account_id = base64.urlsafe_b64encode(hashlib.sha256(namespace.encode()).digest())[
            :22
        ].decode("ascii")

    def event(self, participant: int, round_: int) -> dict[str, object]:
        # Participants of one minute report at different seconds, as Zoom's clients do.
        second = self.base_time + 60 * round_ + participant % 60
        when = _iso(second)
        resolution = _RESOLUTIONS[participant % len(_RESOLUTIONS)]
        share = _SHARE_RESOLUTIONS[participant % len(_SHARE_RESOLUTIONS)]
        qos: list[dict[str, object]] = [
            {
                "date_time": when,
                "type": t,
                "details": self.values.media(t, share if t == "as_input" else resolution),
            }
            for t in QOS_TYPES[:-1]
        ]
        qos.append({"date_time": when, "type": "cpu_usage", "details": self.values.cpu()})
        user = participant_user_id(participant)
        return {
            "event": EVENT,
            "event_ts": (second + 3) * 1000 + participant % 1000,
            "payload": {
                "account_id": self.account_id,
                "object": {
                    "uuid": meeting_uuid(self.namespace, participant // self.meeting_size),
                    "participant": {
                        "user_id": user,
                        "participant_user_id": f"{self.namespace}-{user}",
                        "email": f"user{participant}@example.com",
                        "qos": qos,
                    },
                },
            },
        }

    def signed(self, participant: int, round_: int, now: int | None = None) -> SignedRequest:
        body = json.dumps(self.event(participant, round_), separators=(",", ":")).encode()
        headers = sign_headers(self.token, int(time.time()) if now is None else now, body)
        return SignedRequest(headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], body)

    def requests(
        self, participants: Iterable[int], rounds: Iterable[int]
    ) -> Iterator[SignedRequest]:
        """Round-major: every participant's round ``r`` before anyone's round ``r + 1``."""
        people = list(participants)
        now = int(time.time())
        for round_ in rounds:
            for participant in people:
                yield self.signed(participant, round_, now)


def generate(
    participants: int,
    rounds: int,
    *,
    first_round: int = 0,
    first_participant: int = 0,
    namespace: str = "bench",
    seed: int = 1,
) -> list[SignedRequest]:
    """``participants`` x ``rounds`` distinct signed requests, round-major."""
    gen = Generator(namespace=namespace, seed=seed)
    people = range(first_participant, first_participant + participants)
    return list(gen.requests(people, range(first_round, first_round + rounds)))


def write_tsv(path: Path, requests: Iterable[SignedRequest]) -> int:
    """Write the requests for ``bench/replay.lua``; returns how many lines were written."""
    count = 0
    with path.open("wb") as out:
        for request in requests:
            out.write(request.tsv())
            count += 1
    return count


def expected_series(participants: int) -> int:
    """Series ``participants`` participants make (one event each); /metrics is the truth."""
    return participants * SERIES_PER_PARTICIPANT


def participants_for(series: int) -> int:
    """How many participants make at least ``series`` series."""
    return -(-series // SERIES_PER_PARTICIPANT)


# --- reading /metrics ---------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.MULTILINE)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Labels and value of every sample of metric ``name`` in a text exposition."""
    for match in _SAMPLE.finditer(text):
        if match.group(1) == name:
            labels = dict(_LABEL.findall(match.group(2) or ""))
            yield labels, float(match.group(3))


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for have, v in samples(text, name) if labels.items() <= have.items())


def series_count(text: str) -> int:
    """Live series in the store: ``zoom_qss_exporter_series`` summed over families."""
    return int(value(text, "zoom_qss_exporter_series"))


def accepted_events(text: str, event: str = EVENT) -> int:
    return int(value(text, "zoom_qss_exporter_events_total", event=event, outcome="accepted"))


def rss_bytes(text: str) -> int:
    return int(value(text, "process_resident_memory_bytes"))
