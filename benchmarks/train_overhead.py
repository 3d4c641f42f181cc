"""What `workbench.train` costs on top of a bare `model.fit` (target: at most 1.2x).

The same model (compact_bn, same seed) and data (mnist5k, transformed once to arrays) for a few
epochs: bare `fit` on NumPy arrays with validation, then `train` without and with MLflow
tracking (both include the feed, checkpoints, backup, test evaluation and saving the model).

    python benchmarks/train_overhead.py [--epochs 5] [--dataset mnist5k]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _report import report

from workbench.config import load_keras, seed_everything
from workbench.data import prepare
from workbench.design import build, preset
from workbench.train import TrainConfig, train
from workbench.upstream import card_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dataset", default="mnist5k")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="train-overhead-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    keras = load_keras()
    card = card_for(args.dataset)
    spec = preset("compact_bn", card)
    version = prepare(args.dataset, run_dir=tmp, seed=0)
    config = TrainConfig(epochs=args.epochs, batch_size=64, learning_rate=2e-3)
    arrays = {s: version.split(s) for s in ("train", "val")}
    x_train, y_train = version.transform.apply(arrays["train"][0]), arrays["train"][1]
    x_val, y_val = version.transform.apply(arrays["val"][0]), arrays["val"][1]

    def bare(epochs: int) -> float:
        seed_everything(0)
        model = build(spec, card)
        model.compile(
            optimizer=keras.optimizers.Adam(2e-3),
            loss=card.head.loss,
            metrics=list(card.head.metrics),
        )
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=64, epochs=epochs,
                  validation_data=(x_val, y_val), verbose=0)  # fmt: skip
        return time.perf_counter() - start

    def workbench(track: bool) -> float:
        start = time.perf_counter()
        train(spec, version, config, card=card, run_dir=tmp / f"track-{track}", track=track,
              verbose=0)  # fmt: skip
        return time.perf_counter() - start

    bare(1)  # warm-up: TensorFlow's one-off start-up is nobody's overhead
    base = bare(args.epochs)
    rows = [{"variant": "bare model.fit", "seconds": round(base, 2), "ratio": 1.0}]
    for track in (False, True):
        t = workbench(track)
        name = f"workbench train (tracking {'on' if track else 'off'})"
        rows.append({"variant": name, "seconds": round(t, 2), "ratio": round(t / base, 3)})
    for r in rows:
        r |= {"dataset": args.dataset, "epochs": args.epochs}
    report("train_overhead", rows)


if __name__ == "__main__":
    main()
