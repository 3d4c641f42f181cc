"""Run the notebook sequence headless with papermill (`make run`, `make notebooks`).

Every run goes into its own run directory; a failure names the notebook, the cell and the error.
The kernel is the virtual environment's own `python3`: `JUPYTER_PATH` is pointed at the
environment's Jupyter data first, so a user's global kernels are never used nor touched.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import params
from workbench.config import (
    DEFAULT_RUN_DIR,
    INDEX_FILE,
    RUN_DIR_ENV,
    read_index,
    repo_root,
    resolve_run_dir,
)
from workbench.errors import WorkbenchError
from workbench.files import atomic_write_json, atomic_write_text, read_json

KERNEL = "python3"


_CELL_LINE = re.compile(r"Cell In\s*\[\d+\], line (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failing_line(source: str, traceback: list[str]) -> str:
    """The cell's line where the error was raised, read from the kernel's traceback."""
    for entry in traceback:
        match = _CELL_LINE.search(_ANSI.sub("", entry))
        lines = source.splitlines()
        if match and 0 < int(match.group(1)) <= len(lines):
            return f"line {match.group(1)}: {lines[int(match.group(1)) - 1].strip()}"
    return ""


class NotebookFailure(WorkbenchError):
    """A notebook failed while executing; says which notebook, which cell and line, and why."""

    def __init__(
        self, notebook: str, cell: int | None, line: str, error: tuple[str, str], output: Path
    ):
        self.notebook, self.cell, self.output = notebook, cell, output
        self.ename, self.evalue = error
        where = f"cell In [{cell}]" if cell is not None else "before any cell ran"
        super().__init__(
            f"{notebook} failed in {where}{', ' + line if line else ''}\n"
            f"{self.ename}: {self.evalue}\n"
            f"The executed notebook, with the full traceback, is at {output}"
        )


def notebooks_dir() -> Path:
    """The folder of the numbered teaching notebooks."""
    return repo_root() / "notebooks"


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks (`NN_name.ipynb`) in order."""
    folder = folder or notebooks_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def use_environment_kernel() -> None:
    """Make Jupyter find this environment's kernel spec before any user or system one."""
    own = str(Path(sys.prefix) / "share" / "jupyter")
    paths = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if own not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([own, *filter(None, paths)])


def execute(
    notebook: str | Path,
    output: str | Path,
    *,
    parameters: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Execute one notebook with papermill; raise NotebookFailure naming the failing cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    use_environment_kernel()
    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters or {},
            kernel_name=KERNEL,
            progress_bar=progress,
            cwd=str(notebook.parent),
        )
    except PapermillExecutionError as e:
        raise NotebookFailure(
            notebook.name,
            e.exec_count,
            _failing_line(e.source, e.traceback),
            (e.ename, e.evalue),
            output,
        ) from None
    return output


def _point_latest(runs: Path, target: Path) -> None:
    """Make `runs/latest` a symlink to `target`, keeping a real folder there (renamed, not lost)."""
    latest = runs / "latest"
    if latest.exists() and not latest.is_symlink():
        kept = runs / f"manual-{datetime.now():%Y%m%d-%H%M%S}"
        latest.rename(kept)
        print(f"runs/latest was a folder of its own; kept it as {kept}")
    tmp = runs / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, latest)


@dataclass
class SequenceResult:
    """Where a run of the sequence put its executed notebooks and figures."""

    run_dir: Path
    executed: list[Path]
    seconds: float


def run_sequence(
    *,
    profile: str = "full",
    seed: int = 0,
    runs: str | Path | None = None,
    notebooks: list[Path] | None = None,
    progress: bool = True,
) -> SequenceResult:
    """Run every numbered notebook in order into `runs/<timestamp>/`; `runs/latest` points there."""
    runs = Path(runs) if runs else repo_root() / "runs"
    run_dir = runs / datetime.now().strftime("%Y%m%d-%H%M%S")
    while run_dir.exists():  # two runs in one second: never share a folder
        run_dir = run_dir.with_name(run_dir.name + "x")
    run_dir.mkdir(parents=True)
    _point_latest(runs, run_dir)
    notebooks = notebooks if notebooks is not None else list_notebooks()
    start, executed = time.perf_counter(), []
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb.name} (profile={profile})", flush=True)
        out = run_dir / "notebooks" / nb.name
        params = {"run_dir": str(run_dir), "profile": profile, "seed": seed}
        executed.append(execute(nb, out, parameters=params, progress=progress))
    return SequenceResult(run_dir, executed, time.perf_counter() - start)


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _widget_ids_in_order(nb) -> list[str]:
    """Widget model ids, in the order the notebook reaches them: each view's model as its cell
    shows it, then the models it refers to (`IPY_MODEL_<id>`), depth first."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    views = [
        out["data"][WIDGET_VIEW]["model_id"]
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if WIDGET_VIEW in out.get("data", {})
    ]
    order: list[str] = []
    pending = list(reversed(views))
    while pending:
        model_id = pending.pop()
        if model_id in order:
            continue
        order.append(model_id)
        refs = re.findall(
            r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state.get(model_id, {}), sort_keys=True)
        )
        pending.extend(reversed(refs))
    return order + sorted(
        set(state) - set(order), key=lambda k: json.dumps(state[k], sort_keys=True)
    )


def _without_volatile(path: Path) -> str:
    """The notebook's text without timestamps, papermill bookkeeping and random widget ids, so
    re-storing unchanged outputs leaves the committed notebook unchanged (clean diffs)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    text = nbformat.writes(nb)
    for i, model_id in enumerate(_widget_ids_in_order(nb)):
        text = text.replace(model_id, f"{i + 1:032x}")
    return nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"


def store_outputs(*, notebooks: list[Path] | None = None, progress: bool = True) -> list[Path]:
    """Re-execute the notebooks as committed (smoke defaults, fixed seed) and keep their outputs.

    Runs in a temporary run directory; a notebook is replaced only after it ran without error.
    """
    stored = []
    with tempfile.TemporaryDirectory(prefix="workbench-notebooks-") as tmp:
        os.environ[RUN_DIR_ENV] = str(Path(tmp) / "run")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"  # throwaway
        for nb in notebooks if notebooks is not None else list_notebooks():
            print(f"storing outputs of {nb.name}", flush=True)
            out = Path(tmp) / nb.name
            execute(nb, out, progress=progress)
            atomic_write_text(nb, _without_volatile(out))
            stored.append(nb)
    return stored


# ---- parameter sweeps (`workbench batch`) ------------------------------------------------------

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
    metrics: dict[str, Any] = field(default_factory=dict)  # the run's train/metrics.json
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
        """One row per point: its parameters, status, time and the numbers it measured."""
        rows = []
        for p in self.points:
            numbers = {k: v for k, v in p.metrics.items() if isinstance(v, int | float)}
            test = p.metrics.get("test", {})
            numbers.update({f"test_{k}": v for k, v in test.items() if isinstance(v, int | float)})
            status = "ok" if p.ok else "failed"
            rows.append(
                {**p.parameters, "status": status, "seconds": round(p.seconds, 1), **numbers}
            )
        return rows

    def failures(self) -> list[SweepPoint]:
        return [p for p in self.points if not p.ok]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned plain-text table (columns in first-seen order)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(k, "")) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cs, widths, strict=True)) for cs in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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


SWEEP_METRICS = ("test_accuracy", "test_binary_accuracy", "test_mae")  # the first one present


def report_sweep(result: SweepResult, *, track: bool = True) -> list[dict[str, Any]]:
    """Gather a sweep: `results.json` and `comparison.png` in its folder, and one MLflow run
    (experiment "workbench-sweeps") holding the grid, each point's numbers and both files."""
    from workbench.plots.batch import plot_sweep
    from workbench.plots.style import save

    rows = result.table()
    names = list(result.points[0].parameters) if result.points else []
    atomic_write_json(result.folder / "results.json", rows)
    metric = next((m for m in SWEEP_METRICS if any(m in r for r in rows)), "seconds")
    fig = plot_sweep(rows, names, metric=metric, title=f"Sweep of {result.notebook}")
    save(fig, result.folder / "comparison.png")
    if track:
        from workbench import tracking

        grid = {n: [p.parameters[n] for p in result.points] for n in names}
        tracker = tracking.start_tracking(
            result.folder.name,
            experiment="workbench-sweeps",
            params={"notebook": result.notebook, "grid": grid},
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
