"""Stage 5 exercises: the status code a service owes each client mistake, which version answers
during a hot swap, and an experiment on a client that scales the pixels the model scales itself.

The status codes are TF Serving's mapping, which the workbench's service follows for both of
its protocols; the swap rule is the service's (load and warm beside the old version, then
switch). `twice_scaled_accuracy` scores the inference model on validation images a client
has already scaled (experiment 5.3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.exercises.base import (
    Exercise,
    Experiment,
    Feedback,
    expect_choice,
    expect_int,
    expect_mapping,
)

# ---- 5.1 the status code for each mistake ----------------------------------------------------

STATUS_SCENARIOS: dict[str, tuple[str, int, str]] = {
    "a": (
        'A predict request sends both "instances" and "inputs".',
        400,
        "the request itself is invalid (TF Serving: INVALID_ARGUMENT -> 400 Bad Request); "
        "sending it again unchanged cannot help.",
    ),
    "b": (
        "A client asks /v1/models/digitz:predict, a model the service does not have.",
        404,
        "an unknown model, version or label is NOT_FOUND -> 404.",
    ),
    "c": (
        "The request queue is full: the service already holds as many requests as it accepts.",
        429,
        "RESOURCE_EXHAUSTED -> 429 Too Many Requests: the request was fine, the client should "
        "retry later (with backoff).",
    ),
    "d": (
        "The service has started but is still loading and warming the model.",
        503,
        "UNAVAILABLE -> 503: not ready yet. Liveness says the process serves HTTP; readiness "
        "says it can answer, and a load balancer sends traffic only to ready instances.",
    ),
    "e": (
        "The model call takes longer than the service's request timeout.",
        504,
        "DEADLINE_EXCEEDED -> 504 Gateway Timeout: the client gets an answer in bounded time "
        "instead of waiting forever.",
    ),
}
STATUS_CODES = (400, 404, 413, 429, 500, 503, 504)


def _check_status(answer: Any) -> Feedback:
    given = expect_mapping(answer, STATUS_SCENARIOS, what="a status code per scenario")
    wrong = {}
    for key, value in given.items():
        code = expect_int(value, what=f"the status code of scenario {key!r}")
        _, right, why = STATUS_SCENARIOS[key]
        if code == 500:
            wrong[key] = "500 means a bug in the service; the service is right here: " + why
        elif code != right:
            wrong[key] = f"is not {code}: {why}"
    if not wrong:
        return Feedback.right(
            "All 5 right. 4xx says the client can fix something (the request, the name, the "
            "timing of a retry); 5xx says the service could not answer now (503, 504). A 500 is "
            "always a bug in the service, never the client's doing."
        )
    return Feedback.tally(
        list(STATUS_SCENARIOS),
        wrong,
        hint="Ask who can fix it and when: the client by changing the request (400, 404), the "
        "client by waiting (429), or nobody right now (503 not ready, 504 too slow).",
    )


STATUS = Exercise(
    id="5.1",
    title="the status code for each mistake",
    prompt="Which HTTP status does the service answer in each case?\n"
    + "\n".join(f"({k}) {text}" for k, (text, _, _) in STATUS_SCENARIOS.items()),
    expects=f"a dict {{scenario: status code}} such as {{'a': 400, ...}}, codes from "
    f"{list(STATUS_CODES)}",
    solution={k: code for k, (_, code, _) in STATUS_SCENARIOS.items()},
    checker=_check_status,
)

# ---- 5.2 which version answers during a swap -------------------------------------------------

SWAP_ANSWERS = {
    "3": "version 3 keeps answering until version 4 is loaded and warmed, then version 4",
    "4": "version 4, from the moment the alias moves",
    "503": "neither: 503 until version 4 is ready",
}


def _check_swap(answer: Any) -> Feedback:
    choice = expect_choice(str(answer), SWAP_ANSWERS, what="one of the answers listed")
    if choice == "3":
        return Feedback.right(
            "Right: the service loads and warms the new version beside the old one, switches "
            "in one step, then unloads the old. Readiness never drops, and no request waits "
            "for a cold model or fails in between. A version that fails to load or does not "
            "match the old signature is refused, and version 3 keeps serving."
        )
    return Feedback.wrong(
        f"{SWAP_ANSWERS[choice].capitalize()} would make requests wait for a cold model or "
        "fail during the swap.",
        hint="A label serves only a version that is loaded and warmed; what serves until then?",
    )


SWAP = Exercise(
    id="5.2",
    title="which version answers during a swap",
    prompt="The alias champion points at version 3 and the service answers "
    "/v1/models/digits/labels/champion:predict with it. Version 4 is promoted: the alias "
    "moves to 4, and loading and warming version 4 takes two seconds. Which version answers "
    "the requests sent during those two seconds? Answer '3', '4' or '503'.",
    expects="one of '3', '4', '503'",
    solution="3",
    checker=_check_swap,
)

EXERCISES = (STATUS, SWAP)

# ---- 5.3 a client that scales twice (experiment) --------------------------------------------


def twice_scaled_accuracy(model: Any, version: Any, *, scaled: bool = True) -> float:
    """Validation accuracy of the inference `model` (raw pixels in, the transform inside) when
    a client sends the validation images already divided by the pixel maximum (`scaled=True`,
    so the model divides them once more), or raw as the metadata asks (`scaled=False`)."""
    x, y = version.split("val")
    x = x.astype(np.float32)
    if scaled:
        x = x / np.float32(version.transform.scale)
    outputs = model.predict_on_batch({model.inputs[0].name: x})  # one named input: "images"
    probabilities = next(iter(outputs.values())) if isinstance(outputs, dict) else outputs
    return float((np.asarray(probabilities).argmax(axis=-1) == y).mean())


SCALED_TWICE = Experiment(
    id="5.3",
    title="a client that scales twice",
    prompt="The inference model takes raw pixels (0-16 for the digits, as the metadata says) "
    "and divides them by 16 itself; sent raw, 0.98 of the validation digits come back right. "
    "A client, written from the training code, divides the pixels by 16 before sending them, "
    "so the model divides them again. The service answers every request with 200: the shape "
    "and dtype are right. Predict the share of validation digits that still come back right.",
    expects="a share of the validation digits between 0 and 1, e.g. 0.5",
    tolerance=0.1,
    why="Scaled twice, every pixel lies in [0, 1/16]: each image is nearly blank to the network, "
    "so its answers collapse onto the few classes that a faint image resembles (with seed 0 on "
    "the smoke profile, 0.28 right, almost all predicted as 5 or 7). Nothing in the request is "
    "malformed, so no status code can catch it; the contract can: the metadata states the "
    "expected input (name, dtype, shape and range), and a client built from it sends raw "
    "values. It is the training/serving skew of exercise 3.4, moved to the client.",
    solution=0.3,
    minimum=0,
    maximum=1,
)

EXPERIMENTS = (SCALED_TWICE,)

NOTES = """\
- **4xx or 5xx** (5.1): who can fix it. A 500 is a bug in the service; the workbench's service
  answers every malformed request with a 4xx that says what was expected.
- **A swap never makes a label unready** (5.2): load and warm beside the old version, switch
  atomically, unload the old; a version that fails is refused and the old keeps serving.
- **A valid request can still be wrong** (5.3): pixels scaled by the client and again by the
  model drop the validation accuracy from 0.98 to 0.28 with every request answered 200. The
  metadata (`/v1/models/{name}/metadata`, `/v2/models/{name}`) is the contract a client must
  be built from.
"""
