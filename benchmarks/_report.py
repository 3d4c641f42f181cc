"""Shared output of the benchmarks: a printed table and a JSON file under benchmarks/results/."""

from __future__ import annotations

import json
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def report(name: str, rows: list[dict]) -> Path:
    """Print `rows` as a table and write them, with the machine, to results/<name>.json."""
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    machine = {"python": platform.python_version(), "machine": platform.machine()}
    path.write_text(json.dumps({"benchmark": name, "machine": machine, "rows": rows}, indent=2))
    print(f"\nwrote {path}")
    return path
