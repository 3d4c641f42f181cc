"""Exercises with instant, specific checks that never raise, whatever the student types.

An `Exercise` holds a prompt, a reference `solution` and a checker: a plain function from an
answer to `Feedback`. `Exercise.check` wraps the checker so that an unanswered exercise (`...` or
None) says "your turn", a wrong type says what was expected, and no answer ever ends in a
traceback: committed notebooks, student copies and papermill runs all execute. The `expect_*`
helpers turn an answer into the expected type or raise `AnswerError`, which `check` turns into
feedback.
"""

from __future__ import annotations

import dataclasses
import difflib
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench import params

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def show(value: Any) -> str:
    """A short repr of an answer for a message (long arrays and strings are cut)."""
    return _REPR.repr(value)


def _received(value: Any) -> str:
    return f"{show(value)} ({type(value).__name__})"


# ---- feedback --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feedback:
    """The result of a check: `ok` and a message that says what is right, wrong and what to try.

    Prints as one block with a ✓ (right), ✗ (not yet) or ✎ (unanswered) in front.
    """

    ok: bool
    message: str
    answered: bool = True  # False for the friendly "your turn" of an unanswered exercise
    printed: bool = field(default=False, compare=False, repr=False)  # run() already printed it

    @classmethod
    def right(cls, message: str) -> Feedback:
        """A correct answer, with why it is right (the reasoning is the lesson)."""
        return cls(True, message)

    @classmethod
    def wrong(cls, problem: str, *, hint: str, right: str = "") -> Feedback:
        """A wrong answer: what is wrong, what (if anything) is already right, a hint to the fix."""
        lines = [problem, *([f"What's right: {right}"] if right else []), f"Hint: {hint}"]
        return cls(False, "\n".join(lines))

    @classmethod
    def tally(cls, keys: Sequence[str], wrong: Mapping[str, str], *, hint: str) -> Feedback:
        """A multi-part answer with wrong parts: how many are right, one line per wrong part
        (after its key), the right parts named, and a hint."""
        right = [f"({k})" for k in keys if k not in wrong]
        lines = "\n".join(f"({k}) {message}" for k, message in wrong.items())
        return cls.wrong(
            f"{len(right)} of {len(keys)} right.\n{lines}",
            right=", ".join(right) + "." if right else "",
            hint=hint,
        )

    @classmethod
    def your_turn(cls, exercise: Any, how: str) -> Feedback:
        """The friendly reply to an unanswered exercise: its prompt and how to answer."""
        return cls(
            False,
            f"Your turn — exercise {exercise.id}, {exercise.title}.\n{exercise.prompt}\n{how}",
            answered=False,
        )

    @property
    def symbol(self) -> str:
        return "✓" if self.ok else ("✗" if self.answered else "✎")

    def __str__(self) -> str:
        return f"{self.symbol} " + self.message.replace("\n", "\n  ")

    __repr__ = __str__

    def _ipython_display_(self) -> None:
        # A cell ending with run(...) shows its feedback once: run() printed it already.
        if not self.printed:
            print(self)


def _unanswered(answer: Any) -> bool:
    """`...` (the cell as handed out) or None: nothing to check yet."""
    return answer is ... or answer is None


class AnswerError(Exception):
    """An answer of the wrong type or form; `Exercise.check` turns it into Feedback."""


# ---- the exercise ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    """One short exercise: a prompt, the reference solution and an instant checker.

    `checker(answer) -> Feedback` only sees real answers (not `...`/None); it may raise
    `AnswerError` (usually through the `expect_*` helpers) for an answer of the wrong form.
    """

    id: str  # "<stage number>.<n>", e.g. "1.2"
    title: str  # a few words, shown with the prompt
    prompt: str  # the task, as the student reads it
    expects: str  # the form of an answer, e.g. "a number between 0 and 1"
    solution: Any  # the reference answer; `checker(solution).ok` must be True
    checker: Callable[[Any], Feedback] = field(repr=False)

    def check(self, answer: Any) -> Feedback:
        """Check `answer` and say why; never raises, whatever `answer` is."""
        if _unanswered(answer):
            return Feedback.your_turn(self, f"Answer with {self.expects}.")
        try:
            feedback = self.checker(answer)
        except AnswerError as e:
            return Feedback(False, str(e))
        except Exception as e:  # the promise to the student: a check never ends in a traceback
            return Feedback(
                False,
                f"Could not check the answer {_received(answer)}: {type(e).__name__}: {e}\n"
                f"Expected {self.expects}.",
            )
        if not isinstance(feedback, Feedback):
            return Feedback(
                False, f"Exercise {self.id}: its checker returned {_received(feedback)}"
            )
        return feedback

    def __str__(self) -> str:
        return f"Exercise {self.id} · {self.title}\n{self.prompt}\nAnswer with {self.expects}."

    def _repr_markdown_(self) -> str:
        return (
            f"**Exercise {self.id} · {self.title}**\n\n{self.prompt}\n\nAnswer with {self.expects}."
        )


@dataclass(frozen=True)
class Experiment:
    """Predict, run, compare: the student writes a prediction, the cell runs a short experiment
    (a training, a recount, a re-split), and the check compares the two.

    A prediction within `tolerance` of what the experiment gave is right. Either way the
    feedback shows both numbers and `why` (the reasoning is the lesson). The check itself is
    instant: the experiment runs in the student's cell and hands its result in as `observed`.
    """

    id: str  # "<stage number>.<n>", e.g. "4.4"
    title: str  # a few words, shown with the prompt
    prompt: str  # what to predict, and what the cell will change and run
    expects: str  # the form of a prediction, e.g. "a validation accuracy between 0 and 1"
    tolerance: float  # |prediction - observed| <= tolerance counts as right
    why: str  # why the experiment comes out as it does
    solution: float  # the reference prediction (the smoke profile's result), for solutions=True
    minimum: float | None = None  # the range a prediction must lie in (checked as a number)
    maximum: float | None = None

    def check(self, answer: Any, observed: Any = None) -> Feedback:
        """Compare the prediction `answer` with the experiment's `observed` number; never raises."""
        if _unanswered(answer):
            return Feedback.your_turn(
                self, f"Predict with {self.expects}, then run the cell again."
            )
        if not params.is_number(observed):
            return Feedback(
                False,
                f"Exercise {self.id}: the experiment gave {_received(observed)}, not a number; "
                "run the experiment line of the cell again.",
            )
        try:
            predicted = expect_number(
                answer, what=self.expects, minimum=self.minimum, maximum=self.maximum
            )
        except AnswerError as e:
            return Feedback(False, str(e))
        seen = float(params.as_scalar(observed))
        off = abs(predicted - seen)
        said = f"You predicted {predicted:g}; the experiment gave {seen:.3g}"
        if off <= self.tolerance:
            return Feedback.right(f"{said} (within {self.tolerance:g}). {self.why}")
        return Feedback.wrong(
            f"{said}: off by {off:.3g}, more than the {self.tolerance:g} this exercise allows.",
            hint=f"{self.why} Predict again from that, then rerun the cell.",
        )

    def __str__(self) -> str:
        return f"Exercise {self.id} · {self.title}\n{self.prompt}\nPredict with {self.expects}."

    def _repr_markdown_(self) -> str:
        return (
            f"**Exercise {self.id} · {self.title}**\n\n{self.prompt}\n\n"
            f"Predict with {self.expects}."
        )


def run(
    exercise: Exercise | Experiment,
    answer: Any,
    *,
    observed: Any = None,
    solutions: bool = False,
) -> Feedback:
    """The one call of a notebook's exercise cell: check `answer`, print the feedback, return it.

    An `Experiment` also takes the experiment's result as `observed`, or a function that runs
    the experiment: it is called only once there is a prediction to compare (a long training
    is not run for an unanswered exercise). With `solutions=True` (instructor mode, tests) the
    reference solution replaces the answer and is shown first. Never raises for any answer.
    """
    if solutions:
        answer = exercise.solution
        print(f"Reference solution of exercise {exercise.id}: {answer!r}")
    if isinstance(exercise, Experiment):
        if callable(observed) and not _unanswered(answer):
            observed = observed()
        feedback = exercise.check(answer, observed)
    else:
        feedback = exercise.check(answer)
    print(feedback)
    return dataclasses.replace(feedback, printed=True)


@dataclass(frozen=True)
class InstructorNote:
    """Notes for the instructor (common misconceptions), shown in instructor mode only."""

    text: str

    def __repr__(self) -> str:
        return f"Instructor note:\n{self.text}"

    def _repr_markdown_(self) -> str:
        return f"**Instructor note.**\n\n{self.text}"


def instructor_note(text: str, *, solutions: bool) -> InstructorNote | None:
    """The note when `solutions` is True (it displays as the cell's result), else None."""
    return InstructorNote(text) if solutions else None


# ---- answer helpers: coerce an answer or raise AnswerError with what was expected -------------


def expect_number(
    answer: Any,
    *,
    what: str = "a number",
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """`answer` as a float (int, float or NumPy scalar; not a bool, a string or NaN)."""
    answer = params.as_scalar(answer)
    if isinstance(answer, str):
        hint = " Write the number without quotes." if _is_number_text(answer) else ""
        raise AnswerError(f"Expected {what}, got {_received(answer)}, which is text.{hint}")
    if not params.is_number(answer):
        raise AnswerError(f"Expected {what}, got {_received(answer)}.")
    if not params.within(answer, minimum, maximum):
        raise AnswerError(
            f"Expected {what} in {params.interval(minimum, maximum)}, got {show(answer)}."
        )
    return float(answer)


def _is_number_text(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def expect_int(
    answer: Any,
    *,
    what: str = "a whole number",
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """`answer` as an int (a float only when it is whole, e.g. 3.0)."""
    value = expect_number(answer, what=what, minimum=minimum, maximum=maximum)
    if not value.is_integer():
        raise AnswerError(f"Expected {what}, got {show(answer)}, which is not a whole number.")
    return int(value)


def expect_bool(answer: Any, *, what: str = "True or False") -> bool:
    """`answer` as a bool (True/False, or the text "yes"/"no")."""
    answer = params.as_scalar(answer)
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, str) and answer.strip().lower() in ("yes", "no", "true", "false"):
        return answer.strip().lower() in ("yes", "true")
    raise AnswerError(f"Expected {what}, got {_received(answer)}.")


def _norm(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def expect_choice(
    answer: Any,
    choices: Iterable[str],
    *,
    what: str = "one of the choices",
    aliases: Mapping[str, str] | None = None,
) -> str:
    """The choice `answer` names, ignoring case, spaces, '-' and '_'; `aliases` map to a choice.

    A Keras function or object (e.g. `keras.activations.sigmoid`) counts as its name.
    """
    choices = list(choices)
    if not isinstance(answer, str):
        name = getattr(answer, "__name__", None) or (
            type(answer).__name__ if type(answer).__module__.startswith("keras") else None
        )
        if not isinstance(name, str):
            raise AnswerError(
                f"Expected {what}: a name such as {choices[0]!r}, got {_received(answer)}."
            )
        answer = name
    known = {_norm(c): c for c in choices}
    known.update({_norm(a): c for a, c in (aliases or {}).items()})
    if _norm(answer) in known:
        return known[_norm(answer)]
    close = difflib.get_close_matches(_norm(answer), list(known), n=1, cutoff=0.6)
    guess = f" Did you mean {known[close[0]]!r}?" if close else ""
    raise AnswerError(f"Expected {what}, one of {choices}; got {answer!r}.{guess}")


def expect_sequence(answer: Any, length: int, *, what: str) -> tuple:
    """`answer` as a tuple of `length` items (a tuple or list; not a string)."""
    if isinstance(answer, str) or not isinstance(answer, Sequence):
        raise AnswerError(f"Expected {what}: a tuple of {length} items, got {_received(answer)}.")
    if len(answer) != length:
        raise AnswerError(
            f"Expected {what}: {length} items, got {len(answer)}: {show(tuple(answer))}."
        )
    return tuple(answer)


def expect_mapping(answer: Any, keys: Iterable[str], *, what: str) -> dict[str, Any]:
    """`answer` as a dict with exactly `keys` (missing and unknown keys are named)."""
    keys = list(keys)
    if not isinstance(answer, Mapping):
        example = "{" + ", ".join(f"{k!r}: ..." for k in keys[:2]) + ", ...}"
        raise AnswerError(f"Expected {what}: a dict like {example}, got {_received(answer)}.")
    missing = [k for k in keys if k not in answer]
    unknown = [k for k in answer if k not in keys]
    if missing or unknown:
        parts = [f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else ""]
        raise AnswerError(
            f"Expected {what} with the keys {keys}; " + " and ".join(p for p in parts if p) + "."
        )
    return {k: answer[k] for k in keys}


def expect_pair(answer: Any, keys: tuple[str, str], *, what: str) -> tuple[Any, Any]:
    """Two named parts of an answer, given as a dict with `keys` or as a (first, second) pair."""
    if isinstance(answer, Mapping):
        given = expect_mapping(answer, keys, what=what)
        return given[keys[0]], given[keys[1]]
    return expect_sequence(answer, 2, what=f"{what} as ({keys[0]}, {keys[1]})")
