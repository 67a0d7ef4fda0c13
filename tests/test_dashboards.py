"""Grafana dashboards, checked without Grafana: importable structure, units, descriptions,
variables that resolve, links that lead somewhere, and PromQL that promtool parses. (The
end-to-end test runs every query against a real Prometheus.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin_harness import (
    ANALYTICS_FILE,
    DASHBOARDS,
    ONE_INFO,
    QUERY_RESULT,
    default_values,
    grafana_options,
    known_metrics,
    load,
    metric_names,
    panels,
    promtool,
    queries,
    recorded_names,
    substitute,
    variables,
)

PREFIX, TAG = "Zoom QSS / ", "zoom-qss"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "table", "heatmap", "bargauge", "piechart"}
UNITS = {  # Grafana unit ids used here; bytes/s are shown as bits/s (queries multiply by 8)
    "s",
    "percentunit",
    "bps",
    "bytes",
    "short",
    "none",
    "cps",
    "reqps",
    "dBm",
    "pixel",
    "suffix: fps",
}
BUILTINS = {"__rate_interval", "__interval", "__range", "__url_time_range", "__data"}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    path: Path = request.param
    return load(path)


def test_five_dashboards_with_fixed_unique_uids() -> None:
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert sorted(uids) == [
        "zoom-qss-exporter",
        "zoom-qss-fleet",
        "zoom-qss-meeting",
        "zoom-qss-phone",
        "zoom-qss-trends",
    ]
    for path in DASHBOARDS:
        assert path.stem == load(path)["uid"]


def test_title_tag_links_and_importable_shape(board: dict[str, Any]) -> None:
    assert board["title"].startswith(PREFIX) and board["description"]
    assert TAG in board["tags"]
    assert "__inputs" not in board and "id" not in board  # importable as is, any instance
    assert {"type": "dashboards", "tags": [TAG]}.items() <= board["links"][0].items()
    first = board["templating"]["list"][0]
    assert (first["name"], first["type"], first["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )


def test_every_panel_is_complete(board: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        where = f"{board['uid']}: {panel['title']}"
        assert panel["type"] in PANEL_TYPES, where
        assert panel["datasource"] == DATASOURCE, where
        assert panel["description"].strip(), where
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, where
        assert panel["targets"], where
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), where
        for override in panel["fieldConfig"]["overrides"]:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    assert prop["value"] in UNITS, where


def test_panels_do_not_overlap(board: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_variables_resolve(board: dict[str, Any]) -> None:
    defined = set(variables(board)) | BUILTINS
    texts = [json.dumps(board["panels"])]
    texts += [json.dumps(var) for var in board["templating"]["list"]]
    for text in texts:
        used = set(_VARIABLE.findall(text))
        assert used <= defined, used - defined
    for var in variables(board).values():
        if var["type"] != "datasource":
            assert var.get("datasource", DATASOURCE) == DATASOURCE, var["name"]
        if var.get("multi"):
            assert var["includeAll"] and var["allValue"] == ".+", var["name"]


def test_links_lead_to_these_dashboards(board: dict[str, Any]) -> None:
    """Each data link opens one of these dashboards and sets variables it has: by name
    (``var-name=``), or as Grafana's ``${name:queryparam}`` (``var-name=value`` for each value
    of this dashboard's variable of the same name)."""
    uids = {load(path)["uid"] for path in DASHBOARDS}
    for panel in panels(board):
        for link in panel["fieldConfig"]["defaults"]["links"]:
            match = re.match(r"^/d/([a-z-]+)\?\$\{__url_time_range\}", link["url"])
            assert match and match.group(1) in uids, link["url"]
            target = next(load(p) for p in DASHBOARDS if load(p)["uid"] == match.group(1))
            for name in re.findall(r"var-(\w+)=", link["url"]):
                assert name in variables(target), (link["url"], name)
            for name in re.findall(r"\$\{(\w+):queryparam\}", link["url"]):
                assert name in variables(target) and name in variables(board), (link, name)


def test_info_is_joined_and_counted_one_series_per_participant(board: dict[str, Any]) -> None:
    """A participant may have two zoom_participant_info series at once (remote-write
    replicas, a device or network change): a join on ``group by`` of them would fail the whole
    query (duplicate match group), and a count would count that participant twice."""
    for where, expr in queries(board):
        if "group_left" in expr or expr.startswith("count"):
            assert expr.count("zoom_participant_info") == expr.count(ONE_INFO), where


def _who(participant: str) -> str:
    return f'product="meeting", meeting_id="m1", participant_id="{participant}"'


def promtool_test(path: Path, unit_test: dict[str, Any]) -> None:
    """Write ``unit_test`` (promtool's unit-test file, without rule files) and run it."""
    path.write_text(yaml.safe_dump(unit_test))
    result = subprocess.run(
        [promtool(), "test", "rules", path], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_participant_with_two_info_series_keeps_the_latency_panel(tmp_path: Path) -> None:
    """promtool evaluates the meeting drill-down's Latency query over one participant with two
    info series of different user_name: one series, not a failed query."""
    expr = _meeting_query("Latency")
    who = _who("p1")
    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'zoom_qos_latency_seconds{{{who}, qos_type="audio_input"}}',
                        "values": "0.1x3",
                    },
                    {"series": f'zoom_participant_info{{{who}, user_name="Ada"}}', "values": "1x3"},
                    {
                        "series": f'zoom_participant_info{{{who}, user_name="Ada L."}}',
                        "values": "1x3",
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": f"count by (qos_type) ({expr})",
                        "eval_time": "2m",
                        "exp_samples": [{"labels": '{qos_type="audio_input"}', "value": 1}],
                    }
                ],
            }
        ]
    }
    promtool_test(tmp_path / "two_infos.yaml", unit_test)


_JOIN = "* on (product, meeting_id, participant_id) group_left (user_name)"
_FALLBACK = "\nor on (product, meeting_id, participant_id)\n"


def _meeting_query(title: str) -> str:
    board = load(next(path for path in DASHBOARDS if path.name == "zoom-qss-meeting.json"))
    (expr,) = [t["expr"] for p in panels(board) if p["title"] == title for t in p["targets"]]
    return substitute(expr, {"product": "meeting", "meeting": "m1", "participant": ".+"})


def test_every_user_name_join_falls_back_to_the_plain_series() -> None:
    """A participant with no zoom_participant_info at the instant (remote-write's event mode
    outside the lookback after a join or leave, info dropped at the series cap, before the
    first event with metadata) would vanish from a plain join: every meeting-dashboard query
    that joins user_name adds, ``or on`` the participant, the very series it joined."""
    board = load(next(path for path in DASHBOARDS if path.name == "zoom-qss-meeting.json"))
    joined = 0
    for panel in panels(board):
        for target in panel["targets"]:
            expr = target["expr"]
            if "zoom_participant_info" not in expr or panel["type"] == "table":
                continue
            joined += 1
            where = f"{panel['title']} {target['refId']}"
            assert expr.count(_JOIN) == 1 and expr.count(_FALLBACK) == 1, where
            left, fallback = expr.split(_FALLBACK)
            series = left.split(_JOIN)[0].strip().removeprefix("(").strip()
            assert left.startswith("(") and left.endswith(")"), where
            assert series == fallback, where  # the same series, without user_name
            assert "{{participant_id}}" in target["legendFormat"], where
    assert joined >= 10


_RSSI = "Wi-Fi signal (RSSI)"


@pytest.mark.parametrize("title", ["Latency", _RSSI])
def test_participants_without_info_keep_their_series(tmp_path: Path, title: str) -> None:
    """promtool evaluates a meeting drill-down query (plain, and aggregated per participant)
    over p1 without any info series, p2 with one and p3 with two (a device change): each keeps
    exactly its series, p2 and p3 with their user_name, p1 without."""
    expr = _meeting_query(title)
    metric, extra = (
        ("zoom_qos_wifi_rssi_dbm", 'qos_type="as_input", stat="avg"')
        if title == _RSSI
        else ("zoom_qos_latency_seconds", 'qos_type="audio_input"')
    )

    info = [
        (_who("p2"), 'user_name="Ada", device="Mac"'),
        (_who("p3"), 'user_name="Bob", device="Mac"'),
        (_who("p3"), 'user_name="Bob", device="iPhone"'),
    ]
    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *(
                        {"series": f"{metric}{{{_who(p)}, {extra}}}", "values": "-60x3"}
                        for p in ("p1", "p2", "p3")
                    ),
                    *(
                        {"series": f"zoom_participant_info{{{w}, {labels}}}", "values": "1x3"}
                        for w, labels in info
                    ),
                ],
                "promql_expr_test": [
                    {
                        "expr": f"count by (participant_id, user_name) ({expr})",
                        "eval_time": "2m",
                        "exp_samples": [
                            {"labels": '{participant_id="p1"}', "value": 1},
                            {"labels": '{participant_id="p2", user_name="Ada"}', "value": 1},
                            {"labels": '{participant_id="p3", user_name="Bob"}', "value": 1},
                        ],
                    },
                    {
                        "expr": f"({expr}) != -60",  # the values are the series' own
                        "eval_time": "2m",
                        "exp_samples": [],
                    },
                ],
            }
        ]
    }
    promtool_test(tmp_path / "no_info.yaml", unit_test)


def test_the_participants_table_has_one_row_per_participant(tmp_path: Path) -> None:
    """promtool evaluates the table's query over p1 with one info series and p2 with two (a
    device change): two rows, one each."""
    expr = _meeting_query("Participants")

    info = [
        (_who("p1"), 'user_name="Ada", device="Mac"'),
        (_who("p2"), 'user_name="Bob", device="Mac"'),
        (_who("p2"), 'user_name="Bob", device="iPhone"'),
    ]
    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"zoom_participant_info{{{w}, {labels}}}", "values": "1x3"}
                    for w, labels in info
                ],
                "promql_expr_test": [
                    {
                        "expr": f"count by (participant_id) ({expr})",
                        "eval_time": "2m",
                        "exp_samples": [
                            {"labels": '{participant_id="p1"}', "value": 1},
                            {"labels": '{participant_id="p2"}', "value": 1},
                        ],
                    }
                ],
            }
        ]
    }
    promtool_test(tmp_path / "table.yaml", unit_test)


def test_drilldown_is_product_meeting_participant() -> None:
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting"))
    names = [var["name"] for var in board["templating"]["list"]]
    assert names == ["datasource", "product", "meeting", "participant"]
    chained = variables(board)
    assert "$product" in chained["meeting"]["query"]
    assert (
        "$product" in chained["participant"]["query"]
        and "$meeting" in chained["participant"]["query"]
    )


def test_meeting_picker_shows_number_or_name_and_selects_the_uuid() -> None:
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting"))
    picker = variables(board)["meeting"]
    assert picker["query"].startswith("query_result(")
    uuid = "4444AAAiAAAAAiAiAiiAii=="
    results = [
        {"meeting_id": uuid, "picker": f"1234567890 · {uuid}"},
        {"meeting_id": "a/b+c==", "picker": "Board meeting · Q3 · a/b+c=="},
        {"picker": " · gkBE2XmnRJq42wHoMox/5g==", "meeting_id": "gkBE2XmnRJq42wHoMox/5g=="},
    ]
    assert grafana_options(picker["regex"], results) == [
        (f"1234567890 · {uuid}", uuid),
        ("Board meeting · Q3 · a/b+c==", "a/b+c=="),
        ("gkBE2XmnRJq42wHoMox/5g==", "gkBE2XmnRJq42wHoMox/5g=="),
    ]


def test_queries_read_only_metrics_that_exist(board: dict[str, Any]) -> None:
    known = known_metrics()
    for where, expr in queries(board):
        assert not metric_names(expr) - known, (where, metric_names(expr) - known)


def test_promtool_parses_every_query(tmp_path: Path) -> None:
    rules: list[dict[str, Any]] = []
    for path in DASHBOARDS:
        board = load(path)
        for where, expr in queries(board):
            rules.append(
                {
                    "record": f"dashboard:query:n{len(rules)}",
                    "expr": substitute(expr, default_values(board)),
                    "labels": {"where": where},
                }
            )
    rule_file = tmp_path / "queries.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", "--lint=none", rule_file],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_merged_table_has_one_row_per_call_party_and_direction(tmp_path: Path) -> None:
    """Grafana's merge joins the queries' rows on the labels they share: every query of the
    phone "Ended calls" table must give one call party's direction the same labels (no metric
    name, no ``stat``), or one party spreads over several rows."""
    board = load(next(path for path in DASHBOARDS if path.name == "zoom-qss-phone.json"))
    (panel,) = [p for p in panels(board) if p["title"] == "Ended calls"]
    parties = [
        f'call_id="c1", user_id="{user}", role="{role}", direction="{direction}"'
        for user, role in (("u1", "caller"), ("u2", "callee"))
        for direction in ("sending", "receiving")
    ]
    families = ["mos", "jitter_seconds", "network_delay_seconds", "packet_loss_ratio"]
    input_series = [
        {"series": f'zoom_phone_call_{family}{{{party}, stat="{stat}"}}', "values": "1x3"}
        for family in families
        for party in parties
        for stat in ("min", "avg", "max")
    ] + [
        {"series": f"zoom_phone_call_packet_loss_peak_ratio{{{party}}}", "values": "1x3"}
        for party in parties
    ]
    values = {"call": ".+", "role": ".+", "direction": ".+"}
    tests = [
        {
            "expr": substitute(target["expr"], values),
            "eval_time": "2m",
            "exp_samples": [{"labels": f"{{{party}}}", "value": 1} for party in parties],
        }
        for target in panel["targets"]
    ]
    assert len(tests) == 6
    unit_test = {
        "tests": [{"interval": "1m", "input_series": input_series, "promql_expr_test": tests}]
    }
    promtool_test(tmp_path / "ended_calls.yaml", unit_test)


def test_the_meeting_picker_gives_one_option_per_instance(tmp_path: Path) -> None:
    """promtool evaluates the picker's query: m1's participants named its number (one of them
    twice, and one not at all: its events carried none), m2 named none; a session has its name.
    One option each, with the number or name when any participant gave it."""
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting"))
    query = QUERY_RESULT.match(variables(board)["meeting"]["query"])
    assert query
    info = [
        'product="meeting", meeting_id="m1", participant_id="p1", meeting_number="123"',
        'product="meeting", meeting_id="m1", participant_id="p1", meeting_number="123", '
        'device="Mac"',
        'product="meeting", meeting_id="m1", participant_id="p2"',
        'product="meeting", meeting_id="m2", participant_id="p3"',
        'product="session", meeting_id="s1", participant_id="u1", session_name="Board"',
    ]

    def picker(product: str) -> dict[str, Any]:
        return {
            "expr": substitute(query.group(1), {"product": product}),
            "eval_time": "2m",
            "exp_samples": [],
        }

    meetings, sessions = picker("meeting"), picker("session")
    meetings["exp_samples"] = [
        {"labels": '{meeting_id="m1", picker="123 · m1"}', "value": 1},
        {"labels": '{meeting_id="m2", picker=" · m2"}', "value": 1},
    ]
    sessions["exp_samples"] = [{"labels": '{meeting_id="s1", picker="Board · s1"}', "value": 1}]
    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"zoom_participant_info{{{labels}}}", "values": "1x3"}
                    for labels in info
                ],
                "promql_expr_test": [meetings, sessions],
            }
        ]
    }
    promtool_test(tmp_path / "picker.yaml", unit_test)
    options = grafana_options(
        variables(board)["meeting"]["regex"],
        [{"meeting_id": "m1", "picker": "123 · m1"}, {"meeting_id": "m2", "picker": " · m2"}],
    )
    assert options == [("123 · m1", "m1"), ("m2", "m2")]


def test_poor_call_parties_by_network(tmp_path: Path) -> None:
    """promtool evaluates the phone dashboard's network panel and worst-calls table: a caller
    on WiFi with a poor sample, its callee on LAN with good ones, a party with two info series
    (a network change seen by two replicas) and one with none; the joins hold."""
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-phone"))
    (poor, everyone) = [
        t["expr"]
        for p in panels(board)
        if p["title"] == "Poor call parties by network"
        for t in p["targets"]
    ]
    (worst,) = [
        t["expr"] for p in panels(board) if p["title"] == "Worst calls now" for t in p["targets"]
    ]

    def party(call: str, user: str, role: str) -> str:
        return f'call_id="{call}", user_id="{user}", role="{role}"'

    mos = [
        (party("c1", "a", "caller"), "sending", "2.5"),  # poor, on WiFi
        (party("c1", "a", "caller"), "receiving", "4.2"),
        (party("c1", "b", "callee"), "sending", "4.4"),
        (party("c2", "d", "caller"), "sending", "4.0"),
        (party("c3", "e", "caller"), "sending", "3.0"),  # poor, no info at this instant
    ]
    info = [
        (party("c1", "a", "caller"), "WiFi"),
        (party("c1", "b", "callee"), "LAN"),
        (party("c2", "d", "caller"), "VPN"),
        (party("c2", "d", "caller"), "WiFi"),
    ]

    def check(expr: str, *samples: tuple[str, float]) -> dict[str, Any]:
        return {
            "expr": expr,
            "eval_time": "2m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }

    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *(
                        {
                            "series": f'zoom_phone_mos{{{who}, direction="{way}"}}',
                            "values": f"{value}x3",
                        }
                        for who, way, value in mos
                    ),
                    *(
                        {
                            "series": f'zoom_phone_party_info{{{who}, network="{net}"}}',
                            "values": "1x3",
                        }
                        for who, net in info
                    ),
                ],
                "promql_expr_test": [
                    check(poor, ('{network="WiFi"}', 1)),
                    check(f"sum({everyone})", ("{}", 3)),  # a, b, d: each once
                    check(f"count({worst})", ("{}", 5)),
                    check(
                        f'({worst}) and ignoring (network) zoom_phone_mos{{user_id="a", '
                        'direction="sending"}',
                        (
                            '{call_id="c1", user_id="a", role="caller", direction="sending", '
                            'network="WiFi"}',
                            2.5,
                        ),
                    ),
                    check(
                        f'({worst}) and ignoring (network) zoom_phone_mos{{user_id="e"}}',
                        ('{call_id="c3", user_id="e", role="caller", direction="sending"}', 3.0),
                    ),
                ],
            }
        ]
    }
    promtool_test(tmp_path / "network.yaml", unit_test)


def test_panel_helpers_pass_the_callers_options_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller's ``options`` reach the panel over the helper's own (piechart and heatmap once
    dropped them without a word), and the helper's others stay."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from mixin import grafana

    mine = {"legend": {"show": False}}
    panels = {
        "pieType": grafana.piechart("t", "d", [], "short", options=mine),
        "calculate": grafana.heatmap("t", "d", "m", "s", options=mine),
        "colorMode": grafana.stat("t", "d", [], "short", options=mine),
        "displayMode": grafana.bargauge("t", "d", [], "short", options=mine),
    }
    for kept, panel in panels.items():
        options = panel.to_json(1, 0, 0)["options"]
        assert options["legend"] == {"show": False} and kept in options, panel.kind


# --- the Trends dashboard over synthetic quality analytics ---------------------------------------

# Minutes. The rules run every 4 minutes, and the queries at 8 days and 4 minutes: a day's
# window then, and the same a week before, each hold 288 of the 5-minute steps (none on the
# window's edge, where Prometheus 2 and 3 differ), and each step reads a 5-minute rate of one
# week's steady counters (the rates change 10 minutes before the week ends).
_EVERY = 4
_NOW = 8 * 1440 + _EVERY
_SWITCH = 7 * 1440 - 10


def _counter(series: str, before: int, now: int) -> dict[str, str]:
    """A counter that rises by ``before`` a minute during the first week, then by ``now``."""
    rest = _NOW - _SWITCH
    values = f"0+{before}x{_SWITCH} {before * _SWITCH + now}+{now}x{rest}"
    return {"series": series, "values": values}


def _analytics_input() -> list[dict[str, str]]:
    """This week: in meetings of account acme, Berlin (on Wi-Fi) is 3/4 poor (Wi-Fi, CPU) and
    Paris (wired) never; account beta's external cellular streams are all poor (latency). A week
    before, Berlin was half poor and beta not at all."""

    def streams(labels: str) -> str:
        return f"zoom_qos_stream_minutes_total{{{labels}}}"

    def poor(labels: str, cause: str) -> str:
        return f'zoom_qos_poor_stream_minutes_total{{{labels}, cause="{cause}"}}'

    berlin = 'product="meeting", account="acme", site="berlin", network_type="wifi"'
    paris = 'product="meeting", account="acme", site="paris", network_type="wired"'
    beta = 'product="meeting", account="beta", site="external", network_type="cellular"'
    path = 'product="meeting", data_center="SC", connection_type="udp", media="audio"'
    other_path = 'product="meeting", data_center="AMS (Sub)", connection_type="tcp", media="video"'
    sel = 'job="zoom-qss-exporter", instance="a"'
    return [
        _counter(streams(berlin), 120, 120),
        _counter(poor(berlin, "wifi"), 30, 60),
        _counter(poor(berlin, "cpu"), 30, 30),
        _counter(poor(berlin, "network"), 0, 0),  # counted once, long ago: 0 now
        _counter(streams(paris), 120, 120),
        _counter(streams(beta), 60, 60),
        _counter(poor(beta, "latency"), 0, 60),
        _counter(poor(beta, "unknown"), 0, 0),
        _counter(f"zoom_qos_participations_total{{{berlin}}}", 60, 60),
        _counter(f"zoom_qos_poor_participations_total{{{berlin}}}", 15, 15),
        _counter('zoom_phone_calls_total{account="acme"}', 60, 60),
        _counter('zoom_phone_poor_calls_total{account="acme"}', 6, 6),
        _counter(
            'zoom_qos_client_stream_minutes_total{product="meeting", platform="windows", '
            'version="5.17"}',
            120,
            120,
        ),
        _counter(
            'zoom_qos_client_poor_stream_minutes_total{product="meeting", platform="windows", '
            'version="5.17", cause="cpu"}',
            30,
            30,
        ),
        _counter(
            'zoom_qos_client_stream_minutes_total{product="meeting", platform="mac", '
            'version="5.16"}',
            60,
            60,
        ),
        _counter(f"zoom_qos_path_stream_minutes_total{{{path}}}", 120, 120),
        _counter(f'zoom_qos_path_poor_stream_minutes_total{{{path}, cause="network"}}', 60, 60),
        _counter(f"zoom_qos_path_stream_minutes_total{{{other_path}}}", 60, 60),
        {"series": f"zoom_qss_exporter_analytics_sites{{{sel}}}", "values": f"2x{_NOW}"},
        _counter(
            f'zoom_qss_exporter_analytics_sites_reloads_total{{{sel}, result="failure"}}', 0, 0
        ),
        {
            "series": f'zoom_qss_exporter_analytics_rows{{{sel}, family="site"}}',
            "values": f"9x{_NOW}",
        },
        _counter(f'zoom_qss_exporter_analytics_folds_total{{{sel}, family="site"}}', 60, 60),
    ]


def _trends() -> dict[str, Any]:
    return load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-trends"))


def _trends_queries(title: str) -> list[str]:
    board = _trends()
    values = default_values(board)
    assert values == {"window": "1d", "product": ".+", "account": ".+"}
    found = [
        substitute(t["expr"], values)
        for p in panels(board)
        if p["title"] == title
        for t in p["targets"]
    ]
    assert found, title
    return found


def test_the_trends_dashboard_over_a_week_of_analytics(tmp_path: Path) -> None:
    """promtool evaluates the analytics rules over eight days of synthetic counters, then the
    Trends dashboard's queries (window 1d) at the end: each returns data, and the shares,
    counts and week-over-week figures are the ones the counters make."""
    board = _trends()
    every = [
        {
            "expr": f"absent({substitute(expr, default_values(board))})",
            "eval_time": f"{_NOW}m",
            "exp_samples": [],
        }
        for _, expr in queries(board)
        if "label_values" not in expr
    ]

    def check(title: str, index: int, *samples: tuple[str, float]) -> dict[str, Any]:
        return {
            "expr": _trends_queries(title)[index],
            "eval_time": f"{_NOW}m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }

    day = 86400  # seconds: a stream rising by 60 a minute is 86,400 stream-minutes a day
    checks = [
        check("Poor stream-minutes", 0, ("{}", 0.5)),  # (1.5 + 1) / 5
        check("A week before", 0, ("{}", 0.2)),  # (1 + 0) / 5
        check("Week over week", 0, ("{}", 0.3)),
        check("Stream-minutes", 0, ("{}", 5 * day)),
        check("Poor participations", 0, ("{}", 0.25)),
        check("Poor phone calls", 0, ("{}", 0.1)),
        check("Poor share over time, week over week", 0, ("{}", 0.5)),
        check("Poor share over time, week over week", 1, ("{}", 0.2)),
        check(
            "Poor share by cause over time",
            0,
            ('{cause="wifi"}', 0.2),
            ('{cause="cpu"}', 0.1),
            ('{cause="latency"}', 0.2),
            ('{cause="network"}', 0),
            ('{cause="unknown"}', 0),
        ),
        # the ten worst sites: share, a week before, stream-minutes, poor participations and
        # the poor minutes by cause (E: wifi, F: cpu, G: network, H: latency, I: unknown)
        check(
            "The ten worst sites",
            0,
            ('{site="berlin"}', 0.75),
            ('{site="paris"}', 0),  # never poor: 0, not missing
            ('{site="external"}', 1),
        ),
        check(
            "The ten worst sites",
            1,
            ('{site="berlin"}', 0.5),
            ('{site="paris"}', 0),
            ('{site="external"}', 0),
        ),
        check(
            "The ten worst sites",
            2,
            ('{site="berlin"}', 2 * day),
            ('{site="paris"}', 2 * day),
            ('{site="external"}', day),
        ),
        check("The ten worst sites", 3, ('{site="berlin"}', 0.25)),
        check("The ten worst sites", 4, ('{site="berlin"}', day)),
        check("The ten worst sites", 5, ('{site="berlin"}', day / 2)),
        check("The ten worst sites", 6, ('{site="berlin"}', 0)),
        check("The ten worst sites", 7, ('{site="external"}', day)),
        check("The ten worst sites", 8, ('{site="external"}', 0)),
        check(
            "Poor share by network type",
            0,
            ('{network_type="wifi"}', 0.75),
            ('{network_type="wired"}', 0),
            ('{network_type="cellular"}', 1),
        ),
        check("Poor share by account", 0, ('{account="acme"}', 0.375), ('{account="beta"}', 1)),
        check(
            "Poor stream-minutes by cause",
            0,
            ('{cause="wifi"}', day),
            ('{cause="cpu"}', day / 2),
            ('{cause="latency"}', day),
            ('{cause="network"}', 0),
            ('{cause="unknown"}', 0),
        ),
        check(
            "Data centers and connection types",
            0,
            ('{data_center="SC", connection_type="udp"}', 0.5),
            ('{data_center="AMS (Sub)", connection_type="tcp"}', 0),
        ),
        check(
            "Client platforms and versions",
            0,
            ('{platform="windows", version="5.17"}', 0.25),
            ('{platform="mac", version="5.16"}', 0),
        ),
        check("Poor share by media", 0, ('{media="audio"}', 0.5), ('{media="video"}', 0)),
    ]
    unit_test = {
        "rule_files": [str(ANALYTICS_FILE)],
        "evaluation_interval": f"{_EVERY}m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _analytics_input(),
                "promql_expr_test": every + checks,
            }
        ],
    }
    promtool_test(tmp_path / "trends.yaml", unit_test)


def test_trends_variables_and_the_worst_sites_table() -> None:
    board = _trends()
    chosen = variables(board)
    assert [v["name"] for v in board["templating"]["list"]] == [
        "datasource",
        "window",
        "product",
        "account",
    ]
    assert chosen["window"]["query"] == "1h,1d,7d,30d" and chosen["window"]["current"]["value"]
    assert chosen["product"]["multi"] and chosen["account"]["multi"]
    assert "$product" in chosen["account"]["query"]
    (worst,) = [p for p in panels(board) if p["title"] == "The ten worst sites"]
    steps = [t["id"] for t in worst["transformations"]]
    assert steps == ["merge", "sortBy", "limit", "filterFieldsByName", "organize"]
    assert worst["transformations"][1]["options"]["sort"] == [{"field": "Value #A", "desc": True}]
    assert worst["transformations"][2]["options"] == {"limitField": 10}
    assert len(worst["targets"]) == 9  # share, a week before, minutes, participations, 5 causes
    titles = {link["url"].split("?")[0] for link in worst["fieldConfig"]["defaults"]["links"]}
    assert titles == {"/d/zoom-qss-fleet", "/d/zoom-qss-meeting"}


_WINDOWED = re.compile(r"\b([a-z_:0-9]+)\{[^}]*\}\[(\$window|\$__interval)(:5m)?\]")


def test_trends_windows_read_recorded_rates_or_small_counters() -> None:
    """Days of data are read at a 5-minute step from the recorded rates, or in full only from
    the counters with a handful of series (phone calls per account, the exporter's own); each
    panel over an interval sets it to at least that step."""
    board = _trends()
    recorded = recorded_names(ANALYTICS_FILE)
    small = {"zoom_phone_calls_total", "zoom_phone_poor_calls_total"}
    small.add("zoom_qss_exporter_analytics_sites_reloads_total")
    windows = 0
    for where, expr in queries(board):
        for name, window, step in _WINDOWED.findall(expr):
            windows += 1
            if step:
                assert name in recorded, (where, name)
            else:
                assert name in small and window == "$window", (where, name)
    assert windows > 40
    for panel in panels(board):
        if "$__interval" in json.dumps(panel["targets"]):
            assert panel["interval"] == "5m", panel["title"]
