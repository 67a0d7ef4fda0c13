"""The analytics fed by the real pipeline: Zoom-shaped events in, counters out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zoom_qss_exporter.analytics.flags import AnalyticsSettings
from zoom_qss_exporter.app import Exporter
from zoom_qss_exporter.config import Settings, StoreSettings
from zoom_qss_exporter.ingest.events import parse_event
from zoom_qss_exporter.outcomes import Outcome

NOW = 1_700_000_000.0
MINUTE = "2023-11-14T22:13:00Z"
SITES = "sites:\n  - name: Paris HQ\n    subnets: [10.20.0.0/16, 198.51.100.0/24]\n"
GOOD = {"latency": "40 ms", "jitter": "3 ms", "avg_loss": "0.1%", "max_loss": "0.5%"}
LOSSY = {"latency": "40 ms", "jitter": "60 ms", "avg_loss": "12%", "max_loss": "20%"}


def data_event(
    participant: str = "p1",
    *,
    network: str = "Wifi",
    internal: str = "10.20.4.5",
    public: str = "",
    device: str = "Windows",
    version: str = "5.17.11 (34827)",
    account: str = "acct-1",
    product: str = "meeting",
) -> dict[str, Any]:
    item = {
        "device": device,
        "network_type": network,
        "connection_type": "UDP",
        "data_center": "AMS (Sub)",
        "version": version,
        "signaling_ip_address": public,
        "audio_internal_ip_address": internal,
        "video_internal_ip_address": internal,
    }
    return _meeting(f"{product}.participant_data", participant, account, data=[item])


def qos_event(
    participant: str = "p1",
    *,
    media: dict[str, str] | None = None,
    rssi: int | None = None,
    cpu: int | None = None,
    minute: str = MINUTE,
    account: str = "acct-1",
    types: tuple[str, ...] = ("audio_input", "audio_output", "video_input", "video_output"),
) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"type": t, "date_time": minute, "details": dict(media or GOOD)} for t in types
    ]
    if rssi is not None:
        items.append(
            {"type": "wifi_rssi", "date_time": minute, "details": {"avg_rssi": f"{rssi} dBm"}}
        )
    if cpu is not None:
        details = {"zoom_max_cpu_usage": "20%", "system_max_cpu_usage": f"{cpu}%"}
        items.append({"type": "cpu_usage", "date_time": minute, "details": details})
    return _meeting("meeting.participant_qos", participant, account, qos=items)


def summary_event(participant: str = "p1", *, media: dict[str, str]) -> dict[str, Any]:
    details = {f"avg_{k}" if not k.startswith(("avg", "max")) else k: v for k, v in media.items()}
    items = [{"type": "audio_input", "details": details}, {"type": "cpu_usage", "details": {}}]
    return _meeting("meeting.participant_qos_summary", participant, "acct-1", qos=items)


def _meeting(event: str, participant: str, account: str, **lists: Any) -> dict[str, Any]:
    person = {"participant_id": participant, "user_id": participant, **lists}
    obj = {"uuid": "meeting-uuid==", "id": "123456789", "participant": person}
    return {
        "event": event,
        "event_ts": int(NOW * 1000),
        "payload": {"account_id": account, "object": obj},
    }


class Feed:
    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def __call__(self, document: dict[str, Any]) -> Outcome:
        event = parse_event(document)
        assert event is not None
        return self.exporter.pipeline.ingest(event, NOW)

    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        analytics = self.exporter.analytics
        assert analytics is not None
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in analytics.collect()
            for s in metric.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.counters().get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def sites_file(tmp_path: Path) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(SITES)
    return path


def feed_with(sites_file: Path | None = None, **analytics: Any) -> Feed:
    store = StoreSettings(per_participant=analytics.pop("per_participant", True))
    settings = Settings(
        store=store, analytics=AnalyticsSettings(sites_file=sites_file, **analytics)
    )
    return Feed(Exporter(settings, clock=lambda: NOW))


SITE = {"product": "meeting", "account": "acct-1", "site": "Paris HQ", "network_type": "wifi"}


def test_a_weak_wifi_minute_is_counted_poor_with_its_cause(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    assert feed(data_event()) is Outcome.ACCEPTED
    assert feed(qos_event(media=LOSSY, rssi=-80, cpu=30)) is Outcome.ACCEPTED
    # four media streams; wifi_rssi and cpu_usage are not streams
    assert feed.value("zoom_qos_stream_minutes_total", **SITE) == 4
    assert feed.value("zoom_qos_poor_stream_minutes_total", **SITE, cause="wifi") == 4
    client = {"product": "meeting", "platform": "windows", "version": "5.17"}
    assert feed.value("zoom_qos_client_stream_minutes_total", **client) == 4
    assert feed.value("zoom_qos_client_poor_stream_minutes_total", **client, cause="wifi") == 4
    path = {"product": "meeting", "data_center": "AMS (Sub)", "connection_type": "udp"}
    assert feed.value("zoom_qos_path_stream_minutes_total", **path, media="audio") == 2
    assert (
        feed.value("zoom_qos_path_poor_stream_minutes_total", **path, media="video", cause="wifi")
        == 2
    )


def test_a_cpu_starved_minute_and_a_good_one(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    feed(data_event())
    feed(qos_event(media=LOSSY, rssi=-50, cpu=97))
    feed(qos_event(media=GOOD, rssi=-50, cpu=97, minute="2023-11-14T22:14:00Z"))
    assert feed.value("zoom_qos_stream_minutes_total", **SITE) == 8
    assert feed.value("zoom_qos_poor_stream_minutes_total", **SITE, cause="cpu") == 4
    assert not any(
        name == "zoom_qos_poor_stream_minutes_total" and dict(labels)["cause"] != "cpu"
        for name, labels in feed.counters()
    )


def test_a_redelivered_minute_counts_once(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    feed(data_event())
    feed(qos_event(media=LOSSY))
    assert feed(qos_event(media=LOSSY)) is Outcome.STALE
    assert feed.value("zoom_qos_stream_minutes_total", **SITE) == 4
    assert feed.value("zoom_qos_poor_stream_minutes_total", **SITE, cause="network") == 4


def test_only_media_types_are_streams(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    feed(data_event())
    types = ("as_input", "audio_device_from_crc", "video_quality", "notification")
    feed(qos_event(types=types, rssi=-50, cpu=10))
    assert feed.value("zoom_qos_stream_minutes_total", **SITE) == 1


def test_before_any_data_event_the_dimensions_are_unknown() -> None:
    feed = feed_with()
    feed(qos_event(account=""))
    unknown = {"product": "meeting", "account": "unknown", "site": "unknown"}
    assert feed.value("zoom_qos_stream_minutes_total", **unknown, network_type="unknown") == 4
    client = {"product": "meeting", "platform": "unknown", "version": "unknown"}
    assert feed.value("zoom_qos_client_stream_minutes_total", **client) == 4


def test_without_a_sites_file_a_known_address_is_external() -> None:
    feed = feed_with()
    feed(data_event(network="Wired"))
    feed(qos_event())
    labels = {**SITE, "site": "external", "network_type": "wired"}
    assert feed.value("zoom_qos_stream_minutes_total", **labels) == 4


def test_the_public_address_decides_when_no_internal_one_matches(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    feed(data_event("home", internal="192.168.1.4", public="198.51.100.20"))
    feed(data_event("remote", internal="192.168.1.4", public="203.0.113.7"))
    feed(qos_event("home"))
    feed(qos_event("remote"))
    assert feed.value("zoom_qos_stream_minutes_total", **SITE) == 4
    assert feed.value("zoom_qos_stream_minutes_total", **{**SITE, "site": "external"}) == 4


def test_malformed_addresses_are_counted_and_the_event_accepted(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    assert feed(data_event(internal="10.20.999.1", public="not-an-ip")) is Outcome.ACCEPTED
    assert feed.value("zoom_qss_exporter_analytics_invalid_addresses_total") == 2
    feed(qos_event())
    assert feed.value("zoom_qos_stream_minutes_total", **{**SITE, "site": "unknown"}) == 4


def test_participations_count_once_and_poor_by_their_summary(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    feed(data_event("p1"))
    feed(data_event("p2"))
    feed(summary_event("p1", media=LOSSY))
    feed(summary_event("p1", media=LOSSY))  # a redelivery
    feed(summary_event("p2", media=GOOD))
    assert feed.value("zoom_qos_participations_total", **SITE) == 2
    assert feed.value("zoom_qos_poor_participations_total", **SITE) == 1


def test_they_work_without_per_participant_series(sites_file: Path) -> None:
    feed = feed_with(sites_file, per_participant=False)
    feed(data_event())
    feed(qos_event(media=LOSSY, rssi=-90))
    assert len(feed.exporter.store) == 0
    assert feed.value("zoom_qos_poor_stream_minutes_total", **SITE, cause="wifi") == 4


def test_accounts_show_their_configured_names(sites_file: Path) -> None:
    feed = feed_with(sites_file, accounts={"acct-1": "Europe"})
    feed(data_event())
    feed(qos_event())
    assert feed.value("zoom_qos_stream_minutes_total", **{**SITE, "account": "Europe"}) == 4


def test_past_the_row_cap_new_sites_fold_into_other(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(
        "sites:\n" + "".join(f"  - name: S{n}\n    subnets: [10.{n}.0.0/16]\n" for n in range(5))
    )
    feed = feed_with(path, max_rows=3)
    for n in range(5):
        feed(data_event(f"p{n}", internal=f"10.{n}.0.1"))
        feed(qos_event(f"p{n}", types=("audio_input",)))
    sites = {
        dict(labels)["site"]: value
        for (name, labels), value in feed.counters().items()
        if name == "zoom_qos_stream_minutes_total"
    }
    assert sites == {"S0": 1, "S1": 1, "S2": 1, "other": 2}
    assert feed.value("zoom_qss_exporter_analytics_folds_total", family="site") == 2
    assert feed.value("zoom_qss_exporter_analytics_rows", family="site") == 4


def test_phone_samples_and_calls() -> None:
    feed = feed_with()
    sample = {
        "event": "phone.call_qos",
        "event_ts": int(NOW * 1000),
        "payload": {
            "account_id": "acct-1",
            "object": {
                "call_id": "call-1",
                "call_qos": {
                    "id": "party-1",
                    "type": "caller",
                    "qos": {
                        "type": "sending",
                        "date_time": MINUTE,
                        "details": {"mos": "2.9", "jitter": "5 ms", "network": "WiFi"},
                    },
                },
            },
        },
    }
    feed(sample)
    phone = {"product": "phone", "account": "acct-1", "site": "unknown", "network_type": "wifi"}
    assert feed.value("zoom_qos_stream_minutes_total", **phone) == 1
    assert feed.value("zoom_qos_poor_stream_minutes_total", **phone, cause="unknown") == 1
    summary = {
        "event": "phone.call_qos_summary",
        "event_ts": int(NOW * 1000),
        "payload": {
            "account_id": "acct-1",
            "object": {
                "call_id": "call-1",
                "call_qos": [
                    {
                        "user_id": "party-1",
                        "type": "caller",
                        "qos": [
                            {"type": "sending", "date_time": MINUTE, "details": {"mos": "2.5"}},
                            {"type": "sending", "date_time": MINUTE, "details": {"mos": "3.0"}},
                        ],
                    }
                ],
            },
        },
    }
    feed(summary)
    feed(summary)
    assert feed.value("zoom_phone_calls_total", account="acct-1") == 1
    assert feed.value("zoom_phone_poor_calls_total", account="acct-1") == 1


def test_a_sites_reload_moves_new_data_events_only(sites_file: Path) -> None:
    feed = feed_with(sites_file)
    feed(data_event("p1", internal="10.30.0.1"))
    sites_file.write_text(SITES + "  - name: Lyon\n    subnets: [10.30.0.0/16]\n")
    feed.exporter.reload_sites()
    feed(data_event("p2", internal="10.30.0.2"))
    feed(qos_event("p1"))
    feed(qos_event("p2"))
    assert feed.value("zoom_qos_stream_minutes_total", **{**SITE, "site": "external"}) == 4
    assert feed.value("zoom_qos_stream_minutes_total", **{**SITE, "site": "Lyon"}) == 4
    assert feed.value("zoom_qss_exporter_analytics_sites") == 2
    assert feed.value("zoom_qss_exporter_analytics_sites_reloads_total", result="success") == 1


def test_switched_off_there_are_no_analytics() -> None:
    exporter = Exporter(Settings(analytics=None), clock=lambda: NOW)
    assert exporter.analytics is None
    names = {metric.name for metric in exporter.registry.collect()}
    assert not any("stream_minutes" in name or "analytics" in name for name in names)


def test_the_status_page_shows_the_sites_file(sites_file: Path) -> None:
    def sites_line(exporter: Exporter) -> dict[str, str]:
        checks = {c["name"]: c for c in exporter.status()["checklist"]}
        line: dict[str, str] = checks["sites file"]
        return line

    exporter = feed_with(sites_file).exporter
    assert sites_line(exporter)["state"] == "ok"
    assert "1 sites from" in sites_line(exporter)["detail"]
    assert exporter.status()["analytics"]["last reload error"] == "none"
    sites_file.write_text("sites: 3\n")
    exporter.reload_sites()
    assert sites_line(exporter)["state"] == "warn"
    assert "'sites' must be a list" in sites_line(exporter)["detail"]
    assert sites_line(feed_with().exporter)["state"] == "wait"
    assert "sites file" not in {
        c["name"] for c in Exporter(Settings(analytics=None)).status()["checklist"]
    }
