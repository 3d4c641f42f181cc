"""How long `import workbench` takes in a fresh process (median of 5); target under 1 s.

Run: `.venv/bin/python benchmarks/import_time.py` (or `make benchmarks`).
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from _report import report

CODE = (
    "import time, sys; t = time.perf_counter(); import workbench; "
    "print(time.perf_counter() - t, 'keras' in sys.modules, 'tensorflow' in sys.modules)"
)


def measure(runs: int = 5) -> dict:
    times, heavy = [], False
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CODE], capture_output=True, text=True, check=True
        )
        seconds, keras, tf = out.stdout.split()
        times.append(float(seconds))
        heavy |= keras == "True" or tf == "True"
    return {
        "what": "import workbench",
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "runs": runs,
        "imports_keras_or_tf": heavy,
        "target_s": 1.0,
    }


if __name__ == "__main__":
    report("import_time", [measure()])
