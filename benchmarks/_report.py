"""Shared output of the benchmarks: a printed table and a JSON file under benchmarks/results/."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from workbench.tables import format_table

RESULTS = Path(__file__).resolve().parent / "results"


def report(name: str, rows: list[dict]) -> Path:
    """Print `rows` as a table and write them, with the machine, to results/<name>.json."""
    print(format_table(rows))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    machine = {"python": platform.python_version(), "machine": platform.machine()}
    path.write_text(json.dumps({"benchmark": name, "machine": machine, "rows": rows}, indent=2))
    print(f"\nwrote {path}")
    return path
