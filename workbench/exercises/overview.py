"""Notebook 00 exercises: the order of the stages, where leakage is caught, which output to reuse.

The reference solutions come from `workbench.stages` (the stages, the data stage's steps, the
amalgamation's representations), `workbench.data.analyze` (the step that finds leakage) and
`workbench.design.NAMED_OUTPUTS` (the tensors behind each representation).
"""

from __future__ import annotations

from typing import Any

from workbench.data import analyze
from workbench.design import NAMED_OUTPUTS
from workbench.exercises.base import (
    Exercise,
    Feedback,
    expect_choice,
    expect_mapping,
    expect_sequence,
)
from workbench.stages import REPRESENTATIONS, STAGES, Stage, stage

# ---- 0.1 the five stages in order ----------------------------------------------------------

ORDER = tuple(s.key for s in sorted(STAGES, key=lambda s: s.number))
_STAGE_ALIASES = {
    **{s.title: s.key for s in STAGES},
    **{s.notebook: s.key for s in STAGES},
    **{s.module: s.key for s in STAGES},
    "identification": "identify",
    "model design": "design",
    "prepare": "data",
    "data preparation": "data",
    "training": "train",
    "deployment": "deploy",
}


def _stage_key(item: Any, position: int) -> str:
    if isinstance(item, Stage):
        return item.key
    return expect_choice(
        item, ORDER, what=f"a stage name at position {position}", aliases=_STAGE_ALIASES
    )


def _check_order(answer: Any) -> Feedback:
    given = expect_sequence(answer, len(ORDER), what="the five stages in order")
    keys = [_stage_key(item, i) for i, item in enumerate(given, 1)]
    if keys == list(ORDER):
        return Feedback.right(
            " -> ".join(stage(k).title for k in ORDER) + ". Each stage hands the next one its "
            "result: the problem card, the model spec, the data version, the trained model."
        )
    hint = (
        "Follow the hand-overs: what does each stage need that an earlier one produced? "
        "Training needs a model and data; deployment needs a trained model."
    )
    repeated = sorted({k for k in keys if keys.count(k) > 1}, key=ORDER.index)
    missing = [k for k in ORDER if k not in keys]
    if missing:
        return Feedback.wrong(
            f"You named {repeated} more than once and left out {missing}.",
            hint="Each of the five stages appears exactly once. " + hint,
        )
    pos = {k: i for i, k in enumerate(keys)}
    problems = []
    if pos["identify"] != 0:
        problems.append(
            "Identifying the problem comes first: the problem card (input shape, head, "
            "baseline) is what every later stage starts from."
        )
    if pos["data"] < pos["design"]:
        problems.append(
            "You prepare the data before designing the model. Both start from the problem card "
            "and neither needs the other; this pipeline designs first (stage 2) so the model's "
            "input is settled when the data is prepared for it (stage 3)."
        )
    if pos["train"] < max(pos["design"], pos["data"]):
        problems.append("Training needs a model design and prepared data: it comes after both.")
    if pos["deploy"] != len(ORDER) - 1:
        problems.append("Only a trained model can be deployed: deployment comes last.")
    right = [f"{stage(k).title} at {i + 1}" for i, k in enumerate(keys) if k == ORDER[i]]
    return Feedback.wrong(
        "\n".join(problems), right=", ".join(right) + "." if right else "", hint=hint
    )


STAGE_ORDER = Exercise(
    id="0.1",
    title="the five stages in order",
    prompt="Put the pipeline's five stages in order: "
    + ", ".join(repr(k) for k in sorted(ORDER))
    + ".",
    expects="a list of 5 stage names (keys such as 'data' or titles such as 'Prepare the data')",
    solution=list(ORDER),
    checker=_check_order,
)

# ---- 0.2 the step that catches leakage -----------------------------------------------------

STEPS = stage("data").steps
ANALYSIS_STEP = analyze.__module__.rsplit(".", 1)[-1]  # the step whose module defines analyze
_STEP_ALIASES = {
    "analyze": "analysis",
    "analyse": "analysis",
    "loading": "extraction",
    "load": "extraction",
    "split": "transformation",
    "splitting": "transformation",
    "scaling": "transformation",
    "versioning": "management",
    "feeding": "serving",
    "feed": "serving",
}
_WRONG_STEP = {
    "extraction": "Extraction loads the source into arrays (load_source); at that point no "
    "sample belongs to a split yet.",
    "transformation": "Transformation makes the split (stratified_split) and scales the data, but "
    "it never compares the samples' contents: a copy of a training image lands in test unnoticed.",
    "management": "Management saves the prepared data as a version: its content hash identifies "
    "the whole data set, not identical samples inside it.",
    "serving": "Serving feeds batches to the model: by then the split is fixed, and a test score "
    "inflated by leaked samples is already on its way.",
}


def _check_step(answer: Any) -> Feedback:
    step = expect_choice(answer, STEPS, what="a step of the data stage", aliases=_STEP_ALIASES)
    if step == ANALYSIS_STEP:
        return Feedback.right(
            f"{step}: analyze(x, y, splits=...) hashes every sample and counts the samples of a "
            "later split that also appear in an earlier one (report.leakage, e.g. 'train/test'), "
            "before a model ever sees the data."
        )
    return Feedback.wrong(
        _WRONG_STEP[step],
        hint="Which step looks at what is in the data before anything is done with it?",
    )


LEAKAGE_STEP = Exercise(
    id="0.2",
    title="where leakage is caught",
    prompt="Some test images are exact copies of training images, so the test score overstates "
    "what the model learned. Which step of the data stage ("
    + ", ".join(STEPS)
    + ") finds these duplicates shared by train and test?",
    expects=f"one step name from {list(STEPS)}",
    solution=ANALYSIS_STEP,
    checker=_check_step,
)

# ---- 0.3 which representation a downstream task reuses -------------------------------------

REPRESENTATION_NAMES = tuple(name for name, _ in REPRESENTATIONS)
# encoding, embedding, logits, probabilities: the model's named tensors, in figure 3's order
_REPRESENTATION_ALIASES = {
    **dict(zip(NAMED_OUTPUTS, REPRESENTATION_NAMES, strict=False)),
    "high-dimensional": REPRESENTATION_NAMES[0],
    "low-dimensional": REPRESENTATION_NAMES[1],
    "pre-activation": REPRESENTATION_NAMES[2],
    "post-activation": REPRESENTATION_NAMES[3],
    "sigmoid outputs": REPRESENTATION_NAMES[3],
}
DOWNSTREAM: dict[str, tuple[str, str, str]] = {  # key -> (task, what it needs, best fit)
    "a": (
        "Find the visually most similar digits to a query image, fast, among a million stored "
        "images (nearest neighbours).",
        "short vectors whose distances mean visual similarity",
        REPRESENTATION_NAMES[1],
    ),
    "b": (
        "Report calibrated, independent yes/no attributes (even, prime, ...) of a digit.",
        "one number in [0, 1] per attribute that does not depend on the others",
        REPRESENTATION_NAMES[3],
    ),
    "c": (
        "Combine this model's class scores with another model's scores before the softmax.",
        "scores that can be added up before a single softmax",
        REPRESENTATION_NAMES[2],
    ),
}
_LIMIT = {  # representation -> why it does not suit the other tasks
    REPRESENTATION_NAMES[0]: "the encoding is the largest vector: slow to compare, and most of "
    "its detail has nothing to do with the task",
    REPRESENTATION_NAMES[1]: "the embedding is a feature vector, neither class scores nor "
    "probabilities",
    REPRESENTATION_NAMES[2]: "logits are unbounded scores, not probabilities, with only one "
    "number per class",
    REPRESENTATION_NAMES[3]: "the probabilities are already squashed into [0, 1], one number per "
    "label; adding them across models is not adding scores",
}


def _check_representations(answer: Any) -> Feedback:
    given = expect_mapping(answer, DOWNSTREAM, what="a representation per task")
    wrong = {}
    for key, value in given.items():
        choice = expect_choice(
            value,
            REPRESENTATION_NAMES,
            what=f"the representation of task {key!r}",
            aliases=_REPRESENTATION_ALIASES,
        )
        _, need, best = DOWNSTREAM[key]
        if choice != best:
            wrong[key] = f"not {choice!r}: {_LIMIT[choice]}. The task needs {need}."
    if not wrong:
        return Feedback.right(
            "All right: "
            + "; ".join(f"({k}) {best} gives {need}" for k, (_, need, best) in DOWNSTREAM.items())
            + ". One trained model serves all of them (the amalgamation)."
        )
    right = [f"({k})" for k in DOWNSTREAM if k not in wrong]
    return Feedback.wrong(
        f"{len(right)} of {len(DOWNSTREAM)} right.\n"
        + "\n".join(f"({k}) {msg}" for k, msg in wrong.items()),
        right=", ".join(right) + "." if right else "",
        hint="The closer to the input, the richer and larger the representation; the closer to "
        "the output, the more it says about the classes. Ask what the task needs: vectors to "
        "compare, scores to add, or probabilities to read.",
    )


REPRESENTATION = Exercise(
    id="0.3",
    title="which representation to reuse",
    prompt="A trained model exposes four representations: "
    + ", ".join(REPRESENTATION_NAMES)
    + ". Which one suits each downstream task best?\n"
    + "\n".join(f"({k}) {task}" for k, (task, _, _) in DOWNSTREAM.items()),
    expects="a dict {task: representation} such as {'a': 'pre-activation logits', ...}",
    solution={k: best for k, (_, _, best) in DOWNSTREAM.items()},
    checker=_check_representations,
)

EXERCISES = (STAGE_ORDER, LEAKAGE_STEP, REPRESENTATION)

NOTES = """\
- **Data first.** Students expect "get the data" to be step one. Here the problem card comes
  first and design and data both build on it; training is where they meet.
- **Leakage is found by looking, not by splitting.** A stratified split keeps class shares; it
  does not stop two identical images from landing on both sides. Only the analysis compares
  contents (hashes), so it must run on the splits, not just on the raw data.
- **Probabilities are not always the best output.** For similarity search use the embedding; for
  ensembling, add logits (averaging softmax outputs is not the same as a softmax of summed
  scores).
"""
