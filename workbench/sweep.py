"""Parameter sweeps (`workbench batch`): one notebook over a grid, points run in parallel, each in
its own run directory sharing the upstream artifacts; then one comparison (JSON, figure, MLflow).

The winner is chosen by a validation metric, never by a test metric: the test numbers stay in
the table as the final, once-only estimate of the chosen point, and choose nothing.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import params
from workbench.config import DEFAULT_RUN_DIR, INDEX_FILE, read_index, resolve_run_dir
from workbench.errors import WorkbenchError
from workbench.files import atomic_write_json, read_json, save_figure
from workbench.runner import NotebookFailure, execute
from workbench.train import SELECTION_METRICS

UPSTREAM_SKIP = {"sweeps", "notebooks", "figures", "train", INDEX_FILE}  # a point's own outputs
SWEEP_THREADS = {  # one TensorFlow thread per worker: two workers share two cores fairly
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


@dataclass
class SweepPoint:
    """One run of a sweep: its parameters, where it ran, how it ended and what it measured."""

    index: int
    parameters: dict[str, Any]
    run_dir: Path
    output: Path
    error: str | None = None  # the failure (notebook, cell, error), None when it completed
    metrics: dict[str, Any] = field(default_factory=dict)  # the run's train/<run_id>/metrics.json
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return f"SweepPoint({self.index}, {self.parameters}, {status}, {self.seconds:.0f} s)"


@dataclass
class SweepResult:
    """All points of a sweep, in grid order."""

    notebook: str
    folder: Path
    points: list[SweepPoint]

    def table(self) -> list[dict[str, Any]]:
        """One row per point: its parameters, status, time, the numbers it measured (validation
        numbers of its selected weights, then test numbers) and its rank by `chosen_by()`."""
        metric, ranked = self.ranking()
        rows = []
        for p in self.points:
            numbers = {k: v for k, v in p.metrics.items() if isinstance(v, int | float)}
            numbers.update(_validation(p))
            test = p.metrics.get("test", {})
            numbers.update({f"test_{k}": v for k, v in test.items() if isinstance(v, int | float)})
            status = "ok" if p.ok else "failed"
            rank = ranked.index(p) + 1 if p in ranked else None
            rows.append(
                {**p.parameters, "status": status, "seconds": round(p.seconds, 1), **numbers}
                | {"rank": rank}
            )
        return rows

    def ranking(self) -> tuple[str | None, list[SweepPoint]]:
        """The validation metric that chooses (the first of SELECTION_METRICS a completed point
        measured) and the completed points that measured it, best first; (None, []) if none."""
        measured = [_validation(p) for p in self.points]
        for metric, higher in SELECTION_METRICS.items():
            ranked = [p for p, v in zip(self.points, measured, strict=True) if metric in v]
            if ranked:
                ranked.sort(key=lambda p: _validation(p)[metric], reverse=higher)
                return metric, ranked
        return None, []

    def winner(self) -> SweepPoint | None:
        """The point with the best validation metric, or None when no point measured one."""
        ranked = self.ranking()[1]
        return ranked[0] if ranked else None

    def summary(self) -> str:
        """One line: which validation metric chose which point, and what the test numbers are."""
        metric, ranked = self.ranking()
        if metric is None:
            return (
                "no winner: no completed point measured a validation metric "
                f"({', '.join(SELECTION_METRICS)}); test numbers never choose"
            )
        best = ranked[0]
        better = "higher" if SELECTION_METRICS[metric] else "lower"
        return (
            f"winner: point {best.index} ({_describe(best.parameters)}), chosen by {metric} "
            f"{_validation(best)[metric]:.4f} on the validation split ({better} is better); "
            "test_* is the final, once-only estimate and chose nothing"
        )

    def failures(self) -> list[SweepPoint]:
        return [p for p in self.points if not p.ok]


def _validation(p: SweepPoint) -> dict[str, float]:
    """Validation numbers of the point's selected weights (empty for a failed point)."""
    numbers = p.metrics.get("validation", {}) if p.ok else {}
    return {k: v for k, v in numbers.items() if isinstance(v, int | float)}


def _describe(parameters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in parameters.items())


def parse_value(text: str) -> Any:
    """A command-line value as papermill's `-p` reads it: numbers, booleans, None, else text."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool | type(None)) else text


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, first parameter slowest."""
    if not grid or any(not values for values in grid.values()):
        raise WorkbenchError(f"A sweep needs at least one value per parameter, got {grid!r}.")
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _point_name(index: int, parameters: dict[str, Any]) -> str:
    text = "-".join(f"{k}={v}" for k, v in parameters.items())
    return f"{index:02d}-" + re.sub(r"[^A-Za-z0-9=._-]+", "_", text)[:80]


def share_upstream(upstream: Path, run_dir: Path) -> None:
    """Give `run_dir` the upstream stages' artifacts (links, not copies) and their index."""
    run_dir.mkdir(parents=True)
    if not upstream.is_dir():
        return
    for child in upstream.iterdir():
        if child.name not in UPSTREAM_SKIP and not child.name.startswith("."):
            (run_dir / child.name).symlink_to(child.resolve(), target_is_directory=child.is_dir())
    index = read_index(upstream)
    index.pop("train", None)
    atomic_write_json(run_dir / INDEX_FILE, index)


def _run_point(
    notebook: Path, output: Path, parameters: dict[str, Any]
) -> tuple[str | None, float]:
    """Worker: execute one point with one TensorFlow thread; return (failure or None, seconds)."""
    os.environ.update(SWEEP_THREADS)
    start = time.perf_counter()
    try:
        execute(notebook, output, parameters=parameters, progress=False)
    except NotebookFailure as e:
        return str(e), time.perf_counter() - start
    return None, time.perf_counter() - start


def _train_metrics(run_dir: Path) -> dict[str, Any]:
    run_id = read_index(run_dir).get("train")
    path = run_dir / "train" / str(run_id) / "metrics.json"
    return read_json(path) if run_id and path.is_file() else {}


def sweep(
    notebook: str | Path,
    grid: dict[str, list[Any]],
    *,
    run_dir: str | Path = DEFAULT_RUN_DIR,
    profile: str = "smoke",
    seed: int = 0,
    workers: int = 2,
) -> SweepResult:
    """Run `notebook` once per grid point, in parallel, each in its own run directory.

    Each point shares the upstream artifacts of `run_dir` (problem card, data, spec) and
    overrides the notebook's parameters with its values. A failing point is reported with its
    notebook, cell and error; the others go on.
    """
    from concurrent.futures import ProcessPoolExecutor

    notebook = Path(notebook)
    if not notebook.is_file():
        raise WorkbenchError(f"No notebook at {notebook}; expected e.g. notebooks/04_train.ipynb.")
    params.check_int("workers", workers, minimum=1)
    upstream = resolve_run_dir(run_dir)
    folder = upstream / "sweeps" / f"{datetime.now():%Y%m%d-%H%M%S}-{notebook.stem}"
    points = []
    for i, values in enumerate(grid_points(grid)):
        point_dir = folder / _point_name(i, values)
        share_upstream(upstream, point_dir)
        out = point_dir / "notebooks" / notebook.name
        points.append(SweepPoint(i, values, point_dir, out))
    print(f"sweep of {notebook.name}: {len(points)} point(s), {workers} worker(s) -> {folder}")
    with ProcessPoolExecutor(max_workers=min(workers, len(points))) as pool:
        futures = {
            pool.submit(
                _run_point,
                notebook,
                p.output,
                {"run_dir": str(p.run_dir), "profile": profile, "seed": seed, **p.parameters},
            ): p
            for p in points
        }
        for future in as_completed(futures):
            p = futures[future]
            p.error, p.seconds = future.result()
            p.metrics = _train_metrics(p.run_dir) if p.ok else {}
            print(f"  {p!r}" + (f"\n    {p.error.splitlines()[0]}" if p.error else ""), flush=True)
    return SweepResult(notebook.name, folder, points)


def report_sweep(result: SweepResult, *, track: bool = True) -> list[dict[str, Any]]:
    """Gather a sweep: `results.json` and `comparison.png` in its folder, and one MLflow run
    (experiment "workbench-sweeps") holding the grid, each point's numbers and both files.
    Each says which validation metric chose the winner, and names it."""
    from workbench.plots.sweep import plot_sweep

    rows = result.table()
    names = list(result.points[0].parameters) if result.points else []
    metric, winner = result.ranking()[0], result.winner()
    chosen = {
        "chosen_by": metric,
        "higher_is_better": SELECTION_METRICS.get(metric),
        "winner": None if winner is None else {"point": winner.index, **winner.parameters},
    }
    report = {"notebook": result.notebook, "summary": result.summary(), **chosen, "rows": rows}
    atomic_write_json(result.folder / "results.json", report)
    fig = plot_sweep(
        rows,
        names,
        metric=metric or "seconds",
        higher_is_better=SELECTION_METRICS.get(metric),
        winner=None if winner is None else result.points.index(winner),
        title=f"Sweep of {result.notebook}",
    )
    save_figure(fig, result.folder / "comparison.png")
    if track:
        from workbench import tracking

        grid = {n: [p.parameters[n] for p in result.points] for n in names}
        label = (
            "none" if winner is None else f"point {winner.index} ({_describe(winner.parameters)})"
        )
        tracker = tracking.start_tracking(
            result.folder.name,
            experiment="workbench-sweeps",
            params={"notebook": result.notebook, "grid": grid, "chosen_by": str(metric)},
            tags={"chosen_by": str(metric), "winner": label},
        )
        for i, row in enumerate(rows):
            numbers = {
                k: v for k, v in row.items() if k not in names and isinstance(v, int | float)
            }
            tracker.log_metrics({**numbers, "ok": float(row["status"] == "ok")}, step=i)
        tracker.client.log_artifact(tracker.run_id, str(result.folder / "results.json"))
        tracker.log_figure(fig, "comparison")
        tracker.end("FINISHED" if not result.failures() else "FAILED")
    return rows
