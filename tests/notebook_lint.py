"""A linter for the teaching notebooks' conventions, used by the tests.

- opens with a markdown cell headed `## Learning objectives`: 3-5 bullets, a `**Prerequisites:**`
  line and a `**Time:**` line naming the smoke and the full profile;
- shows its place in the pipeline with a code cell calling `pipeline.where_am_i("<stage>", ...)`
  before its first exercise;
- states results in prose as `<span class="stated" data-name="NAME" data-tol="TOL">0.101</span>`
  (renders as the bare number in JupyterLab and on GitHub), and records each from code with
  `state("NAME", value)`, an output the reader does not see (display data of type
  `teaching.STATED_MIMETYPE`) that `compare_stated` reads back;
- has at least two code cells tagged `exercise`, each followed by a cell tagged `solution` (before
  the next exercise), a markdown solution collapsed in a `<details>` block; at least one exercise
  is an experiment (`exercises.run(..., observed=...)`: predict, run, compare); instructor
  notes are tagged `instructor`; its `parameters` cell sets `solutions = False`. No later cell
  uses a name defined only by exercise, solution or instructor cells, so student copies (which
  drop solutions and notes) still run;
- ends with a `## Summary` markdown cell: 3-5 bullets and a `Next:` line.

Objectives live in markdown rather than a function call: they render on a code host and in a
student copy before anything runs, and prose stays editable as prose.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.teaching import (
    EXERCISE,
    INSTRUCTOR,
    PARAMETERS,
    SOLUTION,
    STATED_MIMETYPE,
    Number,
    tags,
)

OBJECTIVES_HEADING = "## Learning objectives"
MIN_OBJECTIVES, MAX_OBJECTIVES = 3, 5
MIN_EXERCISES = 2
_HEADING = re.compile(r"^##\s+learning objectives\s*$", re.I | re.M)
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+\S")
_PREREQUISITES = re.compile(r"^\W*prerequisites\b", re.I)
_TIME = re.compile(r"^\W*time\b", re.I)
_SPAN = re.compile(r"<span\b([^>]*)>(.*?)</span>", re.S | re.I)
_ATTR = re.compile(r"([\w-]+)\s*=\s*\"([^\"]*)\"")
_SUMMARY = re.compile(r"^##\s+summary\s*$", re.I | re.M)
_NEXT = re.compile(r"^next:", re.I | re.M)
MIN_SUMMARY, MAX_SUMMARY = 3, 5
_NUMBER = re.compile(r"^-?\d+(?:\.(\d+))?$")


def _load(nb: Any) -> Any:
    """A notebook node from a node or a path."""
    if isinstance(nb, str | Path):
        import nbformat

        return nbformat.read(nb, as_version=4)
    return nb


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _cells(nb: Any) -> list[Any]:
    return list(_load(nb)["cells"])


def _parse(source: str) -> ast.Module:
    """The cell's code with IPython magics and shell lines blanked (empty if it does not parse)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return ast.Module([], [])


# ---- stated numbers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Stated:
    """One number stated in prose: its name, value, tolerance and (1-based) cell number."""

    name: str
    value: Number
    tol: float
    cell: int


def _number(text: str) -> tuple[Number, int] | None:
    """(value, decimals) of a plain decimal such as '1,797' or '0.101'; None otherwise."""
    text = re.sub(r"[,_\s\u2009\u202f]", "", text)
    match = _NUMBER.match(text)
    if not match:
        return None
    decimals = len(match.group(1) or "")
    return (float(text) if decimals else int(text)), decimals


def _prose(nb: Any) -> tuple[list[Stated], list[str]]:
    """The stated numbers of the markdown cells, and the problems of malformed ones."""
    found, problems = [], []
    for i, cell in enumerate(_cells(nb), 1):
        if cell.get("cell_type") != "markdown":
            continue
        for attrs_text, inner in _SPAN.findall(_source(cell)):
            attrs = dict(_ATTR.findall(attrs_text))
            if "stated" not in attrs.get("class", "").split():
                continue
            name, parsed = attrs.get("data-name", ""), _number(inner)
            if not name.isidentifier():
                problems.append(f'cell {i}: a stated number needs data-name="<name>", got {name!r}')
            elif parsed is None:
                problems.append(
                    f"cell {i}: stated number {name!r} must be a plain decimal like 0.101 or "
                    f"1,797, got {inner!r}"
                )
            elif "data-tol" in attrs and _number(attrs["data-tol"]) is None:
                problems.append(
                    f"cell {i}: stated number {name!r} has data-tol={attrs['data-tol']!r}; "
                    "expected a plain decimal like 0.005"
                )
            else:
                value, decimals = parsed
                tol = attrs.get("data-tol", 10.0**-decimals if decimals else 0)
                found.append(Stated(name, value, abs(float(tol)), i))
    return found, problems


def stated_in_prose(nb: Any) -> dict[str, tuple[Number, float]]:
    """`{name: (value, tolerance)}` of the numbers stated in the notebook's markdown.

    The tolerance is `data-tol`, else one unit in the last written decimal (0 for integers).
    """
    return {s.name: (s.value, s.tol) for s in _prose(nb)[0]}


def _recorded(nb: Any) -> list[tuple[str, Number, int]]:
    """(name, value, 1-based cell) of every number the executed notebook recorded with `state`."""
    found = []
    for i, cell in enumerate(_cells(nb), 1):
        for out in cell.get("outputs", []):
            stated = out.get("data", {}).get(STATED_MIMETYPE)
            if stated is not None:
                parsed = _number(stated["value"])
                found.append((stated["name"], parsed[0] if parsed else float(stated["value"]), i))
    return found


def stated_in_outputs(nb: Any) -> dict[str, Number]:
    """`{name: value}` of the numbers the executed notebook recorded with `teaching.state`."""
    return {name: value for name, value, _ in _recorded(nb)}


def compare_stated(nb: Any) -> list[str]:
    """Where prose and executed outputs disagree, with both values (empty when they agree)."""
    nb = _load(nb)
    prose, problems = _prose(nb)
    recorded = _recorded(nb)
    first: dict[str, tuple[Number, int]] = {}
    for name, value, cell in recorded:
        if name in first and first[name][0] != value:
            problems.append(
                f"{name!r} is recorded twice with different values: {first[name][0]} (cell "
                f"{first[name][1]}) and {value} (cell {cell})"
            )
        first.setdefault(name, (value, cell))
    for s in prose:
        if s.name not in first:
            problems.append(
                f"stated number {s.name!r} (prose: {s.value}, cell {s.cell}) is recorded by no "
                f"cell; add teaching.state({s.name!r}, value) where it is computed"
            )
            continue
        value, cell = first[s.name]
        if not abs(value - s.value) <= s.tol * (1 + 1e-9) + 1e-12:  # also catches NaN
            problems.append(
                f"stated number {s.name!r}: the prose says {s.value} ±{s.tol:g} (cell {s.cell}) "
                f"but the notebook computed {value} (cell {cell}); update the prose or find what "
                "changed in the code"
            )
    stated_names = {s.name for s in prose}
    for name, (value, cell) in first.items():
        if name not in stated_names:
            problems.append(
                f"{name!r} = {value} is recorded by cell {cell} but stated in no prose; add "
                f'<span class="stated" data-name="{name}">{value}</span> or drop the state() call'
            )
    return problems


# ---- the notebook's teaching structure -----------------------------------------------------


def _objectives_problems(cells: list[Any]) -> list[str]:
    first_code = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells))
    where = next(
        (
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "markdown" and _HEADING.search(_source(c))
        ),
        None,
    )
    if where is None:
        return [
            f"no learning objectives: add a markdown cell with '{OBJECTIVES_HEADING}', "
            f"{MIN_OBJECTIVES}-{MAX_OBJECTIVES} bullets, a '**Prerequisites:**' line and a "
            "'**Time:**' line (smoke and full profile) before the first code cell"
        ]
    problems = []
    if where > first_code:
        problems.append(
            f"the learning objectives (cell {where + 1}) come after the first code cell "
            f"(cell {first_code + 1}); a notebook opens with them"
        )
    source = _source(cells[where])
    lines = source[_HEADING.search(source).end() :].splitlines()
    bullets = 0
    for line in lines:
        if line.startswith("#") or _PREREQUISITES.match(line) or _TIME.match(line):
            break
        bullets += bool(_BULLET.match(line))
    if not MIN_OBJECTIVES <= bullets <= MAX_OBJECTIVES:
        problems.append(
            f"cell {where + 1}: {bullets} learning objective(s); expected "
            f"{MIN_OBJECTIVES}-{MAX_OBJECTIVES} bullets under '{OBJECTIVES_HEADING}'"
        )
    if not any(_PREREQUISITES.match(line) for line in lines):
        problems.append(f"cell {where + 1}: no '**Prerequisites:**' line under the objectives")
    time = [line for line in lines if _TIME.match(line)]
    if not time or not all(p in time[0].lower() for p in ("smoke", "full")):
        problems.append(
            f"cell {where + 1}: no '**Time:**' line naming both the smoke and the full profile"
        )
    return problems


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    """Calls of `name` or `<anything>.name` in the tree."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) == name or getattr(node.func, "attr", None) == name)
    ]


def _map_problems(cells: list[Any], stage: str | None, first_exercise: int) -> list[str]:
    maps = [
        (i, call)
        for i, c in enumerate(cells)
        if c.get("cell_type") == "code"
        for call in _calls(_parse(_source(c)), "where_am_i")
    ]
    if not maps:
        return [
            "no pipeline map: add a code cell calling pipeline.where_am_i('<stage>', "
            "run_dir=run.dir) near the top"
        ]
    i, call = maps[0]
    problems = []
    if i > first_exercise:
        problems.append(f"the pipeline map (cell {i + 1}) comes after the first exercise")
    args = call.args[:1] or [k.value for k in call.keywords if k.arg == "current"]
    named = args[0].value if args and isinstance(args[0], ast.Constant) else None
    if stage is not None and named != stage:
        problems.append(f"cell {i + 1}: the pipeline map shows {named!r}; expected {stage!r}")
    return problems


def _exercise_problems(cells: list[Any]) -> list[str]:
    exercises = [i for i, c in enumerate(cells) if EXERCISE in tags(c)]
    problems = []
    if len(exercises) < MIN_EXERCISES:
        problems.append(
            f"{len(exercises)} exercise cell(s); expected at least {MIN_EXERCISES} code cells "
            f"tagged {EXERCISE!r}"
        )
    for n, i in enumerate(exercises):
        end = exercises[n + 1] if n + 1 < len(exercises) else len(cells)
        if cells[i].get("cell_type") != "code":
            problems.append(f"cell {i + 1} is tagged {EXERCISE!r} but is not a code cell")
            continue
        if not any(SOLUTION in tags(c) for c in cells[i + 1 : end]):
            problems.append(
                f"exercise cell {i + 1} has no solution cell (tagged {SOLUTION!r}) before the "
                "next exercise"
            )
        runs = _calls(_parse(_source(cells[i])), "run")
        if not any(k.arg == "solutions" for call in runs for k in call.keywords):
            problems.append(
                f"exercise cell {i + 1} does not call exercises.run(..., solutions=solutions)"
            )
    experiments = [
        i
        for i in exercises
        for call in _calls(_parse(_source(cells[i])), "run")
        if any(k.arg == "observed" for k in call.keywords)
    ]
    if exercises and not experiments:
        problems.append(
            "no experiment exercise: one exercise cell must call exercises.run(..., "
            "observed=...) after running an experiment (predict, run, compare)"
        )
    for i, cell in enumerate(cells):
        text = _source(cell).lstrip()
        if SOLUTION in tags(cell) and cell.get("cell_type") == "markdown":
            if not text.startswith("<details") or "</details>" not in text:
                problems.append(
                    f"cell {i + 1}: the solution shows when the notebook is opened; wrap it in "
                    "<details><summary>...</summary> ... </details>"
                )
    return problems


def _summary_problems(cells: list[Any]) -> list[str]:
    """The notebook ends with a summary: 3-5 bullets and a `Next:` line."""
    prose = [c for c in cells if c.get("cell_type") == "markdown" and INSTRUCTOR not in tags(c)]
    last = _source(prose[-1]) if prose else ""
    if not _SUMMARY.search(last):
        return ["the last markdown cell is not a '## Summary' of what was learned"]
    bullets = [line for line in last.splitlines() if _BULLET.match(line.strip())]
    problems = []
    if not MIN_SUMMARY <= len(bullets) <= MAX_SUMMARY:
        problems.append(
            f"the summary has {len(bullets)} bullet(s); expected {MIN_SUMMARY}-{MAX_SUMMARY}"
        )
    if not _NEXT.search(last):
        problems.append("the summary has no 'Next:' line pointing to the next notebook")
    return problems


def _names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names a cell defines, names it reads)."""
    stored, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stored.add(node.name)
        elif isinstance(node, ast.alias):
            stored.add((node.asname or node.name).split(".")[0])
    return stored, loaded


def _dependency_problems(cells: list[Any]) -> list[str]:
    """Cells that read names defined only by exercise, solution or instructor cells."""
    code = [
        (i, tags(c), *_names(_parse(_source(c))))
        for i, c in enumerate(cells)
        if c.get("cell_type") == "code"
    ]
    ordinary = {n for _, t, s, _ in code if not t & {EXERCISE, SOLUTION, INSTRUCTOR} for n in s}
    in_exercises = {n for _, t, s, _ in code if EXERCISE in t for n in s}
    problems, teaching_defined, removed_defined = [], set(), set()
    for i, t, stored, loaded in code:
        if EXERCISE in t:
            bad = (loaded & removed_defined) - ordinary - in_exercises
            if bad:
                problems.append(
                    f"exercise cell {i + 1} uses {sorted(bad)}, defined only in solution or "
                    "instructor cells, which student copies do not have"
                )
        elif not t & {SOLUTION, INSTRUCTOR}:
            bad = (loaded & teaching_defined) - ordinary
            if bad:
                problems.append(
                    f"cell {i + 1} uses {sorted(bad)}, defined only in exercise, solution or "
                    "instructor cells; no later cell may depend on an exercise"
                )
        if t & {EXERCISE, SOLUTION, INSTRUCTOR}:
            teaching_defined |= stored
        if t & {SOLUTION, INSTRUCTOR}:
            removed_defined |= stored
    return problems


def _parameters_problems(cells: list[Any]) -> list[str]:
    params = next((c for c in cells if PARAMETERS in tags(c)), None)
    if params is None:
        return [f"no cell tagged {PARAMETERS!r}"]
    for node in ast.walk(_parse(_source(params))):
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "solutions" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and node.value.value is False
        ):
            return []
    return ["the parameters cell does not set `solutions = False`"]


def check_notebook_teaching(nb: Any, *, stage: str | None = None) -> list[str]:
    """What a teaching notebook lacks (empty when it follows the conventions above).

    `nb` is a notebook node or a path; `stage` (e.g. "identify") is the stage the map must show,
    taken from the file name (`01_identify.ipynb`) when `nb` is a path of a stage's notebook.
    """
    if stage is None and isinstance(nb, str | Path):
        from workbench.stages import STAGES

        stage = next((s.key for s in STAGES if s.notebook == Path(nb).stem), None)
    nb = _load(nb)
    cells = _cells(nb)
    first_exercise = next((i for i, c in enumerate(cells) if EXERCISE in tags(c)), len(cells))
    prose, stated_problems = _prose(nb)
    problems = [
        *_objectives_problems(cells),
        *_map_problems(cells, stage, first_exercise),
        *_parameters_problems(cells),
        *stated_problems,
        *_exercise_problems(cells),
        *_summary_problems(cells),
        *_dependency_problems(cells),
    ]
    if not prose:
        problems.append(
            'no stated numbers: write results in prose as <span class="stated" '
            'data-name="NAME">VALUE</span> and record them with teaching.state("NAME", value)'
        )
    return problems
