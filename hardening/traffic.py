"""Signed webhook requests for the load and fault runs: valid per-minute events, every one
distinct (a later round is a one-minute-newer update, never a stale repeat), mixed with the
invalid kinds an internet-facing endpoint gets.

A request file holds one request a line, ``kind<TAB>content-type<TAB>signature<TAB>timestamp
<TAB>body``, for ``hardening/mixed.lua`` (wrk) or the Python clients.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hardening.common import TOKEN
from zoom_qss_exporter.ingest.signature import sign_headers

QOS_TYPES = ("audio_input", "audio_output", "video_input", "video_output", "as_input")
ITEMS_PER_EVENT = len(QOS_TYPES) + 1  # and cpu_usage

# kind -> (share of the mix, the status it must get)
MIX: dict[str, tuple[float, tuple[int, ...]]] = {
    "valid": (0.80, (200,)),
    "forged": (0.08, (401, 429)),  # a wrong signature: 429 once the client is over the limit
    "not_json": (0.03, (400,)),
    "wrong_type": (0.03, (415,)),
    "no_identity": (0.03, (422,)),
    "unknown": (0.03, (200,)),
}


@dataclass(frozen=True, slots=True)
class Request:
    kind: str
    content_type: str
    signature: str
    timestamp: str
    body: bytes

    def line(self) -> bytes:
        head = f"{self.kind}\t{self.content_type}\t{self.signature}\t{self.timestamp}\t"
        return head.encode() + self.body + b"\n"

    def http(self, path: str = "/webhook", request_id: str = "") -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {self.content_type}\r\n"
            f"x-zm-signature: {self.signature}\r\nx-zm-request-timestamp: {self.timestamp}\r\n"
            f"x-zm-request-id: {request_id}\r\ncontent-length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body

    @classmethod
    def parse(cls, line: bytes) -> Request:
        kind, content_type, signature, timestamp, body = line.rstrip(b"\n").split(b"\t", 4)
        return cls(
            kind.decode(), content_type.decode(), signature.decode(), timestamp.decode(), body
        )


def _iso(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Traffic:
    """Requests for ``participants`` participants (10 per meeting) of namespace ``name``."""

    def __init__(self, name: str, participants: int, now: int, seed: int = 1) -> None:
        self.name = name
        self.participants = participants
        self.now = now
        self.base = now - 6 * 3600  # every date_time in the past, one minute per round
        self.rng = random.Random(seed)

    def event(self, participant: int, round_: int) -> dict[str, object]:
        u = self.rng.uniform
        when = _iso(self.base + 60 * round_ + participant % 60)
        items: list[dict[str, object]] = [
            {
                "date_time": when,
                "type": qos_type,
                "details": {
                    "bitrate": f"{u(20, 1800):.0f} kbps",
                    "latency": f"{u(10, 250):.0f} ms",
                    "jitter": f"{u(0, 30):.0f}ms",
                    "avg_loss": f"{u(0, 2):.1f}%",
                    "max_loss": f"{u(2, 5):.1f}%",
                    "quality": self.rng.choice(("good", "fair", "poor")),
                },
            }
            for qos_type in QOS_TYPES
        ]
        items.append(
            {
                "date_time": when,
                "type": "cpu_usage",
                "details": {"zoom_avg_cpu_usage": f"{u(1, 30):.0f}%"},
            }
        )
        return {
            "event": "meeting.participant_qos",
            "event_ts": (self.base + 60 * round_ + 5) * 1000,
            "payload": {
                "account_id": "hardening",
                "object": {
                    "uuid": f"{self.name}-meeting-{participant // 10}",
                    "participant": {"user_id": f"{self.name}-{participant}", "qos": items},
                },
            },
        }

    def _signed(self, kind: str, body: bytes, content_type: str = "application/json") -> Request:
        token = "not-the-token" if kind == "forged" else TOKEN
        headers = sign_headers(token, self.now, body)
        return Request(
            kind,
            content_type,
            headers["x-zm-signature"],
            headers["x-zm-request-timestamp"],
            body,
        )

    def valid(self, participant: int, round_: int) -> Request:
        body = json.dumps(self.event(participant, round_), separators=(",", ":")).encode()
        return self._signed("valid", body)

    def invalid(self, kind: str, n: int) -> Request:
        event = self.event(n % self.participants, 0)
        if kind == "forged":
            return self._signed(kind, json.dumps(event).encode())
        if kind == "not_json":
            return self._signed(kind, b"{this is not json " + str(n).encode())
        if kind == "wrong_type":
            return self._signed(kind, json.dumps(event).encode(), "text/plain")
        if kind == "no_identity":
            del event["payload"]["object"]["uuid"]  # type: ignore[index]
            return self._signed(kind, json.dumps(event).encode())
        if kind == "unknown":
            return self._signed(kind, json.dumps({"event": "meeting.brand_new", "n": n}).encode())
        raise ValueError(kind)

    def mixed(self, count: int) -> Iterator[Request]:
        """``count`` requests in the proportions of :data:`MIX`, valid ones round-major."""
        kinds = list(MIX)
        weights = [share for share, _ in MIX.values()]
        valid = 0
        for n in range(count):
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "valid":
                yield self.valid(valid % self.participants, valid // self.participants)
                valid += 1
            else:
                yield self.invalid(kind, n)


def write(path: Path, requests: Iterator[Request]) -> dict[str, int]:
    """Write a request file; returns how many requests of each kind it holds."""
    counts: dict[str, int] = {}
    with path.open("wb") as out:
        for request in requests:
            out.write(request.line())
            counts[request.kind] = counts.get(request.kind, 0) + 1
    return counts
