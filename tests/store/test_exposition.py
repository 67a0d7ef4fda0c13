"""The /metrics output: every family of the contract present, and promtool finds no fault."""

from __future__ import annotations

import asyncio
import copy
import gzip
import itertools
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from conftest import FLEET_AND_HEALTH, LiveExporter, example, ongoing_call, promtool_check_metrics
from zoom_qss_exporter import families as f
from zoom_qss_exporter.families import ALL_FAMILIES
from zoom_qss_exporter.samples import Conversion, InfoUpdate, Sample
from zoom_qss_exporter.store.exposition import MetricsEndpoint, render_store
from zoom_qss_exporter.store.series import SeriesStore, StoreLimits
from zoom_qss_exporter.store.textformat import label_text

EVERY_DETAIL = {
    "bitrate": "800 kbps",
    "latency": "40 ms",
    "jitter": "3 ms",
    "avg_loss": "0.5%",
    "max_loss": "2%",
    "frame_rate": "25 fps",
    "resolution": "1280*720",
    "quality": "fair",
    "quality_score": "3.1",
    "min_rssi": "-60",
    "avg_rssi": "-50",
    "max_rssi": "-40",
    "rssi_unit": "dBm",
    "zoom_min_cpu_usage": "1%",
    "zoom_avg_cpu_usage": "5%",
    "zoom_max_cpu_usage": "9%",
    "system_max_cpu_usage": "40%",
    "system_min_cpu_pressure_level": "normal",
    "system_avg_cpu_pressure_level": "fair",
    "system_max_cpu_pressure_level": "serious",
}
EVERY_SUMMARY_DETAIL = {
    **{
        f"{s}_{name}": value
        for s in ("min", "avg", "max")
        for name, value in (
            ("bitrate", "500 kbps"),
            ("latency", "30 ms"),
            ("jitter", "2 ms"),
            ("loss", "0.1%"),
            ("frame_rate", "24 fps"),
            ("rssi", -50),
        )
    },
    "resolution": "640*360",
    "quality": "good",
    "quality_score": "4.2",
    "zoom_min_cpu_usage": "1%",
    "zoom_avg_cpu_usage": "2%",
    "zoom_max_cpu_usage": "3%",
    "system_max_cpu_usage": "20%",
    "system_min_cpu_pressure_level": "normal",
    "system_avg_cpu_pressure_level": "normal",
    "system_max_cpu_pressure_level": "fair",
}


def everything(live: LiveExporter) -> None:
    """Post events that between them fill every family, including odd label values."""
    per_minute = copy.deepcopy(example("meeting.participant_qos"))
    per_minute["payload"]["object"]["participant"]["qos"] = [
        {"date_time": "2021-07-13T21:44:51Z", "type": "video_input", "details": EVERY_DETAIL},
        {  # audio: makes the estimated MOS
            "date_time": "2021-07-13T21:44:51Z",
            "type": "audio_input",
            "details": {"latency": "40 ms", "jitter": "3 ms", "avg_loss": "0.5%"},
        },
        {
            "date_time": "2021-07-13T21:44:51Z",
            "type": "notification",
            "details": {"network_notification": "internet connection unstable", "new": "1"},
        },
    ]
    summary = copy.deepcopy(example("webinar.participant_qos_summary"))
    summary["payload"]["object"]["participant"]["qos"] = [
        {"type": "video_output", "details": EVERY_SUMMARY_DETAIL}
    ]
    summary["payload"]["object"]["participant"]["user_name"] = 'Zoë "Q" \\ O\'Brien\nnext'
    data: dict[str, Any] = example("session.user_data")
    ended_call = example("phone.call_qos_summary")  # another call: it ends its own series
    ended_call["payload"]["object"]["call_id"] = "another-call"
    for event in (per_minute, summary, data, ongoing_call(), ended_call):
        assert live.post(event).status_code == 200
    assert live.post({"event": "unheard.of", "payload": {}}).status_code == 200
    assert live.post(per_minute, token="wrong").status_code == 401


def test_every_family_is_exposed(live: LiveExporter) -> None:
    everything(live)
    text = live.metrics_text()
    names = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    for family in ALL_FAMILIES:
        assert family.name in names, family.name
    for name in FLEET_AND_HEALTH:
        assert any(n == name or n.startswith(name + "_") for n in names), name


def test_promtool_check_metrics_is_clean(live: LiveExporter) -> None:
    everything(live)
    status, output = promtool_check_metrics(live.metrics_text())
    assert status == 0 and output == "", output


def test_label_values_are_escaped(live: LiveExporter) -> None:
    everything(live)
    text = live.metrics_text()
    assert 'user_name="Zoë \\"Q\\" \\\\ O\'Brien\\nnext"' in text


def test_the_stat_label_goes_in_sorted_place_whatever_the_values_hold() -> None:
    """A value may spell the next label's start (``x,user_id=`` then its closing quote): the
    phone families' ``stat`` sorts between ``role`` and ``user_id``, and a signed event with
    such a call id must not make one line, and with it the whole scrape, unparseable."""
    nasty = ["x", "x,user_id=", 'x",user_id="', "x\\", 'x\\",user_id=', ",stat=", '"', ""]
    names = f.CALL_PARTY
    for call_id, user_id, role in itertools.product(nasty, nasty[:3], nasty):
        values = (call_id, user_id, role, "sending")
        store = SeriesStore(StoreLimits())
        stats = ("min", "avg", "max")
        samples = [Sample(f.CALL_MOS, values, 3.0, 5.0, stat) for stat in stats]
        store.apply(Conversion(None, samples), 0.0)
        lines = render_store(store).splitlines()
        for stat in stats:
            got = label_text((*names, "stat"), (*values, stat))
            assert b"zoom_phone_call_mos{" + got + b"} 3.0" in lines, values


def test_a_call_id_that_spells_a_label_keeps_metrics_parseable(live: LiveExporter) -> None:
    event = copy.deepcopy(example("phone.call_qos_summary"))
    event["payload"]["object"]["call_id"] = "x,user_id="
    assert live.post(event).status_code == 200
    text = live.metrics_text()
    parsed = [s for fam in text_string_to_metric_families(text) for s in fam.samples]
    assert any(s.labels.get("call_id") == "x,user_id=" and s.labels.get("stat") for s in parsed)


def test_openmetrics_when_asked(live: LiveExporter) -> None:
    everything(live)
    response = httpx.get(
        live.url + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_gzip_when_accepted(live: LiveExporter) -> None:
    everything(live)
    with httpx.stream(
        "GET", live.url + "/metrics", headers={"accept-encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert b"zoom_qos_latency_seconds" in gzip.decompress(raw)


def test_gzip_only_when_its_weight_is_above_zero(live: LiveExporter) -> None:
    everything(live)
    cases = {
        "gzip": True,
        "gzip, deflate, br": True,
        "GZIP;q=0.5": True,
        "*": True,
        "": False,
        "identity": False,
        "gzip;q=0": False,
        "identity, gzip;q=0": False,
        "gzip;q=0.0, *": False,  # named: its own weight counts, not the wildcard's
        "*;q=0": False,
        "gzip;q=nonsense": False,
    }
    for accept_encoding, compressed in cases.items():
        with httpx.stream(
            "GET", live.url + "/metrics", headers={"accept-encoding": accept_encoding}
        ) as response:
            raw = b"".join(response.iter_raw())
        assert (response.headers.get("content-encoding") == "gzip") is compressed, accept_encoding
        assert raw.startswith(b"\x1f\x8b") is compressed, accept_encoding
        assert "accept-encoding" in response.headers["vary"]


class _Reference(Collector):
    """The store's content through prometheus-client's own classes: the reference rendering."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        for packed in self.store.families():
            family = packed.family
            gauge = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
            for labels, view in self.store.series(family):
                gauge.add_metric(list(labels), view.value)
            yield gauge


def _filled_store() -> SeriesStore:
    store = SeriesStore(StoreLimits())
    odd = 'Zoë "Q" \\ O\'Brien\nnext ✓'
    for n in range(30):
        owner = ("meeting", f"m{n % 4}==", f"p{n}" if n % 7 else odd)
        samples = [
            Sample(f.LATENCY, (*owner, "audio_input"), n * 0.001, 100.0),
            Sample(f.BITRATE, (*owner, "video_output"), 1e6 + n, 100.0),
            Sample(f.RSSI, (*owner, "wifi_rssi"), -50.0 - n, 100.0, "avg"),
            Sample(f.SAMPLE_TIMESTAMP, (*owner, "audio_input"), 1626212691.0 + n, 100.0),
        ]
        info = dict.fromkeys(f.INFO_LABELS[3:], "")
        info.update(user_name=odd if n % 3 == 0 else f"user {n}", device="Mac")
        store.apply(
            Conversion(owner, samples, [InfoUpdate(f.PARTICIPANT_INFO, owner, info, 100.0)]), 0.0
        )
    phone = ("call\\1", 'user"2', "caller", "sending")
    store.apply(Conversion(None, [Sample(f.PHONE_MOS, phone, 4.4, 5.0)]), 0.0)
    call = [Sample(f.CALL_MOS, phone, 3.0 + n, 5.0, stat) for n, stat in enumerate(("min", "max"))]
    store.apply(Conversion(None, call), 0.0)  # stat sorts between role and user_id
    # updates, departures and expiry move series around inside the packed arrays
    for n in range(0, 30, 3):
        owner = ("meeting", f"m{n % 4}==", f"p{n}" if n % 7 else odd)
        store.apply(Conversion(owner, [Sample(f.LATENCY, (*owner, "audio_input"), 9.5, 200.0)]), 1)
    store.apply(Conversion(departures=[("meeting", "m1==", "p5")]), 2.0)
    store.apply(Conversion(departures=[("meeting", "m2==", "p2")]), 2.0)
    return store


def test_store_rendering_is_byte_for_byte_prometheus_client() -> None:
    store = _filled_store()
    registry = CollectorRegistry()
    registry.register(_Reference(store))
    assert render_store(store) == generate_latest(registry)


def test_store_openmetrics_rendering_is_byte_for_byte_prometheus_client() -> None:
    store = _filled_store()
    registry = CollectorRegistry()
    registry.register(_Reference(store))
    reference = openmetrics_latest(registry)  # type: ignore[no-untyped-call]
    assert render_store(store, openmetrics=True) + b"# EOF\n" == reference


def test_rendered_store_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/setup"
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=render_store(_filled_store()),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stdout and not result.stderr, result


class _WatchedEndpoint(MetricsEndpoint):
    """Counts renders, and notes whether an older body was still held when one began."""

    def __init__(self, store: SeriesStore, clock: Callable[[], float]) -> None:
        super().__init__(store, CollectorRegistry(), max_age=1.0, clock=clock)
        self.renders = 0
        self.held_during_render: list[bool] = []

    async def _render(self, openmetrics: bool, compress: bool) -> list[bytes]:
        self.renders += 1
        self.held_during_render.append(bool(self._cache))
        return await super()._render(openmetrics, compress)


def test_a_body_is_reused_within_its_max_age_and_dropped_before_the_next_render() -> None:
    now = [0.0]
    endpoint = _WatchedEndpoint(_filled_store(), lambda: now[0])

    async def scrape() -> bytes:
        chunks, _ = await endpoint.body("", "")
        return b"".join(chunks)

    first = asyncio.run(scrape())
    now[0] = 0.9
    assert asyncio.run(scrape()) == first
    assert endpoint.renders == 1
    now[0] = 1.5
    assert asyncio.run(scrape()) == first  # the same store: the same text, rendered again
    assert endpoint.renders == 2
    # the second render began with the first body already let go: at most one body is held
    assert endpoint.held_during_render == [False, False]


def test_concurrent_scrapes_share_one_render() -> None:
    endpoint = _WatchedEndpoint(_filled_store(), lambda: 0.0)

    async def scrapes() -> list[bytes]:
        bodies = await asyncio.gather(*(endpoint.body("", "gzip") for _ in range(5)))
        return [b"".join(chunks) for chunks, _ in bodies]

    bodies = asyncio.run(scrapes())
    assert endpoint.renders == 1
    assert len(set(bodies)) == 1 and gzip.decompress(bodies[0]).startswith(b"# HELP")
