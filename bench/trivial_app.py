"""The ceiling for the ingest benchmark: the same server stack (uvicorn + Starlette), one route
that reads the body and answers 200 without doing anything else."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def webhook(request: Request) -> Response:
    await request.body()
    return Response(b'{"status":"accepted"}', media_type="application/json")


app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
