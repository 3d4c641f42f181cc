"""Stored notebook outputs (`make notebooks`): stable across runs, the environment left as found."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from conftest import outputs_text, write_notebook
from nbformat.v4 import new_code_cell, new_notebook

from workbench import outputs
from workbench.config import RUN_DIR_ENV
from workbench.runner import NotebookFailure


def _widget_notebook(path: Path, box: str, label: str) -> Path:
    """A stored notebook whose cell shows a VBox holding a Label, with the given model ids."""
    nb = new_notebook(cells=[new_code_cell("view", id="view")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data", data={outputs.WIDGET_VIEW: {"model_id": box, "version_major": 2}}
        )
    ]
    nb.cells[0].metadata["papermill"] = {"duration": 1.5}
    nb.metadata["widgets"] = {
        outputs.WIDGET_STATE: {
            "state": {
                box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{label}"]}},
                label: {"model_name": "LabelModel", "state": {"value": "hi"}},
            },
            "version_major": 2,
        }
    }
    nbformat.write(nb, path)
    return path


def test_stored_outputs_do_not_change_with_random_widget_ids(tmp_path):
    first = outputs._without_volatile(_widget_notebook(tmp_path / "a.ipynb", "a" * 32, "b" * 32))
    again = outputs._without_volatile(_widget_notebook(tmp_path / "b.ipynb", "c" * 32, "d" * 32))
    assert first == again
    assert "a" * 32 not in first and "papermill" not in first
    stored = nbformat.reads(first, as_version=4)
    state = stored.metadata["widgets"][outputs.WIDGET_STATE]["state"]
    box = stored.cells[0].outputs[0]["data"][outputs.WIDGET_VIEW]["model_id"]
    assert state[box]["state"]["children"] == [f"IPY_MODEL_{1 + int(box, 16):032x}"]


def test_stored_streams_do_not_depend_on_how_the_kernel_split_them(tmp_path):
    out = nbformat.v4.new_output
    split = [out("stream", name="stdout", text="a\n"), out("stream", name="stdout", text="\n")]
    whole = [out("stream", name="stdout", text="a\n\n")]
    texts = []
    for name, outputs_ in (("split", split), ("whole", whole)):
        nb = new_notebook(cells=[new_code_cell("print('a\\n')", id="c")])
        nb.cells[0].outputs = [*outputs_, out("stream", name="stderr", text="w\n")]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        texts.append(outputs._without_volatile(tmp_path / f"{name}.ipynb"))
    assert texts[0] == texts[1]
    assert len(nbformat.reads(texts[0], as_version=4).cells[0].outputs) == 2  # stdout, stderr


@pytest.mark.parametrize("fails", [False, True], ids=["completes", "fails"])
def test_store_outputs_restores_the_environment(tmp_path, monkeypatch, fails):
    monkeypatch.setenv(RUN_DIR_ENV, "runs/mine")  # one variable set, the other absent
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    nb = write_notebook(
        tmp_path / "00_env.ipynb",
        "seed = 0",
        f"import os; print(os.environ[{RUN_DIR_ENV!r}], os.environ['MLFLOW_TRACKING_URI'])",
        "1 / 0" if fails else "done = True",
    )
    if fails:
        with pytest.raises(NotebookFailure):
            outputs.store_outputs(notebooks=[nb], progress=False)
    else:
        assert outputs.store_outputs(notebooks=[nb], progress=False) == [nb]
        printed = outputs_text(nbformat.read(nb, as_version=4))
        assert "workbench-notebooks-" in printed and "sqlite:///" in printed  # the throwaway ones
    assert os.environ[RUN_DIR_ENV] == "runs/mine"
    assert "MLFLOW_TRACKING_URI" not in os.environ
