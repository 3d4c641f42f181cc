"""Student copies of the notebooks: no solution cells, no instructor notes, no answers in outputs.

A copy keeps the `solutions` parameter (default False) and every other cell, so it runs as the
committed notebook does, with papermill or "Run all". `make student-notebooks` calls
`main_student()`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from workbench.files import atomic_write_text
from workbench.params import check_path
from workbench.teaching import EXERCISE, INSTRUCTOR, SOLUTION, tags

REMOVED = (SOLUTION, INSTRUCTOR)  # cells with these tags are not handed out


def student_copy(nb: Any) -> Any:
    """A copy of notebook `nb` without solution and instructor cells; exercise outputs cleared."""
    nb = copy.deepcopy(nb)
    nb.cells = [cell for cell in nb.cells if not tags(cell) & set(REMOVED)]
    for cell in nb.cells:
        if EXERCISE in tags(cell) and cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def write_student_notebooks(src_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write a student copy of every numbered notebook of `src_dir` into `out_dir` (atomically)."""
    import nbformat

    from workbench.runner import list_notebooks

    src = check_path("src_dir", src_dir)
    written = []
    for path in list_notebooks(src):
        nb = student_copy(nbformat.read(path, as_version=4))
        written.append(atomic_write_text(Path(out_dir) / path.name, nbformat.writes(nb) + "\n"))
    return written


def main_student(out_dir: str | Path = "student") -> int:
    """Command-line entry: student copies of notebooks/ into `out_dir` (relative to the repo)."""
    from workbench.config import repo_root
    from workbench.runner import notebooks_dir

    out = Path(out_dir)
    out = out if out.is_absolute() else repo_root() / out
    written = write_student_notebooks(notebooks_dir(), out)
    print(f"Wrote {len(written)} student notebook(s) to {out}")
    return 0
