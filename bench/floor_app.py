"""The least work any exporter must do per delivery, on the same server stack as
bench/trivial_app.py: read the body, verify its Zoom signature, parse its JSON, and keep each
QoS item by (meeting, participant, QoS type), one dict store per item. No value is read,
validated, converted or rendered, and a bad signature is a crash (500), not an answer: it is a
floor, not an exporter. bench/ingest.py measures it beside the trivial endpoint to show how
much of the trivial endpoint's rate is left once a delivery is authenticated and read at all."""

from __future__ import annotations

import time

import orjson
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from bench.events import TOKEN
from zoom_qss_exporter.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from zoom_qss_exporter.web.server import FastRoute

_ANSWER = b'{"status":"accepted"}'
_HEAD = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]
_TOKENS = (TOKEN,)
_WINDOW = 7200.0  # the benchmarks' requests are signed when generated
_SIGNATURE, _TIMESTAMP = SIGNATURE_HEADER.encode(), TIMESTAMP_HEADER.encode()

items: dict[tuple[str, str, str], object] = {}


async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    headers = dict(scope["headers"])
    verify_signature(
        body,
        headers[_TIMESTAMP].decode(),
        headers[_SIGNATURE].decode(),
        _TOKENS,
        time.time(),
        _WINDOW,
    )
    meeting = orjson.loads(body)["payload"]["object"]
    participant = meeting["participant"]
    for item in participant["qos"]:
        items[(meeting["uuid"], participant["user_id"], item["type"])] = item["details"]
    await send({"type": "http.response.start", "status": 200, "headers": _HEAD})
    await send({"type": "http.response.body", "body": _ANSWER})


app = FastRoute(Starlette(), "/webhook", webhook)
