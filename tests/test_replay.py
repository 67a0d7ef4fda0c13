"""``replay`` ends: by ``--timeout`` whatever the engine does, always with its report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LiveFactory, archive_of_a_meeting, files
from remote_receiver import FakeReceiver, fake_receiver
from zoom_qss_exporter.cli import main


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with fake_receiver() as fake:
        yield fake


def test_an_engine_that_never_takes_anything_meets_the_deadline_and_a_report(
    tmp_path: Path,
    receiver: FakeReceiver,
    live_factory: LiveFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """503 forever and an archive larger than the queue: before, replay waited for room
    forever and printed nothing."""
    directory, _ = archive_of_a_meeting(tmp_path, live_factory, receiver.url)
    with fake_receiver() as backfill:
        backfill.answer(*[503] * 100_000)
        argv = [
            "replay",
            f"--remote-write.url={backfill.url}",
            "--remote-write.queue-capacity=20",
            "--remote-write.batch-size=10",
            "--remote-write.min-backoff=10ms",
            "--remote-write.max-backoff=50ms",
            "--timeout=1s",
            *map(str, files(directory)),
        ]
        started = time.monotonic()
        assert main(argv) == 1
        took = time.monotonic() - started
    out = capsys.readouterr().out
    assert "events not replayed" in out and "--timeout (1s) reached" in out
    assert "dropped" in out
    assert took < 30, "ended by its deadline"
