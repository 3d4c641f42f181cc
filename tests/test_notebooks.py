"""Papermill runs of the notebooks on the smoke profile (each executed once per session)."""

from __future__ import annotations

import configparser
import json
import re

import nbformat
import pytest
from conftest import ROOT, outputs_text, write_messy_csv

from workbench.runner import NotebookFailure, execute, list_notebooks

pytestmark = pytest.mark.notebook

CHECKED = "# NBVAL_CHECK_OUTPUT"  # nbval's marker: `pytest --nbval-lax notebooks/` reads it too
WITH_CHECKED_CELLS = [
    p.stem for p in list_notebooks(ROOT / "notebooks") if CHECKED in p.read_text(encoding="utf-8")
]


def _sanitizers() -> list[tuple[re.Pattern, str]]:
    """tests/sanitize.cfg's (regex, replacement) pairs: paths, hashes, durations."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def _checked_outputs(nb) -> dict[str, list]:
    """{source: outputs} of the cells marked CHECKED, as nbval compares them: stream text and
    every non-image result, sanitized."""
    rules = _sanitizers()

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, str):
            for pattern, replacement in rules:
                value = pattern.sub(replacement, value)
        return value

    found = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and CHECKED in cell.source:
            outs = []
            for out in cell.outputs:
                if out.output_type == "stream" and outs and outs[-1][0] == out.name:
                    outs[-1] = (out.name, outs[-1][1] + out.text)  # as `make notebooks` joins
                elif out.output_type == "stream":
                    outs.append((out.name, out.text))
                elif out.output_type == "error":
                    outs.append((out.ename, out.evalue))
                else:
                    data = {k: v for k, v in out.data.items() if not k.startswith("image/")}
                    outs.append(("data", data))
            found[cell.source] = [(kind, clean(value)) for kind, value in outs]
    return found


@pytest.mark.parametrize("name", WITH_CHECKED_CELLS)
def test_checked_cells_print_what_is_committed(executed, name):
    """The cells marked CHECKED print what the committed notebook holds (counts, shapes,
    rounded values: `make notebooks` stored them on the smoke profile with seed 0). The
    session's run answers the exercises, which no checked cell reads."""
    committed = _checked_outputs(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", 4))
    assert committed and all(committed.values()), f"{name}: a checked cell has no output"
    assert _checked_outputs(executed(name)) == committed, (
        f"{name} prints something else than its committed outputs in a {CHECKED} cell: run "
        "`make notebooks` if the change is intended"
    )


def test_every_notebook_has_kernel_metadata_and_a_parameters_cell():

    for path in list_notebooks(ROOT / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        assert nb.metadata["language_info"]["name"] == "python", path.name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        for name in ("run_dir", "profile", "seed"):
            assert f"{name} = " in tagged[0].source, (path.name, name)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{path.name} is committed with an error output"


def test_00_overview_draws_the_three_figures(executed):
    nb = executed("00_overview")
    figures = executed.run_dir / "figures"
    for name in ("fig1_discovery", "fig2_exploration", "fig3_amalgamation"):
        assert (figures / f"{name}.png").stat().st_size > 10_000, name
    text = outputs_text(nb)
    assert "Stage 3: Prepare the data" in text
    assert "keras" in text and "tested" in text


def test_01_identify_writes_the_card(executed):
    nb = executed("01_identify")
    card = json.loads((executed.run_dir / "problem" / "card.json").read_text())
    assert card["dataset"] == "digits" and card["task"] == "multiclass"
    assert card["num_outputs"] == 10 and card["input_shape"] == [8, 8, 1]
    # learned on the training split, scored on the test split (359 digits) drawn in 01
    assert card["baseline"]["value"] == pytest.approx(0.1003, abs=1e-3)
    assert card["split"] == {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}
    text = outputs_text(nb)
    assert "baseline: accuracy 0.1" in text
    assert "SpecError: ProblemCard: activation 'softmax' does not fit task 'multilabel'" in text
    assert (executed.run_dir / "figures" / "01_labels.png").is_file()


def test_02_design_writes_the_spec(executed):
    nb = executed("02_design")
    spec = json.loads((executed.run_dir / "design" / "spec.json").read_text())
    assert spec["name"] == "compact"
    text = outputs_text(nb)
    assert "Keras counts 99178 parameters; the summary said 99178" in text
    assert "logits: (None, 10)" in text and "SpecError: " in text
    assert (executed.run_dir / "figures" / "02_architecture.png").is_file()
    assert json.loads((executed.run_dir / "index.json").read_text())["design"].startswith(
        "compact-"
    )


def test_03_data_writes_a_version(executed):
    nb = executed("03_data")
    index = json.loads((executed.run_dir / "index.json").read_text())
    version = executed.run_dir / "data" / index["data"]
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["source"] == "digits" and manifest["task"] == "multiclass"
    assert len(manifest["content_sha256"]) == 64
    text = outputs_text(nb)
    assert "same inputs, same version: True" in text
    assert "serving transform == training transform: True" in text
    for name in ("03_samples", "03_values", "03_augmentation", "03_report"):
        assert (executed.run_dir / "figures" / f"{name}.png").is_file(), name


def test_04_train_trains_evaluates_and_tracks(executed):
    nb = executed("04_train")
    index = json.loads((executed.run_dir / "index.json").read_text())
    run = executed.run_dir / "train" / index["train"]
    assert (run / "model.keras").is_file() and (run / "best.keras").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.3  # 8 epochs on digits: far above the 0.10 baseline
    text = outputs_text(nb)
    assert "epochs run: 8 | test metric: accuracy" in text
    assert "beats the baseline: True" in text
    assert "run(s) in the tracking store" in text
    for name in ("04_curves", "04_confusion", "04_per_class", "04_reliability", "04_worst_errors"):
        assert (executed.run_dir / "figures" / f"{name}.png").is_file(), name
    import mlflow

    from workbench import tracking

    client = mlflow.MlflowClient(tracking.tracking_uri())
    logged = {a.path for a in client.list_artifacts((run / "mlflow_run_id").read_text(), "figures")}
    assert {"figures/curves.png", "figures/confusion.png", "figures/worst_errors.png"} <= logged


def test_05_deploy_exports_registers_and_serves(executed):
    """05 exports the trained run, registers it as champion, starts the real service on a free
    loopback port, asks it in both protocols and stops it with SIGTERM."""
    from workbench.deploy import export, registry

    nb = executed("05_deploy")
    index = json.loads((executed.run_dir / "index.json").read_text())
    folder = executed.run_dir / "deploy" / index["train"]
    export.verify_export(folder)
    assert set(export.read_export(folder)["formats"]) == {"keras", "saved_model", "onnx"}
    champion = registry.resolve(index["deploy"])
    assert "champion" in champion.aliases and champion.lineage["train_run"] == index["train"]
    text = outputs_text(nb)
    assert "KServe v2:       predicted" in text and "| same: True" in text
    assert "400 Input 'images' has shape [1, 3]" in text and "404 Model 'digitz' not found" in text
    assert "does not match the sha256 export.json records" in text
    assert "exit code after SIGTERM: 0" in text
    assert "5.1" in text and "5.3" in text  # the exercises ran (with their solutions)


def test_06_production_promotes_refuses_and_rolls_back_through_the_service(executed):
    """06 runs the loop against the real service: drift flagged only on the rotated batches,
    warm-started challengers promoted with no failed request during each swap, the shortcut
    refused with its reasons, a rollback that the registry and the service follow, and the
    lineage of every version naming its data, run and gate decision."""
    from workbench.data import load_version
    from workbench.deploy import registry

    nb = executed("06_production")
    text = outputs_text(nb)
    for batch in ("batch 1 (unshifted): no drift", "batch 2 (unshifted): no drift",
                  "batch 3 (rotated 30°): drift", "batch 4 (rotated 30°): drift"):  # fmt: skip
        assert batch in text, batch
    assert text.count("PROMOTE digits-production/") == 3, text
    assert "REJECT digits-production/4" in text and "below floor 0.70" in text
    assert re.findall(
        r"service during the swap: answers by version \{('1': \d+, )?'2': \d+\}, 0 failed", text
    )
    rollback = r"rollback to version 2 \| the service answered: \{.*'2': \d+\} \| failed: 0"
    assert re.search(rollback, text), text
    assert "exit code after SIGTERM: 0" in text and "6.1" in text and "6.3" in text
    versions = {v.version: v for v in registry.list_versions("digits-production")}
    assert registry.aliases("digits-production") == {"champion": "2", "challenger": "4"}
    for number, decision in {"1": "promote", "2": "promote", "3": "promote", "4": "reject"}.items():
        lineage = versions[number].lineage
        assert lineage["gate"]["decision"] == decision and lineage["gate"]["gate_split"]
        data = load_version(executed.run_dir, lineage["data_version"])  # the data it trained on
        assert data.manifest["content_sha256"] == lineage["data_sha256"]
        assert (executed.run_dir / "train" / lineage["train_run"] / "model.keras").is_file()
        formats = versions[number].export["formats"]  # what the service runs: ONNX
        assert "sha256" in formats["onnx"] and "skipped" in formats["saved_model"], formats
    assert "warm" in versions["2"].lineage["train_run"]
    assert data.manifest["parameters"]["derived_from"]["note"].startswith("shortcut")


def test_07_amalgamation_trains_serves_and_swaps_a_component(executed):
    """07 builds the amalgam, measures the representation table, runs every task, serves the
    pipeline (every task, an outputs list, one signature, the pair signature), swaps the
    classes component without a restart, refuses an incompatible one, and draws figure 3 from
    the model it built."""
    nb = executed("07_amalgamation")
    text = outputs_text(nb)
    for row in ("1 similarity search", "2 out-of-distribution", "3 calibration",
                "4 attribute tagging", "5 same digit", "5 sum of digits"):  # fmt: skip
        assert row in text, row
    assert "us_per_query" not in text  # no timings in smoke outputs
    assert "outputs list: {'predicted_class': [" in text and "signature 'pair': P(same" in text
    assert re.search(r"'from': '\d+', 'to': '\d+', 'result': 'swapped'", text), text
    assert "probabilities changed: True" in text and "neighbor_labels changed: False" in text
    assert "refused: task 'pair' component pair@" in text and "[-1, 16]" in text
    assert "exit code after SIGTERM: 0" in text
    config = json.loads((executed.run_dir / "amalgam" / "pipeline.json").read_text())
    assert list(config["tasks"]) == ["search", "ood", "classes", "tags", "pair"]
    assert (executed.run_dir / "figures" / "07_figure3_as_built.png").stat().st_size > 20_000


def test_07_on_a_card_that_is_not_an_image_classifier_stops_in_its_first_cell(session_tmp):
    from workbench.identify import save_card
    from workbench.upstream import card_for

    run_dir = session_tmp / "amalgam-tabular" / "run"
    save_card(card_for("sklearn:diabetes", "regression"), run_dir)
    out = session_tmp / "amalgam-tabular" / "07_amalgamation.ipynb"
    params = {"run_dir": str(run_dir), "profile": "smoke", "seed": 0}
    with pytest.raises(NotebookFailure) as e:
        execute(ROOT / "notebooks" / "07_amalgamation.ipynb", out, parameters=params,
                progress=False)  # fmt: skip
    assert e.value.ename == "ParameterError"
    assert "needs an image classification card" in e.value.evalue
    assert "got a regression card of tabular data" in e.value.evalue
    assert re.search(r"failed in cell In \[\d+\], line \d+: amalgam.check_card", str(e.value))


def test_03_on_its_own_builds_the_card_and_says_so(session_tmp):
    out = session_tmp / "alone" / "03_data.ipynb"
    params = {"run_dir": str(session_tmp / "alone" / "run"), "profile": "smoke", "seed": 0}

    execute(ROOT / "notebooks" / "03_data.ipynb", out, parameters=params, progress=False)
    text = outputs_text(nbformat.read(out, as_version=4))
    assert "No problem card in this run directory yet: identifying one with defaults" in text
    assert (session_tmp / "alone" / "run" / "problem" / "card.json").is_file()


def test_a_messy_csv_through_01_to_04(session_tmp):
    """A table as downloaded (class first, NA and empty cells, a '?', text categories, an
    identifier, quoted commas), named with target= and source_options= in 01 only: the card
    records both, 03 and 04 read them from it, the model beats the baseline."""

    root = session_tmp / "messy"
    root.mkdir()
    csv = write_messy_csv(root / "penguins.csv")
    run_dir = root / "run"
    text = ""
    for name in ("01_identify", "02_design", "03_data", "04_train"):
        params = {"run_dir": str(run_dir), "profile": "smoke", "seed": 0}
        if name == "01_identify":
            params |= {"dataset": f"csv:{csv}", "target": "species"}
            params["source_options"] = "{na_values: ['?']}"  # as -p passes it: YAML text
        if name == "04_train":
            params["epochs"] = 30  # 3 steps an epoch: one smoke epoch learns little yet
        out = root / f"{name}.ipynb"
        execute(ROOT / "notebooks" / f"{name}.ipynb", out, parameters=params, progress=False)
        text += outputs_text(nbformat.read(out, as_version=4))
    card = json.loads((run_dir / "problem" / "card.json").read_text())
    assert (card["target"], card["source_options"]) == ("species", {"na_values": ["?"]})
    assert card["input_shape"] == [12]  # 2 numeric + 2 missing indicators + 4 + 4 one-hot
    index = json.loads((run_dir / "index.json").read_text())
    manifest = json.loads((run_dir / "data" / index["data"] / "manifest.json").read_text())
    assert manifest["transform"]["output_shape"] == [12]
    assert manifest["parameters"]["target"] == "species"
    assert index["design"].startswith("tabular-") and index["train"].startswith("tabular-")
    metrics = json.loads((run_dir / "train" / index["train"] / "metrics.json").read_text())
    assert metrics["config"]["augment"] is False
    assert metrics["test"]["accuracy"] > card["baseline"]["value"] + 0.3
    assert "beats the baseline: True" in text
    assert "left out: ['id']" in text and "1 row(s) without a target 'species' dropped" in text
    for figure in ("03_samples", "03_values", "04_confusion", "04_reliability"):
        assert (run_dir / "figures" / f"{figure}.png").is_file(), figure


def test_04_on_a_regression_card(session_tmp):
    """A regression card (diabetes) handed to 04 alone: it prepares the data and the preset,
    trains, reports MAE against the median baseline; the classification-only cells pass."""

    from workbench.identify import save_card
    from workbench.upstream import card_for

    run_dir = session_tmp / "regression" / "run"
    save_card(card_for("sklearn:diabetes", "regression"), run_dir)
    out = session_tmp / "regression" / "04_train.ipynb"
    params = {"run_dir": str(run_dir), "profile": "smoke", "seed": 0, "epochs": 20}
    execute(ROOT / "notebooks" / "04_train.ipynb", out, parameters=params, progress=False)
    text = outputs_text(nbformat.read(out, as_version=4))
    assert "test metric: mae" in text and "beats the baseline: True" in text


def test_bad_parameter_fails_in_the_validation_cell(session_tmp):
    out = session_tmp / "bad" / "01_identify.ipynb"
    params = {"run_dir": str(session_tmp / "bad" / "run"), "task": "ranking"}
    with pytest.raises(NotebookFailure) as e:
        execute(ROOT / "notebooks" / "01_identify.ipynb", out, parameters=params, progress=False)
    assert e.value.ename == "ParameterError"
    assert "Parameter 'task': expected one of ['binary', 'multiclass'" in e.value.evalue
    assert "got 'ranking'" in e.value.evalue
    where = r"01_identify.ipynb failed in cell In \[3\], line \d+: task = params.check_choice"
    assert re.search(where, str(e.value))


def test_batch_sweep_of_04_reports_the_invalid_point(executed, capsys):
    from workbench.cli import main

    executed("03_data")  # upstream artifacts (card, data, spec) in the shared run directory
    nb = str(ROOT / "notebooks" / "04_train.ipynb")
    argv = ["batch", nb, "-p", "learning_rate", "0.003", "-1", "--run-dir", str(executed.run_dir)]
    assert main([*argv, "-p", "track", "False"]) == 1  # one point failed
    out, err = capsys.readouterr()
    assert "FAILED point 1 {'learning_rate': -1, 'track': False}" in err
    assert "Parameter 'learning_rate': expected a number in (0, 1], got -1" in err
    sweeps = sorted((executed.run_dir / "sweeps").iterdir())
    report = json.loads((sweeps[-1] / "results.json").read_text())
    rows = report["rows"]
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["test_accuracy"] > 0.3
    assert report["chosen_by"] == "val_accuracy" and report["winner"]["point"] == 0
    assert "winner: point 0 (learning_rate=0.003, track=False), chosen by val_accuracy" in out
    assert (sweeps[-1] / "comparison.png").is_file()
    from workbench import tracking

    logged = tracking.list_runs("workbench-sweeps")
    assert logged and logged[0]["name"] == sweeps[-1].name and logged[0]["status"] == "FAILED"
