"""``thresholds.yaml`` and the exporter's ``quality.yaml``, read strictly: a typo in either must
fail the build, not silently keep a default.

What makes a stream "poor" (the warning thresholds of latency, jitter and packet loss, and the
MOS below which audio is poor) is the exporter's: ``zoom_qss_exporter/analytics/quality.yaml``,
which its analytics counters read too (``--analytics.thresholds-file``), so that the alerts, the
dashboards' lines and the counted poor stream-minutes cannot disagree. ``thresholds.yaml`` holds
the rest: the objective and burn rates, the site, regression and meeting alerts' comparisons,
durations, selectors, links, and the lines drawn on the dashboards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zoom_qss_exporter.analytics.thresholds import DEFAULT_FILE, load_thresholds
from zoom_qss_exporter.flags import ConfigError as QualityError

THRESHOLDS = Path(__file__).resolve().parent / "thresholds.yaml"
QUALITY = DEFAULT_FILE  # the exporter's shipped quality.yaml
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
SEVERITIES = ("critical", "warning", "info")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Duration:
    text: str  # as written, for the rules: "5m"

    @property
    def seconds(self) -> int:
        match = _DURATION.match(self.text)
        assert match
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class Figure:
    """Thresholds of one per-participant figure, by severity: ``warning`` (poor) from
    quality.yaml, ``info`` (optional) from thresholds.yaml."""

    warning: float
    info: float | None = None

    def levels(self) -> list[tuple[str, float]]:
        both = (("info", self.info), ("warning", self.warning))
        return [(severity, value) for severity, value in both if value is not None]


@dataclass(frozen=True)
class BurnRate:
    """One multi-window burn-rate alert: the poor share over ``long`` and over ``short`` both
    above ``factor`` times the error budget, for ``for_``."""

    severity: str
    long: Duration
    short: Duration
    factor: float
    for_: Duration


@dataclass(frozen=True)
class Baseline:
    """A poor share over ``window`` compared with the same share over ``baseline`` (its own
    recent normal): at least ``factor`` times it and ``min_increase`` above it, with at least
    ``min_people`` people affected, for ``for_``. Until ``min_history`` of the baseline is
    recorded, the share is compared with ``min_increase`` alone (a baseline of 0)."""

    window: Duration
    baseline: Duration
    min_history: Duration
    factor: float
    min_increase: float
    min_people: float
    for_: Duration


@dataclass(frozen=True)
class Meeting:
    """A meeting with ``poor_participants`` poor at once, or ``poor_share`` of its participants
    when it has at least ``min_participants``."""

    for_: Duration
    keep_firing_for: Duration
    poor_participants: int
    poor_share: float
    min_participants: int


@dataclass(frozen=True)
class Config:
    grafana_url: str  # "": dashboard links are paths
    runbook_url: str  # "": no runbook_url annotation
    exporter_selector: str
    media_qos_types: tuple[str, ...]
    streams_per_person: float
    slo_objective: float
    slo_min_people: float
    burn_rates: tuple[BurnRate, ...]
    site: Baseline
    regression: Baseline
    meeting: Meeting
    participant_for: Duration
    participant_keep_firing_for: Duration
    latency: Figure
    jitter: Figure
    packet_loss: Figure
    phone_for: Duration
    phone_keep_firing_for: Duration
    mos_warning: float
    fleet_min_participants: int
    fleet_ratio: float
    exporter_for: Duration
    no_events_for: Duration
    signature_failures: int
    signature_window: Duration
    series_cap_ratio: float
    wifi_rssi_dbm: float
    trends_poor_share: Figure
    trends_week_over_week: float

    @property
    def media_regex(self) -> str:
        return "|".join(self.media_qos_types)

    @property
    def error_budget(self) -> float:
        return 1 - self.slo_objective


def load(path: Path = THRESHOLDS, quality: Path = QUALITY) -> Config:
    """``path`` (thresholds.yaml) with the poor thresholds of ``quality`` (quality.yaml: the
    shipped one, or the operator's copy that the exporter runs with)."""
    try:
        poor = load_thresholds(quality)
    except QualityError as error:
        raise ConfigError(str(error)) from None
    raw = yaml.safe_load(path.read_text())
    reader = _Reader(raw, path.name)
    slo = reader.section("slo")
    participant = reader.section("participant")
    phone = reader.section("phone")
    meeting = reader.section("meeting")
    fleet = reader.section("fleet")
    exporter = reader.section("exporter")
    display = reader.section("dashboards")
    trends = reader.section("trends")
    config = Config(
        grafana_url=reader.url("grafana_url").rstrip("/"),
        runbook_url=reader.url("runbook_url"),
        exporter_selector=reader.text("exporter_selector"),
        media_qos_types=reader.names("media_qos_types"),
        streams_per_person=reader.number("streams_per_person", 1.0, 100.0),
        slo_objective=slo.number("objective", 0.5, 0.9999),
        slo_min_people=slo.number("min_people", 0.0, 1e9),
        burn_rates=slo.burn_rates("burn_rates"),
        site=reader.baseline("site"),
        regression=reader.baseline("regression"),
        meeting=Meeting(
            for_=meeting.duration("for"),
            keep_firing_for=meeting.duration("keep_firing_for"),
            poor_participants=int(meeting.number("poor_participants", 1, 1e6, whole=True)),
            poor_share=meeting.number("poor_share", 0.0, 1.0),
            min_participants=int(meeting.number("min_participants", 1, 1e6, whole=True)),
        ),
        participant_for=participant.duration("for"),
        participant_keep_firing_for=participant.duration("keep_firing_for"),
        latency=participant.figure("latency", poor.latency, quality),
        jitter=participant.figure("jitter", poor.jitter, quality),
        packet_loss=participant.figure("packet_loss", poor.packet_loss, quality, ratio=True),
        phone_for=phone.duration("for"),
        phone_keep_firing_for=phone.duration("keep_firing_for"),
        mos_warning=poor.mos,
        fleet_min_participants=int(fleet.number("min_participants", 1, 1e9, whole=True)),
        fleet_ratio=fleet.number("ratio", 0.0, 1.0),
        exporter_for=exporter.duration("for"),
        no_events_for=exporter.duration("no_events_for"),
        signature_failures=int(exporter.number("signature_failures", 0, 1e9, whole=True)),
        signature_window=exporter.duration("signature_window"),
        series_cap_ratio=exporter.number("series_cap_ratio", 0.0, 1.0),
        wifi_rssi_dbm=display.number("wifi_rssi_dbm", -120.0, 0.0),
        trends_poor_share=trends.levels("poor_share"),
        trends_week_over_week=trends.number("week_over_week", 0.0, 1.0),
    )
    phone.moved("mos", f"poor.mos of {quality.name}")
    for section in (reader, slo, participant, phone, meeting, fleet, exporter, display, trends):
        section.done()
    return config


class _Reader:
    """Takes keys out of one mapping; whatever is left at the end is an unknown key."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: a mapping is required")
        self.raw: dict[str, Any] = dict(raw)
        self.where = where

    def _take(self, key: str) -> Any:
        if key not in self.raw:
            raise ConfigError(f"{self.where}.{key}: missing")
        return self.raw.pop(key)

    def moved(self, key: str, where: str) -> None:
        """A key that lives in quality.yaml now: say where, rather than "unknown key"."""
        if key in self.raw:
            raise ConfigError(
                f"{self.where}.{key}: set it as {where} (one file for the "
                "exporter, the alerts and the dashboards)"
            )

    def done(self) -> None:
        if self.raw:
            raise ConfigError(f"{self.where}: unknown keys {sorted(self.raw)}")

    def section(self, key: str) -> _Reader:
        return _Reader(self._take(key), f"{self.where}.{key}")

    def text(self, key: str) -> str:
        value = self._take(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.where}.{key}: a non-empty string is required")
        return value

    def url(self, key: str) -> str:
        """An address, or "" for none."""
        value = self._take(key)
        if value is None:
            return ""
        if not isinstance(value, str) or (value and not re.match(r"^https?://[^\s]+$", value)):
            raise ConfigError(f'{self.where}.{key}: an http(s):// address or "" is required')
        return value

    def names(self, key: str) -> tuple[str, ...]:
        value = self._take(key)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{self.where}.{key}: a non-empty list is required")
        for name in value:
            if not isinstance(name, str) or not re.fullmatch(r"[a-z_]+", name):
                raise ConfigError(f"{self.where}.{key}: {name!r} is not a QoS type name")
        return tuple(value)

    def duration(self, key: str) -> Duration:
        value = self._take(key)
        if not isinstance(value, str) or not value or not _DURATION.match(value):
            raise ConfigError(f"{self.where}.{key}: a duration like 5m, 1h30m or 7d is required")
        return Duration(value)

    def window(self, key: str) -> Duration:
        """A window over the analytics' recorded 5-minute rates: a whole number of 5 minutes."""
        value = self.duration(key)
        if value.seconds < 300 or value.seconds % 300:
            raise ConfigError(f"{self.where}.{key}: a multiple of 5m is required")
        return value

    def burn_rates(self, key: str) -> tuple[BurnRate, ...]:
        value = self._take(key)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{self.where}.{key}: a non-empty list is required")
        out = []
        for index, item in enumerate(value):
            entry = _Reader(item, f"{self.where}.{key}[{index}]")
            severity = entry.text("severity")
            if severity not in ("critical", "warning"):
                raise ConfigError(f"{entry.where}.severity: critical or warning is required")
            rate = BurnRate(
                severity=severity,
                long=entry.window("long"),
                short=entry.window("short"),
                factor=entry.number("factor", 0.1, 1000.0),
                for_=entry.duration("for"),
            )
            entry.done()
            if rate.short.seconds >= rate.long.seconds:
                raise ConfigError(f"{entry.where}: short must be shorter than long")
            out.append(rate)
        pairs = [(rate.long.text, rate.short.text) for rate in out]
        if len(set(pairs)) != len(pairs):
            raise ConfigError(f"{self.where}.{key}: a long and short window pair appears twice")
        return tuple(out)

    def baseline(self, key: str) -> Baseline:
        section = self.section(key)
        value = Baseline(
            window=section.window("window"),
            baseline=section.duration("baseline"),
            min_history=section.duration("min_history"),
            factor=section.number("factor", 1.0, 1000.0),
            min_increase=section.number("min_increase", 0.0, 1.0),
            min_people=section.number("min_people", 0.0, 1e9),
            for_=section.duration("for"),
        )
        section.done()
        window = value.window.seconds
        for name, length in (("baseline", value.baseline), ("min_history", value.min_history)):
            if length.seconds < window or length.seconds % window:
                raise ConfigError(f"{section.where}.{name}: a multiple of window is required")
        if value.min_history.seconds > value.baseline.seconds:
            raise ConfigError(f"{section.where}.min_history: at most baseline is required")
        return value

    def number(self, key: str, low: float, high: float, *, whole: bool = False) -> float:
        value = self._take(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= value <= high or (whole and value != int(value)):
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{self.where}.{key}: {kind} from {low:g} to {high:g} is required")
        return float(value)

    def levels(self, key: str) -> Figure:
        """A share's ``info`` and ``warning`` levels, both required, info below warning."""
        section = self.section(key)
        info, warning = section.number("info", 0.0, 1.0), section.number("warning", 0.0, 1.0)
        section.done()
        if info >= warning:
            raise ConfigError(f"{section.where}: info must be below warning")
        return Figure(warning=warning, info=info)

    def figure(self, key: str, warning: float, quality: Path, *, ratio: bool = False) -> Figure:
        """The figure's ``info`` level, if any, below its ``warning`` (poor) from quality.yaml;
        the section itself may be absent (no info level)."""
        section = _Reader(self.raw.pop(key, {}), f"{self.where}.{key}")
        section.moved("warning", f"poor.{key} of {quality.name}")
        high = 1.0 if ratio else 60.0
        info = section.number("info", 0.0, high) if "info" in section.raw else None
        section.done()
        if info is not None and info >= warning:
            raise ConfigError(
                f"{section.where}: info must be below warning, poor.{key} of {quality}: {warning:g}"
            )
        return Figure(warning=warning, info=info)
