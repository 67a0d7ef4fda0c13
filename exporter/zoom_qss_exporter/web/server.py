"""The HTTP surface around the routes: which listener serves which paths, authentication of
the metrics, and serving one or two listening sockets from one uvicorn server.

Two listeners share one process, one event loop and one store: the public one (Zoom's
webhook) and, optionally, an internal one for Prometheus and the kubelet. Each request is
routed by the local address it arrived on (``scope["server"]``), so a path of the other
listener is a 404 there, whatever the Host header says.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from zoom_qss_exporter.store.allocator import tune_glibc_malloc
from zoom_qss_exporter.web.auth import MetricsAuth
from zoom_qss_exporter.web.listeners import WILDCARD_HOSTS, Listeners
from zoom_qss_exporter.web.transport import CoalescingHttpToolsProtocol

Endpoint = Callable[[Request], Awaitable[Response]]


def require_auth(endpoint: Endpoint, auth: MetricsAuth | None) -> Endpoint:
    """``endpoint`` behind the metrics credentials, when there are any."""
    if auth is None:
        return endpoint

    async def guarded(request: Request) -> Response:
        if auth.allows(request.headers.get("authorization", "")):
            return await endpoint(request)
        return JSONResponse(
            {"error": "authentication required"},
            status_code=401,
            headers={"www-authenticate": auth.challenge},
        )

    return guarded


def on_listener(server: tuple[str, int] | None, listener: tuple[str, int]) -> bool:
    """Whether a connection whose local address is ``server`` came in on ``listener``
    (numeric, as :func:`numeric_address` gives it)."""
    if server is None:
        return False
    host, port = listener
    return server[1] == port and (host in WILDCARD_HOSTS or server[0] == host)


def _address_info(host: str, port: int) -> tuple[int, int, int, tuple[Any, ...]]:
    """What :func:`bind` binds for ``host:port``: the first address the name resolves to."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, kind, proto, address


def numeric_address(host: str, port: int) -> tuple[str, int]:
    """``host:port`` as a connection's local address shows it: a name such as ``localhost``
    resolved, an IPv6 address in its canonical form. Raises ``OSError`` if it cannot be."""
    if not host:  # every interface
        return host, port
    try:
        address = _address_info(host, port)[3]
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host!r}: {error.strerror}") from None
    return address[0], address[1]


class ListenerFilter:
    """Serves each path only on its listener: ``internal_paths`` on the internal address,
    ``public_paths`` everywhere else. ``internal`` is resolved here as :func:`bind` resolves
    it, so that a name (``localhost:9982``) matches the address connections arrive on."""

    def __init__(
        self,
        app: ASGIApp,
        internal: tuple[str, int],
        public_paths: Collection[str],
        internal_paths: Collection[str],
    ) -> None:
        self.app = app
        self.internal = numeric_address(*internal)
        self.public_paths = frozenset(public_paths)
        self.internal_paths = frozenset(internal_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            internal = on_listener(scope.get("server"), self.internal)
            if scope["path"] not in (self.internal_paths if internal else self.public_paths):
                response = JSONResponse(
                    {"error": f"no such path on this listener: {scope['path']}"}, status_code=404
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FastRoute:
    """``POST path`` served by a plain ASGI ``endpoint`` ahead of ``app`` (Starlette): the
    webhook takes every delivery, and Starlette's routing, middleware and request objects
    would cost it more than the rest of a trivial request. Other methods on ``path`` reach
    ``app``, which answers them (405) like any other route."""

    def __init__(self, app: ASGIApp, path: str, endpoint: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for ``host:port`` (IPv4 or IPv6), as uvicorn would bind it; host
    ``""`` is every interface: IPv6 and IPv4 on one socket, or IPv4 alone on a host without
    IPv6."""
    if not host:
        try:
            return _bind_socket(socket.AF_INET6, socket.SOCK_STREAM, 0, ("::", port), dual=True)
        except OSError:
            host = "0.0.0.0"
    return _bind_socket(*_address_info(host, port))


def _bind_socket(
    family: int, kind: int, proto: int, address: tuple[Any, ...], dual: bool = False
) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if dual:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    app: ASGIApp,
    listeners: Listeners,
    log_level: str = "info",
    http: type[asyncio.Protocol] = CoalescingHttpToolsProtocol,
) -> None:
    """Run ``app`` until SIGINT or SIGTERM, on the public and (if set) internal address; on
    SIGTERM uvicorn stops accepting, answers what is in flight, then stops (10 s at most).
    ``http`` is the protocol class (``Exporter.http_protocol``: it reports refusals)."""
    tune_glibc_malloc()
    sockets = [bind(listeners.host, listeners.port)]
    if listeners.internal is not None:
        sockets.append(bind(*listeners.internal))
    config = uvicorn.Config(
        app,
        # httptools and uvloop, not uvicorn's pure-Python fallbacks: about 30% more events/s
        # in the ingest benchmark; a response's head and body sent in one write
        # (docs/performance.md); request heads bounded (transport.py)
        http=http,
        loop="uvloop",
        log_level=log_level,
        log_config=None,  # our handler (logs.configure) formats uvicorn's lines too
        access_log=False,
        timeout_graceful_shutdown=10,
        # longer than the usual 60 s idle timeout of clients and proxies, so that they close an
        # idle connection first and never reuse one the server is closing (a lost delivery)
        timeout_keep_alive=75,
        # X-Forwarded-For names the client (for the rate limit) only where the operator says
        # which proxies may set it; uvicorn would otherwise trust any local process
        proxy_headers="FORWARDED_ALLOW_IPS" in os.environ,
    )
    uvicorn.Server(config).run(sockets=sockets)
