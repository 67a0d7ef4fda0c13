"""Recording rules of the quality analytics, and the windowed queries the Trends dashboard makes
of them.

The exporter counts stream-minutes (and participations, phone calls) and the poor ones among
them, by bounded labels (product, account, site, network type; client platform and version;
Zoom data center, connection type and media) and, for a poor stream-minute, its likely cause.
Each question ("which sites are worst", "is Wi-Fi the cause") is a :class:`Cut`: a family
summed by some of its labels.

Cost: every evaluation reads five minutes of the raw counters (``rate(...[5m])``) and writes
one series per cut and label set; nothing reads days of raw data at each evaluation. Shares
over 1h, 1d, 7d or 30d are computed when a dashboard asks, from the recorded 5-minute rates,
with a subquery at the rates' own 5-minute step (``sum_over_time(x[30d:5m])``): consecutive
5-minute rates tile the window, so their sum times 300 s is the window's count, and a 30-day
window takes 8,640 points per recorded series, whatever the rule evaluation interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rules import Group, Rule

STEP, STEP_SECONDS = "5m", 300  # the recorded rates' window, and the windows' subquery step
CAUSES = ("wifi", "cpu", "network", "latency", "unknown")  # the exporter's, in its order


@dataclass(frozen=True)
class Family:
    """A counter of everything (``total``) and one of the poor part (``poor``), without
    ``_total``; ``caused``: the poor counter has a ``cause`` label."""

    total: str
    poor: str
    caused: bool
    words: str  # what is counted, for descriptions: "stream-minutes"


STREAMS = Family("zoom_qos_stream_minutes", "zoom_qos_poor_stream_minutes", True, "stream-minutes")
CLIENTS = Family(
    "zoom_qos_client_stream_minutes", "zoom_qos_client_poor_stream_minutes", True, "stream-minutes"
)
PATHS = Family(
    "zoom_qos_path_stream_minutes", "zoom_qos_path_poor_stream_minutes", True, "stream-minutes"
)
PARTICIPATIONS = Family(
    "zoom_qos_participations", "zoom_qos_poor_participations", False, "participations"
)
PHONE_CALLS = Family("zoom_phone_calls", "zoom_phone_poor_calls", False, "phone calls")
FAMILIES = (STREAMS, CLIENTS, PATHS, PARTICIPATIONS, PHONE_CALLS)


@dataclass(frozen=True)
class Cut:
    """One family summed by ``labels``: the recorded 5-minute rates of all and of the poor
    (by cause where the family has one), and the poor share."""

    family: Family
    labels: tuple[str, ...]

    @property
    def level(self) -> str:
        return "_".join(self.labels)

    @property
    def by(self) -> str:
        return ", ".join(self.labels)

    @property
    def total(self) -> str:
        return f"{self.level}:{self.family.total}:rate{STEP}"

    @property
    def poor(self) -> str:
        """The poor rate, by ``cause`` too where the family has one."""
        level = f"{self.level}_cause" if self.family.caused else self.level
        return f"{level}:{self.family.poor}:rate{STEP}"

    @property
    def share(self) -> str:
        return f"{self.level}:{self.family.poor}:ratio_rate{STEP}"

    @property
    def cause_share(self) -> str:
        return f"{self.level}_cause:{self.family.poor}:ratio_rate{STEP}"


# The questions. Every cut of a family with account keeps product and account, so that the
# Trends dashboard's product and account variables select within it.
OVERALL = Cut(STREAMS, ("product", "account"))
SITES = Cut(STREAMS, ("product", "account", "site"))
NETWORKS = Cut(STREAMS, ("product", "account", "network_type"))
CLIENT_VERSIONS = Cut(CLIENTS, ("product", "platform", "version"))
DATA_CENTERS = Cut(PATHS, ("product", "data_center", "connection_type"))
MEDIA = Cut(PATHS, ("product", "media"))
PARTICIPATION = Cut(PARTICIPATIONS, ("product", "account"))
SITE_PARTICIPATION = Cut(PARTICIPATIONS, ("product", "account", "site"))
CALLS = Cut(PHONE_CALLS, ("account",))
CUTS = (
    OVERALL,
    SITES,
    NETWORKS,
    CLIENT_VERSIONS,
    DATA_CENTERS,
    MEDIA,
    PARTICIPATION,
    SITE_PARTICIPATION,
    CALLS,
)
CAUSE_SHARES = (OVERALL,)  # cuts whose share is also recorded by cause


def analytics_groups() -> list[Group]:
    return [{"name": "zoom-qss-analytics.rules", "rules": _records()}]


def _poor_sum(cut: Cut, expr: str) -> str:
    return f"sum without (cause) ({expr})" if cut.family.caused else expr


def _records() -> list[Rule]:
    rules: list[Rule] = []
    for cut in CUTS:  # the rates first: the shares below read this evaluation's
        by_poor = f"{cut.by}, cause" if cut.family.caused else cut.by
        rules += [
            {
                "record": cut.total,
                "expr": f"sum by ({cut.by}) (rate({cut.family.total}_total[{STEP}]))",
            },
            {
                "record": cut.poor,
                "expr": f"sum by ({by_poor}) (rate({cut.family.poor}_total[{STEP}]))",
            },
        ]
    for cut in CUTS:
        # 0, not nothing, where none was poor (the poor counter of a site or cause exists only
        # from its first poor minute); nothing, not NaN, without any in the last 5 minutes.
        rules.append(
            {
                "record": cut.share,
                "expr": f"(\n  {_poor_sum(cut, cut.poor)}\n  or\n  0 * {cut.total}\n)\n"
                f"/\n({cut.total} > 0)\n",
            }
        )
    for cut in CAUSE_SHARES:
        # each cause's part of all the stream-minutes: the causes add up to the poor share
        rules.append(
            {
                "record": cut.cause_share,
                "expr": f"{cut.poor}\n/ ignoring (cause) group_left ()\n({cut.total} > 0)\n",
            }
        )
    return rules


# --- the windowed queries of the Trends dashboard ------------------------------------------------


def over(series: str, selector: str, window: str, *, offset: str = "") -> str:
    """The sum of a recorded 5-minute rate's values at each 5-minute step of ``window``: the
    window's count divided by 300 s (times 300 gives it)."""
    shift = f" offset {offset}" if offset else ""
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum_over_time({series}{matchers}[{window}:{STEP}]{shift})"


def total_by(by: str, expr: str) -> str:
    return f"sum by ({by}) ({expr})" if by else f"sum({expr})"


def count(
    cut: Cut, selector: str, window: str, by: str = "", *, poor: bool = False, cause: str = ""
) -> str:
    """How many (stream-minutes, participations, calls), or how many poor ones (of one cause),
    in ``window``, summed ``by`` labels of the cut."""
    if cause:
        selector = f'{selector}, cause="{cause}"' if selector else f'cause="{cause}"'
    series = cut.poor if poor or cause else cut.total
    return f"{STEP_SECONDS} * {total_by(by, over(series, selector, window))}"


def share(cut: Cut, selector: str, window: str, by: str = "", *, offset: str = "") -> str:
    """The poor share of ``window``, by ``by``: poor over all, 0 where none was poor, nothing
    where there was nothing."""
    poor = total_by(by, over(cut.poor, selector, window, offset=offset))
    total = total_by(by, over(cut.total, selector, window, offset=offset))
    return f"(\n  {poor}\n  or\n  0 * {total}\n)\n/\n({total} > 0)"


def cause_shares(cut: Cut, selector: str, window: str) -> str:
    """Each cause's part of all of ``window``'s stream-minutes (they add up to the share)."""
    poor = f"sum by (cause) ({over(cut.poor, selector, window)})"
    total = f"sum({over(cut.total, selector, window)})"
    return f"{poor}\n/ ignoring (cause) group_left ()\n({total} > 0)"
