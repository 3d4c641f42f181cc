"""pyproject.toml is the single source of dependencies; environment.yml must mirror it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    out = {}
    for r in map(Requirement, reqs):
        out[r.name] = f"{r.specifier}|{r.marker or ''}"
    return out


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if not line.startswith("-e"):
                    r = Requirement(line)
                    out[r.name] = f"{r.specifier}|{r.marker or ''}"
        elif not dep.startswith(("python", "pip")) or dep.startswith("pip "):
            r = Requirement(dep)
            out[r.name] = f"{r.specifier}|"
    return out


def test_environment_yml_mirrors_pyproject():
    assert _environment() == _pyproject()


def test_python_version_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python{project['requires-python']}" in env["dependencies"]
