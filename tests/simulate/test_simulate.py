"""The simulator: events shaped like Zoom's examples, values that mean what they say, and
signed deliveries that a receiver can verify."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import re
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import example
from zoom_qss_exporter.ingest.mos import mos_estimate
from zoom_qss_exporter.ingest.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
)
from zoom_qss_exporter.outcomes import EVENT_NAMES
from zoom_qss_exporter.simulate import run as run_module
from zoom_qss_exporter.simulate.events import (
    CPU_STARVED_VERSION,
    EXTERNAL,
    REMOTE_LAN,
    REMOTE_PUBLIC,
    SITES,
    STREAM_TYPES,
    VERSIONS,
    WEAK_WIFI_SITE,
    Event,
    Fleet,
    Turn,
    stream_minutes,
)
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


def people(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's participants by id, each with its instance's product and account."""
    return {
        p["participant_id"]: {**p, "product": i["product"], "account_id": i["account_id"]}
        for i in manifest["instances"]
        for p in i["participants"]
    }


# The exporter's quality analytics as the design has it, written out here on its own: a test of
# the simulator's known answers, not a copy of the exporter's code.
SUBNETS = {site.name: [ipaddress.ip_network(s) for s in site.subnets] for site in SITES}
INTERNAL = [f"{s}_internal_ip_address" for s in ("signaling", "audio", "video", "as")]


def matching_site(address: str) -> str | None:
    """Longest-prefix match of ``address`` against every site's subnets."""
    ip = ipaddress.ip_address(address)
    found = [(n.prefixlen, name) for name, nets in SUBNETS.items() for n in nets if ip in n]
    return max(found)[1] if found else None


def site_of(data: dict[str, str]) -> str:
    """The internal addresses first, then the public one; "external" if it matches nothing."""
    for name in (n for n in INTERNAL if data.get(n)):
        if site := matching_site(data[name]):
            return site
    if data.get("signaling_ip_address"):
        return matching_site(data["signaling_ip_address"]) or "external"
    return "unknown"


def verdict(latency: float, jitter: float, loss: float, mos: float | None) -> tuple[bool, bool]:
    """(poor, poor by loss or jitter) of figures in ms and %."""
    network = jitter > 30 or loss > 10
    return network or latency > 400 or (mos is not None and mos < 3.5), network


def minute_verdicts(event: Event, network_type: str) -> dict[str, str]:
    """Each stream of one per-minute QoS event: "good", or the cause of its poor minute from
    the same event's wifi_rssi and cpu_usage items."""
    items = {item["type"]: item["details"] for item in qos_items(event)}
    rssi, cpu = items.get("wifi_rssi"), items.get("cpu_usage")
    out = {}
    for qos_type in filter(STREAM_TYPES.__contains__, items):
        details = items[qos_type]
        latency, jitter = number(details["latency"]), number(details["jitter"])
        loss = number(details["avg_loss"])
        audio = qos_type.startswith("audio")
        mos = mos_estimate(latency / 1000, jitter / 1000, loss / 100) if audio else None
        poor, network = verdict(latency, jitter, loss, mos)
        if not poor:
            out[qos_type] = "good"
        elif rssi and number(rssi["avg_rssi"]) <= -70 and network_type not in ("Wired", "Cellular"):
            out[qos_type] = "wifi"
        elif (
            cpu
            and max(number(cpu["zoom_max_cpu_usage"]), number(cpu["system_max_cpu_usage"])) >= 90
        ):
            out[qos_type] = "cpu"
        elif network:
            out[qos_type] = "network"
        else:
            out[qos_type] = "latency" if latency > 400 else "unknown"
    return out


QOS_NAMES = ("meeting.participant_qos", "webinar.participant_qos", "session.user_qos")


def per_minute(events: list[Event]) -> list[Event]:
    return [e for e in events if e["event"] in QOS_NAMES]


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
    public = ipaddress.ip_address(item["signaling_ip_address"])
    ranges = ("198.51.100.0/24", "203.0.113.0/24")
    assert any(public in ipaddress.ip_network(r) for r in ranges)
    internal = ipaddress.ip_address(item["audio_internal_ip_address"])
    assert internal.is_private and not internal.is_global
    assert item["mac_addr"].startswith("00:00:5E:00:53:")
    assert all(item[k] for k in ("device", "network_type", "data_center", "version", "camera"))


def test_degraded_participants_and_calls_look_worse() -> None:
    """Each cause degrades its own figures, always beyond the healthy ranges."""
    fleet, events = sent_events(rounds=3, degraded_share=0.5, churn=0)
    causes = {pid: p["cause"] for pid, p in people(fleet.manifest()).items()}
    assert set(causes.values()) == {None, "wifi", "cpu", "network", "latency"}
    values: dict[tuple[str, str | None], list[float]] = {}
    qualities: dict[bool, set[str]] = {True: set(), False: set()}
    notified: set[str] = set()
    for event in per_minute(events):
        cause = causes[who(event)]
        for item in qos_items(event):
            details = item["details"]
            if item["type"] == "notification":
                notified.add(who(event))
            for field in ("latency", "jitter", "avg_loss", "max_loss", "frame_rate"):
                if field in details:
                    values.setdefault((field, cause), []).append(number(details[field]))
            if "quality" in details:
                qualities[cause is not None].add(details["quality"])

    def worst(field: str, *among: str | None) -> float:
        return max(v for cause in among for v in values[field, cause])

    def best(field: str, *among: str | None) -> float:
        return min(v for cause in among for v in values[field, cause])

    lossy = ("network", "wifi", "cpu")  # packets lost and late: jitter and loss
    for field in ("jitter", "avg_loss", "max_loss"):
        assert worst(field, None, "latency") < best(field, *lossy), field
    assert worst("avg_loss", None, "latency") <= 0.5 and best("avg_loss", *lossy) >= 5
    assert worst("frame_rate", *lossy) < best("frame_rate", None, "latency")
    # Far away, or a bad network all the way: latency. A weak Wi-Fi or a busy CPU: not.
    assert worst("latency", None, "wifi", "cpu") <= 80
    assert best("latency", "network") >= 300 and best("latency", "latency") > 400
    assert qualities[False] == {"good"} and qualities[True] <= {"poor", "bad"}
    assert notified and all(causes[p] for p in notified)

    calls = {c["call_id"]: c["degraded"] for c in fleet.manifest()["phone_calls"]}
    mos: dict[bool, list[float]] = {True: [], False: []}
    for event in (e for e in events if e["event"] == "phone.call_qos"):
        obj = event["payload"]["object"]
        mos[calls[obj["call_id"]]].append(float(obj["call_qos"]["qos"]["details"]["mos"]))
    assert min(mos[False]) >= 4.0
    assert all(2.0 <= m <= 3.2 for m in mos[True])


def test_degraded_share_is_kept_exactly() -> None:
    fleet = Fleet(
        2,
        meetings=3,
        participants=4,
        phone_calls=8,
        degraded_share=0.25,
        weak_wifi_site="",
        cpu_starved_version="",
    )
    manifest = fleet.manifest()
    everyone = people(manifest).values()
    assert sum(p["degraded"] for p in everyone) == 3
    assert sum(c["degraded"] for c in manifest["phone_calls"]) == 2
    nobody = Fleet(2, degraded_share=0, weak_wifi_site="", cpu_starved_version="")
    assert not any(p.degraded for i in nobody.instances for p in i.participants)


def test_degraded_share_is_of_those_outside_the_site_and_version() -> None:
    fleet = Fleet(8, meetings=20, participants=10, degraded_share=0.25, latency_share=0.5)
    everyone = list(people(fleet.manifest()).values())
    at_site = [p for p in everyone if p["site"] == WEAK_WIFI_SITE]
    on_version = [p for p in everyone if p["version"] == CPU_STARVED_VERSION]
    assert (
        at_site
        and on_version
        and not {p["participant_id"] for p in at_site} & {p["participant_id"] for p in on_version}
    )
    assert all(p["cause"] == "wifi" and p["network_type"] == "Wifi" for p in at_site)
    assert all(p["cause"] == "cpu" for p in on_version)
    others = [p for p in everyone if p not in at_site and p not in on_version]
    bad = [p for p in others if p["degraded"]]
    assert abs(len(bad) - len(others) / 4) <= 1
    assert {p["cause"] for p in bad} == {"network", "latency"}
    assert abs(sum(p["cause"] == "latency" for p in bad) - len(bad) / 2) <= 1


def test_sites_and_versions_keep_their_shares_in_a_small_fleet() -> None:
    """The demo's 30 participants: every site, remote workers, every version and every cause."""
    for seed in range(20):
        everyone = people(Fleet(seed, meetings=6, participants=5).manifest()).values()
        assert {p["site"] for p in everyone} == {s.name for s in SITES} | {EXTERNAL}, seed
        assert {p["version"] for p in everyone} == set(VERSIONS), seed
        assert {p["cause"] for p in everyone} >= {None, "wifi", "cpu", "network"}, seed
        # Paris HQ weighs 30 of 100: 9 of 30, give or take the rounding of the phase.
        assert 7 <= sum(p["site"] == "Paris HQ" for p in everyone) <= 11, seed


def test_addresses_place_each_participant_at_its_site() -> None:
    fleet = Fleet(3, meetings=30, participants=10)
    everyone = [p for i in fleet.instances for p in i.participants]
    assert {p.site for p in everyone} == {s.name for s in SITES} | {EXTERNAL}
    for p in everyone:
        internal = {p.data[name] for name in INTERNAL}
        assert len(internal) == 1, p.data  # one machine: the same address on every stream
        address = ipaddress.ip_address(internal.pop())
        public = ipaddress.ip_address(p.data["signaling_ip_address"])
        if p.site == EXTERNAL:  # a home LAN and a home router: no site's
            assert address in ipaddress.ip_network(REMOTE_LAN)
            assert public in ipaddress.ip_network(REMOTE_PUBLIC)
            assert matching_site(str(address)) is None and matching_site(str(public)) is None
        else:
            site = next(s for s in SITES if s.name == p.site)
            assert address in ipaddress.ip_network(site.internal), (p.site, address)
            assert public in ipaddress.ip_network(site.egress), (p.site, public)
        assert site_of(p.data) == p.site
        # What the exporter reads: the data events, and their summaries, carry the addresses.
        for event in (fleet.data_event(i, p, T0) for i in fleet.instances if p in i.participants):
            obj = event["payload"]["object"]
            (item,) = (obj.get("user") or obj["participant"])["data"]
            assert site_of(item) == p.site
    assert any(
        ipaddress.ip_address(p.data["audio_internal_ip_address"]).version == 6 for p in everyone
    )


def test_per_minute_events_carry_no_addresses() -> None:
    _, events = sent_events(rounds=2)
    for event in per_minute(events) + [e for e in events if e["event"] == "phone.call_qos"]:
        assert "ip_address" not in json.dumps(event), event["event"]


def test_every_minute_has_the_figures_of_its_cause() -> None:
    """RSSI, CPU and media of every generated minute in their ranges, and poor (or not) for the
    one known reason: what quality analytics must find."""
    fleet, events = sent_events(rounds=6, meetings=12, degraded_share=0.4, churn=0.1)
    everyone = people(fleet.manifest())
    seen: set[str | None] = set()
    for event in per_minute(events):
        p = everyone[who(event)]
        cause = p["cause"]
        seen.add(cause)
        items = {item["type"]: item["details"] for item in qos_items(event)}
        assert ("wifi_rssi" in items) == (p["network_type"] == "Wifi")
        if "wifi_rssi" in items:
            rssi = number(items["wifi_rssi"]["avg_rssi"])
            assert -85 <= rssi <= -72 if cause == "wifi" else rssi > -65, (cause, rssi)
        cpu = items["cpu_usage"]
        system, zoom = number(cpu["system_max_cpu_usage"]), number(cpu["zoom_max_cpu_usage"])
        if cause == "cpu":
            assert system >= 95 and zoom <= 100
        else:
            assert max(system, zoom, number(cpu["zoom_avg_cpu_usage"])) < 60, cpu
        media = [items[t] for t in STREAM_TYPES if t in items]
        assert len(media) == 4
        for details in media:
            latency, jitter = number(details["latency"]), number(details["jitter"])
            loss = number(details["avg_loss"])
            if cause is None:  # far inside every threshold
                assert latency <= 80 and jitter <= 10 and loss <= 0.5
            elif cause == "latency":
                assert latency > 400 and jitter <= 10 and loss <= 0.5
            else:
                assert jitter > 30 and (latency >= 300 if cause == "network" else latency <= 80)
        expected = cause or "good"
        assert set(minute_verdicts(event, p["network_type"]).values()) == {expected}, p
    assert seen == {None, "wifi", "cpu", "network", "latency"}


def test_calls_are_poor_for_the_network_or_not_at_all() -> None:
    fleet, events = sent_events(rounds=4, meetings=0, phone_calls=12, degraded_share=0.5)
    causes = {c["call_id"]: c["cause"] for c in fleet.manifest()["phone_calls"]}
    assert set(causes.values()) == {None, "network"}
    for event in (e for e in events if e["event"] == "phone.call_qos"):
        obj = event["payload"]["object"]
        d = obj["call_qos"]["qos"]["details"]
        figures = (number(d["network_delay"]), number(d["jitter"]), number(d["avg_loss"]))
        poor, network = verdict(*figures, number(d["mos"]))
        assert (poor and network) if causes[obj["call_id"]] else not poor, d


def test_stream_minutes_are_media_items_and_phone_samples() -> None:
    _, events = sent_events(rounds=2)
    counted = {e["event"]: stream_minutes(e)[1] for e in events}
    assert counted["meeting.participant_qos"] == counted["session.user_qos"] == 4
    assert counted["phone.call_qos"] == 1
    assert not any(n for name, n in counted.items() if name.endswith(("_summary", "_data")))
    qos = per_minute(events)[0]
    assert stream_minutes(qos) == (who(qos), 4)


def test_accounts_take_turns() -> None:
    fleet, events = sent_events(rounds=2, accounts=3, meetings=7, phone_calls=4, churn=0.5)
    manifest = fleet.manifest()
    assert len(set(manifest["accounts"])) == 3
    instances = [i["account_id"] for i in manifest["instances"]]
    assert instances == [manifest["accounts"][n % 3] for n in range(7)]
    calls = [c["account_id"] for c in manifest["phone_calls"]]
    assert calls == [manifest["accounts"][n % 3] for n in range(len(calls))]
    account = {i["meeting_id"]: i["account_id"] for i in manifest["instances"]}
    account |= {c["call_id"]: c["account_id"] for c in manifest["phone_calls"]}
    for event in events:
        obj = event["payload"]["object"]
        key = obj.get("uuid") or obj.get("session_id") or obj.get("call_id")
        assert event["payload"]["account_id"] == account[key], event["event"]


def test_manifest_groups_participants_by_site_and_version() -> None:
    fleet, events = sent_events(rounds=2, degraded_share=0.5)
    delivered: dict[str, int] = {}
    for event in events:
        owner, count = stream_minutes(event)
        if count:
            delivered[owner] = delivered.get(owner, 0) + count
    manifest = fleet.manifest(delivered)
    everyone = people(manifest)
    assert [s["name"] for s in manifest["sites"]] == [s.name for s in SITES]
    for key, field in (("by_site", "site"), ("by_version", "version")):
        groups = manifest[key]
        assert sorted(p for g in groups.values() for p in g["participants"]) == sorted(everyone)
        for name, group in groups.items():
            members = {pid: p for pid, p in everyone.items() if p[field] == name}
            assert set(group["participants"]) == set(members)
            assert group["degraded"] == {
                pid: p["cause"] for pid, p in members.items() if p["cause"]
            }
            totals: dict[str, int] = {}
            for p in members.values():
                cause = p["cause"] or "good"
                totals[cause] = totals.get(cause, 0) + p["stream_minutes"]
            assert group["stream_minutes"] == {k: n for k, n in totals.items() if n}
    assert manifest["by_site"][WEAK_WIFI_SITE]["degraded"]
    assert set(manifest["by_site"][WEAK_WIFI_SITE]["degraded"].values()) == {"wifi"}
    assert set(manifest["by_version"][CPU_STARVED_VERSION]["degraded"].values()) == {"cpu"}
    assert sum(p["stream_minutes"] for p in everyone.values()) + sum(
        c["stream_minutes"] for c in manifest["phone_calls"]
    ) == sum(delivered.values())


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
        fleet = Fleet(seed, churn=0.3, accounts=2)
        return json.dumps([play(fleet, rounds=3), fleet.manifest()])

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
        ({"accounts": 0}, "--accounts"),
        ({"weak_wifi_site": "Atlantis"}, "--weak-wifi-site must be empty or one of Paris HQ"),
        ({"cpu_starved_version": "1.0"}, "--cpu-starved-version"),
        ({"latency_share": 1.5}, "--latency-share"),
        ({"redeliver_share": -0.1}, "--redeliver-share"),
        ({"sites_only": True}, "--sites-only needs --sites-file"),
        ({"sites_file": Path("/no/such/dir/sites.yaml")}, "--sites-file: no such directory"),
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
    assert (args.accounts, args.redeliver_share, args.latency_share) == (1, 0.0, 0.25)
    assert (args.weak_wifi_site, args.cpu_starved_version) == ("Lyon Office", "5.16.10.26186")
    assert args.sites_file is None and not args.sites_only
    assert parse(["--secret-token", "x", "--degraded-share", "0.5"]).degraded_share == 0.5
    assert parse(["--weak-wifi-site", ""]).weak_wifi_site == ""
    monkeypatch.setenv("ZOOM_QSS_SIMULATE_SITES_FILE", "/tmp/sites.yaml")
    assert parse([]).sites_file == Path("/tmp/sites.yaml")
    assert parse(["--sites-file", "here.yaml"]).sites_file == Path("here.yaml")


def test_sites_only_writes_the_sites_file_the_exporter_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ZOOM_WEBHOOK_SECRET_TOKEN", raising=False)  # not needed to write it
    path = tmp_path / "sites.yaml"
    assert run(parse(["--sites-file", str(path), "--sites-only"])) == 0
    loaded = yaml.safe_load(path.read_text())
    assert loaded == {"sites": [{"name": s.name, "subnets": list(s.subnets)} for s in SITES]}
    assert len(loaded["sites"]) == 5 and all(" " in s["name"] for s in loaded["sites"])
    networks = [ipaddress.ip_network(n) for s in loaded["sites"] for n in s["subnets"]]
    assert any(n.version == 6 for n in networks)
    egress = [ipaddress.IPv4Network(r) for r in ("198.51.100.0/24", "203.0.113.0/24")]
    for site in loaded["sites"]:
        internal, public = map(ipaddress.ip_network, site["subnets"])
        assert internal.is_private
        assert isinstance(public, ipaddress.IPv4Network)
        assert any(public.subnet_of(range_) for range_ in egress), public
    remote = [ipaddress.ip_network(REMOTE_LAN), ipaddress.ip_network(REMOTE_PUBLIC)]
    for a, b in ((a, b) for a in networks + remote for b in networks if a is not b):
        assert not a.overlaps(b), (a, b)


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
        self.bodies: list[bytes] = []  # as received: a redelivery's is the same bytes
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
            self.server.bodies.append(body)
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
    manifest_path, sites_path = tmp_path / "manifest.json", tmp_path / "sites.yaml"
    config = SimulationConfig(
        secret_token=TOKEN,
        target=receiver.url,
        rate=1000,
        duration=10,
        degraded_share=0.5,
        seed=42,
        manifest=manifest_path,
        sites_file=sites_path,
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
    everyone = people(manifest)
    assert len(everyone) == 6 and {p["degraded"] for p in everyone.values()} == {True, False}
    for event in per_minute(receiver.events):
        p = everyone[who(event)]
        assert set(minute_verdicts(event, p["network_type"]).values()) == {p["cause"] or "good"}
    assert [c["ended"] for c in manifest["phone_calls"]] == [True, False]
    # 3 per-minute QoS events of 4 streams, and 4 phone samples; nothing delivered twice.
    assert manifest["stream_minutes"] == report.totals()
    assert report.totals()["delivered"] == 16 and report.redelivered_stream_minutes == 0
    assert sum(p["stream_minutes"] for p in everyone.values()) == 12
    assert yaml.safe_load(sites_path.read_text())["sites"] == manifest["sites"]


def redelivery_run(receiver: Receiver, tmp_path: Path, seed: int) -> SimulationReport:
    """One round of 20 participants and 3 calls, a third of their QoS events sent twice."""
    config = SimulationConfig(
        secret_token=TOKEN,
        target=receiver.url,
        meetings=4,
        participants=5,
        phone_calls=3,
        rate=2000,
        duration=0.8,  # the first round; the next is a minute away
        churn=0,
        degraded_share=0.5,
        redeliver_share=0.3,
        seed=seed,
        manifest=tmp_path / "manifest.json",
    )
    return asyncio.run(simulate(config))


def test_redeliveries_repeat_the_body_and_count_once(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "REDELIVERY_DELAY", (0.05, 0.2))  # within the run
    report = redelivery_run(receiver, tmp_path, seed=9)
    assert report.ok and receiver.rejected == []  # each copy signed anew, and verified
    assert len(set(receiver.request_ids)) == len(receiver.bodies) == report.total

    copies = Counter(receiver.bodies)
    twice = [json.loads(body) for body, n in copies.items() if n == 2]
    assert twice and max(copies.values()) == 2
    assert {e["event"] for e in twice} <= {*QOS_NAMES, "phone.call_qos"}
    assert report.redelivered == Counter(e["event"] for e in twice)
    assert report.redelivered_stream_minutes == sum(stream_minutes(e)[1] for e in twice)

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    causes = {pid: p["cause"] for pid, p in people(manifest).items()}
    causes |= {c["call_id"]: c["cause"] for c in manifest["phone_calls"]}
    owners: Counter[str] = Counter()
    by_cause: Counter[str] = Counter()
    for event in map(json.loads, copies):  # each distinct body once
        owner, count = stream_minutes(event)
        if count:
            owners[owner] += count
            by_cause[causes[owner] or "good"] += count
    assert by_cause == report.stream_minutes
    assert sum(by_cause.values()) == 20 * 4 + 3 * 4  # everyone's first round
    assert manifest["stream_minutes"] == {
        "delivered": sum(by_cause.values()),
        "by_cause": dict(by_cause),
        "redelivered_events": len(twice),
        "redelivered": report.redelivered_stream_minutes,
    }
    for pid, p in people(manifest).items():
        assert p["stream_minutes"] == owners[pid]
    assert "redeliveries answered 2xx: " + str(len(twice)) in report.render()


def test_which_events_are_redelivered_follows_the_seed(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "REDELIVERY_DELAY", (0.05, 0.2))

    def redelivered(seed: int) -> list[tuple[str, str]]:
        """Whose events of which kind, as the date_time in them differs from run to run."""
        receiver.bodies.clear()
        redelivery_run(receiver, tmp_path, seed)
        twice = [json.loads(body) for body, n in Counter(receiver.bodies).items() if n == 2]
        return sorted((stream_minutes(e)[0], e["event"]) for e in twice)

    first = redelivered(9)
    assert first and redelivered(9) == first
    assert redelivered(10) != first


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
