"""The QA gate on real models: a small network trained on digits, a copy with noisy logits
weights (slightly worse everywhere) and a copy that never predicts '8' (a broken class), each
saved as a training run and exported. The gate promotes the better model and refuses the
others with their reasons; decide() moves the champion alias only on promote and records the
decision on the model version, in the session's tracking store.

The gate split here is 180 images of the version's test split: none of these models chose
weights or anything else on it (a notebook carves its own gate split).
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from conftest import card_for_version

from workbench.data import prepare
from workbench.deploy import qa, registry
from workbench.deploy.export import export_model, open_runner
from workbench.deploy.qa import QASpec, assess, decide, gate, load_qa_spec
from workbench.design import Group, ModelSpec, Stem, Task, preset, summarize
from workbench.errors import DataError, ParameterError
from workbench.files import atomic_write_json, read_json
from workbench.plots.production import plot_gate
from workbench.tables import format_table
from workbench.tracking import mlflow_client
from workbench.train import TrainConfig, load_trained, train

SMALL = ModelSpec(  # ~94 % on digits after 3 epochs
    name="small",
    stem=Stem(filters=(16,)),
    groups=(Group(16, 1, "conv", "pool"),),
    task=Task(pooling="flatten"),
    batch_norm=False,
)
NAME = "digits-qa"  # a model of its own in the session's tracking store
GATE = 180
LOOSE = QASpec(min_accuracy=0.5, per_class_floor=0.3)  # the noisy copy meets these targets


def _perturbed(run_dir, result, suffix: str, change) -> object:
    """A copy of the training run whose logits weights `change` altered: a real model."""
    folder = result.path.parent / f"{result.path.name}-{suffix}"
    shutil.copytree(result.path, folder)
    model = load_trained(run_dir, result.path.name)
    layer = model.get_layer("logits")
    layer.set_weights(change(*layer.get_weights()))
    model.save(folder / "model.keras")
    metrics = read_json(folder / "metrics.json")
    metrics.pop("test")  # measured on the unaltered weights
    metrics["selected"] = f"weights of {result.path.name}, {suffix}"
    atomic_write_json(folder / "metrics.json", metrics)
    return folder


def _noisy(w, b):
    return [w + np.random.default_rng(0).normal(0, 0.5 * w.std(), w.shape), b]


def _no_eights(w, b):
    return [w, b - 20 * (np.arange(len(b)) == 8)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{"trained", "noisy", "broken"}: export folders, and the version, card and gate split."""
    run_dir = tmp_path_factory.mktemp("qa-digits")
    version = prepare("digits", run_dir=run_dir)
    card = card_for_version(version)
    config = TrainConfig(epochs=3, learning_rate=1e-2, batch_size=64)
    result = train(SMALL, version, config, card=card, run_dir=run_dir, track=False, verbose=0)
    runs = {
        "trained": result.path,
        "noisy": _perturbed(run_dir, result, "noisy", _noisy),
        "broken": _perturbed(run_dir, result, "no-eights", _no_eights),
    }
    exports = {k: run_dir / "exports" / k for k in runs}
    for key, folder in runs.items():
        export_model(folder, exports[key], name=NAME, check_batch=16, repeats=1)
    x, y = version.split("test")
    return exports, version, card, x[:GATE], y[:GATE]


@pytest.fixture(scope="module")
def assessed(models):
    """Each model's assessment on the gate split (the Keras runner of its export)."""
    exports, version, card, x, y = models
    macs = summarize(SMALL, card).macs
    return {
        key: assess(open_runner(folder, "keras"), x, y, class_names=version.class_names,
                    size_bytes=(folder / "model.keras").stat().st_size, macs=macs, name=key)
        for key, folder in exports.items()
    }  # fmt: skip


def test_profile_targets_round_trip_through_yaml_and_json(tmp_path, models):
    _, _, card, _, _ = models
    smoke = QASpec.for_profile("smoke", card)
    reference = summarize(preset("compact", card), card)
    assert smoke.max_p99_ratio is None  # machine-independent: committed outputs stay put
    assert (smoke.min_accuracy, smoke.per_class_floor, smoke.min_gain) == (0.9, 0.7, 0.0)
    assert smoke.max_macs == 2 * reference.macs
    assert smoke.max_size_mb == round(8 * reference.params / 1e6 + 0.25, 2)
    assert QASpec.for_profile("full", card).max_p99_ratio == 2.0
    assert QASpec.for_profile("smoke", card, min_accuracy=0.95, min_gain=None).min_accuracy == 0.95
    assert QASpec.from_dict(smoke.to_dict()) == smoke
    text = "min_accuracy: 0.9\nper_class_floor: 0.7\nmax_macs: 3054080\nmax_size_mb: 1.04\n"
    assert load_qa_spec(text) == smoke
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(smoke.to_dict()))
    assert load_qa_spec(path) == load_qa_spec(str(path)) == smoke


@pytest.mark.parametrize(
    "text, match",
    [
        ("min_acuracy: 0.9", r"unknown field 'min_acuracy' \(did you mean 'min_accuracy'\?\)"),
        ("min_accuracy: 1.5", r"QASpec: min_accuracy must be in \[0, 1\], got 1.5"),
        ("per_class_floor: high", r"QASpec: per_class_floor must be a number, got 'high'"),
        ("max_macs: 2.5", r"QASpec: max_macs must be an integer, got 2.5"),
        ("max_p99_ratio: 0", r"QASpec: max_p99_ratio must be in \(0, inf\], got 0"),
        ("min_gain: -2", r"QASpec: min_gain must be in \[-1, 1\], got -2"),
        ("[0.9, 0.8]", r"QA spec: expected a mapping such as \{min_accuracy: 0.9\}"),
        ("min_accuracy: [0.9", r"QA spec: cannot read .* as YAML or JSON"),
        ("missing.yaml", r"Parameter 'qa_spec': expected an existing path, got 'missing.yaml'"),
    ],
)
def test_a_bad_qa_spec_names_the_field(text, match):
    with pytest.raises(ParameterError, match=match):
        load_qa_spec(text)


def test_a_better_challenger_is_promoted_with_readable_reasons(assessed):
    better, champion = assessed["trained"], assessed["noisy"]
    assert better.accuracy > champion.accuracy
    decision = gate(better, champion, QASpec(min_accuracy=0.9, per_class_floor=0.6))
    assert decision.promote and all(row["passed"] for row in decision.checks)
    assert [row["check"] for row in decision.checks] == [
        "accuracy",
        f"lowest class recall ({min(better.recall, key=better.recall.get)!r})",
        "accuracy vs champion",
    ]
    assert decision.reasons[0] == f"accuracy {better.accuracy:.3f} >= target 0.900"
    assert decision.reasons[1].startswith("every class recall >= floor 0.60 (lowest: class ")
    points = 100 * (better.accuracy - champion.accuracy)
    assert decision.reasons[2] == (
        f"gate accuracy {better.accuracy:.3f} vs champion {champion.accuracy:.3f}: "
        f"{points:+.1f} points (McNemar p={decision.p_value:.2g}), at least the required +0.0"
    )
    wins = int(np.sum(better.correct & ~champion.correct))
    losses = int(np.sum(~better.correct & champion.correct))
    assert wins > losses and 0 < decision.p_value <= 1  # reported, not part of the rule
    assert decision.headline == "PROMOTE trained (champion noisy): all 3 checks pass"
    assert format_table(decision.checks).splitlines()[0].split() == [
        "check", "rule", "challenger", "champion", "target", "passed"
    ]  # fmt: skip


def test_a_worse_challenger_and_a_broken_class_are_refused(assessed):
    trained, noisy, broken = assessed["trained"], assessed["noisy"], assessed["broken"]
    worse = gate(noisy, trained, LOOSE)
    assert not worse.promote
    assert [row["passed"] for row in worse.checks] == [True, True, False]  # targets met
    assert "short of the required +0.0" in worse.reasons[-1]
    assert worse.failures == [worse.reasons[-1]]  # what the loop prints under a rejection
    raised = gate(noisy, trained, dataclasses.replace(LOOSE, min_gain=-0.05))
    assert raised.promote and raised.failures == []  # 5 points let a slightly worse one in

    refused = gate(broken, trained, QASpec(min_accuracy=0.5, per_class_floor=0.7))
    assert not refused.promote and broken.recall["8"] == 0.0
    assert refused.checks[1]["check"] == "lowest class recall ('8')"
    assert refused.reasons[1] == "class '8' recall 0.00 below floor 0.70"
    assert refused.checks[1]["champion"] == round(min(trained.recall.values()), 4)
    assert refused.p_value < 0.01 and refused.checks[-1]["passed"] is False
    assert str(refused).splitlines()[:3] == [
        "REJECT broken (champion trained): 2 of 3 checks fail",
        f"  pass  accuracy {broken.accuracy:.3f} >= target 0.500",
        "  FAIL  class '8' recall 0.00 below floor 0.70",
    ]
    first = gate(broken, None, LOOSE)  # no champion: the targets alone decide
    assert not first.promote and first.p_value is None
    assert first.reasons[-1] == "no champion yet: the first version is judged on the targets only"


def test_size_and_multiply_add_targets(assessed):
    model = assessed["trained"]
    fits = QASpec(max_size_mb=1.0, max_macs=model.macs)
    decision = gate(model, None, fits)
    assert decision.promote
    assert decision.reasons[2] == f"model size {model.size_mb:.2f} MB <= target 1.00 MB"
    assert decision.checks[3] == {
        "check": "multiply-adds",
        "rule": "<=",
        "challenger": model.macs,
        "champion": None,
        "target": model.macs,
        "passed": True,
    }
    tight = gate(model, None, QASpec(max_size_mb=model.size_mb / 2, max_macs=model.macs - 1))
    assert not tight.promote and [row["passed"] for row in tight.checks[2:4]] == [False, False]
    assert "above target" in tight.reasons[2] and "above target" in tight.reasons[3]


def test_a_latency_target_is_a_ratio_to_the_champion_measured_in_the_same_run(models, assessed):
    exports, _, _, x, _ = models
    runners = [open_runner(exports[k], "keras") for k in ("noisy", "trained")]
    measured = qa.p99_ms(runners, {"images": x[:1]}, 40)
    assert len(measured) == 2 and all(ms > 0 for ms in measured)

    spec = QASpec(max_p99_ratio=1.5)
    champion = dataclasses.replace(assessed["noisy"], p99_ms=2.0)
    for p99, promoted in ((2.9, True), (3.1, False)):
        challenger = dataclasses.replace(assessed["trained"], p99_ms=p99)
        row = gate(challenger, champion, spec).checks[2]
        assert (row["check"], row["target"], row["passed"]) == ("p99 latency (ms)", 3.0, promoted)
    slower = dataclasses.replace(champion, p99_ms=4.0)  # the same 3.1 ms passes beside it
    decision = gate(challenger, slower, spec)
    assert decision.checks[2]["passed"] and decision.reasons[2] == (
        "p99 latency 3.100 ms = 0.78 x the champion's 4.000 ms (same run), <= target 1.50 x"
    )
    unmeasured = gate(challenger, assessed["noisy"], spec)
    assert not unmeasured.promote and "not measured for both models" in unmeasured.reasons[2]
    alone = gate(challenger, None, spec)
    assert alone.checks[2]["passed"] and "no champion to compare with" in alone.reasons[2]


def test_assess_takes_runners_models_and_named_inputs_and_checks_them(models, assessed):
    exports, version, card, x, y = models
    runner = open_runner(exports["trained"], "keras")
    facts = {"class_names": version.class_names, "size_bytes": 1, "macs": 1}
    for model, inputs in ((runner.model, x), (runner, {"images": x})):  # keras.Model, by name
        again = assess(model, inputs, y, **facts)
        assert again.accuracy == assessed["trained"].accuracy
        assert again.gate_sha256 == assessed["trained"].gate_sha256
    keep = y != 3
    partial = gate(assess(runner, x[keep], y[keep], **facts), None, LOOSE)
    assert np.isnan(partial.challenger.recall["3"])
    assert partial.reasons[1].endswith("; classes ['3'] have no gate example")
    regression = dataclasses.replace(card, task="regression", num_outputs=1, class_names=())
    with pytest.raises(ParameterError, match=r"judges classifiers .* got 'regression'"):
        QASpec.for_profile("smoke", regression)
    with pytest.raises(DataError, match=r"3 class names \['a', 'b', 'c'\] for a model with 10"):
        assess(runner, x, y, class_names=["a", "b", "c"], size_bytes=1, macs=1)
    with pytest.raises(DataError, match=r"expected class indices \(N,\)"):
        assess(runner, x, np.eye(10)[y], class_names=version.class_names, size_bytes=1, macs=1)
    other = assess(runner, x[:90], y[:90], class_names=version.class_names, size_bytes=1, macs=1)
    with pytest.raises(ParameterError, match="assessed on different gate splits"):
        gate(other, assessed["noisy"], LOOSE)


def test_decide_moves_the_alias_only_on_promote_and_tags_the_version(models, monkeypatch):
    exports, version, card, x, y = models
    tags = mlflow_client().get_model_version
    from workbench.deploy import export

    threads, open_runner = [], export.open_runner
    monkeypatch.setattr(
        export, "open_runner", lambda *a, **k: threads.append(k) or open_runner(*a, **k)
    )
    first = registry.register(exports["noisy"], alias="challenger")
    with pytest.raises(ParameterError, match=r"records no multiply-adds; pass model_spec="):
        decide(NAME, first, x, y, LOOSE)
    opened = decide(NAME, first, x, y, LOOSE, model_spec=SMALL, card=card)
    assert opened.promote and opened.champion is None
    assert registry.aliases(NAME) == {"champion": first.version}

    better = registry.register(exports["trained"])  # the challenger alias
    promoted = decide(NAME, None, x, y, LOOSE, model_spec=SMALL, card=card)
    assert promoted.promote and promoted.champion.name == first.ref
    assert promoted.challenger.name == better.ref
    assert registry.aliases(NAME) == {"champion": better.version}
    assert threads and all(k["threads"] == 1 for k in threads)  # as the service runs them
    assessed = qa.assess_version(better, x, y, model_spec=SMALL, card=card)
    assert assessed.accuracy == promoted.challenger.accuracy

    broken = registry.register(exports["broken"])
    refused = decide(NAME, broken.version, x, y, LOOSE, model_spec=SMALL, card=card)
    assert not refused.promote and "class '8' recall 0.00 below floor 0.30" in refused.reasons
    assert registry.aliases(NAME) == {"champion": better.version, "challenger": broken.version}
    recorded = tags(NAME, broken.version).tags
    assert recorded["qa.decision"] == "reject" and recorded["qa.champion"] == better.version
    assert json.loads(recorded["qa.reasons"]) == refused.reasons
    assert recorded["qa.gate_split"] == qa.gate_hash(x, y) and recorded["qa.gate_size"] == "180"
    assert float(recorded["qa.mcnemar_p"]) == pytest.approx(refused.p_value, rel=1e-3)
    assert QASpec.from_dict(json.loads(recorded["qa.spec"])) == LOOSE
    assert tags(NAME, better.version).tags["qa.decision"] == "promote"
    with pytest.raises(ParameterError, match=f"{better.ref} is already the champion"):
        decide(NAME, better, x, y, LOOSE, model_spec=SMALL, card=card)

    fig = plot_gate(refused)
    assert len(fig.axes) == len(refused.checks) + 1
    assert fig._suptitle.get_text() == f"QA gate: {refused.headline}"
    assert fig.axes[-1].get_title() == "Recall per class on the gate split (180 examples)"
