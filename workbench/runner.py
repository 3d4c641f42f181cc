"""Run notebooks headless with papermill: one notebook, or the whole sequence (`make run`).

Every run goes into its own run directory; a failure names the notebook, the cell and the error.
The kernel is the virtual environment's own `python3`: `JUPYTER_PATH` is pointed at the
environment's Jupyter data first, so a user's global kernels are never used nor touched.
While a notebook runs, the lines it prints (Keras' one line per epoch, ...) reach the terminal
as they come, each prefixed with the notebook's name; those of exercise, solution and instructor
cells, which speak to a student in JupyterLab, stay in the notebook.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from workbench.config import repo_root
from workbench.errors import ParameterError, WorkbenchError
from workbench.report import write_report
from workbench.teaching import EXERCISE, INSTRUCTOR, SOLUTION, tags

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


def _kernel_config():
    """Kernel manager settings: CurveZMQ encryption between papermill and the kernel.

    ipykernel 7 warns "Kernel is running over TCP without encryption" on every start unless the
    manager hands it CurveZMQ keys; jupyter_client >= 8.10 does so for kernel specs that declare
    support (`transport_encryption="auto"`), when pyzmq has CurveZMQ. Else nothing changes.
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if "transport_encryption" not in KernelManager.class_trait_names() or not zmq.has("curve"):
        return Config()
    return Config({"KernelManager": {"transport_encryption": "auto"}})


class PrefixedLines:
    """A file-like sink for a notebook's printed text: each complete line goes to `stream` at
    once, prefixed (`04_train | Epoch 3/28`); blank lines are dropped, and of a line rewritten
    with carriage returns (a progress bar) only its final state is kept."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream, self.prefix, self._partial = stream, prefix, ""
        self.muted = False  # drop lines (e.g. while an exercise cell runs)

    def write(self, text: str) -> int:
        """Emit the complete lines of `text`; keep a trailing partial line for later."""
        *lines, self._partial = (self._partial + text.replace("\r\n", "\n")).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def end_line(self) -> None:
        """Emit the pending partial line, if any (a cell's output ends with the cell)."""
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def close(self) -> None:
        """Emit the last line and flush: the notebook has finished."""
        self.end_line()
        self.flush()

    def _emit(self, line: str) -> None:
        line = line.rsplit("\r", 1)[-1].rstrip()
        if line and not self.muted:
            self.stream.write(f"{self.prefix}{line}\n")


def _streaming(notebook: Path) -> tuple[PrefixedLines, dict[str, Any]]:
    """A sink for the notebook's printed lines on stdout, and the papermill options feeding it.

    The lines replace papermill's cell-count bar, which they would tear apart.
    """
    lines = PrefixedLines(sys.stdout, f"{notebook.stem} | ")

    def on_cell_start(cell: Any, cell_index: int) -> None:
        lines.end_line()
        lines.muted = bool(tags(cell) & {EXERCISE, SOLUTION, INSTRUCTOR})

    return lines, {"stdout_file": lines, "stderr_file": lines, "on_cell_start": on_cell_start}


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set these environment variables for the block (a kernel started in it inherits them),
    then restore each one, or its absence."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(
    notebook: str | Path,
    output: str | Path,
    *,
    parameters: dict[str, Any] | None = None,
    progress: bool = True,
    env: dict[str, str] | None = None,
) -> Path:
    """Execute one notebook with papermill; raise NotebookFailure naming the failing cell.

    `progress` streams the notebook's stdout and stderr lines to stdout while it runs (not
    those of exercise, solution and instructor cells); `progress=False` prints nothing.
    `env`: environment variables for the kernel only (this process's are restored after).
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    use_environment_kernel()
    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    lines, streaming = _streaming(notebook) if progress else (None, {})
    try:
        with environ(env or {}):
            pm.execute_notebook(
                str(notebook),
                str(output),
                parameters=parameters or {},
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=str(notebook.parent),
                config=_kernel_config(),
                **streaming,
            )
    except PapermillExecutionError as e:
        raise NotebookFailure(
            notebook.name,
            e.exec_count,
            _failing_line(e.source, e.traceback),
            (e.ename, e.evalue),
            output,
        ) from None
    finally:
        if lines is not None:
            lines.close()
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


def _declared(notebook: Path) -> list[str]:
    """The names a notebook's `parameters` cell declares (papermill's own reading of it)."""
    import papermill as pm

    return list(pm.inspect_notebook(str(notebook)))


@dataclass
class SequenceResult:
    """Where a run of the sequence put its executed notebooks, figures and report."""

    run_dir: Path
    executed: list[Path]
    seconds: float
    report: Path  # <run_dir>/index.html


def run_sequence(
    *,
    profile: str = "full",
    seed: int = 0,
    runs: str | Path | None = None,
    notebooks: list[Path] | None = None,
    progress: bool = True,
    parameters: dict[str, Any] | None = None,
) -> SequenceResult:
    """Run every numbered notebook in order into `runs/<timestamp>/`; `runs/latest` points there.

    The run ends with its report, `<run_dir>/index.html`; a failing notebook ends it too, after
    a report of what ran, the failed notebook's traceback included.

    `parameters` go to each notebook that declares them (e.g. `dataset`, `target` and
    `source_options` to 01_identify, whose card tells the later stages); a name no notebook
    declares is refused before anything runs.
    """
    notebooks = notebooks if notebooks is not None else list_notebooks()
    declared = {nb: set(_declared(nb)) for nb in notebooks}
    unknown = sorted(set(parameters or {}) - set().union(*declared.values()))
    if unknown:
        names = sorted(set().union(*declared.values()) - {"run_dir", "profile", "seed"})
        raise ParameterError(
            f"Parameter(s) {unknown}: no notebook of the sequence declares them; expected "
            f"one of {names}."
        )
    runs = Path(runs) if runs else repo_root() / "runs"
    run_dir = runs / datetime.now().strftime("%Y%m%d-%H%M%S")
    while run_dir.exists():  # two runs in one second: never share a folder
        run_dir = run_dir.with_name(run_dir.name + "x")
    run_dir.mkdir(parents=True)
    _point_latest(runs, run_dir)
    start, executed = time.perf_counter(), []
    try:
        for i, nb in enumerate(notebooks, 1):
            print(f"[{i}/{len(notebooks)}] {nb.name} (profile={profile})", flush=True)
            out = run_dir / "notebooks" / nb.name
            given = {k: v for k, v in (parameters or {}).items() if k in declared[nb]}
            params = {"run_dir": str(run_dir), "profile": profile, "seed": seed, **given}
            executed.append(execute(nb, out, parameters=params, progress=progress))
    except NotebookFailure as e:
        ran = [*executed, e.output] if e.output.is_file() else executed
        print(f"Run report (up to the failure): {write_report(run_dir, notebooks=ran)}")
        raise
    seconds = time.perf_counter() - start
    return SequenceResult(run_dir, executed, seconds, write_report(run_dir, notebooks=executed))
