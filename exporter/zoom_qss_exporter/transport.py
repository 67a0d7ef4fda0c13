"""One ``send`` per small response instead of two.

uvicorn writes a response's status line and headers in one ``transport.write`` and its body in
another; on a socket with Nagle off each write is a system call and a TCP segment of its own,
and on loopback the sender also pays for the receiver's side of the stack. For a webhook
answered with a few bytes that second send is a good part of the request's cost. Here the
writes a handler makes within one turn of the event loop are joined and sent once, at the end
of that turn; a large write (a scrape's body) first sends what is pending, then goes out
unchanged, so nothing is copied or held back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SMALL_WRITE = 16 * 1024  # larger writes are not held back


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
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

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
