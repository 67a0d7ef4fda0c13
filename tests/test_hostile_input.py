"""Hostile input through real HTTP: every kind of bad request gets a defined status and JSON
error, is counted in ``zoom_qss_exporter_events_total``, and leaves the exporter serving and
its metrics correct. (The basic refusals are in test_receiver.py; this is the fuller battery.)
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conftest import (
    TOKEN,
    FakeClock,
    LiveExporter,
    example,
    flat_settings,
    promtool_check_metrics,
    request_head,
    series_of,
    serve,
    signed,
)
from zoom_qss_exporter.app import Exporter, create_app
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.ingest.signature import sign_headers

_QOS = example("meeting.participant_qos")
_DATA = example("meeting.participant_data")
_serial = itertools.count()


def qos() -> dict[str, Any]:
    """Zoom's example of a per-minute event, for a meeting never seen before (so that the
    cases sharing one exporter never make each other's samples stale)."""
    return with_(_QOS, "payload.object.uuid", f"hostile-{next(_serial)}")


def data() -> dict[str, Any]:
    return with_(_DATA, "payload.object.uuid", f"hostile-{next(_serial)}")


LIMIT = 64 * 1024  # --web.max-request-bytes of these tests


_EVENTS = re.compile(
    r'^zoom_qss_exporter_events_total\{event="([^"]*)",outcome="([^"]*)"\} (\S+)$', re.M
)


def events_total(live: LiveExporter) -> dict[tuple[str, str], float]:
    """``zoom_qss_exporter_events_total`` by (event, outcome), read with one regex (the
    battery reads it hundreds of times)."""
    text = live.metrics_text()
    return {(event, outcome): float(v) for event, outcome, v in _EVENTS.findall(text)}


def with_(document: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """``document`` with the value at dotted ``path`` (list indexes as numbers) replaced."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target: Any = changed
    for step in parents:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return changed


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * depth + inner + b"}" * depth


@dataclass
class Case:
    """One hostile request: the body, how to send it, and what must come back."""

    body: bytes
    status: int
    counted: tuple[str, str] | None  # (event, outcome) it must add one to
    headers: Callable[[LiveExporter, bytes], Any] | None = None  # dict, or a list of pairs
    answer: dict[str, Any] | None = None  # the exact JSON answer, when it matters
    error_mentions: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def _dup(name: str, first: str, second: str) -> Callable[[LiveExporter, bytes], list[Any]]:
    def make(live: LiveExporter, body: bytes) -> list[Any]:
        headers = signed(live, body)
        headers.pop(name, None)
        return [*headers.items(), (name, first or headers.get(name, "")), (name, second)]

    return make


def _headers_with(**changes: str | None) -> Callable[[LiveExporter, bytes], dict[str, str]]:
    def make(live: LiveExporter, body: bytes) -> dict[str, str]:
        headers = signed(live, body)
        for name, value in changes.items():
            header = name.replace("_", "-")
            if value is None:
                headers.pop(header, None)
            else:
                headers[header] = value
        return headers

    return make


def _timestamped(offset: float) -> Callable[[LiveExporter, bytes], dict[str, str]]:
    def make(live: LiveExporter, body: bytes) -> dict[str, str]:
        return {
            "content-type": "application/json",
            **sign_headers(TOKEN, int(live.clock() + offset), body),
        }

    return make


def _request_id(value: bytes) -> Callable[[LiveExporter, bytes], list[tuple[bytes, bytes]]]:
    """Signed headers with ``x-zm-request-id`` set to raw bytes (not ASCII, or huge)."""

    def make(live: LiveExporter, body: bytes) -> list[tuple[bytes, bytes]]:
        pairs = [(k.encode(), v.encode()) for k, v in signed(live, body).items()]
        return [*pairs, (b"x-zm-request-id", value)]

    return make


def _raw_header(name: bytes, value: bytes) -> Callable[[LiveExporter, bytes], list[Any]]:
    """Signed headers with ``name`` replaced by raw bytes."""

    def make(live: LiveExporter, body: bytes) -> list[tuple[bytes, bytes]]:
        pairs = [(k.encode(), v.encode()) for k, v in signed(live, body).items()]
        return [*(pair for pair in pairs if pair[0] != name), (name, value)]

    return make


FULL_WIDTH_DIGITS = ("\uff11\uff17" + "\uff10" * 8).encode()  # "1700000000", full width


def raw_surrogate(document: dict[str, Any], path: str, text: str = "a\ud800b") -> bytes:
    """``document`` as UTF-8, with ``text`` at ``path`` written raw: a lone surrogate as the
    three bytes ED A0 80 that Python's lenient codec (and CESU-8) makes of it."""
    changed = with_(document, path, text)
    return json.dumps(changed, ensure_ascii=False).encode("utf-8", "surrogatepass")


CESU8_TEXT = "smile \ud83d\ude00"  # the emoji's surrogate pair, as CESU-8 writes it: 6 bytes


def _wrong_token(live: LiveExporter, body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", **sign_headers("guess", int(live.clock()), body)}


BAD_JSON = ("other", "invalid_payload")
BAD_SIGNATURE = ("unverified", "invalid_signature")
QOS_ACCEPTED = ("meeting.participant_qos", "accepted")
QOS_INVALID = ("meeting.participant_qos", "invalid_payload")
STRANGE = 'quote " backslash \\ newline \n tab \t unicode ü 漢字 😀 nul-free'

CASES: dict[str, Case] = {
    # not JSON, or not a JSON object
    "empty body": Case(b"", 400, BAD_JSON, error_mentions="JSON"),
    "not JSON": Case(b"hello zoom", 400, BAD_JSON, error_mentions="JSON"),
    "truncated JSON": Case(_json(qos())[:-7], 400, BAD_JSON),
    "JSON number": Case(b"42", 400, BAD_JSON, error_mentions="JSON object"),
    "JSON string": Case(b'"meeting.participant_qos"', 400, BAD_JSON, error_mentions="JSON object"),
    "JSON true": Case(b"true", 400, BAD_JSON, error_mentions="JSON object"),
    "JSON null": Case(b"null", 400, BAD_JSON, error_mentions="JSON object"),
    "JSON array": Case(_json([qos()]), 400, BAD_JSON, error_mentions="JSON object"),
    "10,000 nested objects": Case(nested(10_000), 400, BAD_JSON, error_mentions="nested"),
    "10,000 nested arrays": Case(b"[" * 10_000 + b"]" * 10_000, 400, BAD_JSON),
    "10,000 levels inside an event": Case(
        _json(qos())[:-1] + b', "x": ' + nested(10_000) + b"}", 400, BAD_JSON
    ),
    "invalid UTF-8": Case(b'{"event": "\xff\xfe meeting"}', 400, BAD_JSON, error_mentions="UTF-8"),
    "lone surrogate escape": Case(
        _json(with_(data(), "payload.object.participant.user_name", "x")).replace(
            b'"x"', b'"\\ud800"'
        ),
        400,
        BAD_JSON,
        error_mentions="surrogate",
    ),
    "raw lone surrogate (bytes ED A0 80) in a user name": Case(
        raw_surrogate(data(), "payload.object.participant.user_name"),
        400,
        BAD_JSON,
        error_mentions="surrogate",
    ),
    "raw lone surrogate in the meeting uuid": Case(
        raw_surrogate(qos(), "payload.object.uuid"), 400, BAD_JSON, error_mentions="UTF-8"
    ),
    "CESU-8 emoji in a device name": Case(
        raw_surrogate(data(), "payload.object.participant.data.0.device", CESU8_TEXT),
        400,
        BAD_JSON,
        error_mentions="CESU-8",
    ),
    "UTF-16 (little-endian) body": Case(
        json.dumps(qos()).encode("utf-16-le"), 400, BAD_JSON, error_mentions="UTF-16"
    ),
    "UTF-16 (big-endian) body": Case(
        json.dumps(qos()).encode("utf-16-be"), 400, BAD_JSON, error_mentions="UTF-16"
    ),
    "UTF-16 body with its byte order mark": Case(
        json.dumps(qos()).encode("utf-16"), 400, BAD_JSON, error_mentions="UTF-16"
    ),
    "UTF-32 (little-endian) body": Case(
        json.dumps(qos()).encode("utf-32-le"), 400, BAD_JSON, error_mentions="UTF-32"
    ),
    "UTF-32 (big-endian) body": Case(
        json.dumps(qos()).encode("utf-32-be"), 400, BAD_JSON, error_mentions="UTF-32"
    ),
    "UTF-32 body with its byte order mark": Case(
        json.dumps(qos()).encode("utf-32"), 400, BAD_JSON, error_mentions="UTF-32"
    ),
    "UTF-8 byte order mark": Case(b"\xef\xbb\xbf" + _json(qos()), 400, BAD_JSON),
    "escaped surrogate pair": Case(
        _json(with_(data(), "payload.object.participant.user_name", "x")).replace(
            b'"x"', b'"\\ud83d\\ude00"'
        ),
        200,
        ("meeting.participant_data", "accepted"),
    ),
    "NaN": Case(_json(qos())[:-1] + b', "x": NaN}', 400, BAD_JSON, error_mentions="NaN"),
    "Infinity": Case(_json(qos())[:-1] + b', "x": Infinity}', 400, BAD_JSON),
    "-Infinity": Case(_json(qos())[:-1] + b', "x": -Infinity}', 400, BAD_JSON),
    "integer of 5,000 digits": Case(
        _json(qos())[:-1] + b', "x": ' + b"9" * 5000 + b"}", 400, BAD_JSON
    ),
    # valid JSON, odd values: accepted, the odd value skipped and counted
    "number of 400 digits as a QoS value": Case(
        _json(with_(qos(), "payload.object.participant.qos.0.details.bitrate", 1)).replace(
            b'"bitrate": 1', b'"bitrate": ' + b"9" * 400
        ),
        200,
        QOS_ACCEPTED,
    ),
    "1e400 as a QoS value": Case(
        _json(with_(qos(), "payload.object.participant.qos.0.details.bitrate", 1)).replace(
            b'"bitrate": 1', b'"bitrate": 1e400'
        ),
        200,
        QOS_ACCEPTED,
    ),
    "numbers as strings": Case(_json(with_(qos(), "event_ts", "1626230691572")), 200, QOS_ACCEPTED),
    "strings as numbers": Case(
        _json(
            with_(
                with_(qos(), "payload.object.participant.user_id", 16778240),
                "payload.object.participant.qos.0.details.bitrate",
                63,
            )
        ),
        200,
        QOS_ACCEPTED,
    ),
    "event_ts not a number": Case(
        _json(with_(qos(), "event_ts", "yesterday")), 422, QOS_INVALID, error_mentions="event_ts"
    ),
    "event_ts of 400 digits": Case(
        _json(qos()).replace(b'"event_ts": ', b'"event_ts": ' + b"9" * 400 + b', "y": '),
        422,
        QOS_INVALID,
        error_mentions="event_ts",
    ),
    "event_ts 1e400": Case(
        _json(qos()).replace(b'"event_ts": ', b'"event_ts": 1e400, "y": '), 422, QOS_INVALID
    ),
    "details an array": Case(
        _json(with_(qos(), "payload.object.participant.qos.0.details", [1, 2])), 200, QOS_ACCEPTED
    ),
    "qos an object": Case(
        _json(with_(qos(), "payload.object.participant.qos", {"type": "audio_input"})),
        422,
        QOS_INVALID,
    ),
    # the analytics read addresses and free text: none of it may refuse an event
    "data item with garbage addresses and dimensions": Case(
        _json(
            with_(
                example("meeting.participant_data"),
                "payload.object.participant.data.0",
                {
                    "audio_internal_ip_address": "999.1.2.3",
                    "video_internal_ip_address": ["10.0.0.1"],
                    "signaling_ip_address": {"ip": "10.0.0.1"},
                    "as_internal_ip_address": 10,
                    "network_type": "\u2603" * 300,
                    "data_center": "<script>" * 50,
                    "version": "v" * 500,
                    "device": None,
                },
            )
        ),
        200,
        ("meeting.participant_data", "accepted"),
    ),
    "account id of every shape": Case(
        _json(with_(qos(), "payload.account_id", {"nested": ["x" * 5000]})), 200, QOS_ACCEPTED
    ),
    # big but under the size limit
    "huge string in an unknown field": Case(
        _json(with_(qos(), "payload.padding", "z" * (LIMIT - 4096))), 200, QOS_ACCEPTED
    ),
    "huge user name": Case(
        _json(with_(data(), "payload.object.participant.user_name", "n" * 20_000)),
        200,
        ("meeting.participant_data", "accepted"),
    ),
    "huge array of QoS items": Case(
        _json(
            with_(
                qos(),
                "payload.object.participant.qos",
                [{"type": f"t{n}", "details": {}} for n in range(1000)],
            )
        ),
        200,
        QOS_ACCEPTED,
    ),
    "huge array of numbers": Case(
        _json(with_(qos(), "payload.numbers", list(range(10_000)))), 200, QOS_ACCEPTED
    ),
    # headers
    "request id of latin-1 bytes": Case(
        _json(qos()), 200, QOS_ACCEPTED, _request_id(b"caf\xe9-\xff-\x80")
    ),
    "request id of UTF-8 bytes": Case(
        _json(qos()), 200, QOS_ACCEPTED, _request_id("漢字-😀".encode())
    ),
    "huge request id (30,000 bytes, under the head limit)": Case(
        _json(qos()), 200, QOS_ACCEPTED, _request_id(b"r" * 30_000)
    ),
    "huge non-ASCII request id on a forged request": Case(
        _json(qos()),
        401,
        BAD_SIGNATURE,
        lambda live, body: [
            *[(k.encode(), v.encode()) for k, v in _wrong_token(live, body).items()],
            (b"x-zm-request-id", b"\xe9" * 30_000),
        ],
    ),
    "content type of latin-1 bytes": Case(
        _json(qos()),
        415,
        BAD_JSON,
        _raw_header(b"content-type", b"application/j\xe9son; " + b"\xff" * 5000),
        error_mentions="application/json",
    ),
    "signature of non-ASCII bytes": Case(
        _json(qos()), 401, BAD_SIGNATURE, _raw_header(b"x-zm-signature", b"v0=\xe9" * 64)
    ),
    "timestamp of non-ASCII digits": Case(
        _json(qos()),
        401,
        BAD_SIGNATURE,
        _raw_header(b"x-zm-request-timestamp", FULL_WIDTH_DIGITS),
    ),
    "no signature headers": Case(
        _json(qos()),
        401,
        BAD_SIGNATURE,
        _headers_with(x_zm_signature=None, x_zm_request_timestamp=None),
    ),
    "no timestamp": Case(
        _json(qos()),
        401,
        BAD_SIGNATURE,
        _headers_with(x_zm_request_timestamp=None),
        error_mentions="x-zm-request-timestamp",
    ),
    "timestamp not a number": Case(
        _json(qos()),
        401,
        BAD_SIGNATURE,
        _headers_with(x_zm_request_timestamp="1e9"),
    ),
    "signature not hex": Case(
        _json(qos()), 401, BAD_SIGNATURE, _headers_with(x_zm_signature="v0=" + "g" * 64)
    ),
    "signature of another scheme": Case(
        _json(qos()), 401, BAD_SIGNATURE, _headers_with(x_zm_signature="v1=" + "0" * 64)
    ),
    "duplicated signature header": Case(
        _json(qos()), 401, BAD_SIGNATURE, _dup("x-zm-signature", "", "v0=" + "0" * 64)
    ),
    "duplicated timestamp header": Case(
        _json(qos()), 401, BAD_SIGNATURE, _dup("x-zm-request-timestamp", "", "1700000000")
    ),
    "duplicated content type": Case(
        _json(qos()), 415, BAD_JSON, _dup("content-type", "application/json", "text/plain")
    ),
    "wrong HMAC": Case(
        _json(qos()), 401, BAD_SIGNATURE, _wrong_token, answer={"error": "signature does not match"}
    ),
    "stale timestamp": Case(
        _json(qos()), 401, BAD_SIGNATURE, _timestamped(-301), error_mentions="replay window"
    ),
    "future timestamp": Case(
        _json(qos()), 401, BAD_SIGNATURE, _timestamped(+301), error_mentions="replay window"
    ),
    "wrong content type": Case(
        _json(qos()),
        415,
        BAD_JSON,
        _headers_with(content_type="text/plain"),
        error_mentions="application/json",
    ),
    "no content type": Case(_json(qos()), 415, BAD_JSON, _headers_with(content_type=None)),
    "content type application/jsonx": Case(
        _json(qos()), 415, BAD_JSON, _headers_with(content_type="application/jsonx")
    ),
    # events
    "unknown event": Case(
        _json({"event": "meeting.brand_new", "payload": {}}),
        200,
        ("other", "unknown_event"),
        answer={"status": "ignored", "reason": "unknown event"},
    ),
    "unknown event with a strange long name": Case(
        _json({"event": STRANGE * 500, "payload": {}}), 200, ("other", "unknown_event")
    ),
    "event name not a string": Case(_json({"event": 7}), 422, BAD_JSON, error_mentions="event"),
    "event name empty": Case(_json({"event": ""}), 422, BAD_JSON),
    "known event without a payload": Case(
        _json({"event": "meeting.participant_qos", "event_ts": 1}),
        422,
        QOS_INVALID,
        error_mentions="payload",
    ),
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[LiveExporter]:
    """One exporter for the whole battery: each case checks its own counter deltas, and
    every later case proves the earlier ones left it serving."""
    settings = flat_settings(
        secret_tokens=(TOKEN,),
        metrics_cache=0.0,
        max_request_bytes=LIMIT,
        unauthenticated_rate_limit=0.0,
        read_timeout=1.0,
    )
    clock = FakeClock()
    exporter = Exporter(settings, clock=clock)
    server, thread, url = serve(create_app(exporter), exporter.http_protocol)
    with httpx.Client(timeout=10) as client:
        yield LiveExporter(exporter, clock, url, client)
    server.should_exit = True
    thread.join(timeout=10)


def assert_still_serving(live: LiveExporter) -> None:
    """The exporter answers its probes, accepts a real event, and /metrics still parses."""
    assert live.client.get(live.url + "/-/healthy").status_code == 200
    assert live.post(qos()).json() == {"status": "accepted"}


@pytest.mark.parametrize("name", CASES)
def test_hostile_request(hostile: LiveExporter, name: str) -> None:
    case = CASES[name]
    live = hostile
    before = events_total(live)
    made = case.headers(live, case.body) if callable(case.headers) else case.headers
    headers = made if made is not None else signed(live, case.body)
    response = live.client.post(live.url + "/webhook", content=case.body, headers=headers)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    if case.answer is not None:
        assert answer == case.answer
    if case.status >= 400:
        assert set(answer) == {"error"} and isinstance(answer["error"], str) and answer["error"]
        assert case.error_mentions in answer["error"]
        assert len(answer["error"]) <= 300  # a refusal never echoes the body back
    after = events_total(live)
    if case.counted is not None:
        assert after.get(case.counted, 0) == before.get(case.counted, 0) + 1
    assert sum(after.values()) == sum(before.values()) + 1
    assert_still_serving(live)


# --- the size limit, at the socket -------------------------------------------------------------


def raw_exchange(live: LiveExporter, data: bytes | Iterator[bytes], timeout: float = 10.0) -> bytes:
    """Send raw bytes (or chunks) and read until the server closes or the answer is complete."""
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for chunk in [data] if isinstance(data, bytes) else data:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed early: read what it said
        received = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            received += part
            head, sep, body = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if sep and length is not None and len(body) >= length:
                break
        return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def json_of(answer: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return data


def test_over_the_limit_by_content_length_is_refused_before_the_body(hostile: LiveExporter) -> None:
    body = b"x" * (LIMIT + 1)
    answer = raw_exchange(hostile, request_head(hostile, body, f"content-length: {len(body)}"))
    assert status_of(answer) == 413
    assert b"connection: close" in answer.lower()
    assert_still_serving(hostile)


def test_over_the_limit_chunked_is_413(hostile: LiveExporter) -> None:
    body = _json(with_(qos(), "payload.padding", "z" * LIMIT))

    def chunks() -> Iterator[bytes]:
        yield request_head(hostile, body, "transfer-encoding: chunked")
        for start in range(0, len(body), 4096):
            part = body[start : start + 4096]
            yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
        yield b"0\r\n\r\n"

    answer = raw_exchange(hostile, chunks())
    assert status_of(answer) == 413
    assert "exceeds" in json_of(answer)["error"]
    assert_still_serving(hostile)


def test_body_without_content_length_is_empty(hostile: LiveExporter) -> None:
    """HTTP/1.1 without Content-Length or chunking has no body: the signature of the
    intended body does not match the empty one."""
    body = _json(qos())
    answer = raw_exchange(hostile, request_head(hostile, body, "connection: close") + body)
    assert status_of(answer) == 401
    assert_still_serving(hostile)


def test_body_longer_than_its_content_length(hostile: LiveExporter) -> None:
    """The bytes past the declared length are a malformed next request on the same
    connection: httptools refuses the connection (400), as ``serve`` runs it."""
    body = _json(qos())
    answer = raw_exchange(hostile, request_head(hostile, body, "content-length: 10") + body)
    assert status_of(answer) == 400
    assert_still_serving(hostile)


def test_invalid_content_length_is_refused_by_the_http_layer(hostile: LiveExporter) -> None:
    for value in ("abc", "-5", "10, 20"):
        answer = raw_exchange(hostile, request_head(hostile, b"{}", f"content-length: {value}"))
        assert status_of(answer) == 400, value
    assert_still_serving(hostile)


# --- slow bodies -------------------------------------------------------------------------------


def test_slow_body_is_408_after_the_read_timeout(hostile: LiveExporter) -> None:
    """A slow-loris body (headers, then a trickle) is cut at --web.read-timeout."""
    body = _json(qos())

    def trickle() -> Iterator[bytes]:
        yield request_head(hostile, body, f"content-length: {len(body)}") + body[:10]

    answer = raw_exchange(hostile, trickle(), timeout=30)
    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert "not received within 1 s" in json_of(answer)["error"]
    assert_still_serving(hostile)


def test_trickled_body_is_cut_even_while_bytes_keep_coming(hostile: LiveExporter) -> None:
    body = _json(qos())
    port = int(hostile.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request_head(hostile, body, f"content-length: {len(body)}"))
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + 20
        sent = 0
        while not answer and time.monotonic() < deadline and sent < len(body):
            try:
                sock.send(body[sent : sent + 1])  # one byte a poll: never idle, never done
                sent += 1
                answer = sock.recv(65536)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)  # the trickle's pace, not a wait for a condition
        sock.settimeout(10)
        if not answer:
            answer = sock.recv(65536)
    assert status_of(answer) == 408
    assert sent < len(body)
    assert_still_serving(hostile)


# --- replays and label values ------------------------------------------------------------------


def test_replayed_delivery_is_stale_and_counted_once(hostile: LiveExporter) -> None:
    body = _json(qos())
    headers = signed(hostile, body)
    stale = events_total(hostile).get(("meeting.participant_qos", "stale"), 0)
    first = hostile.client.post(hostile.url + "/webhook", content=body, headers=headers)
    samples_before = hostile.metrics()
    again = hostile.client.post(hostile.url + "/webhook", content=body, headers=headers)
    assert first.json() == {"status": "accepted"} and again.json() == {"status": "stale"}
    samples_after = hostile.metrics()
    fleet = "zoom_qos_samples_total"
    assert series_of(samples_after, fleet) == series_of(samples_before, fleet)
    assert events_total(hostile)[("meeting.participant_qos", "stale")] == stale + 1


def test_label_values_with_quotes_backslashes_newlines_and_unicode(hostile: LiveExporter) -> None:
    document = with_(data(), "payload.object.participant.user_name", STRANGE)
    document = with_(document, "payload.object.uuid", STRANGE)
    document = with_(document, "payload.object.participant.participant_id", STRANGE)
    document = with_(document, "payload.object.participant.data.0.device", STRANGE)
    assert hostile.post(document).json() == {"status": "accepted"}
    text = hostile.metrics_text()
    info = series_of(hostile.metrics(), "zoom_participant_info")
    labels = [dict(labels) for labels in info if dict(labels)["meeting_id"] == STRANGE]
    assert len(labels) == 1
    assert labels[0]["participant_id"] == STRANGE
    assert labels[0]["user_name"] == STRANGE
    assert labels[0]["device"] == STRANGE
    assert "\n" not in next(line for line in text.splitlines() if "zoom_participant_info{" in line)
    openmetrics = hostile.client.get(
        hostile.url + "/metrics", headers={"accept": "application/openmetrics-text"}
    )
    assert openmetrics.status_code == 200 and openmetrics.text.endswith("# EOF\n")
    assert_still_serving(hostile)


def test_every_refusal_kind_leaves_the_metrics_promtool_clean(hostile: LiveExporter) -> None:
    """After the whole battery against one exporter, its /metrics passes promtool."""

    for case in CASES.values():
        made = case.headers(hostile, case.body) if callable(case.headers) else case.headers
        headers = made if made is not None else signed(hostile, case.body)
        hostile.client.post(hostile.url + "/webhook", content=case.body, headers=headers)
    _, output = promtool_check_metrics(hostile.metrics_text())
    # promtool's lint only; the help-text and unit advice is checked in test_exposition.py
    assert "error" not in output.lower(), output
    assert_still_serving(hostile)


def test_get_and_other_methods_on_the_webhook_are_json(hostile: LiveExporter) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = hostile.client.request(method, hostile.url + "/webhook")
        assert response.status_code == 405
        assert response.json()["error"]


# --- raw surrogates and CESU-8 in every string field of every event ----------------------------


def _string_paths(document: object, prefix: str = "") -> Iterator[str]:
    """The dotted path of every string value in ``document`` (list indexes as numbers)."""
    if isinstance(document, dict):
        for name, value in document.items():
            yield from _string_paths(value, f"{prefix}{name}.")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _string_paths(value, f"{prefix}{index}.")
    elif isinstance(document, str):
        yield prefix[:-1]


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_raw_surrogates_in_every_string_field_are_400(hostile: LiveExporter, name: str) -> None:
    """Signed bodies with a lone surrogate (ED A0 80) or a CESU-8 emoji written raw into each
    string field of Zoom's example: each one a 400 naming UTF-8, counted, and nothing of it
    reaches the store (its /metrics still render)."""
    document = with_(example(name), "event_ts", 1_700_000_000_000)
    paths = list(_string_paths(document))
    assert paths
    before = events_total(hostile).get(BAD_JSON, 0)
    sent = 0
    for path in paths:
        for text in ("lone \ud800 surrogate", CESU8_TEXT, "\udfff"):
            body = raw_surrogate(document, path, text)
            answer = hostile.client.post(
                hostile.url + "/webhook", content=body, headers=signed(hostile, body)
            )
            assert answer.status_code == 400, (path, answer.text)
            assert "UTF-8" in answer.json()["error"], path
            sent += 1
    assert events_total(hostile)[BAD_JSON] == before + sent
    assert_still_serving(hostile)


def test_headers_over_the_limit_are_431_and_the_exporter_keeps_serving(
    hostile: LiveExporter,
) -> None:
    """A huge non-ASCII header value, and a hundred and one small headers: 431 with a JSON
    error and the connection closed, counted by the HTTP layer."""
    body = _json(qos())
    cases = {
        "head_too_large": request_head(hostile, body, "x-zm-request-id: " + "\xe9" * 40_000),
        "too_many_headers": request_head(hostile, body, *(f"x-{n}: v" for n in range(101))),
    }
    for reason, head in cases.items():
        text = hostile.metrics_text()
        line = f'zoom_qss_exporter_http_requests_refused_total{{reason="{reason}"}} '
        before = float(next(r for r in text.splitlines() if r.startswith(line)).split()[-1])
        answer = raw_exchange(hostile, head.decode("utf-8").encode("latin-1") + body)
        assert status_of(answer) == 431
        assert b"connection: close" in answer.lower()
        assert set(json_of(answer)) == {"error"}
        text = hostile.metrics_text()
        after = float(next(r for r in text.splitlines() if r.startswith(line)).split()[-1])
        assert after == before + 1
    assert_still_serving(hostile)


def test_a_raw_surrogate_never_poisons_its_participant(hostile: LiveExporter) -> None:
    """The review's case: a signed ``*_data`` event whose user name holds the bytes ED A0 80.
    It was stored, every later event of that participant answered 500 and the record never
    expired; now it is a 400, and the participant's next events are accepted and shown."""
    document = with_(data(), "payload.object.participant.user_name", "x")
    uuid = document["payload"]["object"]["uuid"]
    poisoned = raw_surrogate(document, "payload.object.participant.data.0.device")
    assert hostile.post(poisoned).status_code == 400
    assert hostile.post(document).json() == {"status": "accepted"}
    later = with_(qos(), "payload.object.uuid", uuid)
    assert hostile.post(later).json() == {"status": "accepted"}
    info = [
        dict(labels)
        for labels in series_of(hostile.metrics(), "zoom_participant_info")
        if dict(labels)["meeting_id"] == uuid
    ]
    assert [labels["device"] for labels in info] == ["WIN"]
