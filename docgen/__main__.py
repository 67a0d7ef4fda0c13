"""``python -m docgen [--check]``: write docs/metrics.md, docs/configuration.md and the chart's
README from the code.

With ``--check`` nothing is written: the exit status is 1 and the stale files are named when
the committed files differ from what the code gives (tests/test_docs.py runs this).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import chart, configuration, metrics

ROOT = Path(__file__).resolve().parents[1]

PAGES: dict[Path, Callable[[], str]] = {
    Path("docs/metrics.md"): metrics.render,
    Path("docs/configuration.md"): configuration.render,
    Path("helm/zoom-qss-exporter/README.md"): chart.render,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    files = {path: render() for path, render in PAGES.items()}
    stale = [
        path
        for path, text in files.items()
        if not (ROOT / path).exists() or (ROOT / path).read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"docgen: {path} is out of date: run python -m docgen", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        (ROOT / path).write_text(files[path])
        print(f"docgen: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
