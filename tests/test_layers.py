"""The package's shape, read from its imports with `ast` (nothing is executed).

Dependencies point one way: foundation (config, params, files, ...) -> stages (identify,
design, data, train, ...) -> views (plots, widgets, exercises) -> runner and command line.
Data engineering never imports modeling or training code, and every third-party module the
package imports is declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"

FOUNDATION = {"errors", "params", "files", "config", "task_types", "stages", "tables", "versions"}
STAGES = {
    "identify", "design", "data", "train", "evaluate", "tracking", "schedules", "callbacks",
    "upstream", "deploy", "amalgam",
}  # fmt: skip
VIEWS = {"plots", "widgets", "exercises", "teaching"}
TOP = {"runner", "report", "outputs", "sweep", "student", "classroom", "cli", "__main__"}
MODELING = {"identify", "design", "train", "evaluate", "tracking", "schedules", "callbacks",
            "upstream", "deploy", "amalgam"}  # fmt: skip
CONFIG_MAY_IMPORT = {"errors", "params", "files"}


def _modules() -> dict[str, Path]:
    """Package modules by dotted name below `workbench` ("data.serving", "cli", ...)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"] = path
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, in functions too."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            if node.module == "workbench":  # from workbench import data, params
                out += [(node.lineno, f"workbench.{alias.name}") for alias in node.names]
    return out


def _part(module: str) -> str:
    """The top-level part of the package a module belongs to: "data.serving" -> "data"."""
    return module.split(".")[0]


def _layer(part: str) -> str | None:
    for name, members in (("foundation", FOUNDATION), ("stage", STAGES), ("view", VIEWS),
                          ("top", TOP)):  # fmt: skip
        if part in members:
            return name
    return None


def _violations() -> list[str]:
    problems = []
    for name, path in _modules().items():
        here = _part(name)
        rel = path.relative_to(ROOT)
        for line, module in _imports(path):
            if not module.startswith("workbench."):
                continue
            there = _part(module.removeprefix("workbench."))
            if here == there or there in ("__init__",) or module == "workbench":
                continue
            where = f"{rel}:{line} imports {module}"
            if here == "config" and there not in CONFIG_MAY_IMPORT:
                problems.append(f"{where}: config may import only {sorted(CONFIG_MAY_IMPORT)}")
            elif _layer(here) == "foundation" and _layer(there) != "foundation":
                problems.append(f"{where}: the foundation imports nothing above it")
            elif _layer(here) == "stage" and _layer(there) in ("view", "top"):
                problems.append(f"{where}: a stage module imports no view, runner or CLI")
            elif here == "data" and there in MODELING:
                problems.append(f"{where}: data engineering imports no modeling or training")
            elif _layer(here) == "view" and _layer(there) == "top":
                problems.append(f"{where}: a view imports no runner or CLI")
    return problems


def test_every_module_has_a_layer():
    unplaced = sorted({_part(n) for n in _modules()} - FOUNDATION - STAGES - VIEWS - TOP)
    assert unplaced == ["__init__"], f"put these in a layer of tests/test_layers.py: {unplaced}"


def test_dependencies_point_one_way():
    assert _violations() == []


def test_the_rules_catch_a_wrong_import(tmp_path, monkeypatch):
    bad = tmp_path / "workbench"
    (bad / "data").mkdir(parents=True)
    (bad / "data" / "bad.py").write_text("from workbench.train import train\n")
    (bad / "config.py").write_text("def f():\n    from workbench.plots.style import save\n")
    (bad / "train.py").write_text("from workbench.widgets.train import LivePlot\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", bad)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert sorted(_violations()) == [
        "workbench/config.py:2 imports workbench.plots.style: config may import only "
        "['errors', 'files', 'params']",
        "workbench/data/bad.py:1 imports workbench.train: data engineering imports no "
        "modeling or training",
        "workbench/train.py:1 imports workbench.widgets.train: a stage module imports no "
        "view, runner or CLI",
    ]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    reqs += [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def _undeclared() -> list[str]:
    distributions = importlib.metadata.packages_distributions()
    declared, missing = _declared(), []
    for path in _modules().values():
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top == "workbench" or top in sys.stdlib_module_names:
                continue
            dists = {canonicalize_name(d) for d in distributions.get(top, [top])}
            if not dists & declared:
                missing.append(f"{path.relative_to(ROOT)}:{line} imports {top} ({sorted(dists)})")
    return missing


def test_every_third_party_import_is_declared():
    missing = _undeclared()
    assert missing == [], "declare these in pyproject.toml and environment.yml:\n" + "\n".join(
        missing
    )


def test_an_undeclared_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "workbench").mkdir()
    (tmp_path / "workbench" / "serve.py").write_text(
        "import json\n\ndef f():\n    import sqlalchemy\n"
    )
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "workbench")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _undeclared() == ["workbench/serve.py:4 imports sqlalchemy (['sqlalchemy'])"]
