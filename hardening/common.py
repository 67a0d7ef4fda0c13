"""What the hardening runs share: an exporter subprocess on loopback, and reading /metrics."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "hardening-token"


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


class Exporter:
    """``zoom-qss-exporter serve`` as a subprocess on 127.0.0.1, its output in a log file."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.argv = [
            executable("zoom-qss-exporter"),
            "serve",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warning",
            *args,
        ]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")}
        self.env["ZOOM_WEBHOOK_SECRET_TOKEN"] = TOKEN
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="hardening-exporter-", suffix=".log")[1])

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
        """Poll /-/ready until it answers 200; returns the seconds it took."""
        assert self.proc is not None
        start = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited at start:\n{self.log_text()}")
            with contextlib.suppress(OSError, httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"exporter not ready after {timeout:.0f} s")
            time.sleep(0.01)  # polling the readiness condition

    def start(self) -> Exporter:
        self.spawn()
        self.wait_ready()
        return self

    def stop(self) -> int | None:
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

    def rss_bytes(self) -> int:
        """RSS from /proc, a cross-check of process_resident_memory_bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def metrics_text(self) -> str:
        response = httpx.get(f"{self.url}/metrics", timeout=30.0)
        response.raise_for_status()
        return response.text

    def __enter__(self) -> Exporter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if kind is None:
            self.log.unlink(missing_ok=True)
        else:
            print(f"(exporter log kept in {self.log})", file=sys.stderr)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.MULTILINE)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Labels and value of every sample of metric ``name`` in a text exposition."""
    for match in _SAMPLE.finditer(text):
        if match.group(1) == name:
            yield dict(_LABEL.findall(match.group(2) or "")), float(match.group(3))


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for have, v in samples(text, name) if labels.items() <= have.items())


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"
