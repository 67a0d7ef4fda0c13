"""The architecture contract: the folder tree is the data flow, and imports only go down it.

Layers, from the top: the commands and their wiring; the settings; the HTTP server around the
routes; ingest (receive, verify, parse, convert, apply); remote write; the store and its
exposition; the data types and vocabulary that several steps share; the metric contract and
the helpers everything may use. A module may import its own layer's modules and those below,
never one above, and no two modules import each other, directly or round about.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "exporter" / "zoom_qss_exporter"
NAME = "zoom_qss_exporter"

LAYERS: list[set[str]] = [
    {"cli"},
    {"app", "replay", "simulate"},
    {"config"},
    {"web"},
    {"ingest"},
    {"analytics"},
    {"remote"},
    {"store"},
    {"samples", "outcomes"},
    {"families", "flags", "logs", ""},  # "": the package itself (__version__)
]


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join((NAME, *parts)), path


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module of the package that ``module`` imports (anywhere in it), with the line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == NAME:  # from zoom_qss_exporter import x: x may be a module
                for alias in node.names:
                    yield f"{NAME}.{alias.name}", node.lineno
            elif target.startswith(NAME + "."):
                yield target, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME + "."):
                    yield alias.name, node.lineno


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


KNOWN = {module for module, _ in modules()}


def resolved(target: str) -> str:
    """The module a dotted import names (``from pkg.mod import name``: ``pkg.mod``)."""
    while target not in KNOWN and "." in target:
        target = target.rpartition(".")[0]
    return target


def test_every_module_is_in_a_layer() -> None:
    for module in KNOWN:
        layer(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong = []
    for module, path in modules():
        for target, line in imports(module, path):
            target = resolved(target)
            if layer(target) < layer(module):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = {
        module: {resolved(t) for t, _ in imports(module, path)} - {module}
        for module, path in modules()
    }
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target == NAME or target.startswith(module + "."):
                continue  # the package's own __init__ (version) and a package's children
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])


def test_no_test_module_imports_another() -> None:
    """Tests share helpers through conftest.py and the helper modules beside them
    (``*_harness.py``, ``remote_receiver.py``), never by importing another test module: that
    would tie the two together and run the other's module-level setup."""
    wrong = []
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0].startswith("test_"):
                    wrong.append(f"{path.name}:{node.lineno}: imports {name}")
    assert not wrong, "\n".join(wrong)
