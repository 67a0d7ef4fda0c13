"""Small builders for Grafana dashboard JSON (schema 39, Grafana 10.4 and later).

Every panel queries the ``${datasource}`` variable, so the files import as they are; layout is
left to right in rows of 24 columns. Units are Grafana's ids: ``s``, ``percentunit`` for 0-1
ratios, ``bps`` for bits per second (queries multiply the exporter's bytes per second by 8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

Json = dict[str, Any]

TAG = "zoom-qss"
TITLE_PREFIX = "Zoom QSS / "
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"


def steps(base: str, *above: tuple[float, str]) -> Json:
    """Absolute thresholds: ``base`` colour, then each colour from its value upwards."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in above],
    }


def value_mapping(texts: dict[int, tuple[str, str]]) -> list[Json]:
    """Numbers shown as words (quality levels, up/down), each with its colour."""
    options = {
        str(number): {"text": text, "color": color, "index": index}
        for index, (number, (text, color)) in enumerate(sorted(texts.items()))
    }
    return [{"type": "value", "options": options}]


def target(
    expr: str,
    legend: str = "",
    *,
    instant: bool = False,
    table: bool = False,
    heatmap: bool = False,
) -> Json:
    out: Json = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if table:
        out |= {"format": "table", "instant": True, "range": False}
    elif heatmap:
        out |= {"format": "heatmap", "instant": False, "range": True}
    else:
        out |= {"instant": instant, "range": not instant}
    return out


@dataclass
class Panel:
    kind: str  # Grafana panel type
    title: str
    description: str
    targets: list[Json]
    unit: str
    width: int = 12
    height: int = 8
    thresholds: Json | None = None
    draw_thresholds: bool = False  # dashed lines on time series
    minimum: float | None = None
    maximum: float | None = None
    mappings: list[Json] = field(default_factory=list)
    links: list[Json] = field(default_factory=list)
    overrides: list[Json] = field(default_factory=list)
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    transformations: list[Json] = field(default_factory=list)
    interval: str | None = None  # the smallest $__interval (Grafana's "Min interval")

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"unit": self.unit, "mappings": self.mappings, "links": self.links}
        defaults["thresholds"] = self.thresholds or steps(GREEN)
        if self.minimum is not None:
            defaults["min"] = self.minimum
        if self.maximum is not None:
            defaults["max"] = self.maximum
        custom = dict(self.custom)
        if self.draw_thresholds:
            custom["thresholdsStyle"] = {"mode": "dashed"}
        if custom:
            defaults["custom"] = custom
        targets = [
            {"refId": chr(ord("A") + index), **query} for index, query in enumerate(self.targets)
        ]
        panel: Json = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
        }
        if self.transformations:
            panel["transformations"] = self.transformations
        if self.interval:
            panel["interval"] = self.interval
        return panel


class PanelOptions(TypedDict, total=False):
    """What a caller may set of a :class:`Panel` beside its kind, title, description, queries
    and unit (and a table's transformations, made from its columns). A helper's defaults give
    way to what the caller sets; ``options`` that a helper builds itself (stat, bargauge,
    piechart, heatmap) are merged with the caller's, the caller's winning."""

    width: int
    height: int
    thresholds: Json | None
    draw_thresholds: bool
    minimum: float | None
    maximum: float | None
    mappings: list[Json]
    links: list[Json]
    overrides: list[Json]
    options: Json
    custom: Json
    interval: str | None


@dataclass
class Row:
    title: str


def timeseries(
    title: str, description: str, targets: list[Json], unit: str, **kw: Unpack[PanelOptions]
) -> Panel:
    kw.setdefault("options", {"tooltip": {"mode": "multi", "sort": "desc"}, "legend": _legend()})
    kw.setdefault("custom", {"fillOpacity": 5, "lineWidth": 1, "spanNulls": False})
    return Panel("timeseries", title, description, targets, unit, **kw)


def stat(
    title: str, description: str, targets: list[Json], unit: str, **kw: Unpack[PanelOptions]
) -> Panel:
    kw.setdefault("width", 6)
    kw.setdefault("height", 4)
    kw.setdefault("options", {})
    kw["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "textMode": "auto",
        "justifyMode": "auto",
        "orientation": "auto",
        **kw["options"],
    }
    return Panel("stat", title, description, targets, unit, **kw)


def bargauge(
    title: str, description: str, targets: list[Json], unit: str, **kw: Unpack[PanelOptions]
) -> Panel:
    kw.setdefault("width", 6)
    kw["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "displayMode": "gradient",
        "orientation": "horizontal",
        "showUnfilled": True,
        **kw.get("options", {}),
    }
    return Panel("bargauge", title, description, targets, unit, **kw)


def piechart(
    title: str, description: str, targets: list[Json], unit: str, **kw: Unpack[PanelOptions]
) -> Panel:
    kw.setdefault("width", 6)
    kw["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "pieType": "donut",
        "legend": {"displayMode": "table", "placement": "right", "values": ["value"]},
        **kw.get("options", {}),
    }
    return Panel("piechart", title, description, targets, unit, **kw)


def heatmap(
    title: str, description: str, expr: str, y_unit: str, **kw: Unpack[PanelOptions]
) -> Panel:
    """A heatmap of a Prometheus histogram's per-bucket rate (samples per second)."""
    kw["options"] = {
        "calculate": False,
        "cellGap": 1,
        "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential", "exponent": 0.5},
        "yAxis": {"axisPlacement": "left", "unit": y_unit},
        "rowsFrame": {"layout": "le"},
        # Grafana 10+ heatmap tooltip: a mode (single, multi, none), not the old "show"
        "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
        "legend": {"show": True},
        "cellValues": {"unit": "cps"},
        "filterValues": {"le": 1e-9},
        **kw.get("options", {}),
    }
    return Panel("heatmap", title, description, [target(expr, "{{le}}", heatmap=True)], "cps", **kw)


def table(
    title: str,
    description: str,
    targets: list[Json],
    unit: str,
    *,
    columns: list[str],
    renames: dict[str, str] | None = None,
    sort_by: str | None = None,
    ascending: bool = False,
    limit: int | None = None,
    **kw: Unpack[PanelOptions],
) -> Panel:
    """Instant queries merged into one table, showing ``columns`` in that order; the rows
    sorted by the column ``sort_by`` (its name before renaming), largest first (smallest first
    if ``ascending``: a MOS), and only the first ``limit`` kept, when given.

    Grafana's ``merge`` joins the queries' rows on every label they share and keeps apart
    rows whose shared labels differ, ``__name__`` included (``organize`` hides it only
    afterwards): with several queries each is aggregated without ``stat`` (which also drops
    the metric name), so that one entity is one row."""
    if len(targets) > 1:
        targets = [{**t, "expr": f"max without (stat) ({t['expr']})"} for t in targets]
    kw.setdefault("width", 24)
    kw.setdefault("options", {"showHeader": True, "cellHeight": "sm"})
    renames = renames or {}
    organize = {
        "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True},
        "indexByName": {name: index for index, name in enumerate(columns)},
        "renameByName": renames,
    }
    transformations: list[Json] = [{"id": "merge", "options": {}}]
    if sort_by:
        sort = [{"field": sort_by, "desc": not ascending}]
        transformations.append({"id": "sortBy", "options": {"fields": {}, "sort": sort}})
    if limit:
        transformations.append({"id": "limit", "options": {"limitField": limit}})
    transformations += [
        {"id": "filterFieldsByName", "options": {"include": {"names": columns}}},
        {"id": "organize", "options": organize},
    ]
    return Panel("table", title, description, targets, unit, **kw, transformations=transformations)


def column_units(units: dict[str, str]) -> list[Json]:
    """Table overrides: a unit per column (field name before renaming)."""
    return [
        {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": u}]}
        for name, u in units.items()
    ]


def _legend() -> Json:
    return {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}


def variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    description: str = "",
    custom: bool = False,
    regex: str = "",
    all_value: str | None = ".+",
    ordered: bool = False,
) -> Json:
    """A query (``label_values(...)``, or ``query_result(...)`` with a ``regex`` whose named
    groups ``text`` and ``value`` make each option) or custom (``a,b``) variable; multi ones
    offer All, which is ``all_value`` (a regex), or with ``all_value=None`` every option listed
    (Grafana joins their values, escaped, into ``(a|b|c)``). ``ordered``: the options in the
    query's own order (the query sorts them, worst first), not sorted by Grafana."""
    out: Json = {
        "name": name,
        "label": label,
        "description": description,
        "type": "custom" if custom else "query",
        "query": query,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "hide": 0,
        "skipUrlSync": False,
    }
    if multi and all_value is not None:
        out["allValue"] = all_value
    if multi and all_value is None:  # All is the options: selected from the start
        out["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    if custom:
        out["options"] = []
    else:
        out |= {
            "datasource": DATASOURCE,
            "definition": query,
            "refresh": 2,  # on time range change
            "sort": 0 if ordered else 1,
            "regex": regex,
        }
    return out


def textbox(name: str, label: str, *, description: str = "") -> Json:
    """Free text typed by the viewer ("" until then)."""
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "textbox",
        "query": "",
        "current": {"selected": False, "text": "", "value": ""},
        "options": [{"selected": True, "text": "", "value": ""}],
        "hide": 0,
        "skipUrlSync": False,
    }


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def dashboard_link(uid: str, **variables: str) -> str:
    """A data link into another of these dashboards, keeping the time range. Meeting uuids
    hold ``+`` and ``/``: pass their values with Grafana's ``:percentencode`` format."""
    query = "".join(f"&var-{name}={value}" for name, value in variables.items())
    return f"/d/{uid}?${{__url_time_range}}{query}"


def dashboard(
    uid: str,
    title: str,
    description: str,
    items: list[Panel | Row],
    variables: list[Json],
    *,
    refresh: str = "1m",
    time_from: str = "now-3h",
) -> Json:
    panels: list[Json] = []
    x = y = row_height = 0
    for number, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            panels.append(
                {
                    "id": number,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            y += row_height
            x = row_height = 0
        panels.append(item.to_json(number, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "uid": uid,
        "title": TITLE_PREFIX + title,
        "description": description,
        "tags": [TAG],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "",
        "refresh": refresh,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "Zoom QSS",
                "tags": [TAG],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": panels,
    }
