"""The simulator: events shaped like Zoom's examples, values that mean what they say, and
signed deliveries that a receiver can verify."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import example
from zoom_qss_exporter.ingest.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
)
from zoom_qss_exporter.outcomes import EVENT_NAMES
from zoom_qss_exporter.simulate.events import Event, Fleet, Turn
from zoom_qss_exporter.simulate.run import (
    RATE_SLACK,
    SimulationConfig,
    SimulationReport,
    add_arguments,
    run,
    simulate,
)

T0 = 1_700_000_000.0
TOKEN = "simulator-test-token"


# -- helpers ---------------------------------------------------------------------------------


def shape_problems(expected: Any, built: Any, path: str = "$") -> list[str]:
    """Where ``built`` differs from ``expected`` in keys, nesting or scalar types.

    Each element of an expected list is compared with every built element of the same
    ``type`` (audio_output with audio_output, caller with caller), or with every built element
    when it has no ``type``.
    """
    if isinstance(expected, dict):
        if not isinstance(built, dict):
            return [f"{path}: expected an object, got {type(built).__name__}"]
        problems = [f"{path}: missing {k!r}" for k in expected.keys() - built.keys()]
        problems += [f"{path}: unexpected {k!r}" for k in built.keys() - expected.keys()]
        for k in expected.keys() & built.keys():
            problems += shape_problems(expected[k], built[k], f"{path}.{k}")
        return problems
    if isinstance(expected, list):
        if not isinstance(built, list) or not built:
            return [f"{path}: expected a non-empty array"]
        problems = []
        for item in expected:
            kind = item.get("type") if isinstance(item, dict) else None
            twins = [b for b in built if isinstance(b, dict) and b.get("type") == kind]
            if kind is not None and not twins:
                problems.append(f"{path}: no element of type {kind!r}")
            for n, twin in enumerate(twins if kind is not None else built):
                problems += shape_problems(item, twin, f"{path}[{kind or n}]")
        return problems
    if type(expected) is not type(built):
        return [f"{path}: expected {type(expected).__name__}, got {type(built).__name__}"]
    return []


def build(name: str) -> Event:
    """One event of kind ``name``, from a fleet that has sent a round of QoS before."""
    fleet = Fleet(11, meetings=3, participants=12, phone_calls=1, churn=0)
    if name.startswith("phone."):
        call = fleet.calls[0]
        for party in (call.caller, call.callee):
            for direction in ("sending", "receiving"):
                fleet.call_qos_event(call, party, direction, T0)
        if name == "phone.call_qos":
            return fleet.call_qos_event(call, call.caller, "sending", T0 + 60)
        return fleet.call_qos_summary_event(call, T0 + 60)
    product, kind = name.split(".")
    instance = next(i for i in fleet.instances if i.product == product)
    # Zoom's meeting QoS example is of a Wifi participant (RSSI in audio_input); the webinar
    # and session examples are not, and the Wifi-only keys are absent from them.
    wifi = name == "meeting.participant_qos"
    p = next(p for p in instance.participants if p.wifi == wifi)
    qos = fleet.qos_event(instance, p, T0)
    builders = {
        "qos": lambda: qos,
        "qos_summary": lambda: fleet.qos_summary_event(instance, p, T0 + 60),
        "data": lambda: fleet.data_event(instance, p, T0),
        "data_summary": lambda: fleet.data_summary_event(instance, p, T0 + 60),
    }
    return builders[kind.split("_", 1)[1]]()


def play(fleet: Fleet, rounds: int, interval: float = 60) -> list[Event]:
    """What the simulator would send for ``rounds`` rounds, without any clock or network."""
    events = fleet.join_events(T0)
    turns = fleet.turns()
    for n in range(1, rounds + 1):
        following: list[Turn] = []
        for turn in turns:
            new, after = fleet.step(turn, T0 + n * interval)
            events += new
            following += after
        turns = following
    return events


def who(event: Event) -> str:
    obj = event["payload"]["object"]
    if "user" in obj:
        return str(obj["user"]["id"])
    participant = obj["participant"]
    return str(participant.get("user_id") or participant["participant_id"])


def qos_items(event: Event) -> list[dict[str, Any]]:
    obj = event["payload"]["object"]
    items: list[dict[str, Any]] = (obj.get("user") or obj["participant"])["qos"]
    return items


def number(text: str) -> float:
    match = re.match(r"-?\d+(\.\d+)?", text)
    assert match, text
    return float(match.group())


_NUMBER = r"\d+(\.\d+)?"
UNIT_PATTERNS = {
    "bitrate": rf"{_NUMBER} ?kbps",
    "latency": r"\d+ ?ms",
    "jitter": r"\d+ ?ms",
    "loss": r"\d+\.\d%",
    "frame_rate": r"\d+ ?fps",
    "resolution": r"(\d+\*\d+)?",  # "" in summaries of received video, as in Zoom's example
    "quality": "good|fair|poor|bad",
    "quality_score": r"\d\.\d\d",
    "rssi": r"-\d+",
    "rssi_unit": "dBm",
    "cpu_usage": r"\d+%",
    "cpu_pressure_level": "normal|fair|serious|critical",
    "network_notification": "network bandwidth low|internet connection unstable",
}
PHONE_PATTERNS = {
    "bitrate": r"\d+",
    "jitter": r"\d+",
    "network_delay": r"\d+",
    "avg_loss": r"\d+\.\d",
    "max_loss": r"\d+\.\d",
    "mos": r"[1-5]\.\d",
    "network": "LAN|WiFi|VPN",
}


def unit_problems(details: dict[str, Any], summary: bool) -> list[str]:
    problems = []
    for name, value in details.items():
        base = re.sub(r"^(zoom_|system_)?(min_|avg_|max_)?", "", name)
        if isinstance(value, int):  # only summaries' RSSI is a number
            if not (summary and base == "rssi"):
                problems.append(f"{name}={value!r} should be a string")
        elif not re.fullmatch(UNIT_PATTERNS[base], value):
            problems.append(f"{name}={value!r}")
    return problems


def sent_events(rounds: int = 4, **fleet: Any) -> tuple[Fleet, list[Event]]:
    settings: dict[str, Any] = dict(meetings=6, participants=8, phone_calls=6, churn=0.2)
    the_fleet = Fleet(5, **(settings | fleet))
    return the_fleet, play(the_fleet, rounds)


# -- event shapes and values -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EVENT_NAMES))
def test_event_has_the_shape_of_zoom_example(name: str) -> None:
    event = build(name)
    assert event["event"] == name
    assert shape_problems(example(name), event) == []


def test_shape_comparison_notices_differences() -> None:
    built = build("meeting.participant_qos_summary")
    del built["payload"]["object"]["participant"]["user_name"]
    compared = next(i for i in qos_items(built) if i["type"] == "audio_output")
    compared["details"]["extra"] = "1"
    built["event_ts"] = str(built["event_ts"])
    problems = shape_problems(example("meeting.participant_qos_summary"), built)
    assert len(problems) == 3, problems


def test_every_event_kind_comes_out_of_a_few_rounds() -> None:
    _, events = sent_events(rounds=3)
    assert {e["event"] for e in events} == set(EVENT_NAMES)


def test_values_are_strings_with_the_units_zoom_uses() -> None:
    _, events = sent_events()
    problems, values = [], []
    for event in events:
        name = event["event"]
        if name.startswith("phone."):
            parties = event["payload"]["object"]["call_qos"]
            for party in parties if isinstance(parties, list) else [parties]:
                samples = party["qos"] if isinstance(party["qos"], list) else [party["qos"]]
                for sample in samples:
                    for field, value in sample["details"].items():
                        if not re.fullmatch(PHONE_PATTERNS[field], value):
                            problems.append(f"{name} {field}={value!r}")
        elif "_qos" in name:
            for item in qos_items(event):
                problems += unit_problems(item["details"], summary=name.endswith("_summary"))
                values += item["details"].values()
    assert problems == []
    # Both spellings of design.md's quirk: "134 ms" and "0ms", "63 kbps" and "27.15kbps".
    text = [v for v in values if isinstance(v, str)]
    for pattern in (r"\d+ ms", r"\d+ms", r"\d+\.\d\d ?kbps", r"\d+ kbps", r"\d+kbps", r"\d+ ?fps"):
        assert any(re.fullmatch(pattern, v) for v in text), pattern


def test_events_carry_personal_data_from_documentation_ranges() -> None:
    data = build("meeting.participant_data")["payload"]["object"]["participant"]
    item = data["data"][0]
    assert data["email"].endswith("@example.com")
    assert item["signaling_ip_address"].startswith("203.0.113.")
    assert item["audio_internal_ip_address"].startswith("192.0.2.")
    assert item["mac_addr"].startswith("00:00:5E:00:53:")
    assert all(item[k] for k in ("device", "network_type", "data_center", "version", "camera"))


def test_degraded_participants_and_calls_look_worse() -> None:
    fleet, events = sent_events(rounds=3, degraded_share=0.5, churn=0)
    manifest = fleet.manifest()
    degraded = {
        p["participant_id"]: p["degraded"] for i in manifest["instances"] for p in i["participants"]
    }
    values: dict[tuple[str, bool], list[float]] = {}
    qualities: dict[bool, set[str]] = {True: set(), False: set()}
    notified: set[str] = set()
    for event in (e for e in events if e["event"].endswith(("participant_qos", "user_qos"))):
        bad = degraded[who(event)]
        for item in qos_items(event):
            details = item["details"]
            if item["type"] == "notification":
                notified.add(who(event))
            for field in ("latency", "jitter", "avg_loss", "max_loss", "frame_rate"):
                if field in details:
                    values.setdefault((field, bad), []).append(number(details[field]))
            if "quality" in details:
                qualities[bad].add(details["quality"])
    for field in ("latency", "jitter", "avg_loss", "max_loss"):
        assert max(values[field, False]) < min(values[field, True]), field
    assert max(values["frame_rate", True]) < min(values["frame_rate", False])
    assert max(values["avg_loss", False]) <= 0.5 and min(values["avg_loss", True]) >= 5
    assert qualities[False] == {"good"} and qualities[True] <= {"poor", "bad"}
    assert notified and all(degraded[p] for p in notified)

    calls = {c["call_id"]: c["degraded"] for c in manifest["phone_calls"]}
    mos: dict[bool, list[float]] = {True: [], False: []}
    for event in (e for e in events if e["event"] == "phone.call_qos"):
        obj = event["payload"]["object"]
        mos[calls[obj["call_id"]]].append(float(obj["call_qos"]["qos"]["details"]["mos"]))
    assert min(mos[False]) >= 4.0
    assert all(2.0 <= m <= 3.2 for m in mos[True])


def test_degraded_share_is_kept_exactly() -> None:
    fleet = Fleet(2, meetings=3, participants=4, phone_calls=8, degraded_share=0.25)
    manifest = fleet.manifest()
    people = [p for i in manifest["instances"] for p in i["participants"]]
    assert sum(p["degraded"] for p in people) == 3
    assert sum(c["degraded"] for c in manifest["phone_calls"]) == 2
    nobody = Fleet(2, degraded_share=0)
    assert not any(p.degraded for i in nobody.instances for p in i.participants)


def test_summary_reports_what_was_sent() -> None:
    fleet = Fleet(9, meetings=1, participants=1, phone_calls=0, churn=0)
    instance, p = fleet.instances[0], fleet.instances[0].participants[0]
    sent = [fleet.qos_event(instance, p, T0 + 60 * n) for n in range(5)]
    summary = fleet.qos_summary_event(instance, p, T0 + 300)
    for item in qos_items(summary):
        if item["type"] not in ("audio_input", "video_output"):
            continue
        samples = [i["details"] for e in sent for i in qos_items(e) if i["type"] == item["type"]]
        latencies = [number(d["latency"]) for d in samples]
        got = item["details"]
        assert number(got["min_latency"]) == min(latencies)
        assert number(got["max_latency"]) == max(latencies)
        assert number(got["avg_latency"]) == round(statistics.mean(latencies))
        assert number(got["max_loss"]) == max(number(d["max_loss"]) for d in samples)


def test_summaries_keep_min_below_avg_below_max() -> None:
    _, events = sent_events(rounds=5, degraded_share=0.5)
    checked = 0
    for event in (e for e in events if e["event"].endswith("qos_summary")):
        if event["event"] == "phone.call_qos_summary":
            continue
        for item in qos_items(event):
            details = item["details"]
            for name in details:
                if name.startswith("min_"):
                    base = name[4:]
                    low, avg, high = (details[f"{s}_{base}"] for s in ("min", "avg", "max"))
                    parse = float if isinstance(low, int) else number
                    assert parse(low) <= parse(avg) <= parse(high), (name, low, avg, high)
                    checked += 1
    assert checked > 50


def test_phone_summary_replays_every_sample_of_the_call() -> None:
    fleet = Fleet(4, meetings=0, participants=1, phone_calls=1, churn=0)
    call = fleet.calls[0]
    for n in range(3):
        fleet.step(call, T0 + 5 * n)
    summary = fleet.call_qos_summary_event(call, T0 + 15)
    parties = summary["payload"]["object"]["call_qos"]
    assert [p["type"] for p in parties] == ["caller", "callee"]
    assert [len(p["qos"]) for p in parties] == [6, 6]
    times = [s["date_time"] for s in parties[0]["qos"] if s["type"] == "sending"]
    assert times == sorted(set(times))


def test_call_end_time_is_set_only_once_the_call_has_ended() -> None:
    """The exporter ends a call's per-sample series on a set ``call_end_time``."""
    fleet = Fleet(4, meetings=0, participants=1, phone_calls=1, churn=1.0)  # ends at once
    call = fleet.calls[0]
    ongoing = fleet.call_qos_event(call, call.caller, "sending", T0)
    assert ongoing["payload"]["object"]["call_end_time"] == ""
    events, _ = fleet.step(call, T0 + 5)
    assert [e["event"] for e in events] == ["phone.call_qos"] * 4 + ["phone.call_qos_summary"]
    ends = {e["payload"]["object"]["call_end_time"] for e in events}
    assert ends == {"2023-11-14T22:13:25Z"}  # T0 + 5 s


def test_date_time_never_repeats_for_a_participant() -> None:
    fleet = Fleet(3, meetings=1, participants=1, phone_calls=0)
    instance, p = fleet.instances[0], fleet.instances[0].participants[0]
    first, second = (fleet.qos_event(instance, p, T0) for _ in range(2))
    assert qos_items(first)[0]["date_time"] == "2023-11-14T22:13:20Z"
    assert qos_items(second)[0]["date_time"] == "2023-11-14T22:13:21Z"
    assert first["event_ts"] == int(T0 * 1000)


def test_same_seed_same_events() -> None:
    def dump(seed: int) -> str:
        return json.dumps(play(Fleet(seed, churn=0.3), rounds=3))

    assert dump(1) == dump(1)
    assert dump(1) != dump(2)


# -- configuration and options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interval": 0.5}, "--interval must be at least 1"),
        ({"secret_token": ""}, "no secret token"),
        ({"target": "ftp://example.com/"}, "--target"),
        ({"degraded_share": 1.5}, "--degraded-share"),
        ({"churn": -0.1}, "--churn"),
        ({"rate": 0}, "--rate"),
        ({"meetings": 0, "phone_calls": 0}, "nothing to simulate"),
        ({"concurrency": 0}, "--concurrency"),
    ],
)
def test_config_rejects_bad_settings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**({"secret_token": TOKEN} | change))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_options_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOOM_WEBHOOK_SECRET_TOKEN", " first , second")
    monkeypatch.setenv("ZOOM_QSS_SIMULATE_TARGET", "http://exporter:9981/webhook")
    args = parse([])
    assert args.secret_token == "first"
    assert args.target == "http://exporter:9981/webhook"
    assert (args.meetings, args.participants, args.phone_calls) == (3, 4, 2)
    assert (args.rate, args.duration, args.count, args.interval) == (50.0, 30.0, 0, 60.0)
    assert (args.degraded_share, args.churn, args.seed, args.concurrency) == (0.25, 0.05, None, 16)
    assert parse(["--secret-token", "x", "--degraded-share", "0.5"]).degraded_share == 0.5


def test_run_without_a_token_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZOOM_WEBHOOK_SECRET_TOKEN", raising=False)
    assert run(parse([])) == 2
    assert "no secret token" in capsys.readouterr().err


# -- over loopback ---------------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """A stand-in for the exporter that checks each signature and keeps what it got."""

    request_queue_size = 64  # the default 5 drops bursts of connections: 1 s SYN retries

    def __init__(self, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.request_ids: list[str] = []
        self.rejected: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        timestamp, signature = self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER]
        try:
            verify_signature(body, timestamp, signature, [self.server.token], time.time(), 300)
        except SignatureError as exc:
            with self.server.lock:
                self.server.rejected.append(str(exc))
            self._answer(401, {"error": str(exc)})
            return
        with self.server.lock:
            assert self.headers["content-type"] == "application/json"
            self.server.events.append(json.loads(body))
            self.server.request_ids.append(self.headers["x-zm-request-id"])
        self._answer(200, {})

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(TOKEN)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


# Every first round: 3 join data events, then per participant (churn 1.0) qos, qos_summary,
# data_summary and a newcomer's data, then the call's 4 samples and its summary: 20 events.
ALL_KINDS: dict[str, Any] = dict(
    meetings=3, participants=1, phone_calls=1, churn=1.0, interval=1.0, count=20
)


def test_simulate_delivers_all_14_kinds_signed(receiver: Receiver, tmp_path: Path) -> None:
    manifest_path = tmp_path / "manifest.json"
    config = SimulationConfig(
        secret_token=TOKEN,
        target=receiver.url,
        rate=1000,
        duration=10,
        degraded_share=0.5,
        seed=42,
        manifest=manifest_path,
        **ALL_KINDS,
    )
    report = asyncio.run(simulate(config))

    assert receiver.rejected == []
    assert {e["event"] for e in receiver.events} == set(EVENT_NAMES)
    assert report.total == len(receiver.events) == 20
    assert report.responses == {200: 20} and not report.errors and report.ok
    assert report.sent == {
        name: sum(e["event"] == name for e in receiver.events) for name in EVENT_NAMES
    }
    assert len(set(receiver.request_ids)) == 20
    assert report.seed == 42 and 0 < report.elapsed < 10

    manifest = json.loads(manifest_path.read_text())
    assert manifest["seed"] == 42
    assert [i["product"] for i in manifest["instances"]] == ["meeting", "webinar", "session"]
    degraded = {
        p["participant_id"]: p["degraded"] for i in manifest["instances"] for p in i["participants"]
    }
    assert len(degraded) == 6 and any(degraded.values()) and not all(degraded.values())
    for event in receiver.events:
        if event["event"].endswith(("participant_qos", "user_qos")):
            latency = number(qos_items(event)[0]["details"]["latency"])
            assert (latency >= 300) == degraded[who(event)]
    assert [c["ended"] for c in manifest["phone_calls"]] == [True, False]


def test_run_reports_and_fails_on_rejections(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--target", receiver.url, "--count", "5", "--rate", "1000", "--interval", "1"]
    assert run(parse([*argv, "--secret-token", TOKEN, "--seed", "7"])) == 0
    out = capsys.readouterr().out
    assert "sent 5 events" in out and "seed 7" in out and "200" in out

    assert run(parse([*argv, "--secret-token", "not-the-token"])) == 1
    out = capsys.readouterr().out
    assert "401" in out and "signature does not match" in out


def test_transport_errors_are_counted_not_fatal() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = SimulationConfig(
        secret_token=TOKEN, target=f"http://127.0.0.1:{port}/webhook", rate=1000, count=4
    )
    report: SimulationReport = asyncio.run(simulate(config))
    assert report.total == 4 and sum(report.errors.values()) == 4 and not report.ok
    assert report.first_failure and "ConnectError" in report.first_failure


def test_rate_is_a_ceiling(receiver: Receiver) -> None:
    config = SimulationConfig(secret_token=TOKEN, target=receiver.url, rate=100, count=25)
    report = asyncio.run(simulate(config))
    assert report.responses == {200: 25}
    # The 25th event leaves 24 slots of 10 ms after the first, less the catch-up slack.
    assert 0.24 - RATE_SLACK <= report.elapsed < 5


def test_duration_bounds_the_run(receiver: Receiver) -> None:
    config = SimulationConfig(secret_token=TOKEN, target=receiver.url, rate=1000, duration=0.3)
    report = asyncio.run(simulate(config))
    # Everyone's first round goes out at once; the next is a minute away, past the end.
    assert report.sent["meeting.participant_qos"] == 4 and report.sent["phone.call_qos"] == 8
    assert report.responses == {200: report.total} == {200: len(receiver.events)}
    assert 0.3 <= report.elapsed < 5
