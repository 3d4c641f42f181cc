"""The committed notebooks' outputs (`make notebooks`): re-executed on the smoke profile, stored
without timestamps, papermill bookkeeping or random widget ids, so unchanged outputs diff clean.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from workbench.config import RUN_DIR_ENV
from workbench.files import atomic_write_text
from workbench.runner import environ, execute, list_notebooks

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


def _coalesced(outputs: list) -> list:
    """Consecutive stream outputs of one stream joined into one: how a kernel splits what a
    cell prints into messages depends on timing, what it printed does not."""
    merged: list = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (
            last is not None
            and out.get("output_type") == "stream" == last.get("output_type")
            and out.get("name") == last.get("name")
        ):
            last["text"] = last["text"] + out["text"]
        else:
            merged.append(out)
    return merged


def _without_volatile(path: Path) -> str:
    """The notebook's text without timestamps, papermill bookkeeping and random widget ids, so
    re-storing unchanged outputs leaves the committed notebook unchanged (clean diffs)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = _coalesced(cell.outputs)
    text = nbformat.writes(nb)
    for i, model_id in enumerate(_widget_ids_in_order(nb)):
        text = text.replace(model_id, f"{i + 1:032x}")
    return nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"


def store_outputs(*, notebooks: list[Path] | None = None, progress: bool = True) -> list[Path]:
    """Re-execute the notebooks as committed (smoke defaults, fixed seed) and keep their outputs.

    Runs in a temporary run directory and tracking database (the caller's environment is
    restored afterwards); a notebook is replaced only after it ran without error.
    """
    stored = []
    with tempfile.TemporaryDirectory(prefix="workbench-notebooks-") as tmp:
        throwaway = {
            RUN_DIR_ENV: str(Path(tmp) / "run"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}",
        }
        with environ(throwaway):
            for nb in notebooks if notebooks is not None else list_notebooks():
                print(f"storing outputs of {nb.name}", flush=True)
                out = Path(tmp) / nb.name
                execute(nb, out, progress=progress)
                atomic_write_text(nb, _without_volatile(out))
                stored.append(nb)
    return stored
