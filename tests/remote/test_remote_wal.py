"""The remote-write write-ahead log on a real directory: records come back after a restart in
order, what the engine answered for does not, a record cut short by a crash is removed, the
sink's state is written at each new segment, and a write that fails is undone and refused."""

from __future__ import annotations

import asyncio
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from remote_receiver import T0, points
from zoom_qss_exporter import families as f
from zoom_qss_exporter.remote.protocol import STALE_NAN, Point
from zoom_qss_exporter.remote.wal import (
    CHECKPOINT,
    Position,
    WALError,
    WALOptions,
    WriteAheadLog,
    decode_record,
    encode_record,
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def new_log(
    directory: Path, clock: Clock | None = None, fsync: bool = True, segment_seconds: float = 300
) -> WriteAheadLog:
    options = WALOptions(str(directory), fsync=fsync, segment_seconds=segment_seconds)
    return WriteAheadLog(options, clock or Clock())


def bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def test_a_record_round_trips_with_the_staleness_markers_exact_bits() -> None:
    labels = ("meeting", "m", "p") + ("",) * (len(f.PARTICIPANT_INFO.labels) - 3)
    info = Point(f.PARTICIPANT_INFO, labels, STALE_NAN, T0 + 0.001)
    chunks = [(False, points(3)), (True, [info])]
    (fresh, (alone, (marker,))) = decode_record(encode_record(chunks))
    assert fresh == (False, points(3))
    assert alone is True and marker.family is f.PARTICIPANT_INFO
    assert marker.labels == info.labels and marker.timestamp == info.timestamp
    assert math.isnan(marker.value) and bits(marker.value) == bits(STALE_NAN)


def test_a_lone_surrogate_in_a_label_is_kept() -> None:
    odd = Point(f.LATENCY, ("meeting", "m\ud800", "p", "audio_input"), 0.1, T0)
    assert decode_record(encode_record([(False, [odd])])) == [(False, [odd])]


def test_unanswered_records_come_back_in_order_after_a_restart(tmp_path: Path) -> None:
    wal = new_log(tmp_path)
    assert wal.recover().backlog == []
    wal.start()
    ends = [wal.append([(False, points(2, start=T0 + 10 * n))]) for n in range(5)]
    assert ends == sorted(ends) and len(set(ends)) == 5
    wal.confirm(ends[1])  # the engine answered for the first two
    wal.close()

    again = new_log(tmp_path)
    recovered = again.recover()
    assert [end for end, _ in recovered.backlog] == ends[2:]
    assert [chunks for _, chunks in recovered.backlog] == [
        [(False, points(2, start=T0 + 10 * n))] for n in range(2, 5)
    ]
    assert len(recovered.replayed) == 5, "no state yet: the sink replays every record"
    again.start()
    later = again.append([(False, points(1, start=T0 + 99))])
    assert later.segment > ends[-1].segment, "a new process writes a new segment"


def test_counters_survive_in_the_checkpoint(tmp_path: Path) -> None:
    wal = new_log(tmp_path)
    wal.recover()
    wal.counters_source = lambda: {"failed": {"too_old": 7}, "dropped": 2}
    wal.start()
    wal.confirm(wal.append([(False, points(1))]))
    wal.close()
    recovered = new_log(tmp_path).recover()
    assert recovered.counters == {"failed": {"too_old": 7}, "dropped": 2}
    assert recovered.backlog == []


def test_a_record_cut_short_by_a_crash_is_removed(tmp_path: Path) -> None:
    wal = new_log(tmp_path)
    wal.recover()
    wal.start()
    kept = wal.append([(False, points(2))])
    wal.close()
    segment = tmp_path / f"segment-{kept.segment:08d}.wal"
    whole = segment.stat().st_size
    with segment.open("ab") as torn:  # the process died in the middle of a write
        torn.write(encode_record([(False, points(2, start=T0 + 50))])[:-9])

    again = new_log(tmp_path)
    recovered = again.recover()
    assert [end for end, _ in recovered.backlog] == [kept]
    assert recovered.torn > 0 and segment.stat().st_size == whole


def test_the_sinks_state_is_written_at_each_new_segment_and_old_files_go(
    tmp_path: Path,
) -> None:
    clock = Clock()
    wal = new_log(tmp_path, clock, segment_seconds=60.0)
    wal.recover()
    generation = iter(range(100))
    wal.state_source = lambda: {"generation": next(generation)}
    wal.start()  # state 0, segment 1
    first = wal.append([(False, points(1))])
    clock.now += 61
    second = wal.append([(False, points(1, start=T0 + 1))])  # segment 2, state 1
    assert second.segment == first.segment + 1
    wal.confirm(second)
    clock.now += 61
    third = wal.append([(False, points(1, start=T0 + 2))])  # segment 3, state 2
    wal.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [  # segment 2 was answered for to its end
        CHECKPOINT,
        f"segment-{third.segment:08d}.wal",
        f"state-{third.segment:08d}.json",
    ]

    recovered = new_log(tmp_path).recover()
    assert recovered.state == {"generation": 2}
    assert len(recovered.replayed) == 1, "only the records after the newest state"
    assert [end for end, _ in recovered.backlog] == [third]


def test_group_commit_syncs_once_for_the_events_waiting_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)

    async def scenario() -> None:
        wal = new_log(tmp_path)
        wal.recover()
        wal.start()
        for n in range(20):
            wal.append([(False, points(1, start=T0 + n))])
        await asyncio.gather(*(wal.synced() for _ in range(20)))
        assert len(syncs) == 1
        await wal.synced()  # nothing new: no sync
        assert len(syncs) == 1
        wal.append([(False, points(1, start=T0 + 99))])
        await wal.synced()
        assert len(syncs) == 2
        wal.close()

    asyncio.run(scenario())


def test_without_fsync_nothing_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fdatasync", lambda fd: pytest.fail("synced"))
    wal = new_log(tmp_path, fsync=False)
    wal.recover()
    wal.start()
    wal.append([(False, points(1))])
    asyncio.run(wal.synced())


_FULL_DISK = """
import resource, signal, sys
sys.path[:0] = sys.argv[2:]
from remote_receiver import points
from zoom_qss_exporter.remote.wal import WALError, WALOptions, WriteAheadLog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal, as on a full disk
wal = WriteAheadLog(WALOptions(sys.argv[1], fsync=False), lambda: 0.0)
wal.recover()
wal.start()
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
accepted = refused = 0
for n in range(200):
    try:
        wal.append([(False, points(5, start=1_700_000_000.0 + 5 * n))])
        accepted += 1
    except WALError as error:
        refused += 1
        last = str(error)
print(accepted, refused, last)
"""


def test_a_full_disk_refuses_the_record_and_leaves_no_partial_line(tmp_path: Path) -> None:
    """A file size limit stands in for a full disk: writes past it fail with EFBIG."""
    here = Path(__file__).resolve().parents[1]
    exporter = here.parent / "exporter"
    directory = tmp_path / "wal"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(directory), str(here), str(exporter)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    accepted, refused, message = done.stdout.split(" ", 2)
    assert int(accepted) > 0 and int(refused) > 0
    assert "cannot append to the remote-write log" in message
    recovered = new_log(directory).recover()
    assert len(recovered.backlog) == int(accepted), "every accepted record, whole"
    assert recovered.torn == 0


def test_an_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(WALError, match="cannot use"):
        new_log(blocker / "wal").recover()


def test_positions_order_records() -> None:
    assert Position(1, 500) < Position(2, 10) < Position(2, 11)


def test_a_state_with_a_lone_surrogate_is_written_and_read_back(tmp_path: Path) -> None:
    state = {"info": [[["meeting", "m\ud800", "p"], 1.0, ["x"], None, 1.0]]}
    wal = new_log(tmp_path)
    wal.recover()
    wal.state_source = lambda: state
    wal.start()
    wal.close()
    assert new_log(tmp_path).recover().state == state


def test_an_unreadable_checkpoint_starts_from_the_beginning_of_what_is_kept(
    tmp_path: Path,
) -> None:
    wal = new_log(tmp_path)
    wal.recover()
    wal.start()
    kept = wal.append([(False, points(1))])
    wal.confirm(kept)
    wal.close()
    (tmp_path / CHECKPOINT).write_bytes(b'{"confirmed": [1, ')  # cut short
    recovered = new_log(tmp_path).recover()
    assert [end for end, _ in recovered.backlog] == [kept], "sent again rather than lost"
