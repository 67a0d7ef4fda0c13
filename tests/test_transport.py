"""The coalescing transport: a response's small writes leave in one send, in order."""

from __future__ import annotations

import asyncio
import copy
import json
import socket

import httpx

from conftest import LiveExporter, example, request_head
from zoom_qss_exporter.transport import SMALL_WRITE, CoalescingTransport


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
