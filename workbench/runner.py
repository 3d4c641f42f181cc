"""Run notebooks headless with papermill: one notebook, or the whole sequence (`make run`).

Every run goes into its own run directory; a failure names the notebook, the cell and the error.
The kernel is the virtual environment's own `python3`: `JUPYTER_PATH` is pointed at the
environment's Jupyter data first, so a user's global kernels are never used nor touched.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.config import repo_root
from workbench.errors import WorkbenchError

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
