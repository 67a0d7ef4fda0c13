"""Trends: what share of the company's Zoom is poor, where and why, over an hour to a month,
and against the same window a week before (the exporter's quality analytics).

Every query reads the recorded 5-minute rates of rules/zoom-qss-analytics.yaml (see
``mixin/analytics.py`` for why windows are sums over a 5-minute subquery), except the phone
calls' share: one counter per account, whose ``increase`` over the window is cheap and exact.
Window figures are instant queries: one evaluation per panel, whatever the time range.
"""

from __future__ import annotations

from ..analytics import (
    CAUSES,
    CLIENT_VERSIONS,
    DATA_CENTERS,
    MEDIA,
    NETWORKS,
    OVERALL,
    PARTICIPATION,
    SITE_PARTICIPATION,
    SITES,
    cause_shares,
    count,
    share,
)
from ..config import Config
from ..grafana import (
    GREEN,
    ORANGE,
    RED,
    Json,
    Panel,
    Row,
    bargauge,
    column_units,
    dashboard,
    piechart,
    stat,
    steps,
    table,
    target,
    timeseries,
    variable,
)
from .common import FLEET_UID, MEETING_UID, TRENDS_UID, above

WINDOW = "$window"
WINDOWS = ("1h", "1d", "7d", "30d")
ACCOUNTS = 'product=~"$product", account=~"$account"'
PRODUCTS = 'product=~"$product"'
# Zoom's side and the clients: counted without account or site (the families have neither)
NO_ACCOUNT = "The client and path families have no account label: all accounts."
DATA_CENTERS_BY = "data_center, connection_type"


def _phone_share(selector: str) -> str:
    """Poor phone calls over the window, from the counters themselves: one series per account
    (and exporter replica), so reading them over 30 days is cheap, and increase() is exact."""
    poor = f"sum(increase(zoom_phone_poor_calls_total{{{selector}}}[{WINDOW}]))"
    total = f"sum(increase(zoom_phone_calls_total{{{selector}}}[{WINDOW}]))"
    return f"(\n  {poor}\n  or\n  0 * {total}\n)\n/\n({total} > 0)"


def _links() -> list[Json]:
    """From a site: the live views of that site and the selected products, the time range
    kept (the meeting drill-down offers the site's worst meetings)."""
    keep = "${__url_time_range}&${product:queryparam}&var-site=${__data.fields.site}"
    return [
        {"title": "Fleet overview of this site", "url": f"/d/{FLEET_UID}?{keep}"},
        {"title": "Worst meetings of this site now", "url": f"/d/{MEETING_UID}?{keep}"},
    ]


def trends(config: Config) -> Json:
    shares = above(config.trends_poor_share)
    wow = steps(GREEN, (config.trends_week_over_week, ORANGE))
    window_stat: Json = {"graphMode": "none"}  # one instant value: no sparkline
    overall = share(OVERALL, ACCOUNTS, WINDOW)
    week_before = share(OVERALL, ACCOUNTS, WINDOW, offset="1w")
    cause_columns = {f"Value #{chr(ord('E') + i)}": cause for i, cause in enumerate(CAUSES)}
    items: list[Panel | Row] = [
        Row("Over the window: how much is poor, and a week before"),
        stat(
            "Poor stream-minutes",
            "Share of the selected products' and accounts' media stream-minutes (audio, video, "
            "screen share, each direction; phone samples) that were poor over the window: above "
            "a poor threshold of the exporter's quality.yaml (latency, jitter, packet loss) or "
            "with an audio MOS below it.",
            [target(overall, "poor", instant=True)],
            "percentunit",
            width=4,
            options=window_stat,
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        stat(
            "A week before",
            "The same share over the same window one week earlier (offset 1w).",
            [target(week_before, "a week before", instant=True)],
            "percentunit",
            width=4,
            options=window_stat,
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        stat(
            "Week over week",
            "The poor share now minus a week before, in percentage points: above 0 it got "
            f"worse; orange from {config.trends_week_over_week * 100:g} point(s).",
            [target(f"(\n{overall}\n)\n-\n(\n{week_before}\n)", "change", instant=True)],
            "percentunit",
            width=4,
            thresholds=wow,
            options=window_stat,
        ),
        stat(
            "Stream-minutes",
            "How many stream-minutes the window holds: the weight behind the shares.",
            [target(count(OVERALL, ACCOUNTS, WINDOW), "stream-minutes", instant=True)],
            "short",
            width=4,
            options=window_stat,
        ),
        stat(
            "Poor participations",
            "Share of the participations (one person's stay in a meeting, webinar or session, "
            "from Zoom's QoS summaries) that were poor over the window.",
            [target(share(PARTICIPATION, ACCOUNTS, WINDOW), "poor", instant=True)],
            "percentunit",
            width=4,
            options=window_stat,
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        stat(
            "Poor phone calls",
            "Share of the selected accounts' Zoom Phone calls that were poor over the window "
            "(the product variable does not apply).",
            [target(_phone_share('account=~"$account"'), "poor", instant=True)],
            "percentunit",
            width=4,
            options=window_stat,
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        Row("Over time"),
        timeseries(
            "Poor share over time, week over week",
            "Each point is the share of poor stream-minutes within its own interval (at least "
            "5 minutes); dashed, the same a week before. Lines are the Trends colours' levels.",
            [
                target(share(OVERALL, ACCOUNTS, "$__interval"), "poor stream-minutes"),
                target(share(OVERALL, ACCOUNTS, "$__interval", offset="1w"), "a week before"),
            ],
            "percentunit",
            thresholds=shares,
            draw_thresholds=True,
            minimum=0,
            interval="5m",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "a week before"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}
                    ],
                }
            ],
        ),
        timeseries(
            "Poor share by cause over time",
            "Each cause's part of all stream-minutes within each interval, stacked: together "
            "the poor share. Wi-Fi: weak signal that minute; cpu: the client's CPU saturated; "
            "network: loss or jitter; latency: delay alone; unknown: none of these known.",
            [target(cause_shares(OVERALL, ACCOUNTS, "$__interval"), "{{cause}}")],
            "percentunit",
            minimum=0,
            interval="5m",
            custom={
                "fillOpacity": 60,
                "lineWidth": 1,
                "spanNulls": False,
                "stacking": {"mode": "normal", "group": "A"},
            },
        ),
        Row("Where: sites, networks and accounts, over the window"),
        table(
            "The ten worst sites",
            "Sites (offices from the exporter's sites file; external, unknown, other) by their "
            "share of poor stream-minutes over the window, worst first; a week before; poor "
            "participations; stream-minutes; and the poor stream-minutes of each cause. A site "
            "never poor shows 0. Click a row to open the live views of that site.",
            [
                target(share(SITES, ACCOUNTS, WINDOW, by="site"), table=True),
                target(share(SITES, ACCOUNTS, WINDOW, offset="1w", by="site"), table=True),
                target(count(SITES, ACCOUNTS, WINDOW, by="site"), table=True),
                target(share(SITE_PARTICIPATION, ACCOUNTS, WINDOW, by="site"), table=True),
                *(
                    target(count(SITES, ACCOUNTS, WINDOW, cause=cause, by="site"), table=True)
                    for cause in CAUSES
                ),
            ],
            "percentunit",
            columns=["site", "Value #A", "Value #B", "Value #D", "Value #C", *cause_columns],
            renames={
                "Value #A": "poor share",
                "Value #B": "a week before",
                "Value #C": "stream-minutes",
                "Value #D": "poor participations",
                **{name: f"poor min: {cause}" for name, cause in cause_columns.items()},
            },
            sort_by="Value #A",
            limit=10,
            thresholds=shares,
            links=_links(),
            overrides=[
                *column_units({"Value #C": "short", **dict.fromkeys(cause_columns, "short")}),
                {
                    "matcher": {"id": "byName", "options": "Value #A"},
                    "properties": [{"id": "custom.cellOptions", "value": {"type": "color-text"}}],
                },
            ],
        ),
        bargauge(
            "Poor share by network type",
            "Share of poor stream-minutes over the window by the participant's network "
            "(wired, Wi-Fi, cellular, PPP; other, unknown).",
            [
                target(
                    share(NETWORKS, ACCOUNTS, WINDOW, "network_type"),
                    "{{network_type}}",
                    instant=True,
                )
            ],
            "percentunit",
            width=8,
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        bargauge(
            "Poor share by account",
            "Share of poor stream-minutes over the window by Zoom account.",
            [target(share(OVERALL, ACCOUNTS, WINDOW, "account"), "{{account}}", instant=True)],
            "percentunit",
            width=8,
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        piechart(
            "Poor stream-minutes by cause",
            "The window's poor stream-minutes by their likely cause (see the cause panel).",
            [
                target(
                    count(OVERALL, ACCOUNTS, WINDOW, "cause", poor=True), "{{cause}}", instant=True
                )
            ],
            "short",
            width=8,
        ),
        Row("Zoom's side and the clients, over the window"),
        table(
            "Data centers and connection types",
            "Share of poor stream-minutes by the Zoom data center and connection type (UDP, "
            f"TCP, SSL, peer to peer) the streams used, worst first. {NO_ACCOUNT}",
            [
                target(share(DATA_CENTERS, PRODUCTS, WINDOW, DATA_CENTERS_BY), table=True),
                target(count(DATA_CENTERS, PRODUCTS, WINDOW, DATA_CENTERS_BY), table=True),
            ],
            "percentunit",
            columns=["data_center", "connection_type", "Value #A", "Value #B"],
            renames={"Value #A": "poor share", "Value #B": "stream-minutes"},
            sort_by="Value #A",
            thresholds=shares,
            overrides=column_units({"Value #B": "short"}),
            width=9,
        ),
        table(
            "Client platforms and versions",
            "Share of poor stream-minutes by the Zoom client's platform and major.minor "
            f"version, worst first: does an upgrade help? {NO_ACCOUNT}",
            [
                target(share(CLIENT_VERSIONS, PRODUCTS, WINDOW, "platform, version"), table=True),
                target(count(CLIENT_VERSIONS, PRODUCTS, WINDOW, "platform, version"), table=True),
            ],
            "percentunit",
            columns=["platform", "version", "Value #A", "Value #B"],
            renames={"Value #A": "poor share", "Value #B": "stream-minutes"},
            sort_by="Value #A",
            thresholds=shares,
            overrides=column_units({"Value #B": "short"}),
            width=9,
        ),
        bargauge(
            "Poor share by media",
            f"Share of poor stream-minutes by media: audio, video, screen share. {NO_ACCOUNT}",
            [target(share(MEDIA, PRODUCTS, WINDOW, "media"), "{{media}}", instant=True)],
            "percentunit",
            thresholds=shares,
            minimum=0,
            maximum=1,
        ),
        Row("Analytics health (the exporter)"),
        *_health(config),
    ]
    variables = [
        _window_variable(),
        variable(
            "product",
            "Product",
            "label_values(product_account:zoom_qos_stream_minutes:rate5m, product)",
            multi=True,
            description="meeting, webinar, session, phone (the client and path families have "
            "no phone)",
        ),
        variable(
            "account",
            "Account",
            'label_values(product_account:zoom_qos_stream_minutes:rate5m{product=~"$product"}, '
            "account)",
            multi=True,
            description="Zoom account id or the name the exporter was given for it",
        ),
    ]
    return dashboard(
        TRENDS_UID,
        "Trends",
        "What share of the company's Zoom is poor, in which office, network, data center, "
        "client and account, and why, over an hour to a month, week over week.",
        items,
        variables,
        refresh="15m",
        time_from="now-7d",
    )


def _window_variable() -> Json:
    window = variable(
        "window",
        "Window",
        ",".join(WINDOWS),
        custom=True,
        description="the period the shares, counts and tables add up (to now); the trend "
        "panels follow the time range instead",
    )
    window["current"] = {"text": "1d", "value": "1d"}
    return window


def _health(config: Config) -> list[Panel | Row]:
    sel = config.exporter_selector
    return [
        stat(
            "Sites loaded",
            "Sites the exporter read from its sites file (zoom_qss_exporter_analytics_sites), "
            "per exporter: 0 means every participant's site is external, unknown or other.",
            [target(f"zoom_qss_exporter_analytics_sites{{{sel}}}", "{{instance}}", instant=True)],
            "short",
            options={"graphMode": "none"},
        ),
        stat(
            "Sites file reloads that failed",
            "Failed reloads of the sites file over the window: the exporter keeps the sites "
            "it had; see its log for the reason.",
            [
                target(
                    "sum(increase(zoom_qss_exporter_analytics_sites_reloads_total"
                    f'{{{sel}, result="failure"}}[{WINDOW}]))',
                    "failed",
                    instant=True,
                )
            ],
            "short",
            thresholds=steps(GREEN, (1, RED)),
            options={"graphMode": "none"},
        ),
        timeseries(
            "Analytics rows by family",
            "Rows (label sets) each analytics family holds (zoom_qss_exporter_analytics_rows), "
            "over all exporters: their cardinality.",
            [target(f"sum by (family) (zoom_qss_exporter_analytics_rows{{{sel}}})", "{{family}}")],
            "short",
            width=6,
            minimum=0,
        ),
        timeseries(
            "Analytics folds by family",
            "QoS data folded into each analytics family per second "
            "(zoom_qss_exporter_analytics_folds_total).",
            [
                target(
                    "sum by (family) (rate(zoom_qss_exporter_analytics_folds_total"
                    f"{{{sel}}}[$__rate_interval]))",
                    "{{family}}",
                )
            ],
            "cps",
            width=6,
            minimum=0,
        ),
    ]
