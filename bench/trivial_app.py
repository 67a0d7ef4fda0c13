"""The ceiling for the ingest benchmark: the same server stack as the exporter's webhook
(uvicorn as ``serve`` runs it, ``web.FastRoute`` ahead of a Starlette app, a plain ASGI
endpoint), but the endpoint only reads the body and answers 200."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from zoom_qss_exporter.web.server import FastRoute

_ANSWER = b'{"status":"accepted"}'
_HEAD = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]


async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEAD})
    await send({"type": "http.response.body", "body": _ANSWER})


app = FastRoute(Starlette(), "/webhook", webhook)
