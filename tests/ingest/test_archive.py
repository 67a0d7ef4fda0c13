"""The write-ahead archive (what is written, rotation, failures) and ``replay`` (to remote
write with the original timestamps, and to a fresh exporter)."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    TOKEN,
    LiveExporter,
    LiveFactory,
    SeriesKey,
    archive_of_a_meeting,
    files,
    key,
    qos,
    series_of,
)
from prometheus_harness import wait_for
from remote_receiver import FakeReceiver, fake_receiver
from zoom_qss_exporter.cli import main
from zoom_qss_exporter.ingest.archive import Archive, ArchiveError, ArchiveOptions, read_archive
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.remote.client import RemoteWriteOptions

NOW = 1_700_000_000.0


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with fake_receiver() as fake:
        yield fake


def test_one_line_per_event_with_the_body_verbatim(tmp_path: Path) -> None:
    archive = Archive(ArchiveOptions(str(tmp_path)), lambda: NOW, host="exporter-0")
    compact = b'{"event":"x","payload":{"name":"Zo\\u00eb \\"q\\""}}'
    pretty = json.dumps({"event": "y", "n": [1, 2]}, indent=2).encode()
    assert archive.append(compact, json.loads(compact), NOW + 0.25, "req-1")
    assert archive.append(pretty, json.loads(pretty), NOW + 1, "")
    archive.close()
    (path,) = files(tmp_path)
    assert path.name == "events-20231114T221320.000000Z-exporter-0.jsonl"
    lines = path.read_bytes().splitlines()
    assert lines[0] == (
        b'{"received_at": 1700000000.25, "request_id": "req-1", "event": ' + compact + b"}"
    )
    assert len(lines) == 2, "a multi-line body is written on one line"
    events = list(read_archive([path]))
    assert [e.event for e in events] == [json.loads(compact), {"event": "y", "n": [1, 2]}]
    assert [(e.received_at, e.request_id) for e in events] == [(NOW + 0.25, "req-1"), (NOW + 1, "")]


def test_rotation_and_retention_of_this_hosts_files(tmp_path: Path) -> None:
    clock = iter(NOW + n for n in range(100))
    other = tmp_path / "events-20000101T000000.000000Z-other.jsonl"
    other.write_text("")
    archive = Archive(
        ArchiveOptions(str(tmp_path), max_bytes=300, max_files=3), lambda: next(clock)
    )
    body = b'{"event":"' + b"x" * 150 + b'"}'
    for n in range(10):
        assert archive.append(body, {}, NOW + n, f"r{n}")
    archive.close()
    mine = [p for p in files(tmp_path) if p != other]
    assert len(mine) == 3 and other.exists(), "only this host's oldest files go"
    assert all(p.stat().st_size <= 300 for p in mine)
    assert [e.request_id for e in read_archive(mine)] == ["r7", "r8", "r9"]


def test_the_archived_body_is_read_back_byte_for_byte(tmp_path: Path) -> None:
    """What replay --target sends: not a re-serialisation (1e400 would become Infinity,
    which is not JSON)."""
    archive = Archive(ArchiveOptions(str(tmp_path)), lambda: NOW)
    body = b'{"event": "meeting.participant_qos",  "extra": 1e400, "text": "\\u00e9"}'
    assert archive.append(body, json.loads(body), NOW, 'a "quoted", "event": id')
    archive.close()
    (archived,) = read_archive(files(tmp_path))
    assert archived.body == body
    assert archived.request_id == 'a "quoted", "event": id'
    odd = tmp_path / "hand-written.jsonl"  # event not last: re-serialised
    odd.write_text('{"event": {"event": "x"}, "received_at": 1, "request_id": "b"}\n')
    (written,) = read_archive([odd])
    assert written.body == b'{"event":"x"}'


def test_a_cut_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = '{"received_at": 1, "request_id": "a", "event": {"event": "x"}}\n'
    path.write_text(good + "[1]\n" + '{"event": 3}\n' + good[:30])
    problems: list[str] = []
    assert [e.request_id for e in read_archive([path], problems)] == ["a"]
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4"]


class _FullDisk:
    """An archive file on a full disk."""

    def __init__(self, name: Path) -> None:
        self.name = str(name)

    def write(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


def fill_disk(archive: Archive) -> None:
    """From now on, every file ``archive`` opens (or has open) is on a full disk."""

    def full(path: Path) -> None:
        archive._path, archive._file = path, _FullDisk(path)  # type: ignore[assignment]

    archive.close()
    full(archive.path)
    archive._open = full  # type: ignore[method-assign]


def test_a_failed_write_is_counted_and_the_next_event_goes_to_the_same_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(ArchiveOptions(str(tmp_path)), iter([NOW, NOW + 1]).__next__)
    assert archive.append(b"{}", {}, NOW, "a")
    opened = archive._open
    fill_disk(archive)
    assert not archive.append(b"{}", {}, NOW, "lost")
    archive._open = opened  # type: ignore[method-assign]  # room again
    assert archive.errors_total == 1 and "No space left on device" in caplog.text
    assert archive.append(b"{}", {}, NOW, "b")
    archive.close()
    assert archive.events_total == 2
    assert [e.request_id for e in read_archive(files(tmp_path))] == ["a", "b"]
    assert len(files(tmp_path)) == 1, "no new, empty file"


def test_failed_writes_in_a_row_delete_nothing(tmp_path: Path) -> None:
    clock = iter(NOW + n for n in range(100))
    options = ArchiveOptions(str(tmp_path), max_bytes=200, max_files=3)
    archive = Archive(options, lambda: next(clock))
    for n in range(6):
        assert archive.append(b'{"event":"' + b"x" * 80 + b'"}', {}, NOW, f"r{n}")
    kept = [e.request_id for e in read_archive(files(tmp_path))]
    fill_disk(archive)
    for _ in range(5):  # rotating on the way
        assert not archive.append(b'{"event":"' + b"x" * 80 + b'"}', {}, NOW, "lost")
    assert [e.request_id for e in read_archive(files(tmp_path))] == kept


def test_the_file_being_written_stays_when_the_clock_steps_back(tmp_path: Path) -> None:
    now = [NOW]
    archive = Archive(ArchiveOptions(str(tmp_path), max_bytes=200, max_files=2), lambda: now[0])
    body = b'{"event":"' + b"x" * 80 + b'"}'
    for n in range(6):
        now[0] += 10
        assert archive.append(body, {}, now[0], f"r{n}")
    now[0] -= 3600  # the clock is stepped back an hour
    for n in range(6, 12):
        now[0] += 1
        assert archive.append(body, {}, now[0], f"r{n}")
    assert archive.path.exists()
    archive.close()
    assert len(files(tmp_path)) == 2
    assert [e.request_id for e in read_archive([archive.path])][-1] == "r11"


def test_max_files_holds_across_restarts_and_leaves_other_hosts_alone(tmp_path: Path) -> None:
    neighbour = tmp_path / "events-20000101T000000.000000Z-b-a.jsonl"  # host "b-a"
    neighbour.write_text("")
    for n in range(6):  # a crash-looping process: a new file at each start
        options = ArchiveOptions(str(tmp_path), max_files=2)
        archive = Archive(options, iter([NOW + n]).__next__, host="a")
        assert archive.append(b"{}", {}, NOW + n, f"start{n}")
        archive.close()
    mine = [p for p in files(tmp_path) if p != neighbour]
    assert len(mine) == 2 and neighbour.exists()


def test_an_unusable_directory_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ArchiveError, match="cannot write"):
        Archive(ArchiveOptions(str(tmp_path / "file" / "archive")))


def test_the_webhook_archives_what_it_accepts_and_nothing_else(
    tmp_path: Path, receiver: FakeReceiver, live_factory: LiveFactory
) -> None:
    receiver.answer(*[503] * 100_000)
    live = live_factory(
        archive=ArchiveOptions(str(tmp_path)),
        remote_write=RemoteWriteOptions(
            receiver.url,
            queue_capacity=5,
            batch_size=5,
            flush_interval=0.05,
            max_backoff=0.05,
            shutdown_timeout=0.2,
        ),
    )
    assert live.post(qos("a", 10), headers={"x-zm-request-id": "d-1"}).status_code == 200
    assert live.post(qos("b", 10)).status_code == 503  # the queue is full
    assert live.post(qos("c", 10), token="wrong").status_code == 401
    assert live.post({"event": "meeting.participant_qos", "payload": {}}).status_code == 422
    assert live.post({"event": "zoom.unknown", "payload": {}}).status_code == 200
    (archived,) = read_archive(files(tmp_path))
    assert archived.request_id == "d-1"
    assert archived.event == qos("a", 10)
    assert archived.received_at == live.clock()
    metrics = live.metrics()
    assert metrics[key("zoom_qss_exporter_archive_events_total")] == 1
    assert metrics[key("zoom_qss_exporter_archive_errors_total")] == 0


def test_replay_to_remote_write_sends_what_was_sent_first(
    tmp_path: Path,
    receiver: FakeReceiver,
    live_factory: LiveFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, live = archive_of_a_meeting(tmp_path, live_factory, receiver.url)
    queue = live.exporter.remote_write
    assert queue is not None
    wait_for("the first delivery", lambda: queue.queued == 0 or None)
    first = receiver.accepted()
    with fake_receiver() as backfill:
        argv = ["replay", f"--remote-write.url={backfill.url}", "--remote-write.batch-size=7"]
        assert main([*argv, *map(str, files(directory))]) == 0
        replayed = backfill.accepted()
        assert all(r.samples <= 7 for r in backfill.requests)
    assert replayed == first, "same series, same Zoom timestamps, same values"
    out = capsys.readouterr().out
    samples = sum(len(v) for v in first.values())
    assert "replay: 11 events from 1 files (11 accepted)" in out
    assert f"replay: remote write: {samples} samples sent, 0 refused, 0 dropped" in out


def test_replay_reports_refusals_and_exits_1(
    tmp_path: Path,
    receiver: FakeReceiver,
    live_factory: LiveFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, _ = archive_of_a_meeting(tmp_path, live_factory, receiver.url)
    with fake_receiver() as backfill:
        backfill.answer(400, text="out of bounds")
        argv = ["replay", f"--remote-write.url={backfill.url}"]
        assert main([*argv, *map(str, files(directory))]) == 1
    assert "refused (too_old " in capsys.readouterr().out


def test_replay_to_a_fresh_exporter_gives_the_same_metrics(
    tmp_path: Path,
    receiver: FakeReceiver,
    live_factory: LiveFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory, original = archive_of_a_meeting(tmp_path, live_factory, receiver.url)
    fresh = live_factory()
    fresh.clock.now = time.time()  # replay signs with the real time
    monkeypatch.setenv("ZOOM_WEBHOOK_SECRET_TOKEN", f"{TOKEN},another")
    argv = ["replay", "--target", fresh.url + "/webhook", *map(str, files(directory))]
    assert main(argv) == 0
    assert "replay: 11 events from 1 files (11 accepted)" in capsys.readouterr().out

    def zoom(live: LiveExporter) -> dict[SeriesKey, float]:
        return {
            (name, labels): value
            for (name, labels), value in live.metrics().items()
            if name.startswith("zoom_") and not name.startswith("zoom_qss_")
        }

    replayed = zoom(fresh)
    assert replayed == zoom(original), "per-participant, per-call and fleet metrics alike"
    assert len(series_of(replayed, "zoom_participant_info")) == 4


def test_replay_needs_exactly_one_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    assert main(["replay", str(path)]) == 2
    assert "exactly one of --remote-write.url and --target" in capsys.readouterr().err
    both = ["replay", "--target=http://127.0.0.1:1/webhook", "--remote-write.url=http://x/w"]
    assert main([*both, str(path)]) == 2


def test_archive_files_are_owner_only(tmp_path: Path) -> None:
    """They hold raw bodies (e-mail and IP addresses): 0600, in a 0700 directory when the
    archive creates it, whatever the umask lets through."""
    old = os.umask(0o022)
    try:
        archive = Archive(ArchiveOptions(str(tmp_path / "new" / "archive"), max_bytes=200))
        body = json.dumps(qos("a", 1)).encode()
        for n in range(3):  # the first file and those after a rotation
            assert archive.append(body, qos("a", 1), NOW + n, f"r{n}")
        archive.close()
    finally:
        os.umask(old)
    written = files(tmp_path / "new" / "archive")
    assert len(written) == 3
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in written)
    assert stat.S_IMODE((tmp_path / "new" / "archive").stat().st_mode) == 0o700


def test_bodies_that_are_not_utf8_are_refused_and_never_archived(
    tmp_path: Path, live_factory: LiveFactory
) -> None:
    """The archive promises one line of UTF-8 JSON per event: UTF-16/32 bodies and encoded
    surrogates are refused (400) before it is written."""
    live = live_factory(archive=ArchiveOptions(str(tmp_path)))
    text = json.dumps(qos("a", 1))
    bad = [
        text.encode("utf-16"),
        text.encode("utf-16-le"),
        text.encode("utf-32-be"),
        text.replace('"a"', '"\ud800"').encode("utf-8", "surrogatepass"),
    ]
    for body in bad:
        assert live.post(body).status_code == 400
    assert live.post(qos("b", 1)).status_code == 200
    assert [e.request_id for e in read_archive(files(tmp_path))] == [""]
    for path in files(tmp_path):
        path.read_bytes().decode("utf-8")  # strict


def test_replay_survives_any_request_id_and_reports_what_it_skipped(
    tmp_path: Path,
    live_factory: LiveFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An archived request id that is not ASCII (the exporter reads the header as latin-1),
    or that no header can carry (an edited archive), and a cut line: every event is replayed
    with what of its id can be sent, and the report names what was skipped."""
    first = live_factory(archive=ArchiveOptions(str(tmp_path / "first")))
    raw_id = b"caf\xe9-\xff"
    body = json.dumps(qos("a", 1)).encode()
    headers = {"x-zm-request-id": raw_id.decode("latin-1")}
    response = first.client.post(
        first.url + "/webhook",
        content=body,
        headers=[
            (b"content-type", b"application/json"),
            *[(k.encode(), v.encode()) for k, v in sign_headers(TOKEN, int(NOW), body).items()],
            (b"x-zm-request-id", raw_id),
        ],
    )
    assert response.status_code == 200
    (archived,) = read_archive(files(tmp_path / "first"))
    assert archived.request_id == headers["x-zm-request-id"]
    edited = tmp_path / "edited.jsonl"
    lines = [
        {"received_at": NOW, "request_id": "漢字", "event": qos("b", 1)},
        {"received_at": NOW, "request_id": "line\nbreak", "event": qos("c", 1)},
    ]
    edited.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"received_at": 1, "re')
    second = live_factory(archive=ArchiveOptions(str(tmp_path / "second")))
    second.clock.now = time.time()  # replay signs with the real time
    monkeypatch.setenv("ZOOM_WEBHOOK_SECRET_TOKEN", TOKEN)
    paths = [*files(tmp_path / "first"), edited]
    assert main(["replay", "--target", second.url + "/webhook", *map(str, paths)]) == 1
    out = capsys.readouterr().out
    assert "replay: 3 events from 2 files (3 accepted)" in out
    assert f"replay: {edited}:3: " in out  # the cut line, skipped and named
    replayed = read_archive(files(tmp_path / "second"))
    assert [e.request_id for e in replayed] == [headers["x-zm-request-id"], "", ""]


def test_replay_goes_on_after_an_event_it_cannot_send(
    tmp_path: Path, live_factory: LiveFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever goes wrong with one record (here: the target refuses the connection's
    protocol for it), the next ones are sent and the report says which was skipped."""
    live = live_factory()
    live.clock.now = time.time()
    path = tmp_path / "events.jsonl"
    events = [{"received_at": NOW, "request_id": f"r{n}", "event": qos(f"p{n}", 1)} for n in (1, 2)]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    real_post = httpx.Client.post
    calls = 0

    def flaky(self: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)")
        return real_post(self, url, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "post", flaky)
        code = main(
            ["replay", "--target", live.url + "/webhook", "--secret-token", TOKEN, str(path)]
        )
    assert code == 1
    out = capsys.readouterr().out
    assert "replay: 2 events from 1 files (1 accepted, 1 skipped)" in out
    assert "replay: r1: skipped: UnicodeEncodeError" in out
