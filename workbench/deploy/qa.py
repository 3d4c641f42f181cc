"""Planning targets and the QA gate of the CI/CD production process (figure 2).

    spec = QASpec.for_profile("smoke", card)          # planning: the targets, as data
    decision = decide("digits", None, x_gate, y_gate, spec, model_spec=design, card=card)
    print(decision); print(format_table(decision.checks))

A challenger is scored on a held-out gate split (apart from validation, which chose its
weights, and test, scored once at the end) against the targets and against the champion on
the same examples. It is promoted only if every check passes: accuracy >= `min_accuracy`, the
recall of every class >= `per_class_floor`, model.keras <= `max_size_mb`, multiply-adds per
example <= `max_macs`, p99 latency <= `max_p99_ratio` x the champion's p99 measured in the
same run (never an absolute number: machines differ; both with one onnxruntime thread, as the
service runs them), and gate accuracy >= the champion's + `min_gain`. Without a champion the
first version is judged on the targets only.

McNemar's exact test on the examples the two models disagree on is reported, not used by the
rule: on a smoke gate split of ~180 images one image is 0.56 points, so a real gain of 1 point
gives p ~ 0.5, and requiring p < 0.05 would block nearly every retrained model. The rule
guards against regressions with the point estimate; the p-value says how much a gain means.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.config import get_profile
from workbench.deploy.registry import GATE_TAG
from workbench.errors import DataError, ParameterError

if TYPE_CHECKING:
    from workbench.deploy.registry import RegisteredVersion
    from workbench.design import ModelSpec
    from workbench.identify import ProblemCard

TASKS = ("binary", "multiclass")  # the gate judges classifiers: accuracy and per-class recall
# smoke: machine-independent targets only. full: the p99 may at most double (two copies of one
# model timed together on a busy 2-core machine differed by up to 1.9x: the tail is noisy).
PROFILE_TARGETS: dict[str, dict[str, Any]] = {
    "smoke": {"min_accuracy": 0.90, "per_class_floor": 0.70},
    "full": {"min_accuracy": 0.95, "per_class_floor": 0.85, "max_p99_ratio": 2.0},
}
BUDGET = 2  # size and MAC budget: twice the profile's reference design (its preset)
FILE_OVERHEAD_MB = 0.25  # model.keras beyond its float32 weights (config, zip)
LATENCY_CALLS = 1000  # batch-1 calls per model: p99 = about the 10th slowest
LATENCY_BLOCK = 10  # calls per turn when two models are timed together
BATCH = 512  # gate examples per runner call
# Allowed ranges of the number fields (maximum None: any number above 0).
RANGES = {"min_accuracy": (0, 1), "per_class_floor": (0, 1), "min_gain": (-1, 1)}
RANGES |= {"max_size_mb": (0, None), "max_p99_ratio": (0, None)}


@dataclass(frozen=True)
class QASpec:
    """The targets a version must meet; None = no target of that kind."""

    min_accuracy: float = 0.0
    per_class_floor: float = 0.0  # minimum recall of every class
    max_size_mb: float | None = None  # model.keras, MB = 10^6 bytes
    max_macs: int | None = None  # multiply-adds per example
    max_p99_ratio: float | None = None  # challenger p99 / champion p99, measured in one run
    min_gain: float = 0.0  # gate accuracy over the champion's (0.01 = 1 point; 0 = not worse)

    def __post_init__(self) -> None:
        for name in (f.name for f in dataclasses.fields(self)):
            value = getattr(self, name)
            if name == "max_macs" and value is not None:
                value = params.check_int(name, value, minimum=1, owner="QASpec")
            elif value is not None or not name.startswith("max_"):
                lo, hi = RANGES[name]
                bounds = {"minimum": lo, "maximum": hi, "exclusive_minimum": hi is None}
                value = params.check_number(name, value, owner="QASpec", **bounds)
            object.__setattr__(self, name, value)

    @classmethod
    def for_profile(cls, profile: str, card: ProblemCard, **changes: Any) -> QASpec:
        """The profile's targets for `card`: size and MACs within twice the profile's preset
        (as 02_design picks it); smoke has no latency target, so committed outputs do not
        depend on the machine. A change given as None keeps the profile's value."""
        from workbench.design import default_preset, preset, summarize

        prof = get_profile(profile)
        if card.task not in TASKS:
            raise ParameterError(
                f"QASpec: the QA gate judges classifiers (accuracy, per-class recall); expected "
                f"a card with a task in {list(TASKS)}, got {card.task!r}."
            )
        reference = summarize(preset(default_preset(card, prof.preset), card), card)
        size_mb = BUDGET * 4 * reference.params / 1e6 + FILE_OVERHEAD_MB
        budget = {"max_macs": BUDGET * reference.macs, "max_size_mb": round(size_mb, 2)}
        given = {k: v for k, v in changes.items() if v is not None}
        return cls.from_dict({**budget, **PROFILE_TARGETS[prof.name], **given})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> QASpec:
        """A QASpec from plain data; an unknown field is a ParameterError naming it."""
        if not isinstance(data, dict):
            raise ParameterError(
                f"QA spec: expected a mapping such as {{min_accuracy: 0.9}}, got {data!r}."
            )
        known = [f.name for f in dataclasses.fields(cls)]
        for key in (k for k in data if k not in known):
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(f"QASpec: unknown field {key!r}{hint}; expected some of {known}.")
        return cls(**data)


def load_qa_spec(text_or_path: str | Path) -> QASpec:
    """A QASpec from YAML or JSON text, or from a .yaml/.yml/.json file."""
    return QASpec.from_dict(_read_spec(text_or_path))


def plan(profile: str, card: ProblemCard, changes: Any = None) -> QASpec:
    """Planning: the profile's targets for `card` (`QASpec.for_profile`) with `changes`
    applied, a mapping or YAML/JSON text or file such as "{min_accuracy: 0.95}" (a notebook
    parameter); an unknown or out-of-range field fails here, named."""
    data = {} if changes is None else changes if isinstance(changes, dict) else _read_spec(changes)
    QASpec.from_dict({**QASpec().to_dict(), **data})  # checks the fields before planning
    return QASpec.for_profile(profile, card, **data)


def _read_spec(text_or_path: str | Path) -> Any:
    import yaml

    text = text_or_path
    if isinstance(text, Path) or str(text).strip().endswith((".yaml", ".yml", ".json")):
        text = params.check_path("qa_spec", text).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(params.check_str("qa_spec", text))
    except yaml.YAMLError as e:
        raise ParameterError(f"QA spec: cannot read {text!r} as YAML or JSON ({e}).") from None


# ---- assessment ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Assessment:
    """One model's numbers on the gate split."""

    name: str  # e.g. "digits/3"
    accuracy: float
    recall: dict[str, float]  # class name -> recall (NaN: the class has no gate example)
    size_bytes: int
    macs: int
    correct: np.ndarray  # bool per gate example: McNemar pairs them
    gate_sha256: str  # content hash of the gate split's inputs and labels
    p99_ms: float | None = None  # batch-1 calls, measured beside the model it is compared with

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def gate_hash(x_gate: Any, y_gate: Any) -> str:
    """The gate split's content hash (inputs as the model receives them, and labels), recorded
    with every decision: one input hashes alike as an array or by name."""
    from workbench.data.versioning import content_hash

    xs = x_gate if isinstance(x_gate, dict) else {"x": x_gate}
    xs = {"x": next(iter(xs.values()))} if len(xs) == 1 else xs
    arrays = {f"x.{k}": np.asarray(v) for k, v in xs.items()}
    arrays = {k: a.astype(np.float32 if a.dtype.kind in "biuf" else str) for k, a in arrays.items()}
    return content_hash({**arrays, "y": _labels(y_gate)})


def assess(
    runner_or_model: Any,
    x_gate: Any,
    y_gate: Any,
    *,
    class_names: list[str] | tuple[str, ...],
    size_bytes: int,
    macs: int,
    latency: bool | int = False,
    name: str = "model",
) -> Assessment:
    """Score a runner (`export.open_runner`) or an inference model (`inference_model`) on raw
    gate inputs (an array for its single input, or {input name: array}). `latency` (True, or
    a number of calls) adds the p99 of batch-1 calls; compare it only with one measured in the
    same run (`decide` measures both models in turn)."""
    call, inputs = _callable(runner_or_model, x_gate)
    y, k = _labels(y_gate), len(class_names)
    starts = range(0, len(y), BATCH)
    out = [call({key: v[i : i + BATCH] for key, v in inputs.items()}) for i in starts]
    key = "probabilities" if "probabilities" in out[0] else next(iter(out[0]))
    p = np.concatenate([np.asarray(o[key], np.float64) for o in out]).reshape(len(y), -1)
    if k != max(p.shape[1], 2) or y.max() >= k:
        raise DataError(
            f"assess: {k} class names {list(class_names)[:12]} for a model with {p.shape[1]} "
            f"outputs and labels up to {y.max()}; pass the version's class_names."
        )
    correct = y == ((p[:, 0] >= 0.5).astype(int) if p.shape[1] == 1 else p.argmax(axis=1))
    support, hits = np.bincount(y, minlength=k), np.bincount(y[correct], minlength=k)
    rates = np.divide(hits, support, out=np.full(k, math.nan), where=support > 0)
    recall = dict(zip(map(str, class_names), rates.tolist(), strict=True))
    p99 = None
    if latency is not False:
        calls = params.check_int(
            "latency", LATENCY_CALLS if latency is True else latency, minimum=1
        )
        p99 = p99_ms([call], {key: v[:1] for key, v in inputs.items()}, calls)[0]
    acc, sha = float(correct.mean()), gate_hash(x_gate, y_gate)
    return Assessment(name, acc, recall, int(size_bytes), int(macs), correct, sha, p99)


def p99_ms(runners: list[Any], inputs: dict[str, np.ndarray], calls: int) -> list[float]:
    """The p99 (ms) of `calls` batch-1 calls per runner, the runners taking turns every
    LATENCY_BLOCK calls, so a busy moment of the machine slows them alike."""
    from workbench.deploy.export import time_calls

    times: list[list[float]] = [[] for _ in runners]
    for runner in runners:
        time_calls(runner, inputs, 0, warmup=5)
    for _ in range(max(1, math.ceil(calls / LATENCY_BLOCK))):
        for seconds, runner in zip(times, runners, strict=True):
            seconds += time_calls(runner, inputs, LATENCY_BLOCK, warmup=0)
    return [float(np.percentile(t, 99)) * 1000 for t in times]


def assess_version(
    version: RegisteredVersion,
    x_gate: Any,
    y_gate: Any,
    *,
    model_spec: ModelSpec | None = None,
    card: ProblemCard | None = None,
    backend: str = "auto",
    latency: bool | int = False,
) -> Assessment:
    """Assess a registered version from its verified copy (`registry.resolve`): its runner
    (`export.open_runner`), the size of its model.keras, and its multiply-adds from the
    export's lineage ("macs") or, when not recorded there, from `model_spec` on `card`."""
    from workbench.deploy import registry
    from workbench.deploy.export import open_runner
    from workbench.deploy.models import ONNX_THREADS

    version = registry.resolve(version.ref)
    runner = open_runner(version.path, backend, threads=ONNX_THREADS)  # as the service runs it
    return assess(runner, x_gate, y_gate, latency=latency, **_facts(version, model_spec, card))


def _facts(version: RegisteredVersion, model_spec: Any, card: Any) -> dict[str, Any]:
    """class_names, size_bytes, macs and name of a registered version, for `assess`."""
    lineage = version.export.get("lineage") or {}
    macs = lineage.get("macs")
    if macs is None:
        if model_spec is None or card is None:
            raise ParameterError(
                f"assess_version: the export of {version.ref} records no multiply-adds; pass "
                "model_spec= and card= (the spec it was trained from) to compute them."
            )
        if lineage.get("spec") and model_spec.version != lineage["spec"]:
            raise ParameterError(
                f"assess_version: model_spec is {model_spec.version!r}, but {version.ref} was "
                f"trained from spec {lineage['spec']!r}; pass that spec."
            )
        from workbench.design import summarize

        macs = summarize(model_spec, card).macs
    size = (version.path / version.export["formats"]["keras"]["path"]).stat().st_size
    names = version.export["class_names"]
    return {"class_names": names, "size_bytes": size, "macs": macs, "name": version.ref}


def _callable(model: Any, x_gate: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """(inputs -> outputs, the gate inputs by name) of a runner or an inference model."""
    if hasattr(model, "predict_on_batch"):  # a keras.Model with named inputs
        names = list(model.input) if isinstance(model.input, dict) else []
        call = model.predict_on_batch
    else:
        call, names = model, list(getattr(model, "input_names", []))
    if isinstance(x_gate, dict):
        return call, {k: np.asarray(v) for k, v in x_gate.items()}
    if len(names) != 1:
        raise ParameterError(
            f"assess: the model takes the inputs {names}; pass x_gate as {{name: array}}."
        )
    return call, {names[0]: np.asarray(x_gate, np.float32)}


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(y)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or not len(y) or np.any(y < 0) or np.any(y != np.round(y)):
        raise DataError(
            f"QA gate: expected class indices (N,), whole numbers >= 0, got labels of shape "
            f"{y.shape} and dtype {y.dtype}."
        )
    return y.astype(np.int64)


# ---- the gate -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Decision:
    """The gate's verdict: one reason and one table row (`checks`) per check."""

    promote: bool
    reasons: list[str]
    checks: list[dict[str, Any]]  # check, rule, challenger, champion, target, passed
    challenger: Assessment
    champion: Assessment | None
    spec: QASpec
    p_value: float | None = None  # McNemar, challenger vs champion (None without a champion)

    @property
    def headline(self) -> str:
        against = f"champion {self.champion.name}" if self.champion else "no champion yet"
        n, failed = len(self.checks), sum(not row["passed"] for row in self.checks)
        if self.promote:
            return f"PROMOTE {self.challenger.name} ({against}): all {n} checks pass"
        return f"REJECT {self.challenger.name} ({against}): {failed} of {n} checks fail"

    @property
    def failures(self) -> list[str]:
        """The reasons of the checks that failed (empty for a promotion)."""
        return [r for r, row in zip(self.reasons, self.checks, strict=True) if not row["passed"]]

    def __str__(self) -> str:
        marks = ["pass" if row["passed"] else "FAIL" for row in self.checks]
        lines = [f"  {m}  {r}" for m, r in zip(marks, self.reasons, strict=True)]
        return "\n".join([self.headline, *lines])


def mcnemar_p(challenger: Assessment, champion: Assessment) -> float:
    """Exact two-sided McNemar p-value: of the examples exactly one model gets right, is the
    split between the two compatible with 50/50?"""
    from scipy.stats import binomtest

    wins = int(np.sum(challenger.correct & ~champion.correct))
    losses = int(np.sum(~challenger.correct & champion.correct))
    return float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0


def gate(challenger: Assessment, champion: Assessment | None, spec: QASpec) -> Decision:
    """Judge `challenger` against the targets of `spec` and against `champion` (None: the
    first version, judged on the targets only); both must be scored on the same gate split."""
    from workbench.design import human

    ch, cp = challenger, champion
    if cp is not None and cp.gate_sha256 != ch.gate_sha256:
        raise ParameterError(
            f"gate: {ch.name} and {cp.name} were assessed on different gate splits; assess "
            "both on the same examples."
        )
    out = [_bound("accuracy", ">=", ch.accuracy, cp and cp.accuracy, spec.min_accuracy, "{:.3f}")]
    out.append(_floor(ch, cp, spec.per_class_floor))
    if spec.max_size_mb is not None:
        theirs = cp and cp.size_mb
        out.append(
            _bound("model size (MB)", "<=", ch.size_mb, theirs, spec.max_size_mb, "{:.2f} MB")
        )
    if spec.max_macs is not None:
        out.append(_bound("multiply-adds", "<=", ch.macs, cp and cp.macs, spec.max_macs, human))
    if spec.max_p99_ratio is not None:
        out.append(_latency(ch, cp, spec.max_p99_ratio))
    p = None if cp is None else mcnemar_p(ch, cp)
    out.append(_versus(ch, cp, spec.min_gain, p))
    rows = [row for row, _ in out]
    return Decision(all(r["passed"] for r in rows), [why for _, why in out], rows, ch, cp, spec, p)


def _row(check, rule, mine, theirs, target, passed, reason) -> tuple[dict[str, Any], str]:
    """A table row (floats to 4 decimals) and its reason."""
    values = {"challenger": mine, "champion": theirs, "target": target}
    values = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    return {"check": check, "rule": rule, **values, "passed": bool(passed)}, reason


def _bound(check: str, rule: str, mine, theirs, target, show) -> tuple[dict[str, Any], str]:
    """A target check: `mine` >= or <= `target`, read as "accuracy 0.943 >= target 0.900"."""
    show = show.format if isinstance(show, str) else show
    ok = mine >= target if rule == ">=" else mine <= target
    word = rule if ok else {">=": "below", "<=": "above"}[rule]
    reason = f"{check.removesuffix(' (MB)')} {show(mine)} {word} target {show(target)}"
    return _row(check, rule, mine, theirs, target, ok, reason)


def _floor(ch: Assessment, cp: Assessment | None, floor: float) -> tuple[dict[str, Any], str]:
    scored = {c: r for c, r in ch.recall.items() if not math.isnan(r)}
    lowest = min(scored, key=scored.get)
    low = {c: r for c, r in scored.items() if r < floor}
    below = [f"class {c!r} recall {r:.2f} below floor {floor:.2f}" for c, r in low.items()]
    reason = "; ".join(below) or (
        f"every class recall >= floor {floor:.2f} (lowest: class {lowest!r} {scored[lowest]:.2f})"
    )
    if len(scored) < len(ch.recall):
        reason += f"; classes {[c for c in ch.recall if c not in scored]} have no gate example"
    theirs = None if cp is None else float(np.nanmin(list(cp.recall.values())))
    return _row(
        f"lowest class recall ({lowest!r})", ">=", scored[lowest], theirs, floor, not below, reason
    )


def _latency(ch: Assessment, cp: Assessment | None, ratio: float) -> tuple[dict[str, Any], str]:
    check = "p99 latency (ms)"
    if cp is None:
        why = "p99 latency: no champion to compare with; the ratio target applies from then on"
        return _row(check, "<=", ch.p99_ms, None, None, True, why)
    if ch.p99_ms is None or cp.p99_ms is None:
        why = "p99 latency not measured for both models in the same run (decide() measures it)"
        return _row(check, "<=", ch.p99_ms, cp.p99_ms, None, False, why)
    limit = ratio * cp.p99_ms
    ok = ch.p99_ms <= limit
    reason = (
        f"p99 latency {ch.p99_ms:.3f} ms = {ch.p99_ms / cp.p99_ms:.2f} x the champion's "
        f"{cp.p99_ms:.3f} ms (same run), {'<=' if ok else 'above'} target {ratio:.2f} x"
    )
    return _row(check, "<=", ch.p99_ms, cp.p99_ms, limit, ok, reason)


def _versus(
    ch: Assessment, cp: Assessment | None, need: float, p: float | None
) -> tuple[dict[str, Any], str]:
    check = "accuracy vs champion"
    if cp is None:
        why = "no champion yet: the first version is judged on the targets only"
        return _row(check, ">=", ch.accuracy, None, None, True, why)
    gain = ch.accuracy - cp.accuracy
    ok = gain >= need - 1e-12  # "not worse" holds for an exact tie
    reason = (
        f"gate accuracy {ch.accuracy:.3f} vs champion {cp.accuracy:.3f}: {100 * gain:+.1f} points "
        f"(McNemar p={p:.2g}), {'at least' if ok else 'short of'} the required {100 * need:+.1f}"
    )
    return _row(check, ">=", ch.accuracy, cp.accuracy, cp.accuracy + need, ok, reason)


# ---- deciding on a registered challenger --------------------------------------------------


def decide(
    name: str,
    challenger: RegisteredVersion | str | int | None,
    x_gate: Any,
    y_gate: Any,
    spec: QASpec,
    *,
    model_spec: ModelSpec | None = None,
    card: ProblemCard | None = None,
    backend: str = "auto",
    latency_calls: int = LATENCY_CALLS,
    first: bool = False,
) -> Decision:
    """Gate `challenger` (a version, its number, or None: the "challenger" alias) of `name`
    against its champion; promote moves the champion alias to it (`registry.promote`),
    reject moves nothing. `first=True` judges it as a loop's first version, on the targets
    only, whatever champion the registry holds (a notebook run again starts its loop anew).
    The decision is recorded on the challenger's model version first (tags qa.decision,
    qa.reasons, qa.gate_split, ...); the alias moves last."""
    from workbench import tracking
    from workbench.deploy import registry
    from workbench.deploy.export import open_runner
    from workbench.deploy.models import ONNX_THREADS

    if not isinstance(spec, QASpec):
        raise ParameterError(f"decide: spec must be a QASpec, got {type(spec).__name__}.")
    ref = getattr(challenger, "ref", f"{name}@challenger" if challenger is None else None)
    new = registry.resolve(ref or f"{name}/{challenger}")
    has_champion = "champion" in registry.aliases(name) and not params.check_bool("first", first)
    old = registry.resolve(name) if has_champion else None
    if old is not None and old.version == new.version:
        raise ParameterError(f"decide: {new.ref} is already the champion; register a new version.")
    versions = [v for v in (old, new) if v is not None]
    # Timed as the service runs them: with onnxruntime's default pool of 2 threads on 2 cores,
    # one model's p99 of batch-1 calls came out 3-4 ms against 0.21 ms (a scheduler tick) in
    # about half the runs, whichever model it was, and refused a challenger as 19x slower.
    runners = [open_runner(v.path, backend, threads=ONNX_THREADS) for v in versions]
    found = [
        assess(r, x_gate, y_gate, **_facts(v, model_spec, card))
        for r, v in zip(runners, versions, strict=True)
    ]
    if spec.max_p99_ratio is not None:  # both in turn, in this run: the ratio is fair
        inputs = {k: v[:1] for k, v in _callable(runners[-1], x_gate)[1].items()}
        times = p99_ms(runners, inputs, latency_calls)
        found = [dataclasses.replace(a, p99_ms=t) for a, t in zip(found, times, strict=True)]
    decision = gate(found[-1], found[0] if old else None, spec)
    tags = {
        "decision": "promote" if decision.promote else "reject",
        "reasons": json.dumps(decision.reasons),
        "gate_split": decision.challenger.gate_sha256,
        "gate_size": str(len(decision.challenger.correct)),
        "champion": old.version if old else "",
        "accuracy": f"{decision.challenger.accuracy:.4f}",
        "mcnemar_p": "" if decision.p_value is None else f"{decision.p_value:.4g}",
        "spec": json.dumps(spec.to_dict(), sort_keys=True),
    }
    client = tracking.mlflow_client()
    for key, value in tags.items():
        client.set_model_version_tag(name, new.version, GATE_TAG + key, value)
    if decision.promote:
        registry.promote(name, new.version)
    return decision
