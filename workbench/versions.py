"""Which versions of the key packages the workbench is tested with, and whether this one matches.

The tested ranges are read from the project's own dependency list (pyproject.toml in a checkout,
the installed metadata otherwise): one source of truth. Only package metadata is read, so this
module never imports Keras or TensorFlow.
"""

from __future__ import annotations

import platform
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from workbench import params
from workbench.config import repo_root

PROJECT = "workbench"
FAMILIES = {"tensorflow-cpu": "tensorflow"}  # distributions that stand in for a key package
KEY_PACKAGES: tuple[str, ...] = (
    "python",
    "keras",
    "tensorflow",
    "numpy",
    "scikit-learn",
    "matplotlib",
    "ipywidgets",
    "jupyterlab",
    "papermill",
    "mlxtend",
    "pillow",
)


class UntestedVersionWarning(UserWarning):
    """An installed package is missing or outside the range the workbench is tested with."""


@dataclass(frozen=True)
class VersionRow:
    """One package: its installed version (None if missing), tested range and verdict."""

    name: str  # the distribution to install, e.g. "tensorflow-cpu" for the key "tensorflow"
    installed: str | None
    tested: str  # e.g. ">=3.8,<4"
    ok: bool


def _declared() -> tuple[str, list[str]]:
    """requires-python and dependencies: from pyproject.toml in a checkout, else metadata."""
    pyproject = repo_root() / "pyproject.toml"
    if sys.version_info >= (3, 11) and pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == PROJECT:
            return project["requires-python"], project["dependencies"]
    return metadata.metadata(PROJECT)["Requires-Python"], metadata.requires(PROJECT) or []


def _range(spec: SpecifierSet) -> str:
    """A range written lower bound first (">=3.8,<4"), whatever the order it was read in."""
    return ",".join(
        str(s) for s in sorted(spec, key=lambda s: (s.operator.startswith("<"), str(s)))
    )


def _tested() -> tuple[dict[str, str], dict[str, str]]:
    """Tested ranges by key package, and the distribution this platform's requirement names."""
    requires_python, dependencies = _declared()
    tested, wanted = {"python": _range(SpecifierSet(requires_python))}, {"python": "python"}
    for line in dependencies:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # another platform's requirement, or an optional extra
        name = canonicalize_name(req.name)
        key = FAMILIES.get(name, name)
        tested[key], wanted[key] = _range(req.specifier), name
    return tested, wanted


TESTED, _WANTED = _tested()


def _installed_version(name: str) -> str | None:
    """The installed version of distribution `name` ("python": the interpreter), or None."""
    if name == "python":
        return platform.python_version()
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _candidates(key: str) -> list[str]:
    """Distributions that provide `key`: this platform's requirement first, then its family."""
    family = [name for name, k in FAMILIES.items() if k == key]
    return list(dict.fromkeys([_WANTED.get(key, key), key, *family]))


def check_versions(packages: tuple[str, ...] = KEY_PACKAGES) -> list[VersionRow]:
    """One row per key package: installed version, tested range and whether it is in range."""
    rows = []
    for key in packages:
        params.check_choice("packages", key, sorted(TESTED))
        names = _candidates(key)
        found = [(n, v) for n in names if (v := _installed_version(n)) is not None]
        name, installed = (found or [(names[0], None)])[0]
        spec = SpecifierSet(TESTED[key])
        try:
            ok = installed is not None and spec.contains(Version(installed), prereleases=True)
        except InvalidVersion:
            ok = False
        rows.append(VersionRow(name, installed, TESTED[key], ok))
    return rows


def format_versions(rows: list[VersionRow]) -> str:
    """A plain-text table of the rows, one package per line."""
    header = ("package", "installed", "tested", "status")
    lines = [
        (
            r.name,
            r.installed or "-",
            r.tested,
            "ok" if r.ok else "MISSING" if r.installed is None else "UNTESTED",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]
    )


def warn_untested(rows: list[VersionRow]) -> None:
    """Warn (UntestedVersionWarning) once per package missing or outside its tested range."""
    for r in rows:
        if r.ok:
            continue
        if r.name == "python":
            fix = f"use a Python {r.tested}"
        else:
            fix = f"install a tested version with: pip install '{r.name}{r.tested}'"
        what = (
            "is not installed"
            if r.installed is None
            else f"{r.installed} is outside the tested range {r.tested}"
        )
        warnings.warn(
            f"{r.name} {what}; notebooks may break — {fix}", UntestedVersionWarning, stacklevel=2
        )
