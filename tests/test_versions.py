"""Tested version ranges come from pyproject.toml; packages outside them raise a clear warning."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from workbench import ParameterError, versions
from workbench.config import repo_root
from workbench.versions import (
    KEY_PACKAGES,
    TESTED,
    UntestedVersionWarning,
    check_versions,
    format_versions,
    warn_untested,
)


def fake_installed(monkeypatch, **fake: str | None) -> None:
    """Pretend the distributions in `fake` are installed at those versions (None: missing)."""
    real = versions._installed_version
    monkeypatch.setattr(
        versions, "_installed_version", lambda name: fake[name] if name in fake else real(name)
    )


def test_tested_ranges_match_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; 3.10 reads the installed metadata
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(TESTED["python"]) == SpecifierSet(project["requires-python"])
    applicable = [Requirement(d) for d in project["dependencies"]]
    applicable = [r for r in applicable if r.marker is None or r.marker.evaluate()]
    by_name = {r.name.removesuffix("-cpu"): r.specifier for r in applicable}
    for key in KEY_PACKAGES[1:]:
        assert SpecifierSet(TESTED[key]) == by_name[key], key
    assert TESTED["keras"] == ">=3.8,<4"  # lower bound first, as written


def test_installed_metadata_gives_the_same_ranges(monkeypatch, tmp_path):
    monkeypatch.setattr(versions, "repo_root", lambda: tmp_path)  # no pyproject.toml here
    assert versions._tested()[0] == TESTED


def test_rows_for_the_installed_packages():
    rows = check_versions()
    assert [r.name.removesuffix("-cpu") for r in rows] == list(KEY_PACKAGES)
    assert rows[0].installed == ".".join(map(str, sys.version_info[:3]))
    keras = next(r for r in rows if r.name == "keras")
    assert keras.installed == metadata.version("keras")
    assert all(r.installed and r.ok for r in rows), format_versions(rows)


def test_out_of_range_version_warns_with_the_fix(monkeypatch):
    fake_installed(monkeypatch, keras="4.0.0")
    rows = check_versions(("keras", "numpy"))
    assert [r.ok for r in rows] == [False, True]
    message = (
        "keras 4.0.0 is outside the tested range >=3.8,<4; notebooks may break — "
        "install a tested version with: pip install 'keras>=3.8,<4'"
    )
    with pytest.warns(UntestedVersionWarning, match=re.escape(message)) as caught:
        warn_untested(rows)
    assert len(caught) == 1
    assert "UNTESTED" in format_versions(rows)


def test_missing_package_and_old_python_warn(monkeypatch):
    fake_installed(monkeypatch, mlxtend=None, python="3.9.1")
    rows = check_versions(("python", "mlxtend"))
    assert [(r.installed, r.ok) for r in rows] == [("3.9.1", False), (None, False)]
    with pytest.warns(UntestedVersionWarning) as caught:
        warn_untested(rows)
    assert [str(w.message) for w in caught] == [
        "python 3.9.1 is outside the tested range >=3.10; notebooks may break — "
        "use a Python >=3.10",
        "mlxtend is not installed; notebooks may break — "
        "install a tested version with: pip install 'mlxtend>=0.23,<1'",
    ]
    assert "MISSING" in format_versions(rows)


def test_tensorflow_is_whichever_distribution_is_installed(monkeypatch):
    fake_installed(monkeypatch, **{"tensorflow-cpu": None, "tensorflow": "2.20.0"})
    (row,) = check_versions(("tensorflow",))
    assert (row.name, row.installed, row.ok) == ("tensorflow", "2.20.0", True)


def test_unknown_package_is_a_parameter_error():
    with pytest.raises(ParameterError, match="Parameter 'packages'.*'kerass'"):
        check_versions(("kerass",))


def test_format_lists_every_row():
    table = format_versions(check_versions()).splitlines()
    assert table[0].split() == ["package", "installed", "tested", "status"]
    assert len(table) == 1 + len(KEY_PACKAGES)


def test_checking_versions_does_not_import_keras_or_tensorflow():
    code = (
        "import sys, workbench.versions as v; v.check_versions(); "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
