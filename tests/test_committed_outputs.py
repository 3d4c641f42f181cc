"""The committed notebooks' outputs hold nothing of the machine that stored them: no absolute
paths, no MLflow run ids, no timings in results. Reads the .ipynb files; executes nothing."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_notebook, new_output

from workbench.runner import list_notebooks

_PLACES = sorted({str(ROOT), str(Path.home()), tempfile.gettempdir()}, key=len, reverse=True)
ABSOLUTE_PATH = re.compile(
    "|".join(
        [
            *(re.escape(p) + r"(?![\w.-])" for p in _PLACES),
            r"(?<![\w.~-])/(?:tmp|var|private|root|home|Users)/",
            r"\b[A-Za-z]:\\",
        ]
    )
)
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")  # MLflow's run ids (uuid4 hex)
TIMING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b|\bseconds\b")


def _texts(nb, *, streams: bool = True) -> list[tuple[int, str]]:
    """(1-based cell, text) of what a reader sees: printed streams, plain-text results, errors."""
    found = []
    for i, cell in enumerate(nb.cells, 1):
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and streams:
                found.append((i, out.text))
            elif out.output_type == "error":
                found.append((i, "\n".join(out.traceback)))
            elif "text/plain" in out.get("data", {}):
                found.append((i, out.data["text/plain"]))
    return found


def _hits(pattern: re.Pattern, texts: list[tuple[int, str]]) -> list[str]:
    return [
        f"cell {i}: ...{text[max(0, m.start() - 40) : m.end() + 30]!r}..."
        for i, text in texts
        for m in pattern.finditer(text)
    ]


COMMITTED = {p.name: p for p in list_notebooks(ROOT / "notebooks")}


@pytest.mark.parametrize("name", COMMITTED)
def test_no_absolute_paths(name):
    hits = _hits(ABSOLUTE_PATH, _texts(nbformat.read(COMMITTED[name], as_version=4)))
    assert hits == [], (
        f"{name} is committed with absolute paths; print them relative to the run directory or "
        f"the repository (config.display_path), then re-store them with `make notebooks`: {hits}"
    )


@pytest.mark.parametrize("name", COMMITTED)
def test_no_mlflow_run_ids(name):
    hits = _hits(RUN_ID, _texts(nbformat.read(COMMITTED[name], as_version=4)))
    assert hits == [], f"{name} is committed with random run ids: {hits}"


@pytest.mark.parametrize("name", COMMITTED)
def test_no_timings_in_results(name):
    """Results (reprs) show no durations; Keras' own epoch lines (streams) are left to nbval's
    sanitizer."""
    hits = _hits(TIMING, _texts(nbformat.read(COMMITTED[name], as_version=4), streams=False))
    assert hits == [], f"{name} is committed with timings in its results: {hits}"


def test_the_checks_find_what_they_look_for():
    outputs = [
        new_output("stream", name="stdout", text=f"model: {tempfile.gettempdir()}/x/model.keras\n"),
        new_output("execute_result", data={"text/plain": "time: 4.5 s\nrun " + "ab12" * 8}),
        new_output("stream", name="stdout", text="saved problem/card.json, 1797 samples\n"),
    ]
    texts = _texts(new_notebook(cells=[new_code_cell("", outputs=outputs)]))
    assert len(_hits(ABSOLUTE_PATH, texts)) == 1
    assert len(_hits(RUN_ID, texts)) == 1
    assert len(_hits(TIMING, texts)) == 1
