"""What every HTTP benchmark needs: servers in subprocesses that are always cleaned up, a small
raw-socket HTTP/1.1 client cheap enough not to be the bottleneck, /metrics scrapes, and the
result table. The hardening runs (``hardening/``) use its process half too: :func:`executable`,
:func:`free_port`, :func:`exit_on_sigterm`, :class:`Server` and :class:`Exporter`.

Servers listen on 127.0.0.1 only, on a free port. A :class:`Server` is a context manager and
its ``stop`` runs on every way out (normal end, exception, Ctrl-C, SIGTERM); a server that
does not get ready is stopped by ``start`` itself.

The benchmarks run as modules from the repository root: ``.venv/bin/python -m bench.ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent  # run as .venv/bin/python -m bench.x (or -m hardening.x)
TOKEN = "bench-token"


def executable(name: str) -> str:
    """``name`` from the virtualenv the run uses, else from PATH."""
    local = BIN / name
    return str(local) if local.exists() else name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that every ``finally`` (and so every stop) runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


class Server:
    """A server subprocess on 127.0.0.1; its output goes to a log file kept for the report.

    ``ready`` says whether the server answers yet. ``spawn`` and ``wait_ready`` are the two
    halves of ``start``, for a run that times a restart; a restart appends to the same log.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        env: dict[str, str],
        ready: Callable[[Server], bool],
        *,
        log_prefix: str = "bench",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.env = env
        self.ready = ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"{log_prefix}-{name}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=REPO
            )

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Poll ``ready`` until it says yes; returns the seconds it took."""
        assert self.proc is not None
        start = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_text()}")
            with contextlib.suppress(OSError, httpx.HTTPError):
                if self.ready(self):
                    return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s")
            time.sleep(0.01)  # polling the readiness condition

    def start(self, timeout: float = 30.0) -> Self:
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> int | None:
        """Terminate (kill after 20 s) unless it has exited; its exit code, None if never run."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def problems(self) -> list[str]:
        """Log lines above INFO (the servers run with --log.level warning)."""
        return [line for line in self.log_text().splitlines() if line.strip()]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if kind is None:
            self.log.unlink(missing_ok=True)
        else:
            print(f"({self.name} log kept in {self.log})", file=sys.stderr)


def _exporter_ready(server: Server) -> bool:
    return httpx.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200


def _tcp_ready(server: Server) -> bool:
    with socket.create_connection(("127.0.0.1", server.port), timeout=1.0):
        return True


class Exporter(Server):
    """``zoom-qss-exporter serve`` on loopback with ``args``, quiet logs (``--log.level=warning``
    comes first, so ``args`` may override it), webhook secret token ``token``; not started."""

    def __init__(
        self, *args: str, port: int | None = None, token: str = TOKEN, log_prefix: str = "bench"
    ) -> None:
        port = port or free_port()
        argv = [
            executable("zoom-qss-exporter"),
            "serve",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warning",
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")}
        env["ZOOM_WEBHOOK_SECRET_TOKEN"] = token
        super().__init__("exporter", argv, port, env, _exporter_ready, log_prefix=log_prefix)


def exporter(*args: str, port: int | None = None) -> Exporter:
    """A started :class:`Exporter` with token "bench-token" and a 2 h replay window (the
    benchmarks' requests are signed when generated)."""
    return Exporter("--zoom.replay-window=2h", *args, port=port).start()


def trivial(app: str = "trivial_app", port: int | None = None) -> Server:
    """bench/``app``.py (trivial_app or floor_app) with the uvicorn settings the exporter's
    ``serve`` uses (default httptools with its head and body in one write, uvloop, no access
    log, 10 s graceful shutdown, warning logs)."""
    port = port or free_port()
    argv = [
        executable("uvicorn"),
        "--app-dir",
        str(REPO),
        f"bench.{app}:app",
        "--host=127.0.0.1",
        f"--port={port}",
        "--log-level=warning",
        "--no-access-log",
        "--http=zoom_qss_exporter.web.transport:CoalescingHttpToolsProtocol",
        "--loop=uvloop",
        "--timeout-graceful-shutdown=10",
    ]
    return Server(app, argv, port, dict(os.environ), _tcp_ready).start()


# --- /metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrape:
    text: str
    seconds: float
    wire_bytes: int


def scrape(server: Server, *, compressed: bool = False, timeout: float = 30.0) -> Scrape:
    """One GET /metrics; ``compressed`` asks for gzip as Prometheus does."""
    headers = {"accept-encoding": "gzip" if compressed else "identity"}
    start = time.perf_counter()
    with httpx.stream("GET", f"{server.url}/metrics", headers=headers, timeout=timeout) as r:
        raw = r.read() if not compressed else b"".join(r.iter_raw())
        seconds = time.perf_counter() - start
        r.raise_for_status()
        wire = len(raw)
        if compressed and r.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
    return Scrape(raw.decode(), seconds, wire)


# --- a raw HTTP/1.1 client --------------------------------------------------------------------


class Connection:
    """One keep-alive connection sending pre-built requests; cheaper per request than httpx."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, data: bytes) -> int:
        """Send one request, read its whole answer; returns the status code."""
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, rest = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(rest)
        if length:
            await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def _post_all(port: int, requests: Sequence[bytes], concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    position = 0

    async def worker() -> None:
        nonlocal position
        conn = await Connection.open(port)
        try:
            while position < len(requests):
                data = requests[position]
                position += 1
                statuses[await conn.request(data)] += 1
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def post_all(server: Server, requests: Iterable[bytes], concurrency: int = 16) -> Counter[int]:
    """POST every request (closed loop, ``concurrency`` connections); counts by status."""
    return asyncio.run(_post_all(server.port, list(requests), concurrency))


# --- figures and the table --------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline else float("nan")


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else "PASS" if ok else "FAIL"


@dataclass
class Table:
    """A markdown table: figure, ours, baseline, ratio, target, result."""

    title: str
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)

    def add(
        self,
        figure: str,
        ours: str,
        baseline: str = "",
        ratio_: str = "",
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        self.rows.append((figure, ours, baseline, ratio_, target, verdict(ok)))

    def render(self) -> str:
        head = ("figure", "ours", "baseline", "ratio", "target", "result")
        rows = [head, *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

        def line(row: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([f"### {self.title}", "", line(head), rule, *map(line, self.rows)])

    @property
    def failed(self) -> bool:
        return any(row[5] == "FAIL" for row in self.rows)


def mib(n: float, decimals: int = 0) -> str:
    return f"{n / 2**20:,.{decimals}f} MiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def exporter_logs(problems: list[str]) -> list[str]:
    """The lines that report an exporter's warnings: a heading and the first 20 (none if
    there were none)."""
    if not problems:
        return []
    head = f"exporter log lines at warning or above ({len(problems)}):"
    return [head, *("  " + line for line in problems[:20])]
