"""Package-wide properties: light import, lint and formatting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parent.parent
LIGHT = [
    "workbench",
    "workbench.identify",
    "workbench.data",
    "workbench.config",
    "workbench.runner",
    "workbench.outputs",
    "workbench.sweep",
    "workbench.tables",
]


def test_version():
    assert workbench.__version__.count(".") == 2


def test_import_does_not_load_keras_or_tensorflow():
    code = (
        f"import sys; import {', '.join(LIGHT)}; "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ruff_check_and_format():
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [*ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout
