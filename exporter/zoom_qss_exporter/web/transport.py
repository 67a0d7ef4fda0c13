"""uvicorn's httptools protocol, with one ``send`` per small response instead of two and a
bound on request heads.

uvicorn writes a response's status line and headers in one ``transport.write`` and its body in
another; on a socket with Nagle off each write is a system call and a TCP segment of its own,
and on loopback the sender also pays for the receiver's side of the stack. For a webhook
answered with a few bytes that second send is a good part of the request's cost. Here the
writes a handler makes within one turn of the event loop are joined and sent once, at the end
of that turn; a large write (a scrape's body) first sends what is pending, then goes out
unchanged, so nothing is copied or held back.

httptools keeps a request's URL and headers in memory until the head is complete, however
long: eight connections holding 64 MiB of unfinished headers each took 568 MiB. Here a head
(request line and headers) may hold ``MAX_HEAD_BYTES`` and ``MAX_HEADERS`` headers; past
either the answer is 431 and the connection is closed, on every listener, before any route
sees the request. Malformed HTTP is answered 400 as uvicorn does, but as JSON, counted and
within the log budget (uvicorn logs a warning for each).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SMALL_WRITE = 16 * 1024  # larger writes are not held back
MAX_HEAD_BYTES = 32 * 1024  # request line and headers (nginx: 4 x 8 KiB by default)
MAX_HEADERS = 100  # (Apache's LimitRequestFields); Zoom sends about 10

Refused = Callable[[str, int], None]
"""Told of every request the protocol refuses: its reason and status."""

_REFUSALS = {
    "head_too_large": (431, f"request line and headers exceed {MAX_HEAD_BYTES} bytes"),
    "too_many_headers": (431, f"more than {MAX_HEADERS} request headers"),
    "malformed": (400, "invalid HTTP request"),
}


class _HeadRefused(Exception):
    """Raised in a parser callback to stop reading a head that is over a limit."""


class CoalescingTransport:
    """The connection's transport, but small writes wait for the end of the loop's turn."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if len(data) > SMALL_WRITE:
            self.flush()
            self._transport.write(data)
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`, with
    request heads bounded (:data:`MAX_HEAD_BYTES`, :data:`MAX_HEADERS`)."""

    refused: Refused | None = None  # set on the class by :func:`reporting_to`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head = True  # between the end of one request and its successor's headers
        self._head_received = 0  # bytes received while in a head (a bound before parsing)
        self._head_size = 0  # bytes of the current head, as parsed
        self._header_count = 0
        self._refusal = ""
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head's limits checked: before parsing, on the bytes received
        since the head began (so at most one read past the limit is ever held), and while
        parsing, on the exact size of each header."""
        if self._in_head:
            self._head_received += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(self._refusal or "malformed")
            return
        if self._in_head and self._head_received > MAX_HEAD_BYTES:
            self._refuse("head_too_large")

    def _unsupported_upgrade_warning(self) -> None:
        """An ``Upgrade`` the server does not speak (no WebSocket here; ``h2c``): the request
        is served as plain HTTP. uvicorn warns twice per such request, which any client
        could repeat to flood the log: debug here."""
        self.logger.debug("unsupported upgrade request, served as plain HTTP")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._grow_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refusal = "too_many_headers"
            raise _HeadRefused
        self._grow_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_received = True, 0

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            self._refusal = "head_too_large"
            raise _HeadRefused

    def _refuse(self, reason: str) -> None:
        """Answer ``reason``'s status with a JSON error, report it, close the connection."""
        status, message = _REFUSALS[reason]
        if self.refused is not None:
            self.refused(reason, status)
        body = json.dumps({"error": message}).encode()
        phrase = b"Request Header Fields Too Large" if status == 431 else b"Bad Request"
        head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio allows a bool
        """The client has sent all it will (a half-close, as ``nc -N`` does). uvicorn lets
        the transport close then, and with it an answer still held for the end of the turn,
        or not yet written: instead, a request whose body has arrived is answered, then the
        connection closes."""
        self.transport.flush()  # type: ignore[attr-defined]
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            cycle.keep_alive = False
            return True  # keep the transport open for writing
        return None


def reporting_to(refused: Refused) -> type[CoalescingHttpToolsProtocol]:
    """The protocol class, telling ``refused`` of each request it refuses (uvicorn makes the
    instances itself, so the callback rides on a class of its own)."""

    class ReportingProtocol(CoalescingHttpToolsProtocol):
        pass

    ReportingProtocol.refused = staticmethod(refused)
    return ReportingProtocol
