from __future__ import annotations

from zoom_qss_exporter.analytics.classify import CPU, WIFI
from zoom_qss_exporter.analytics.rows import RowTable


def table(max_rows: int, causes: bool = True) -> RowTable:
    return RowTable(
        "site",
        ("zoom_qos_stream_minutes", "help"),
        ("zoom_qos_poor_stream_minutes", "help"),
        ("product", "site"),
        max_rows,
        causes=causes,
    )


def samples(rows: RowTable) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in rows.collect()
        for s in metric.samples
    }


def test_rows_count_totals_and_poor_minutes_by_cause() -> None:
    rows = table(10)
    row = rows.row(("meeting", "Paris"))
    row[0] += 3
    row[1 + WIFI] += 2
    assert rows.row(("meeting", "Paris")) is row
    exposed = samples(rows)
    assert (
        exposed[("zoom_qos_stream_minutes_total", (("product", "meeting"), ("site", "Paris")))] == 3
    )
    poor = (("cause", "wifi"), ("product", "meeting"), ("site", "Paris"))
    assert exposed[("zoom_qos_poor_stream_minutes_total", poor)] == 2
    # causes never seen are not exposed: no series of zeros per cause
    assert len(exposed) == 2


def test_past_the_cap_new_combinations_fold_into_their_products_other_row() -> None:
    rows = table(2)
    rows.row(("meeting", "A"))[0] += 1
    rows.row(("phone", "B"))[0] += 1
    folded = rows.row(("meeting", "C"))
    folded[0] += 1
    folded[1 + CPU] += 1
    rows.row(("meeting", "D"))[0] += 1
    rows.row(("webinar", "E"))[0] += 1
    rows.row(("meeting", "D"))  # a combination folds (and is counted) once
    assert rows.folds == 3
    assert set(rows.rows) == {
        ("meeting", "A"),
        ("phone", "B"),
        ("meeting", "other"),
        ("webinar", "other"),
    }
    assert rows.rows[("meeting", "other")][:2] == [2.0, 0.0]
    assert rows.row(("meeting", "A"))[0] == 1  # known rows still count


def test_a_table_without_causes_has_one_poor_counter() -> None:
    rows = table(5, causes=False)
    row = rows.row(("meeting", "A"))
    row[0] += 2
    row[1] += 1
    exposed = samples(rows)
    assert (
        exposed[("zoom_qos_poor_stream_minutes_total", (("product", "meeting"), ("site", "A")))]
        == 1
    )
