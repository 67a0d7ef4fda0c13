"""Grafana dashboards, checked without Grafana: importable structure, units, descriptions,
variables that resolve, links that lead somewhere, and PromQL that promtool parses. (The
end-to-end test runs every query against a real Prometheus.)"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin_harness import (
    ANALYTICS_FILE,
    DASHBOARDS,
    LIVE_FILE,
    ONE_INFO,
    QUERY_RESULT,
    RULES,
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
from zoom_qss_exporter.families import ALL_FAMILIES

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
BUILTINS = {"__rate_interval", "__interval", "__range", "__url_time_range", "__data", "__all"}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
BOUNDED = {"participant", "call"}  # pickers whose All is the worst N they list


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
        if var.get("multi") and var["name"] in BOUNDED:
            # All is the options the query lists (the worst now, and those searched for):
            # selected from the start, never every participant or call
            assert var["includeAll"] and "allValue" not in var, var["name"]
            assert var["current"]["value"] == ["$__all"], var["name"]
            assert re.search(r"\b(?:topk|bottomk)\(\d+,", var["query"]), var["name"]
        elif var.get("multi"):
            # a site may be unknown (no sites file, no info yet): All matches no label too
            everything = ".*" if var["name"] == "site" else ".+"
            assert var["includeAll"] and var["allValue"] == everything, var["name"]


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


_EXISTS = re.compile(r"(?:and|unless) on \([^)]*\) zoom_participant_info\{[^}]*\}")
_NAMES = re.compile(
    r"topk by \(product, meeting_id\) \(1, group by \(product, meeting_id, meeting_number, "
    r"session_name\) \((?:[^()]|\([^()]*\))*\)\)"
)
_SEARCHED = re.compile(r"zoom_participant_info\{[^`{}]*`[^`]*`\}")


def test_info_is_joined_and_counted_one_series_per_participant(board: dict[str, Any]) -> None:
    """A participant may have two zoom_participant_info series at once (remote-write
    replicas, a device or network change): a join on ``group by`` of them would fail the whole
    query (duplicate match group), and a count would count that participant twice. Info is
    read otherwise only to test that a meeting or participant is there (``and``/``unless``),
    for an instance's number or name (one per instance), or for the search (grouped)."""
    for where, expr in queries(board):
        if "group_left" in expr or expr.startswith("count") or "count by" in expr:
            rest = _SEARCHED.sub("", _NAMES.sub("", _EXISTS.sub("", expr)))
            assert rest.count("zoom_participant_info") == rest.count(ONE_INFO), where


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
    """promtool evaluates the table's info query over p1 with one info series and p2 with two
    (a device change): two rows, one each."""
    board = load(next(path for path in DASHBOARDS if path.name == "zoom-qss-meeting.json"))
    (table,) = [p for p in panels(board) if p["title"] == "Participants, worst first"]
    expr = substitute(table["targets"][0]["expr"], {"product": "meeting", "meeting": "m1"})

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
    assert names == ["datasource", "product", "site", "search", "meeting", "participant"]
    chained = variables(board)
    assert {"$product", "$site", "${search:regex}"} <= set(
        re.findall(r"\$\{?[\w:]+\}?", chained["meeting"]["query"])
    )
    assert chained["search"]["type"] == "textbox"
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


def _picker(board: dict[str, Any], name: str) -> str:
    query = QUERY_RESULT.match(variables(board)[name]["query"])
    assert query
    return query.group(1)


def _check(expr: str, *samples: tuple[str, float]) -> dict[str, Any]:
    return {
        "expr": expr,
        "eval_time": "2m",
        "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
    }


def test_the_meeting_picker_offers_the_worst_and_the_searched_for(tmp_path: Path) -> None:
    """promtool evaluates the meeting picker: instances ranked by their poor participants now
    (the recorded count), then by size, at the selected sites; each once, reading its number or
    name where a participant's event gave one (m1's p1 has two info series); what the search
    finds (a participant's name, any case) first; nothing found while the search is empty."""
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting"))
    picker = _picker(board, "meeting")
    at = 'product="meeting", meeting_id='
    info = [
        f'{at}"m1", participant_id="p1", meeting_number="123", site="berlin"',
        f'{at}"m1", participant_id="p1", meeting_number="123", site="berlin", device="Mac"',
        f'{at}"m1", participant_id="p2", site="berlin"',
        f'{at}"m2", participant_id="p3", user_name="Ada Lovelace", site="berlin"',
        f'{at}"m3", participant_id="p4", site="berlin"',
        f'{at}"m3", participant_id="p5", site="berlin"',
        f'{at}"m3", participant_id="p6", site="lyon"',
        f'{at}"m4", participant_id="p7", site="lyon"',
        'product="session", meeting_id="s1", participant_id="u1", session_name="Board"',
    ]

    def options(**values: str) -> str:
        return substitute(picker, {"product": "meeting", "site": ".*", "search": ""} | values)

    m1, m2, m3, m4 = (
        f'{{meeting_id="{m}", picker="{t}"}}'
        for m, t in (("m1", "123 · m1"), ("m2", " · m2"), ("m3", " · m3"), ("m4", " · m4"))
    )
    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"zoom_participant_info{{{labels}}}", "values": "1x3"}
                    for labels in info
                ]
                + [
                    {
                        "series": "product_meeting_id:zoom_qos_live_poor_participants:count"
                        f'{{{at}"m1"}}',
                        "values": "1x3",
                    }
                ],
                "promql_expr_test": [
                    # 1 poor + 2 people, 3 people, 1 person, 1 person
                    _check(options(), (m1, 1.000002), (m3, 3e-6), (m2, 1e-6), (m4, 1e-6)),
                    _check(options(site="berlin"), (m1, 1.000002), (m3, 2e-6), (m2, 1e-6)),
                    _check(
                        options(search="ADA"), (m2, 1e9), (m1, 1.000002), (m3, 3e-6), (m4, 1e-6)
                    ),
                    _check(options(search="123", site="lyon"), (m3, 1e-6), (m4, 1e-6)),
                    _check(
                        substitute(picker, {"product": "session", "site": ".*", "search": ""}),
                        ('{meeting_id="s1", picker="Board · s1"}', 1e-6),
                    ),
                ],
            }
        ]
    }
    promtool_test(tmp_path / "picker.yaml", unit_test)
    options_ = grafana_options(
        variables(board)["meeting"]["regex"],
        [{"meeting_id": "m1", "picker": "123 · m1"}, {"meeting_id": "m2", "picker": " · m2"}],
    )
    assert options_ == [("123 · m1", "m1"), ("m2", "m2")]


def test_the_participant_picker_offers_the_worst_and_the_searched_for(tmp_path: Path) -> None:
    """promtool evaluates the participant picker over one meeting: each live participant
    valued by the worst of their figures against its poor threshold (latency 0.8 s: 2; MOS 3:
    3.5/3), at the selected sites (a participant without info is at every site); one who left
    appears only when the search finds them; each reads "<name> · <id>"."""
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-meeting"))
    picker = _picker(board, "participant")
    who = 'product="meeting", meeting_id="m1", participant_id='
    series = [
        (f'zoom_qos_latency_seconds{{{who}"p1", qos_type="audio_input"}}', "0.8"),
        (f'zoom_qos_latency_seconds{{{who}"p1", qos_type="cpu_usage"}}', "9"),  # not media
        (f'zoom_qos_mos_estimate{{{who}"p2", qos_type="audio_output"}}', "3"),
        (f'zoom_qos_jitter_seconds{{{who}"p3", qos_type="video_input"}}', "0.003"),
        (  # another meeting's
            'zoom_qos_latency_seconds{product="meeting", meeting_id="m2", participant_id="p9", '
            'qos_type="audio_input"}',
            "1",
        ),
        (f'zoom_participant_info{{{who}"p1", user_name="Ada", site="berlin"}}', "1"),
        (f'zoom_participant_info{{{who}"p2", user_name="Grace", site="paris"}}', "1"),
        (f'zoom_participant_info{{{who}"p4", user_name="Bob", site="paris"}}', "1"),  # left
    ]

    def options(**values: str) -> str:
        fixed = {"product": "meeting", "meeting": "m1", "site": ".*", "search": ""}
        return substitute(picker, fixed | values)

    ada, grace = (
        '{participant_id="p1", picker="Ada · p1"}',
        '{participant_id="p2", picker="Grace · p2"}',
    )
    p3, bob = '{participant_id="p3", picker=" · p3"}', '{participant_id="p4", picker="Bob · p4"}'
    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": f"{v}x3"} for name, v in series],
                "promql_expr_test": [
                    _check(options(), (ada, 2), (grace, 3.5 / 3), (p3, 0.1)),
                    _check(options(site="berlin"), (ada, 2), (p3, 0.1)),
                    _check(options(search="bo"), (bob, 1e9), (ada, 2), (grace, 3.5 / 3), (p3, 0.1)),
                ],
            }
        ]
    }
    promtool_test(tmp_path / "participants.yaml", unit_test)


def test_the_call_picker_offers_the_worst_and_the_searched_for(tmp_path: Path) -> None:
    """promtool evaluates the call picker: live calls by their lowest MOS of the selected
    parties and directions, and first (-1) those the search finds by call or user id."""
    board = load(next(p for p in DASHBOARDS if p.stem == "zoom-qss-phone"))
    picker = _picker(board, "call")
    mos = [
        ('call_id="c1", user_id="a", role="caller", direction="sending"', "2.5"),
        ('call_id="c1", user_id="b", role="callee", direction="sending"', "4.4"),
        ('call_id="c2", user_id="d", role="caller", direction="receiving"', "4"),
    ]

    def options(**values: str) -> str:
        return substitute(picker, {"role": ".+", "direction": ".+", "search": ""} | values)

    unit_test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"zoom_phone_mos{{{labels}}}", "values": f"{v}x3"}
                    for labels, v in mos
                ],
                "promql_expr_test": [
                    _check(options(), ('{call_id="c1"}', 2.5), ('{call_id="c2"}', 4)),
                    _check(options(role="callee"), ('{call_id="c1"}', 4.4)),
                    _check(options(search="D"), ('{call_id="c2"}', -1), ('{call_id="c1"}', 2.5)),
                ],
            }
        ]
    }
    promtool_test(tmp_path / "calls.yaml", unit_test)
    regex = variables(board)["call"]["regex"]
    assert grafana_options(regex, [{"call_id": "c1"}]) == [("c1", "c1")]


def test_poor_call_parties_by_network(tmp_path: Path) -> None:
    """promtool evaluates the live rules and the phone dashboard's network panel and
    worst-calls table: a caller on WiFi with a poor sample, its callee on LAN with good ones, a
    party with two info series (a network change seen by two replicas) and one with none; the
    joins hold."""
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
        "rule_files": [str(LIVE_FILE)],
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
                    # the live rules' call parties: e (no info) under no network
                    check(f"sum by (network) ({poor}) > 0", ('{network="WiFi"}', 1), ("{}", 1)),
                    check(f"sum({everyone})", ("{}", 4)),  # a, b, d, e: each once
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
        ],
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


# --- scale: what a dashboard reads at every step of its time range ---------------------------

# Families with a series per participant or call party (the exporter's raw per-person data).
PER_PERSON = {
    family.name: family.labels
    for family in ALL_FAMILIES
    if {"participant_id", "call_id"} & set(family.labels)
}
# The selected participants of one meeting, or the selected calls: bounded by the pickers.
_BOUNDED_BY = {"participant_id": 'participant_id=~"$participant"', "call_id": 'call_id=~"$call"'}
_SELECTOR = re.compile(r"\b([a-z_:]+)(\{[^}]*\})?")


def _range_targets(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in panels(board):
        for target in panel["targets"]:
            if target.get("range", False):
                yield f"{board['uid']}: {panel['title']} {target['refId']}", target["expr"]


def test_range_queries_read_per_person_series_of_one_meeting_or_the_selected_calls(
    board: dict[str, Any],
) -> None:
    """A panel over a time range reads its series at every step (720 steps for 3 hours): it
    reads a participant's or call's own series only of the selected participants of one
    meeting, or of the selected calls (the pickers' worst 10 by default), and
    counts and shares from the live recording rules, so that its cost does not grow with the
    fleet (bench/dashboards.py measures it)."""
    for where, expr in _range_targets(board):
        for name, matchers in _SELECTOR.findall(expr):
            if name in PER_PERSON:
                (key,) = {"participant_id", "call_id"} & set(PER_PERSON[name])
                assert _BOUNDED_BY[key] in matchers, (where, name, matchers)
                if key == "participant_id":
                    assert 'meeting_id="$meeting"' in matchers, (where, name, matchers)
            assert "participant" not in name.split(":")[0] or ":" not in name, (where, name)


def test_no_recording_rule_writes_a_series_per_participant() -> None:
    """Dashboards count from the live rules (rules/zoom-qss-live.yaml), a few series each; no
    rule file records one series per participant or stream (the issue measured 600,000 at
    100,000 participants for the rules that did)."""
    for path in sorted(RULES.glob("*.yaml")):
        for name in recorded_names(path):
            assert "participant" not in name.split(":")[0].split("_"), (path.name, name)


def test_heatmaps_use_the_tooltip_mode(board: dict[str, Any]) -> None:
    """Grafana 10 and later: the heatmap tooltip has a mode (single, multi, none); the old
    ``show`` is gone."""
    for panel in panels(board):
        if panel["type"] == "heatmap":
            tooltip = panel["options"]["tooltip"]
            assert tooltip["mode"] in ("single", "multi", "none"), panel["title"]
            assert "show" not in tooltip, panel["title"]


def test_tables_are_sorted_worst_first(board: dict[str, Any]) -> None:
    """Every table sorts its rows by a figure, worst first: a low MOS, any other high."""
    for panel in panels(board):
        if panel["type"] == "table":
            (sort,) = [
                t["options"]["sort"] for t in panel["transformations"] if t["id"] == "sortBy"
            ]
            ((column, descending),) = [(s["field"], s["desc"]) for s in sort]
            assert re.fullmatch(r"Value(?: #[A-Z])?", column), panel["title"]
            (organize,) = [t for t in panel["transformations"] if t["id"] == "organize"]
            shown = organize["options"]["renameByName"].get(column, column)
            assert descending == ("MOS" not in shown), panel["title"]


def test_the_trends_site_links_set_the_site() -> None:
    board = _trends()
    (worst,) = [p for p in panels(board) if p["title"] == "The ten worst sites"]
    for link in worst["fieldConfig"]["defaults"]["links"]:
        assert "var-site=${__data.fields.site}" in link["url"], link
    for uid in ("zoom-qss-fleet", "zoom-qss-meeting"):
        target = load(next(p for p in DASHBOARDS if p.stem == uid))
        assert variables(target)["site"]["allValue"] == ".*"
