"""What the hardening runs add to the benchmarks' process harness (``bench.harness``): their
own signing token, and an exporter whose /metrics and RSS they read."""

from __future__ import annotations

from pathlib import Path

import httpx

from bench import harness

TOKEN = "hardening-token"


class Exporter(harness.Exporter):
    """``zoom-qss-exporter serve`` as a subprocess on 127.0.0.1, its output in a log file;
    signs with :data:`TOKEN`. Not started: ``start`` it inside the ``with``."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        super().__init__(*args, port=port, token=TOKEN, log_prefix="hardening")

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


def mib(n: float) -> str:
    """Bytes in MiB to a tenth: the soak compares RSS minute by minute."""
    return harness.mib(n, 1)


def verdict(run: str, problems: list[str]) -> int:
    """Print each problem and the run's verdict; the exit status."""
    for problem in problems:
        print("FAIL:", problem)
    print(f"{run}:", "FAIL" if problems else "ok")
    return 1 if problems else 0
