"""Parameter sweeps (`workbench batch`): one notebook over a grid, points run in parallel on Dask
distributed (a local cluster, or an existing one), each in its own run directory sharing the
upstream artifacts; then one comparison (JSON, figure, MLflow).

The winner is chosen by a validation metric, never by a test metric: the test numbers stay in
the table as the final, once-only estimate of the chosen point, and choose nothing.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"  # an existing cluster's scheduler, when --scheduler is not
LOCAL_ALLOWED_FAILURES = 0  # the local cluster re-runs no point whose worker died (see sweep())
CONNECT_TIMEOUT = 10  # seconds to reach an existing scheduler, and for it to have a worker
RESUBMITS = 2  # times a point is sent again when its worker died before the point started


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
    """Dask task: execute one point with one TensorFlow thread; return (failure or None, seconds).

    Runs in a worker process, perhaps on another machine: the notebook and the point's run
    directory (made by `sweep`) must be on a file system that worker sees, at the same path."""
    import socket

    start = time.perf_counter()
    unseen = [str(f) for f in (notebook, Path(parameters["run_dir"])) if not f.exists()]
    if unseen:
        return (
            f"the worker on {socket.gethostname()} does not see {' or '.join(unseen)}: every "
            "worker needs the sweep's run directory and the notebook at the same path (a shared "
            "file system)",
            0.0,
        )
    try:
        execute(notebook, output, parameters=parameters, progress=False, env=SWEEP_THREADS)
    except NotebookFailure as e:
        return str(e), time.perf_counter() - start
    return None, time.perf_counter() - start


def _train_metrics(run_dir: Path) -> dict[str, Any]:
    run_id = read_index(run_dir).get("train")
    path = run_dir / "train" / str(run_id) / "metrics.json"
    return read_json(path) if run_id and path.is_file() else {}


@contextmanager
def _dask_client(address: str | None, workers: int) -> Iterator[tuple[Any, str, int]]:
    """(client, where the points run, how many points to keep running at least): a local
    cluster of `workers` single-threaded worker processes when `address` is None, closed at the
    end; else the existing cluster whose scheduler is at `address`, checked to answer."""
    import logging

    from distributed import Client, LocalCluster

    if address is None:
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,  # no dashboard (and no bokeh needed) ...
                silence_logs=logging.WARNING,
                scheduler_kwargs={
                    "allowed_failures": LOCAL_ALLOWED_FAILURES,
                    "dashboard": False,  # ... and its health routes on a free loopback port
                    "dashboard_address": "127.0.0.1:0",
                },
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client, f"a local Dask cluster of {workers} worker(s)", workers
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError, TimeoutError) as e:
        raise WorkbenchError(
            f"Cannot reach the Dask scheduler at {address!r} ({type(e).__name__}: {e}). Start "
            f"one (`dask scheduler`, then `dask worker <its address>` on each machine), check the "
            f"address (tcp://HOST:8786) and that this machine reaches that port, or give neither "
            f"--scheduler nor {SCHEDULER_ENV} to run on a local cluster."
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise WorkbenchError(
                f"The Dask scheduler at {address!r} has no worker after {CONNECT_TIMEOUT} s; "
                f"start some with `dask worker {address}` (in this project's environment)."
            ) from None
        threads = sum(client.nthreads().values())
        yield client, f"the Dask cluster at {address} ({threads} thread(s) now)", 1


def _worker_died(error: Any, output: Path) -> str:
    """What a point's KilledWorker says: where, whether it was retried and why, and where its
    notebook is as far as it ran (papermill saves it after each cell)."""
    last, allowed = error.last_worker.address, error.allowed_failures
    if not output.exists():
        return (
            f"its worker ({last}) died before this point started, {1 + RESUBMITS} times "
            f"(KilledWorker); see that worker's log"
        )
    if allowed == 0:
        retried = (
            "it was not retried (allowed-failures 0: a point that brings its worker down, "
            "e.g. out of memory, fails once rather than taking down the next worker)"
        )
    else:
        retried = (
            f"it ran on {allowed + 1} workers, all of which died (the scheduler's "
            f"distributed.scheduler.allowed-failures is {allowed})"
        )
    return (
        f"the worker running this point died (KilledWorker, last on {last}); {retried}\n"
        f"The notebook as far as it ran is at {output}"
    )


def _run_on_dask(
    client: Any, slots: int, notebook: Path, points: list[SweepPoint], common: dict[str, Any]
) -> None:
    """Run every point as one Dask task, no more at once than the cluster has threads (so no
    point waits on a worker behind another one, and dies with it); fill in each point's result
    and print one line per finished point."""
    from distributed import CancelledError, KilledWorker, as_completed

    waiting, running, sent = list(points), {}, dict.fromkeys(range(len(points)), 0)
    finished = as_completed([], loop=client.loop, with_results=False)

    def fill() -> None:
        free = max(slots, sum(client.nthreads().values())) - len(running)
        for p in [waiting.pop(0) for _ in range(min(free, len(waiting)))]:
            values = {"run_dir": str(p.run_dir), **common, **p.parameters}
            key = f"sweep-point-{p.index}-{uuid.uuid4().hex[:8]}"
            future = client.submit(_run_point, notebook, p.output, values, key=key, pure=False)
            running[future] = (p, time.perf_counter())
            sent[p.index] += 1
            finished.add(future)

    fill()
    for future in finished:
        p, submitted = running.pop(future)
        try:
            p.error, p.seconds = future.result()
        except KilledWorker as e:
            started = p.output.exists()  # papermill writes the output before the first cell
            if not started and sent[p.index] <= RESUBMITS:
                waiting.insert(0, p)  # it never ran, so it cannot have killed the worker
                fill()
                continue
            p.error, p.seconds = _worker_died(e, p.output), time.perf_counter() - submitted
        except (Exception, CancelledError) as e:  # outside its cells, e.g. its kernel died
            p.error = f"{p.output.name} failed outside its cells: {type(e).__name__}: {e}"
            p.seconds = time.perf_counter() - submitted
        finally:
            # Forget the task at once: a result left on a worker that dies later would make the
            # scheduler run the point again, over the run directory it has just finished.
            future.release()
        p.metrics = _train_metrics(p.run_dir) if p.ok else {}
        print(f"  {p!r}" + (f"\n    {p.error.splitlines()[0]}" if p.error else ""), flush=True)
        fill()


def sweep(
    notebook: str | Path,
    grid: dict[str, list[Any]],
    *,
    run_dir: str | Path = DEFAULT_RUN_DIR,
    profile: str = "smoke",
    seed: int = 0,
    workers: int = 2,
    scheduler: str | None = None,
) -> SweepResult:
    """Run `notebook` once per grid point, in parallel on Dask, each in its own run directory.

    Each point shares the upstream artifacts of `run_dir` (problem card, data, spec) and
    overrides the notebook's parameters with its values. A failing point is reported with its
    notebook, cell and error; the others go on.

    `scheduler` (else `$DASK_SCHEDULER_ADDRESS`) is the address of an existing cluster's
    scheduler (tcp://host:8786); every worker must see `run_dir` and the notebook at the same
    path, and have this project's environment. Without one, a local cluster of `workers`
    single-threaded worker processes runs the points and is closed at the end.

    A point whose worker process dies while running it (killed, out of memory, machine lost)
    fails with a report saying so. The local cluster retries no such point
    (`distributed.scheduler.allowed-failures` 0): on one machine a worker's death is most
    likely the point's own doing, and re-running it would only take down another worker. An
    existing cluster's scheduler keeps its own setting (Dask's default, 3, re-runs the point on
    up to 3 more workers, which suits a machine lost by chance); the sweep cannot change it. A
    point that was only waiting on a worker that died is sent again, as it never ran.
    """
    notebook = Path(notebook).absolute()
    if not notebook.is_file():
        raise WorkbenchError(f"No notebook at {notebook}; expected e.g. notebooks/04_train.ipynb.")
    params.check_int("workers", workers, minimum=1)
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    upstream = resolve_run_dir(run_dir).absolute()
    grid_values = grid_points(grid)
    with _dask_client(address, min(workers, len(grid_values))) as (client, where, slots):
        folder = upstream / "sweeps" / f"{datetime.now():%Y%m%d-%H%M%S}-{notebook.stem}"
        points = []
        for i, values in enumerate(grid_values):
            point_dir = folder / _point_name(i, values)
            share_upstream(upstream, point_dir)
            out = point_dir / "notebooks" / notebook.name
            points.append(SweepPoint(i, values, point_dir, out))
        print(f"sweep of {notebook.name}: {len(points)} point(s) on {where} -> {folder}")
        _run_on_dask(client, slots, notebook, points, {"profile": profile, "seed": seed})
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
