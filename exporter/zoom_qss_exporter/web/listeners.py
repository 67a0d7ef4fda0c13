"""Where the server listens: plain records, so that the settings name them without loading
the server (uvicorn, starlette) at start-up."""

from __future__ import annotations

from typing import NamedTuple


class Listeners(NamedTuple):
    """The public address and, if set, the internal one."""

    host: str  # "" (every interface), a name or an address
    port: int
    internal: tuple[str, int] | None = None


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # a listen host meaning every interface
