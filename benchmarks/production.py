"""Continuous learning: drift detection on arriving batches, and retraining warm vs from scratch.

Per seed (which draws the carve, the day-0 model's weights and the stream; the data version's
split stays seed 0): carve the train split (15 % gate, 45 % stream pool, the rest trains the
day-0 model with the profile's recipe), fit the detector on the validation split, then

- schedules of batches: 3 unshifted then 5 rotated 30° ("abrupt"), or then rotated 4°, 8°, ...
  20° ("gradual"): false alarms on the unshifted batches, and at which shifted batch the alarm
  comes (1 = the first shifted batch);
- 20 batches drawn at random from the pool, unshifted (false alarms, with the validation split
  or the model's own training rows as reference) and under each shift (detection rate), beside
  the day-0 model's test accuracy under that shift;
- for the first --retrain-seeds seeds: the 8 "abrupt" batches accumulated onto the training rows
  (a new data version) and the day-0 model retrained on it warm (same epochs, and 3 epochs) and
  from scratch; test accuracy on the unshifted and the rotated-30° test split, and seconds.

Training runs are not tracked in MLflow (track=False), to keep the time bounded.

    python benchmarks/production.py          # smoke, digits 8x8: ~3 minutes on 2 cores (5 busy)
    python benchmarks/production.py --profile full --seeds 1 --retrain-seeds 1   # ~13 minutes
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _report import report

from workbench.config import get_profile
from workbench.data import prepare
from workbench.deploy import drift, retrain, stream
from workbench.design import default_preset, preset
from workbench.train import TrainConfig, train
from workbench.upstream import card_for

GATE, POOL = 0.15, 0.45  # carve fractions of the train split
ABRUPT = [None] * 3 + [("rotate", 30)] * 5
GRADUAL = [None] * 3 + [("rotate", a) for a in (4, 8, 12, 16, 20)]
SCHEDULES = {  # name -> (plan, what it shows)
    "abrupt": (ABRUPT, "3 unshifted, then 5 rotated 30°"),
    "gradual": (GRADUAL, "3 unshifted, then rotated 4°, 8°, 12°, 16°, 20°"),
}
SHIFTS = [
    ("rotate", 5),
    ("rotate", 10),
    ("rotate", 15),
    ("rotate", 30),
    ("noise", 0.1),
    ("noise", 0.2),
    ("blur", 0.5),
    ("invert",),
]
DRAWS = 20  # random pool batches per seed, for false alarms and detection rates


def accuracy(model, transform, x_raw, y) -> float:
    probs = np.concatenate(
        [
            model.predict_on_batch(transform.apply(x_raw[i : i + 256]))
            for i in range(0, len(x_raw), 256)
        ]
    )
    return float((probs.argmax(axis=1) == y).mean())


def first_alarm(flags: list[bool], plan: list) -> int | None:
    """1-based shifted batch at which the first alarm after the shift came (None: never)."""
    start = next(i for i, step in enumerate(plan) if step is not None)
    return next((i - start + 1 for i in range(start, len(flags)) if flags[i]), None)


def _mean(values: list[float]) -> float | str:
    return round(statistics.mean(values), 2) if values else "-"


def rate(hits: int, n: int) -> str:
    """hits/n with a 95 % Wilson interval."""
    p, z = hits / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, up = 100 * max(centre - half, 0.0), 100 * min(centre + half, 1.0)
    return f"{hits}/{n} = {100 * p:.1f} % [{low:.1f}, {up:.1f}]"


@dataclass
class Tally:
    """What the seeds measured: alarms per kind of batch, delays, the day-0 model's accuracy."""

    flagged: dict[str, list[int]] = field(default_factory=dict)  # batches -> [flagged, tested]
    delays: dict[str, list] = field(default_factory=lambda: {name: [] for name in SCHEDULES})
    accuracy: dict[str, list[float]] = field(default_factory=dict)  # shift -> per seed

    def count(self, what: str, flagged: bool) -> None:
        hits, n = self.flagged.get(what, [0, 0])
        self.flagged[what] = [hits + int(flagged), n + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--retrain-seeds", type=int, default=3)
    parser.add_argument("--warm-epochs", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes per new model
    with tempfile.TemporaryDirectory(prefix="production-") as run_dir:
        run(args, Path(run_dir))


def run(args: argparse.Namespace, run_dir: Path) -> None:
    profile = get_profile(args.profile)
    card = card_for(profile.dataset)
    spec = preset(default_preset(card, profile.preset), card)
    version = prepare(profile.dataset, run_dir=run_dir, seed=0)
    tally, retrain_rows = Tally(), []
    start = time.perf_counter()
    for seed in range(args.seeds):
        carved = stream.carve(version, gate_fraction=GATE, stream_fraction=POOL, seed=seed)
        day0 = stream.save_training_version(
            run_dir, version, carved.x_train, carved.y_train, note=f"day 0, seed {seed}"
        )
        config = TrainConfig.for_profile(profile.name, card=card, seed=seed)
        champion = train(spec, day0, config, card=card, run_dir=run_dir, track=False, verbose=0)
        batch_size = len(carved.y_pool) // len(ABRUPT)
        measure_drift(tally, champion.model, version, carved, batch_size, seed)
        if seed < args.retrain_seeds:
            retrain_rows += retrain_runs(
                args, run_dir, version, carved, champion, config, card, batch_size, seed
            )
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    common = {"profile": profile.name, "seeds": args.seeds, "batch size": batch_size}
    report("production_drift", [r | common for r in drift_rows(tally)])
    print()
    delay_rows = [
        {
            "schedule": name,
            "plan": what,
            "flagged at shifted batch (per seed)": " ".join(
                str(a or "-") for a in tally.delays[name]
            ),
            "mean": _mean([a for a in tally.delays[name] if a]),
            "never flagged": sum(a is None for a in tally.delays[name]),
        }
        for name, (_, what) in SCHEDULES.items()
    ]
    report("production_delay", [r | common for r in delay_rows])
    print()
    report("production_retrain", summarise(retrain_rows))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


def measure_drift(tally: Tally, model, version, carved, batch_size: int, seed: int) -> None:
    """One seed's schedules, random unshifted and shifted draws, and shifted test accuracy."""
    transform, high = version.transform, stream.raw_range(version.transform)[1]
    detector = drift.fit_detector(model, version.split("val")[0], transform)
    own = drift.fit_detector(model, carved.x_train, transform)  # the rows the model learned
    for name, (plan, _) in SCHEDULES.items():
        arrived = stream.schedule(
            carved.x_pool, carved.y_pool, plan, batch_size=batch_size, high=high, seed=seed
        )
        flags = [detector.test(b.x).drift for b in arrived]
        for b, flag in zip(arrived, flags, strict=True):
            if not b.shifted:
                tally.count("schedule: unshifted batches", flag)
        tally.delays[name].append(first_alarm(flags, plan))
    for k in range(DRAWS):
        draw_seed = 10_000 * (seed + 1) + k
        (b,) = stream.batches(
            carved.x_pool, carved.y_pool, n_batches=1, batch_size=batch_size, seed=draw_seed
        )
        tally.count("unshifted, reference = validation split", detector.test(b.x).drift)
        tally.count("unshifted, reference = own training rows", own.test(b.x).drift)
        for step in SHIFTS:
            x, label = stream.shift(b.x, *step, high=high, seed=k)
            tally.count(label, detector.test(x).drift)
    x_test, y_test = version.split("test")
    tally.accuracy.setdefault("unshifted", []).append(accuracy(model, transform, x_test, y_test))
    for step in SHIFTS:
        x, label = stream.shift(x_test, *step, high=high, seed=seed)
        tally.accuracy.setdefault(label, []).append(accuracy(model, transform, x, y_test))


def drift_rows(tally: Tally) -> list[dict]:
    """Per kind of batch: how often it was flagged, and the day-0 model's accuracy under it."""
    base = statistics.mean(tally.accuracy["unshifted"])
    rows = []
    for what, (hits, n) in tally.flagged.items():
        row = {"batches": what, "flagged (95 % CI)": rate(hits, n)}
        shift = "unshifted" if what.startswith("unshifted") else what
        if shift in tally.accuracy:
            acc = statistics.mean(tally.accuracy[shift])
            row["day-0 test accuracy"] = f"{acc:.3f}"
            row["vs unshifted"] = f"{acc - base:+.3f}"
        rows.append(row)
    return rows


def retrain_runs(args, run_dir, version, carved, champion, config, card, batch_size, seed):
    """The day-0 model and its retrained successors on the 8 abrupt batches, scored on test."""
    high = stream.raw_range(version.transform)[1]
    arrived = stream.schedule(
        carved.x_pool, carved.y_pool, ABRUPT, batch_size=batch_size, high=high, seed=seed
    )
    grown = stream.save_training_version(
        run_dir, version, carved.x_train, carved.y_train, note=f"seed {seed}", arrived=arrived
    )
    x_test, y_test = version.split("test")
    x_rot = stream.rotate(x_test, 30, high=high)

    def row(variant, model, seconds, selected):
        return {
            "variant": variant,
            "seed": seed,
            "test accuracy": accuracy(model, version.transform, x_test, y_test),
            "rotated-30° test accuracy": accuracy(model, version.transform, x_rot, y_test),
            "seconds": seconds,
            "selected": selected,
        }

    rows = [row("day-0 model, not retrained", champion.model, 0.0, champion.selected)]
    variants = [
        (f"warm start, {config.epochs} epochs", True, config),
        (f"warm start, {args.warm_epochs} epochs", True, config.replace(epochs=args.warm_epochs)),
        (f"from scratch, {config.epochs} epochs", False, config),
    ]
    for variant, warm, cfg in variants:
        result = retrain.retrain(
            champion.path,
            grown,
            cfg,
            card=card,
            run_dir=run_dir,
            warm_start=warm,
            track=False,
            verbose=0,
        )
        rows.append(row(variant, result.model, result.seconds, result.selected))
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean (and spread over seeds) per variant."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]

        def stat(key, digits=3, mine=mine):
            values = [r[key] for r in mine]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.{digits}f} +- {sd:.{digits}f}"

        out.append(
            {
                "variant": variant,
                "seeds": len(mine),
                "test accuracy": stat("test accuracy"),
                "rotated-30° test accuracy": stat("rotated-30° test accuracy"),
                "rotated-30° per seed": " ".join(
                    f"{r['rotated-30° test accuracy']:.3f}" for r in mine
                ),
                "training seconds": stat("seconds", 1),
                "selected (first seed)": mine[0]["selected"],
            }
        )
    return out


if __name__ == "__main__":
    main()
