"""The reference pages generated from the code are up to date, they cover what they claim to,
and every relative link of the README and docs/ leads somewhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import docgen.__main__ as docgen_main
from docgen import chart

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "helm" / "zoom-qss-exporter" / "README.md",
]


def test_generated_pages_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "docgen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_check_names_a_stale_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "metrics.md").write_text("# stale\n")
    monkeypatch.setattr(docgen_main, "ROOT", tmp_path)
    assert docgen_main.main(["--check"]) == 1
    err = capsys.readouterr().err
    for page in docgen_main.PAGES:
        assert f"docgen: {page} is out of date" in err
    assert (tmp_path / "docs" / "metrics.md").read_text() == "# stale\n"  # nothing written


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield ".".join(path)


def test_chart_values_table_has_every_value() -> None:
    schema = json.loads((chart.CHART / "values.schema.json").read_text())
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    documented = {row[0].strip("`") for row in chart.rows(schema, values, [])}
    for leaf in _leaves(values):
        assert any(leaf == d or leaf.startswith(d + ".") for d in documented), leaf


def test_configuration_lists_every_flag() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    for command in ("serve", "replay", "simulate"):
        help_text = subprocess.run(
            [sys.executable, "-m", "zoom_qss_exporter.cli", command, "--help"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "COLUMNS": "10000"},  # one line per option
        ).stdout
        options = re.findall(r"^  (-.*?)(?:  |$)", help_text, re.MULTILINE)
        flags = set(re.findall(r"--[a-z][a-z0-9.-]+", " ".join(options))) - {"--help"}
        assert len(flags) > 10, help_text
        for flag in flags:
            name = flag.removeprefix("--no-").removeprefix("--")
            assert f"`--{name}`" in page or f"`--[no-]{name}`" in page, (command, flag)


_FENCE = re.compile(r"^\s*```.*?^\s*```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def _prose(page: Path) -> str:
    return _INLINE_CODE.sub("", _FENCE.sub("", page.read_text()))


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces as -."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", page.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def test_anchor_slugs_are_githubs() -> None:
    page = ROOT / "docs" / "remote-write.md"
    assert "zoom_participant_info-event-or-merged" in anchors(page)
    assert "delivery-what-happens-when-things-go-wrong" in anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    for target in _LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            assert linked.suffix == ".md", f"{page.name}: {target}"
            assert anchor in anchors(linked), f"{page.name}: {target}"
