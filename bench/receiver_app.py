"""A remote-write receiver that costs next to nothing, for bench/wal.py: on the exporter's
server stack (as bench/trivial_app.py), every request's body is read and answered 204 at once,
whatever the path. The engine is out of the picture: what is left is the exporter's own cost."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":  # nothing to set up or tear down
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
