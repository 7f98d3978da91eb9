"""The packages' layering, as each package's docstring states it ("May import: ..."): a
module imports only its own package, `exporter.model`, `exporter.units`, and the packages
its layer lists. Read from the code's own import statements (ast), so a new import that
runs the wrong way fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exporter"

#: Package -> the other packages of exporter it may import (besides itself). The docstring of
#: each package's __init__ says the same in words; `test_docstrings_say_it` holds them equal.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "units": frozenset(),
    "model": frozenset({"units"}),
    "config": frozenset({"model", "units"}),
    "probes": frozenset({"model", "units", "config"}),
    "judge": frozenset({"model", "units", "config"}),
    "exposition": frozenset({"model", "units", "config"}),
    "web": frozenset({"model", "units", "config", "judge", "exposition"}),
    "runtime": frozenset({"model", "units", "config", "probes", "judge", "exposition", "web"}),
    "cli": frozenset(
        {"model", "units", "config", "probes", "judge", "exposition", "web", "runtime"}
    ),
    "__main__": frozenset({"cli"}),
}


def _part(path: Path) -> str:
    """The package (or top-level module) a file of exporter belongs to."""
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py")


def _imported(tree: ast.Module) -> set[str]:
    """The exporter packages a module imports (its top-level part: `exporter.config.model`
    is `config`; `from exporter import __version__` is none)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "exporter":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found |= {a.name for a in node.names if a.name != "__version__"}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "exporter" and len(parts) > 1:
                    found.add(parts[1])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_run_down_the_layers(path: Path) -> None:
    part = _part(path)
    allowed = MAY_IMPORT[part] | {part}
    wrong = _imported(ast.parse(path.read_text())) - allowed
    assert not wrong, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(wrong)}"


@pytest.mark.parametrize("package", [p for p in MAY_IMPORT if (PACKAGE / p).is_dir()])
def test_docstrings_say_it(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text())) or ""
    assert "May import:" in doc, package
    said = doc.split("May import:", 1)[1]
    for other in MAY_IMPORT[package]:
        assert f"exporter.{other}" in said, (package, other)


def test_every_part_of_the_package_has_its_layer() -> None:
    parts = {_part(p) for p in MODULES} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    assert parts <= set(MAY_IMPORT) | {"__init__"}, parts - set(MAY_IMPORT)


def test_the_check_catches_an_import_running_up() -> None:
    tree = ast.parse("from exporter.runtime.app import App\nimport exporter.web.server\n")
    assert _imported(tree) == {"runtime", "web"}


def test_the_benchmarks_import_nothing_from_the_tests() -> None:
    """benchmarks/ measures the exporter against real servers of its own; the lab and the
    fakes belong to the tests (the lab's long run lives with the lab: tests/lab/longrun.py)."""
    wrong = []
    for path in sorted((PACKAGE.parent / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            wrong += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert wrong == []
