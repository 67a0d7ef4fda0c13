"""Markdown tables and the templates the generated tables go into."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
_MARKER = re.compile(r"^<!-- table: ([a-z0-9_-]+) -->$", re.MULTILINE)


def cell(text: str) -> str:
    """One table cell: no line breaks, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def code(text: str) -> str:
    return f"`{text}`" if text else ""


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fill(template: str, tables: Mapping[str, Callable[[], str]], banner: str) -> str:
    """The template with each ``<!-- table: NAME -->`` line replaced by that table; every
    table must be used, and every marker known."""
    text = (TEMPLATES / template).read_text()
    used = _MARKER.findall(text)
    unknown = sorted(set(used) - set(tables))
    unused = sorted(set(tables) - set(used))
    if unknown or unused:
        raise ValueError(f"{template}: unknown tables {unknown}, tables not placed {unused}")
    body = _MARKER.sub(lambda match: tables[match.group(1)]().rstrip("\n"), text)
    return banner + "\n" + body
