"""Accuracy and wall time of the `full` training profile on mnist5k (compact_bn, 28 epochs).

The weights tested are the epoch selected on validation (lowest val_loss); the test split is
scored once per seed.

python benchmarks/full_profile.py            # seeds 0 1 2: mean and spread (~7 minutes on 2 cores)
python benchmarks/full_profile.py --seeds 0  # one seed (~2-4 minutes)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from _report import report

from workbench.data import prepare
from workbench.design import preset
from workbench.train import TrainConfig, train
from workbench.upstream import card_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    card = card_for("mnist5k")
    spec = preset("compact_bn", card)
    rows = []
    with tempfile.TemporaryDirectory(prefix="full-profile-") as run_dir:
        for seed in args.seeds:
            version = prepare("mnist5k", run_dir=run_dir, seed=seed)
            config = TrainConfig.for_profile("full", seed=seed)
            start = time.perf_counter()
            result = train(spec, version, config, card=card, run_dir=run_dir, track=False)
            rows.append(
                {
                    "seed": seed,
                    "epochs": result.epochs,
                    "test_accuracy": round(result.test["accuracy"], 4),
                    "selected": result.selected,  # the weights tested: best epoch by val_loss
                    "val_accuracy": round(result.metrics["validation"]["val_accuracy"], 4),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
    if len(rows) > 1:
        acc = [r["test_accuracy"] for r in rows]
        secs = [r["seconds"] for r in rows]
        rows.append(
            {
                "seed": "mean+-sd",
                "epochs": rows[0]["epochs"],
                "test_accuracy": f"{statistics.mean(acc):.4f}+-{statistics.stdev(acc):.4f}",
                "selected": "",
                "val_accuracy": "",
                "seconds": f"{statistics.mean(secs):.1f}+-{statistics.stdev(secs):.1f}",
            }
        )
    report("full_profile", rows)


if __name__ == "__main__":
    main()
