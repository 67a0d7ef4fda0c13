"""Recording rules that the quality alerts read: poor shares over the burn-rate windows, and the
sites', network types', data centers' and client versions' shares now and over their baseline.

All read the quality analytics' recorded 5-minute rates (rules/zoom-qss-analytics.yaml), never
the raw counters, so that they work with ``--no-store.per-participant`` and stay cheap: the
analytics' cuts are a few hundred series at most, whatever the number of participants.

For each :class:`Windowed` (a cut of the analytics summed by some of its labels, over a window)
three rules, named ``level:metric:operation<window>``:

- ``level:<total>:rate<window>``: stream-minutes a second, on average over the window;
- ``level:<poor>:ratio_rate<window>``: the poor share of the window, the sum of the poor rates
  over the sum of all (0 where none was poor, nothing where nothing was counted);
- ``level:<poor>:rate<window>``: poor stream-minutes a second (the share times the rate): times
  60 and divided by ``streams_per_person``, the people affected.

The windows' sums read every recorded 5-minute rate in the window (``sum_over_time(x[1h])``):
both sides of a share are sums over the same evaluations, so the share is exact for steady
rates and a window only partly recorded (a new Prometheus, a new site) still has one. A
baseline (``level:<poor>:ratio_rate7d``) is the sum of the window's recorded rates at one step
per window over the baseline (``sum_over_time(x[7d:30m])``: the windows tile it), recorded only
once ``min_history`` of it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from .analytics import (
    CLIENT_VERSIONS,
    DATA_CENTERS,
    NETWORKS,
    OVERALL,
    SITES,
    STEP,
    Cut,
    Family,
)
from .config import Config, Duration
from .rules import Group, Rule


@dataclass(frozen=True)
class Windowed:
    """The analytics' ``source`` cut summed by ``labels`` over ``window``."""

    source: Cut
    labels: tuple[str, ...]
    window: Duration

    @property
    def family(self) -> Family:
        return self.source.family

    @property
    def level(self) -> str:
        return "_".join(self.labels)

    @property
    def by(self) -> str:
        return ", ".join(self.labels)

    @property
    def analytics(self) -> bool:
        """The analytics record this one already: the 5-minute share of the same cut."""
        return self.window.text == STEP and self.labels == self.source.labels

    @property
    def total(self) -> str:
        if self.analytics:
            return self.source.total
        return f"{self.level}:{self.family.total}:rate{self.window.text}"

    @property
    def poor(self) -> str:
        return f"{self.level}:{self.family.poor}:rate{self.window.text}"

    @property
    def share(self) -> str:
        if self.analytics:
            return self.source.share
        return f"{self.level}:{self.family.poor}:ratio_rate{self.window.text}"

    def baseline(self, length: Duration) -> str:
        return f"{self.level}:{self.family.poor}:ratio_rate{length.text}"


def slo_windows(config: Config) -> list[Windowed]:
    """The burn-rate alerts' windows, by product and account, longest first."""
    lengths = {w.seconds: w for rate in config.burn_rates for w in (rate.long, rate.short)}
    return [
        Windowed(OVERALL, OVERALL.labels, lengths[seconds])
        for seconds in sorted(lengths, reverse=True)
    ]


def slo_window(config: Config, window: Duration) -> Windowed:
    return Windowed(OVERALL, OVERALL.labels, window)


# The site, network type, data center and client version comparisons: the alert's name, what is
# compared (labels), and against whose baseline (the same labels, or the client's platform).
@dataclass(frozen=True)
class Comparison:
    alert: str
    words: str  # "site", for descriptions
    source: Cut
    labels: tuple[str, ...]
    baseline_labels: tuple[str, ...]  # the baseline's labels: all of labels, or some
    known: str  # the label whose unknown and other values are left out

    def now(self, window: Duration) -> Windowed:
        return Windowed(self.source, self.labels, window)

    def base(self, window: Duration) -> Windowed:
        return Windowed(self.source, self.baseline_labels, window)


SITE = Comparison(
    "ZoomSiteDegraded", "site", SITES, ("account", "site"), ("account", "site"), "site"
)
NETWORK_TYPE = Comparison(
    "ZoomNetworkTypeRegression",
    "network type",
    NETWORKS,
    ("account", "network_type"),
    ("account", "network_type"),
    "network_type",
)
DATA_CENTER = Comparison(
    "ZoomDataCenterRegression",
    "Zoom data center",
    DATA_CENTERS,
    ("data_center",),
    ("data_center",),
    "data_center",
)
CLIENT_VERSION = Comparison(
    "ZoomClientVersionRegression",
    "client version",
    CLIENT_VERSIONS,
    ("platform", "version"),
    ("platform",),
    "version",
)
REGRESSIONS = (NETWORK_TYPE, DATA_CENTER, CLIENT_VERSION)


def slo_groups(config: Config) -> list[Group]:
    rules: list[Rule] = []
    for windowed in slo_windows(config):
        if not windowed.analytics:
            rules += _windowed(windowed)
    baselines: list[Rule] = []
    now: list[Rule] = []
    for comparison, settings in (
        (SITE, config.site),
        *((regression, config.regression) for regression in REGRESSIONS),
    ):
        current = comparison.now(settings.window)
        now += _windowed(current)
        base = comparison.base(settings.window)
        if base != current:
            now += _windowed(base)
        baselines.append(_baseline(base, settings.baseline, settings.min_history))
    return [
        {"name": "zoom-qss-slo.rules", "rules": rules},
        {"name": "zoom-qss-comparisons.rules", "rules": now + baselines},
    ]


def _windowed(windowed: Windowed) -> list[Rule]:
    source, window = windowed.source, windowed.window.text
    by = windowed.by
    poor = f"sum by ({by}) (sum_over_time({source.poor}[{window}]))"
    total = f"sum by ({by}) (sum_over_time({source.total}[{window}]))"
    return [
        {
            "record": windowed.total,
            "expr": f"sum by ({by}) (avg_over_time({source.total}[{window}]))",
        },
        {
            # 0, not nothing, where none was poor; nothing, not NaN, where nothing was counted
            "record": windowed.share,
            "expr": f"(\n  {poor}\n  or\n  0 * {total}\n)\n/\n({total} > 0)\n",
        },
        {"record": windowed.poor, "expr": f"{windowed.share}\n* on ({by})\n{windowed.total}\n"},
    ]


def _baseline(windowed: Windowed, length: Duration, history: Duration) -> Rule:
    step = windowed.window.text
    span = f"[{length.text}:{step}]"
    poor = f"sum_over_time({windowed.poor}{span})"
    total = f"sum_over_time({windowed.total}{span})"
    points = history.seconds // windowed.window.seconds
    return {
        "record": windowed.baseline(length),
        "expr": f"(\n  {poor}\n  or\n  0 * {total}\n)\n/\n({total} > 0)\n"
        f"and on ({windowed.by})\ncount_over_time({windowed.total}{span}) >= {points}\n",
    }
