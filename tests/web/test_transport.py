"""The project's HTTP protocol: a response's small writes leave in one send, in order, and
request heads are bounded (431) on both listeners."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from conftest import TOKEN, FakeClock, LiveExporter, example, flat_settings, request_head
from zoom_qss_exporter.app import Exporter, create_app
from zoom_qss_exporter.web.server import bind
from zoom_qss_exporter.web.transport import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    SMALL_WRITE,
    CoalescingTransport,
)


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 8080) if name == "sockname" else default


def test_writes_of_one_turn_leave_in_one_send() -> None:
    raw = RecordingTransport()
    sent: list[list[bytes]] = []

    async def main() -> None:
        coalescing = CoalescingTransport(raw, asyncio.get_running_loop())
        coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        coalescing.write(b"{}")
        sent.append(list(raw.writes))  # nothing yet: the turn is not over
        await asyncio.sleep(0)
        sent.append(list(raw.writes))
        coalescing.write(b"next")
        await asyncio.sleep(0)
        sent.append(list(raw.writes))

    asyncio.run(main())
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    assert sent == [[], [head + b"{}"], [head + b"{}", b"next"]]


def test_a_large_write_sends_what_is_pending_first_and_is_not_held_back() -> None:
    raw = RecordingTransport()
    big = b"x" * (SMALL_WRITE + 1)

    async def main() -> None:
        coalescing = CoalescingTransport(raw, asyncio.get_running_loop())
        coalescing.write(b"head")
        coalescing.write(big)
        assert raw.writes == [b"head", big]  # at once, in order
        coalescing.write(b"tail")
        await asyncio.sleep(0)

    asyncio.run(main())
    assert raw.writes == [b"head", big, b"tail"]


def test_close_sends_what_is_pending_before_closing() -> None:
    raw = RecordingTransport()

    async def main() -> None:
        coalescing = CoalescingTransport(raw, asyncio.get_running_loop())
        coalescing.write(b"last answer")
        coalescing.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left to send

    asyncio.run(main())
    assert raw.writes == [b"last answer"]
    assert raw.closed


def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    raw = RecordingTransport()

    async def main() -> None:
        coalescing = CoalescingTransport(raw, asyncio.get_running_loop())
        coalescing.write(b"answer")
        raw.close()  # the peer went away, e.g.: uvloop closed the transport itself
        await asyncio.sleep(0)

    asyncio.run(main())
    assert raw.writes == []


def test_other_attributes_are_the_transports_own() -> None:
    raw = RecordingTransport()

    async def main() -> None:
        coalescing = CoalescingTransport(raw, asyncio.get_running_loop())
        assert coalescing.get_extra_info("sockname") == ("127.0.0.1", 8080)
        assert coalescing.is_closing() is False

    asyncio.run(main())


def test_keep_alive_answers_are_whole_and_in_order(live: LiveExporter) -> None:
    """Through the real server: many requests on one connection, each answer complete, and a
    large body (the scrape) after small ones on the same connection."""
    for n in range(20):  # a scrape body of well over SMALL_WRITE
        event = copy.deepcopy(example("meeting.participant_qos"))
        event["payload"]["object"]["participant"]["participant_id"] = f"participant-{n}"
        assert live.post(event).status_code == 200
    with httpx.Client(base_url=live.url) as client:
        for _ in range(50):
            healthy = client.get("/-/healthy")
            assert healthy.status_code == 200 and healthy.text == "Healthy.\n"
            ready = client.get("/-/ready")
            assert ready.status_code == 200 and ready.text == "Ready.\n"
        metrics = client.get("/metrics", headers={"accept-encoding": "identity"})
        assert metrics.status_code == 200
        assert len(metrics.content) > SMALL_WRITE  # sent past the coalescing
        assert int(metrics.headers["content-length"]) == len(metrics.content)
        assert client.get("/-/healthy").text == "Healthy.\n"


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_pipelined_requests_are_answered_in_order(live: LiveExporter) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET /-/healthy HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /-/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        answers = _read_all(sock)
    assert answers.count(b"HTTP/1.1 200 OK") == 2
    assert answers.index(b"Healthy.") < answers.index(b"Ready.")


def test_100_continue_is_sent_before_the_body_is_read(live: LiveExporter) -> None:
    """uvicorn writes the interim answer while the handler waits for the body: held back to
    the end of the loop's turn, it must still go out before the client sends its body."""
    body = json.dumps(example("meeting.participant_qos")).encode()
    head = request_head(
        live, body, f"content-length: {len(body)}", "expect: 100-continue", "connection: close"
    )
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b'{"status":"accepted"}' in answer


def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(
    live: LiveExporter,
) -> None:
    """``shutdown(SHUT_WR)`` after the request (as ``nc -N`` and some HTTP/1.0 clients do):
    the end of the client's stream arrives before the answer held for the end of the loop's
    turn has left, and must not close the connection under it."""
    body = json.dumps(example("meeting.participant_qos")).encode()
    host, port = live.url.removeprefix("http://").split(":")
    for n in range(30):
        request = (
            b"GET /-/healthy HTTP/1.1\r\nhost: x\r\n\r\n"
            if n % 2
            else request_head(live, body, f"content-length: {len(body)}") + body
        )
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 200 OK"), (n, answer)


# --- bounded request heads ---------------------------------------------------------------------


@pytest.fixture
def two_listeners() -> Iterator[tuple[str, str, httpx.Client]]:
    """An exporter served as ``serve`` runs it: the project's protocol, a public and an
    internal listener."""
    public, internal = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    ports = public.getsockname()[1], internal.getsockname()[1]
    settings = flat_settings(
        host="127.0.0.1",
        port=ports[0],
        internal_listen=("127.0.0.1", ports[1]),
        secret_tokens=(TOKEN,),
        metrics_cache=0.0,
    )
    exporter = Exporter(settings, clock=FakeClock())
    config = uvicorn.Config(
        create_app(exporter), http=exporter.http_protocol, loop="uvloop", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [public, internal]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # polling the start condition
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    with httpx.Client(timeout=10) as client:
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", client
    server.should_exit = True
    thread.join(timeout=10)


def exchange(url: str, head: bytes, chunk: bytes = b"", times: int = 0) -> tuple[bytes, int]:
    """Send ``head``, then ``chunk`` up to ``times`` times while the server keeps reading;
    return the answer and how many chunks were sent before the server closed."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(head)
            for _ in range(times):
                sock.sendall(chunk)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            answer += part
    return answer, sent


def refused(client: httpx.Client, internal: str, reason: str) -> float:
    text = client.get(internal + "/metrics").text
    line = f'zoom_qss_exporter_http_requests_refused_total{{reason="{reason}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


def _answer(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.mark.parametrize("listener", ["public", "internal"])
def test_a_head_over_the_limit_is_431_on_either_listener(
    two_listeners: tuple[str, str, httpx.Client], listener: str
) -> None:
    public, internal, client = two_listeners
    url, path = (public, b"/webhook") if listener == "public" else (internal, b"/metrics")
    method = b"POST " if listener == "public" else b"GET "
    cases = {
        "head_too_large": b"x-zm-request-id: " + b"\xe9" * MAX_HEAD_BYTES + b"\r\n",
        "too_many_headers": b"".join(b"x-h%d: v\r\n" % n for n in range(MAX_HEADERS)),
    }
    for reason, headers in cases.items():
        before = refused(client, internal, reason)
        head = method + path + b" HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n"
        status, answer = _answer(exchange(url, head)[0])
        assert status == 431
        assert answer["error"] in (
            f"request line and headers exceed {MAX_HEAD_BYTES} bytes",
            f"more than {MAX_HEADERS} request headers",
        )
        assert refused(client, internal, reason) == before + 1
    long_url = method + path + b"?" + b"a" * MAX_HEAD_BYTES + b" HTTP/1.1\r\nhost: x\r\n\r\n"
    assert _answer(exchange(url, long_url)[0])[0] == 431
    # just under the limits: served
    near = b"".join(b"x-h%d: v\r\n" % n for n in range(MAX_HEADERS - 2))  # + host, connection
    ok = exchange(
        url, b"GET /openapi.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + near + b"\r\n"
    )
    assert ok[0].startswith(b"HTTP/1.1 200")
    assert client.get(internal + "/-/ready").status_code == 200


def test_an_endless_head_is_cut_at_the_limit(two_listeners: tuple[str, str, httpx.Client]) -> None:
    """Headers that never end (the review held 64 MiB per connection): the server answers
    431 and closes once the limit is passed, long before the client is done."""
    public, internal, client = two_listeners
    head = b"POST /webhook HTTP/1.1\r\nhost: x\r\nx-zm-request-id: "
    answer, sent = exchange(public, head, b"a" * 65536, times=1024)  # up to 64 MiB
    assert _answer(answer)[0] == 431
    assert sent < 1024
    assert refused(client, internal, "head_too_large") == 1


def test_malformed_http_is_400_json_counted_and_logged_within_the_budget(
    two_listeners: tuple[str, str, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn logs a warning per malformed request: a flood of garbage would flood the
    log. Here each is a JSON 400, counted; the log holds at most the budget's lines."""
    caplog.set_level(logging.INFO)
    public, internal, client = two_listeners
    for _ in range(60):
        status, answer = _answer(exchange(public, b"NOT HTTP AT ALL\r\n\r\n")[0])
        assert status == 400 and answer == {"error": "invalid HTTP request"}
    assert refused(client, internal, "malformed") == 60
    lines = [r for r in caplog.records if r.getMessage() == "refused request"]
    assert len(lines) == 20  # LogBudget's default: 20 lines per 10 s
    assert "Invalid HTTP request received." not in caplog.text


def test_upgrade_requests_are_served_without_a_warning_each(
    two_listeners: tuple[str, str, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn warns twice for each request asking to upgrade to a protocol it does not
    speak (a scanner's ``h2c``, a WebSocket without a library): a log flood for anyone."""
    caplog.set_level(logging.INFO)
    public = two_listeners[0]
    for protocol in ("websocket", "h2c") * 10:
        head = (
            b"GET /openapi.json HTTP/1.1\r\nhost: x\r\nconnection: upgrade, close\r\n"
            b"upgrade: " + protocol.encode() + b"\r\n\r\n"
        )
        assert exchange(public, head)[0].startswith(b"HTTP/1.1 200")
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
