"""Short exercises per stage, with instant checks that say what is right, wrong and what to try.

A notebook's exercise cell (tagged `exercise`) is two lines:

    answer = ...  # your answer: (activation, loss)
    exercises.run(identify.HEAD, answer, solutions=solutions)

Stage modules (`identify`, ...) each define their exercises, `EXERCISES` and instructor `NOTES`.
"""

from __future__ import annotations

import importlib

from workbench.exercises.base import (
    AnswerError,
    Exercise,
    Experiment,
    Feedback,
    InstructorNote,
    expect_bool,
    expect_choice,
    expect_int,
    expect_mapping,
    expect_number,
    expect_pair,
    expect_sequence,
    instructor_note,
    run,
)

# in pipeline order (production: figure 2's process around stage 5; amalgam: figure 3)
STAGE_MODULES = (
    "overview",
    "identify",
    "design",
    "data",
    "train",
    "deploy",
    "production",
    "amalgam",
)


def all_exercises() -> list[Exercise]:
    """Every stage's exercises, in pipeline order (for tests of the reference solutions)."""
    return [
        exercise
        for name in STAGE_MODULES
        for exercise in importlib.import_module(f"workbench.exercises.{name}").EXERCISES
    ]


__all__ = [
    "STAGE_MODULES",
    "AnswerError",
    "Exercise",
    "Experiment",
    "Feedback",
    "InstructorNote",
    "all_exercises",
    "expect_bool",
    "expect_choice",
    "expect_int",
    "expect_mapping",
    "expect_pair",
    "expect_number",
    "expect_sequence",
    "instructor_note",
    "run",
]
