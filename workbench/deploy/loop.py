"""Continuous learning behind the QA gate (figure 2): new data arrive, drift is watched, the
champion is retrained with a warm start, the gate decides, the running service swaps.

    loop = ProductionLoop(run, card, version, spec=qa_spec, model_spec=spec2)  # recipes()
    loop.day0()                               # the first champion, judged on the targets only
    for batch in loop.batches(stream.shift_plan(2, 2)):  # batch_size: the profile's
        print(loop.arrive(batch).summary())   # drift test, accumulate, retrain on drift, gate
    loop.rollback()                           # the previous champion back, in the service too
    print(format_table(loop.table()))

Where the data go: `stream.carve` splits the base version's TRAIN split into the day-0 training
rows, the gate split and the pool the batches come from; validation and test are the base
version's (validation selects the epoch, `test_accuracy` scores the test split once, at the
end). Of every arriving batch a quarter (`holdout`) joins the gate split, so the gate and the
drift reference follow the data the service now sees, and the rest is accumulated for training;
no model ever trains on a gate row. Both models of a decision are scored on the same gate split
at that moment, and its content hash is recorded with the decision.

Trainings here are not tracked as MLflow runs (each would log its model again: ~4 s); their
lineage is in the registry, which records for every version the data version and its hash, the
training run and the gate's decision. The candidates' test split is not scored either:
`test_accuracy` scores the serving champion once, at the end.

Retraining: when a batch is flagged as drifted (`retrain="drift"`), after every batch
("always") or never. The new run is exported (model.keras and ONNX, what the service runs; no
SavedModel), registered as `challenger` and gated; a promotion moves `champion`, and the loop's
service (`service`, a `launch.start` handle; it may still be loading: the swap waits until it
is ready) is asked to swap at once while a client keeps sending requests: the step records
which versions answered and how many requests failed (0 is the contract). After a promotion
the drift detector is refitted with the new champion on the gate split (the data it is now
expected to see).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench import params
from workbench.config import Run, current, get_profile, set_current
from workbench.data.versioning import DatasetVersion
from workbench.deploy import client, qa, registry
from workbench.deploy.drift import DriftReport, fit_detector
from workbench.deploy.export import export_model, model_name, open_runner
from workbench.deploy.inference import IMAGE_INPUT
from workbench.deploy.launch import ServiceProcess
from workbench.deploy.retrain import retrain
from workbench.deploy.stream import Batch, carve, raw_range, save_training_version, schedule
from workbench.errors import ParameterError, ServingError
from workbench.train import TrainConfig, TrainResult, train

RETRAIN_POLICIES = ("drift", "always", "never")
SWAP_TIMEOUT = 60.0  # seconds for the service to report the new champion
# Labelled examples per arriving batch. A quarter joins the gate split, and the gain of a
# retrained model shows on the shifted rows there: on full, 20 rotated rows beside ~540 upright
# ones left the gain (~+1 point) inside the gate's noise, and a challenger that learned the
# rotation could lose by half a point (seen on one machine, not another).
BATCH_SIZES = {"smoke": 80, "full": 200}


def recipes(profile: str, card: Any) -> tuple[TrainConfig, TrainConfig]:
    """(day-0 recipe, warm-start recipe) of a profile. Full: stage 4's recipe, and half its
    epochs to continue from the champion's weights. Smoke: 4 epochs in steps of 16 examples
    for day 0 (the day-0 rows are a third of stage 4's, so smaller steps keep the step count)
    and 2 to continue: the notebook's loop trains five times in seconds."""
    if get_profile(profile).name == "smoke":
        day0 = TrainConfig.for_profile(profile, card=card, epochs=4, batch_size=16)
        return day0, day0.replace(epochs=2)
    day0 = TrainConfig.for_profile(profile, card=card)
    return day0, day0.replace(epochs=max(2, day0.epochs // 2))


@dataclass(frozen=True)
class LoopStep:
    """One step of the loop: what arrived, what the monitor saw, what the gate decided."""

    event: str  # "day 0", "batch 4 (rotated 30°)", "rollback"
    drift: DriftReport | None = None
    batch_accuracy: float | None = None  # the champion's, on the batch as it arrived
    data_version: str | None = None  # what a retrained challenger trained on
    train_run: str | None = None
    version: str | None = None  # the challenger registered at this step
    decision: qa.Decision | None = None
    champion: str = ""  # the champion's version after the step
    swap: dict[str, Any] | None = None  # versions that answered while the alias moved

    def summary(self) -> str:
        """What happened, in a few lines a student reads: drift, accuracy, gate, swap."""
        lines = [f"{self.event}: {self.drift.reason}" if self.drift else self.event]
        if self.batch_accuracy is not None:
            lines.append(f"    champion right on {self.batch_accuracy:.0%} of it as it arrived")
        if self.decision is not None:
            lines.append(f"    challenger v{self.version}: {self.decision.headline}")
            lines += [f"      FAIL  {reason}" for reason in self.decision.failures]
        if self.swap:
            lines.append(f"    service during the swap: answers by version "
                         f"{self.swap['answered']}, {self.swap['failed']} failed")  # fmt: skip
        return "\n".join(lines)

    def row(self) -> dict[str, Any]:
        """The step as a table row (`workbench.tables.format_table`)."""
        drift = "-" if self.drift is None else ("DRIFT" if self.drift.drift else "no drift")
        decision = (
            "-" if self.decision is None else ("promote" if self.decision.promote else "reject")
        )
        acc = "-" if self.batch_accuracy is None else round(self.batch_accuracy, 3)
        gate = "-" if self.decision is None else round(self.decision.challenger.accuracy, 3)
        return {
            "step": self.event,
            "drift": drift,
            "champion acc on batch": acc,
            "challenger": self.version or "-",
            "gate acc": gate,
            "decision": decision,
            "champion": self.champion,
        }


class ProductionLoop:
    """The state of one continuous-learning loop over a registered model `name`."""

    def __init__(
        self,
        run: Run,
        card: Any,
        version: DatasetVersion,
        *,
        name: str | None = None,
        spec: qa.QASpec,
        model_spec: Any,
        config: TrainConfig | None = None,
        gate_fraction: float = 0.15,
        stream_fraction: float = 0.5,
        holdout: float = 0.25,
        retrain: str = "drift",
        retrain_config: TrainConfig | None = None,
        service: ServiceProcess | None = None,
    ) -> None:
        self.run, self.card, self.base = run, card, version
        self.name = f"{model_name(version)}-production" if name is None else name
        day0, warm = recipes(run.profile.name, card)
        self.spec, self.model_spec = spec, model_spec
        self.config = day0 if config is None else config
        self.retrain_config = warm if retrain_config is None else retrain_config
        self.holdout = params.check_number("holdout", holdout, minimum=0.0, maximum=0.9)
        self.policy = params.check_choice("retrain", retrain, RETRAIN_POLICIES)
        self.carved = carve(
            version, gate_fraction=gate_fraction, stream_fraction=stream_fraction, seed=run.seed
        )
        self.x_gate, self.y_gate = self.carved.x_gate, self.carved.y_gate
        self.arrived: list[Batch] = []
        self.history: list[LoopStep] = []
        self.service = service
        self.detector = None
        self._champion_run: Path | None = None
        self._runners: dict[Path, Any] = {}  # export folder -> its runner
        self._current = {stage: current(run.dir, stage) for stage in ("data", "train")}

    # ---- steps -------------------------------------------------------------------------------

    def day0(self) -> LoopStep:
        """Train the first model on the day-0 rows, register it and gate it on the targets."""
        data = self._data(self.carved.x_train, self.carved.y_train, "day 0")
        result = train(self.model_spec, data, self.config, card=self.card, run_dir=self.run.dir,
                       verbose=0, test=False, track=False)  # fmt: skip
        return self._record(self._challenge(result, data, "day 0", first=True))

    def batches(self, plan: list, *, batch_size: int | None = None) -> list[Batch]:
        """The batches that arrive: one per step of `plan` (`stream.shift_plan`), drawn from
        the pool without repeats and shifted as the plan says (seeded by the run's seed).
        `batch_size` None: the profile's (`BATCH_SIZES`)."""
        if batch_size is None:
            batch_size = BATCH_SIZES[self.run.profile.name]
        high = raw_range(self.base.transform)[1]
        pool = self.carved.x_pool, self.carved.y_pool
        return schedule(*pool, plan, batch_size=batch_size, high=high, seed=self.run.seed)

    def arrive(self, batch: Batch) -> LoopStep:
        """A labelled batch arrives: test it for drift, score the champion on it, keep a
        quarter for the gate and the rest for training, then retrain as the policy says."""
        if self.detector is None:
            raise ParameterError("ProductionLoop.arrive: call day0() first (no champion yet).")
        report = self.detector.test(batch.x)
        accuracy = float(np.mean(self._predict(self._champion_path(), batch.x) == batch.y))
        cut = int(round(self.holdout * len(batch.y)))
        order = np.random.default_rng(self.run.seed + batch.index).permutation(len(batch.y))
        hold, keep = order[:cut], order[cut:]
        self.x_gate = np.concatenate([self.x_gate, batch.x[hold]])
        self.y_gate = np.concatenate([self.y_gate, batch.y[hold]])
        self.arrived.append(Batch(batch.index, batch.x[keep], batch.y[keep], batch.kind))
        event = f"batch {batch.index} ({batch.kind})"
        if self.policy == "always" or (self.policy == "drift" and report.drift):
            x0, y0 = self.carved.x_train, self.carved.y_train
            data = self._data(x0, y0, event, self.arrived)
            result = retrain(self._champion_run, data, self.retrain_config, card=self.card,
                             run_dir=self.run.dir, verbose=0, track=False, test=False)  # fmt: skip
            step = self._challenge(result, data, event, drift=report, accuracy=accuracy)
        else:
            step = LoopStep(event, report, accuracy, champion=self._champion_version())
        return self._record(step)

    def challenge_rows(self, x: np.ndarray, y: np.ndarray, event: str) -> LoopStep:
        """Train a model from scratch on exactly these rows (e.g. the last batch only, a
        shortcut) with the day-0 recipe, then register and gate it like any challenger."""
        data = self._data(x, y, event)
        result = train(self.model_spec, data, self.config, card=self.card, run_dir=self.run.dir,
                       verbose=0, test=False, track=False)  # fmt: skip
        return self._record(self._challenge(result, data, event))

    def rollback(self) -> LoopStep:
        """The champion before the current one serves again (registry and service)."""
        before = self._champion_version()
        restored = registry.rollback(self.name)
        self._champion_run = self.run.dir / "train" / restored.lineage["train_run"]
        swap = self._swap(before, restored.version) if self.service is not None else None
        step = LoopStep(f"rollback to version {restored.version}", champion=restored.version,
                        swap=swap)  # fmt: skip
        return self._record(step)

    def test_accuracy(self) -> float:
        """The champion's accuracy on the test split: the final, once-only estimate."""
        x, y = self.base.split("test")
        return float(np.mean(self._predict(self._champion_path(), x) == y))

    def table(self) -> list[dict[str, Any]]:
        return [step.row() for step in self.history]

    # ---- the pieces ----------------------------------------------------------------------------

    def _challenge(
        self,
        result: TrainResult,
        data: DatasetVersion,
        event: str,
        *,
        drift: DriftReport | None = None,
        accuracy: float | None = None,
        first: bool = False,
    ) -> LoopStep:
        export_model(result, name=self.name, repeats=1, saved_model=False)
        folder = self.run.dir / "deploy" / result.path.name
        version = registry.register(folder, name=self.name, alias="challenger")
        before = self._champion_version()
        decision = qa.decide(self.name, version, self.x_gate, self.y_gate, self.spec,
                             model_spec=self.model_spec, card=self.card, first=first)  # fmt: skip
        swap = None
        if decision.promote:
            self._champion_run = result.path
            self._refit_detector()
            if self.service is not None and before:
                swap = self._swap(before, version.version)
        return LoopStep(event, drift, accuracy, data.id, result.path.name, version.version,
                        decision, self._champion_version(), swap)  # fmt: skip

    def _data(self, x: np.ndarray, y: np.ndarray, note: str, arrived: list = ()) -> DatasetVersion:
        """A training version of these rows (and the `arrived` batches). The run directory's
        current data version and training run stay what they were: the loop's candidates are
        its own, and 04 or 05 run again afterwards use stage 3's and stage 4's."""
        return save_training_version(self.run.dir, self.base, x, y, note=note, arrived=arrived)

    def _restore_current(self) -> None:
        for stage, version in self._current.items():
            if version is not None:
                set_current(self.run.dir, stage, version)

    def _record(self, step: LoopStep) -> LoopStep:
        self._restore_current()
        self.history.append(step)
        return step

    def _refit_detector(self) -> None:
        from workbench.train import load_trained

        model = load_trained(self.run.dir, self._champion_run.name)
        self.detector = fit_detector(model, self.x_gate, self.base.transform)

    def _champion_version(self) -> str:
        return registry.aliases(self.name).get("champion", "")

    def _champion_path(self) -> Path:
        return registry.resolve(self.name).path

    def _predict(self, export_folder: Path, x: np.ndarray) -> np.ndarray:
        if export_folder not in self._runners:
            self._runners[export_folder] = open_runner(export_folder)  # ONNX where it passed
        return self._runners[export_folder].predicted_classes(x)

    def _swap(self, before: str, after: str) -> dict[str, Any]:
        """Ask the service to swap now while a client keeps sending one test digit; which
        versions answered, in order of first answer, and how many requests failed."""
        import httpx

        url = self.service.wait_ready().url  # started with wait=False, it may still load
        digit = np.asarray(self.base.split("val")[0][:1], np.float32)
        body = client.v2_body({IMAGE_INPUT: digit})
        seen: dict[str, int] = {}
        failed, stop = [], threading.Event()

        def traffic() -> None:
            with httpx.Client(base_url=url, timeout=10.0) as http:
                while not stop.is_set():
                    try:
                        r = http.post(f"/v2/models/{self.name}/infer", json=body)
                    except httpx.TransportError as e:
                        failed.append(type(e).__name__)
                        continue
                    if r.status_code == 200:
                        v = r.json()["model_version"]
                        seen[v] = seen.get(v, 0) + 1
                    else:
                        failed.append(r.status_code)

        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        try:
            with httpx.Client(base_url=url, timeout=SWAP_TIMEOUT) as http:
                http.post("/admin/reload")
                status = http.get(f"/v1/models/{self.name}/labels/champion").json()
            while after not in seen and sender.is_alive() and not failed:
                stop.wait(0.05)
            stop.wait(0.2)  # a few answers from the new version
        finally:
            stop.set()
            sender.join(10)
        served = status["model_version_status"][0]["version"]
        if served != after:
            raise ServingError(
                f"The service still serves {self.name} version {served} after the alias moved "
                f"to {after}; see its log and GET /admin/status."
            )
        return {"before": before, "after": after, "answered": dict(seen), "failed": len(failed)}
