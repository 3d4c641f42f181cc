"""The amalgam against four separately trained single-purpose models on the same data.

Per seed, on the profile's data version (split seed 0) and preset:

- the amalgam (`build_amalgam` + `fit_amalgam`: one bottom, all heads, one summed loss);
- four separate models, each with its own full bottom and only its own loss:
  classifier (logits), attribute tagger (sigmoid attributes), bottleneck model (bottom -> low
  latent -> softmax classifier, like the amalgam's auxiliary) and feature extractor (a
  classifier whose pooled features, the high latent, serve search).

Each separate model is the amalgam's graph cut down to its outputs, built with the same seed:
every model starts from the same bottom weights as the amalgam, so the seeds pair the
comparison. Same optimizer (Adam 2e-3), batch size, epochs and shuffling as `fit_amalgam`.

Tasks, the same functions on both systems' outputs (the separate system's outputs are each
model's served one): accuracy and ECE after temperature scaling on val (logits), macro F1 with
thresholds from val (attributes), OOD AUROC of a Mahalanobis score on the low latent against
photo patches as bright as the test digits, precision@5 of test queries against the train
index (high latent). Points = metric x 100; difference = amalgam - separate, per seed, then its
mean +- standard deviation over seeds (ECE: lower is better, so > 0 means the amalgam is worse).

Cost of serving all tasks: parameters and multiply-adds per example from the spec's summary
(`amalgam_cost`: bottom plus Dense heads; training-only heads counted apart), and latency of one
`predict_on_batch` of the amalgam's serving view vs one of each separate model's (their sum),
median of many interleaved rounds after warm-up, with the CPU steal of the timing window.

    python benchmarks/amalgam.py                     # smoke, digits 8x8, 3 seeds: ~1.5 minutes
    python benchmarks/amalgam.py --profile full      # mnist5k 28x28, compact_bn: ~42 minutes
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import report

from workbench.amalgam import ood
from workbench.amalgam.assemble import encode, task_data
from workbench.amalgam.model import (
    AUXILIARY,
    amalgam_cost,
    amalgam_targets,
    build_amalgam,
    fit_amalgam,
    representations,
)
from workbench.amalgam.tasks import (
    accuracy,
    attribute_scores,
    expected_calibration_error,
    fit_temperature,
    fit_thresholds,
    precision_at_k,
    softmax,
)
from workbench.config import get_profile, load_keras, seed_everything
from workbench.data import prepare
from workbench.data.transform import digit_attributes
from workbench.design import default_preset, preset
from workbench.upstream import card_for

LOW, K, LEARNING_RATE = 8, 5, 2e-3
SEPARATE = {  # model -> (the outputs it trains, the one it serves)
    "classifier": (("logits",), "logits"),
    "attribute tagger": (("attributes",), "attributes"),
    "bottleneck model": (("low_latent", AUXILIARY), "low_latent"),
    "feature extractor": (("high_latent", "logits"), "high_latent"),
}
TASKS = {  # metric -> (the representation it reads, the separate model that serves it, +1 if
    # higher is better, -1 if lower is)
    "accuracy": ("logits", "classifier", 1),
    "ECE after temperature (lower is better)": ("logits", "classifier", -1),
    "attribute macro F1": ("attributes", "attribute tagger", 1),
    "OOD AUROC vs photo patches": ("low_latent", "bottleneck model", 1),
    f"precision@{K} (test vs train index)": ("high_latent", "feature extractor", 1),
}
TOLERANCE = 0.5  # points the amalgam may be worse than its separate counterpart
CALLS = {1: 300, 256: 40}  # timed rounds per batch size (after warm-up)
TARGETS = {"multiply-adds per example": 0.27, "latency, batch 1 (ms)": 0.35}  # the issue's


# ---- the separate models ---------------------------------------------------------------------


def separate_model(spec, card, outputs: tuple[str, ...], seed: int):
    """The amalgam's graph (same seed, same initial weights) cut down to `outputs`: its own
    full bottom and only its own heads, compiled with only their losses."""
    keras = load_keras()
    full = build_amalgam(spec, card, low_latent_units=LOW, seed=seed)
    model = keras.Model(full.input, {k: full.output[k] for k in outputs}, name="_".join(outputs))
    losses = {
        "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "attributes": keras.losses.BinaryCrossentropy(),
        AUXILIARY: keras.losses.SparseCategoricalCrossentropy(),
    }
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss={k: losses.get(k) for k in outputs},  # None: the latents carry no loss
    )
    return model


def fit_separate(model, x, targets: dict, *, epochs: int, batch_size: int, seed: int) -> None:
    """Train like `fit_amalgam`: seeded shuffling, the same batch size and epochs."""
    seed_everything(seed)
    wanted = {k: targets[k] for k in model.output}
    model.fit(x, wanted, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)


def serving_view(model, name: str):
    """`model` with only its served output `name` (training-only heads dropped)."""
    keras = load_keras()
    return keras.Model(model.input, {name: model.output[name]}, name=f"serve_{name}")


# ---- the tasks -----------------------------------------------------------------------------


def task_points(reps: dict[str, dict[str, np.ndarray]], y: dict[str, np.ndarray]) -> dict:
    """Each TASKS metric x 100 from the representations per split (train, val, test, ood)."""
    tr, va, te, out = (reps[s] for s in ("train", "val", "test", "ood"))
    t = fit_temperature(va["logits"], y["val"])
    thresholds = fit_thresholds(va["attributes"], digit_attributes(y["val"]))
    tags = attribute_scores(te["attributes"] >= thresholds, digit_attributes(y["test"]))
    maha = ood.fit_mahalanobis(tr["low_latent"], y["train"])
    values = (
        accuracy(te["logits"], y["test"]),
        expected_calibration_error(softmax(te["logits"], t), y["test"]),
        float(np.mean(tags["f1"])),
        ood.auroc(maha.score(te["low_latent"]), maha.score(out["low_latent"])),
        precision_at_k(tr["high_latent"], y["train"], te["high_latent"], y["test"], K),
    )
    return {name: 100 * v for name, v in zip(TASKS, values, strict=True)}


# ---- latency -------------------------------------------------------------------------------


def cpu_times() -> list[int]:
    """/proc/stat's aggregate cpu line: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def latency(amalgam, separate: list, x: np.ndarray, calls: int) -> dict[str, float]:
    """Median seconds of one amalgam call and of one call to each separate model (summed per
    round), rounds interleaved so both see the same machine; and the window's steal %."""
    for model in (amalgam, *separate):
        for _ in range(5):
            model.predict_on_batch(x)  # warm-up: tracing, allocations
    a, s, before = [], [], cpu_times()
    for _ in range(calls):
        start = time.perf_counter()
        amalgam.predict_on_batch(x)
        middle = time.perf_counter()
        for model in separate:
            model.predict_on_batch(x)
        a.append(middle - start)
        s.append(time.perf_counter() - middle)
    delta = [v - u for u, v in zip(before, cpu_times(), strict=True)]
    steal = 100 * delta[7] / max(sum(delta), 1)
    return {"amalgam": statistics.median(a), "separate": statistics.median(s), "steal": steal}


# ---- one seed ------------------------------------------------------------------------------


def one_seed(spec, card, version, data, *, epochs: int, batch_size: int, seed: int) -> dict:
    """Train the amalgam and the four separate models with `seed`; their task points and
    serving latencies."""
    x, y = data.x, data.y
    amalgam = build_amalgam(spec, card, low_latent_units=LOW, seed=seed)
    fit_amalgam(amalgam, version, card, epochs=epochs, batch_size=batch_size, seed=seed)
    serve_amalgam = representations(amalgam)
    targets = amalgam_targets(card, y["train"])
    served = []
    for trains, serves in SEPARATE.values():
        model = separate_model(spec, card, trains, seed)
        fit_separate(model, x["train"], targets, epochs=epochs, batch_size=batch_size, seed=seed)
        served.append(serving_view(model, serves))
    splits = ("train", "val", "test", "ood")
    reps_a = {s: encode(serve_amalgam, x[s]) for s in splits}
    reps_s = {s: {k: v for m in served for k, v in encode(m, x[s]).items()} for s in splits}
    times = {b: latency(serve_amalgam, served, x["test"][:b], CALLS[b]) for b in CALLS}
    return {"amalgam": task_points(reps_a, y), "separate": task_points(reps_s, y), "times": times}


# ---- the report ----------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):+.2f} ± {sd:.2f}"


def task_rows(results: list[dict]) -> list[dict]:
    rows = []
    for metric, (rep, model, better) in TASKS.items():
        a = [r["amalgam"][metric] for r in results]
        s = [r["separate"][metric] for r in results]
        diff = [u - v for u, v in zip(a, s, strict=True)]
        rows.append({
            "task": metric, "reads": rep, "separate model": model,
            "separate": round(statistics.mean(s), 2), "amalgam": round(statistics.mean(a), 2),
            "amalgam - separate (points)": spread(diff),
            f"worse by <= {TOLERANCE}": better * statistics.mean(diff) >= -TOLERANCE,
            "separate per seed": [round(v, 2) for v in s],
            "amalgam per seed": [round(v, 2) for v in a],
        })  # fmt: skip
    return rows


def cost_rows(spec, card, results: list[dict]) -> list[dict]:
    cost = amalgam_cost(spec, card, low_latent_units=LOW)
    head = {k: cost[k] for k in ("logits", "attributes", "low_latent", AUXILIARY)}
    served = ("logits", "attributes", "low_latent")

    def total(key: str, bottoms: int, heads) -> int:
        return bottoms * cost["bottom"][key] + sum(head[h][key] for h in heads)

    trained_separate = ("logits", "attributes", "low_latent", AUXILIARY, "logits")
    pairs = {
        "parameters (served)": (total("params", 4, served), total("params", 1, served)),
        "parameters (trained)": (
            total("params", 4, trained_separate), total("params", 1, head)),
        "multiply-adds per example": (total("macs", 4, served), total("macs", 1, served)),
    }  # fmt: skip
    rows = [{"quantity": q, "separate": s, "amalgam": a} for q, (s, a) in pairs.items()]
    for b in CALLS:
        t = [r["times"][b] for r in results]
        rows.append({
            "quantity": f"latency, batch {b} (ms)",
            "separate": round(1e3 * statistics.median(x["separate"] for x in t), 3),
            "amalgam": round(1e3 * statistics.median(x["amalgam"] for x in t), 3),
            "steal % (max)": round(max(x["steal"] for x in t), 1),
        })  # fmt: skip
    for r in rows:
        r["ratio"] = round(r["amalgam"] / r["separate"], 3)
        target = TARGETS.get(r["quantity"])
        r["target"] = f"<= {target}" if target else "-"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    args = parser.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes per new model
    prof = get_profile(args.profile)
    epochs = args.epochs or prof.epochs
    card = card_for(prof.dataset)
    spec = preset(default_preset(card, prof.preset), card)
    start, results = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="amalgam-bench-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        version = prepare(prof.dataset, run_dir=tmp, seed=0)
        for seed in range(args.seeds):
            data = task_data(version, card, seed=seed)
            results.append(one_seed(spec, card, version, data, epochs=epochs,
                                    batch_size=prof.batch_size, seed=seed))  # fmt: skip
            print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    common = {"profile": args.profile, "preset": spec.name, "seeds": args.seeds, "epochs": epochs,
              "wall seconds": round(time.perf_counter() - start)}  # fmt: skip
    report(f"amalgam_{args.profile}_tasks", [r | common for r in task_rows(results)])
    print()
    report(f"amalgam_{args.profile}_cost", [r | common for r in cost_rows(spec, card, results)])


if __name__ == "__main__":
    main()
