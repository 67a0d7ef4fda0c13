"""The repository stands alone: a clone is all that setup, the tests and the scripts need."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import EXAMPLES
from zoom_qss_exporter.ingest.events import EVENT_MODELS

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$"
)
REQUIREMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def constraint_lines() -> list[tuple[int, str]]:
    text = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_constraints_hold_only_exact_pins() -> None:
    """A `name @ file://...` line (what `pip freeze` writes for a local wheel) or a range would
    make setup fail or drift on any other machine."""
    bad = [f"line {number}: {line}" for number, line in constraint_lines() if not PIN.match(line)]
    assert not bad, "constraints.txt may hold only name==version lines:\n" + "\n".join(bad)


def test_constraints_pin_every_direct_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    pinned = {canonical(m["name"]) for _, line in constraint_lines() if (m := PIN.match(line))}
    unpinned = []
    for requirement in wanted:
        found = REQUIREMENT_NAME.match(requirement)
        assert found, requirement
        if canonical(found.group(0)) not in pinned:
            unpinned.append(requirement)
    assert not unpinned, f"not pinned in constraints.txt: {unpinned}"


def test_examples_are_fixtures_of_the_repository() -> None:
    """Zoom's example of every event lives in the repository, not in a folder beside it."""
    assert EXAMPLES.is_relative_to(ROOT)
    assert sorted(p.stem for p in EXAMPLES.glob("*.json")) == sorted(EVENT_MODELS)


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def test_nothing_reads_outside_the_repository() -> None:
    """No test, bench, script or doc points at the development machine's shared folder."""
    outside = re.compile(r"\.\./shared|shared/(spec|samples|design\.md|style\.md)")
    offenders = []
    for path in tracked_files():
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if outside.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
