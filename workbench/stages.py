"""The pipeline as data: the five stages, their steps and the amalgamation's outputs.

Figures 1-3 are drawn from these definitions, notebooks are named after them, and a stage
counts as done in a run directory when the run directory's index names a current version of it.
A stage, or a part of figures 2-3 beyond the stages, is built once the notebook that teaches it
exists; until then the figures mark it as planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.config import read_index, repo_root


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline, its module and notebook, and the steps it teaches."""

    key: str  # index key in the run directory, e.g. "data"
    number: int  # position in the pipeline, 1-5
    title: str  # what the stage does, in a few words
    module: str  # the workbench module that implements it
    notebook: str  # the notebook that teaches it (without .ipynb)
    steps: tuple[str, ...] = ()  # sub-steps shown in figure 2

    @property
    def available(self) -> bool:
        """Whether the workbench has this stage's notebook yet (later stages are planned)."""
        return has_notebook(self.notebook)

    def step_available(self, step: str) -> bool:
        """Whether `step` is built: with the stage, unless PART_NOTEBOOKS names its own notebook."""
        return self.available and (step not in PART_NOTEBOOKS or available(step))

    def __repr__(self) -> str:
        planned = "" if self.available else " - planned, not in the workbench yet"
        return f"Stage {self.number}: {self.title} ({self.module}, {self.notebook}){planned}"


STAGES: tuple[Stage, ...] = (
    Stage("identify", 1, "Identify the type of model", "workbench.identify", "01_identify"),
    Stage(
        "design", 2, "Design the model", "workbench.design", "02_design", ("feature engineering",)
    ),
    Stage(
        "data",
        3,
        "Prepare the data",
        "workbench.data",
        "03_data",
        ("extraction", "analysis", "transformation", "management", "serving"),
    ),
    Stage("train", 4, "Train the model", "workbench.train", "04_train", ("feature engineering",)),
    Stage(
        "deploy", 5, "Deploy the model", "workbench.deploy", "05_deploy", ("continuous learning",)
    ),
)

# Figure 2 adds the production process around the technical stages.
PRODUCTION_STEPS: tuple[str, ...] = ("planning", "qa")

# Figure 3: the four learned representations of the amalgamated model, each reused by a task.
REPRESENTATIONS: tuple[tuple[str, str], ...] = (
    ("high-dimensional latent space", "task 1"),
    ("low-dimensional latent space", "task 2"),
    ("pre-activation logits", "task 3"),
    ("post-activation independent probabilities", "task 4"),
)
# The layer behind each representation (in order) in the models `workbench.design.build` makes.
# The fourth, one sigmoid per attribute beside the softmax class head, comes with the amalgamation
# (PART_NOTEBOOKS); today a sigmoid is only ever the one head of a binary or multilabel card.
REPRESENTATION_LAYERS: tuple[tuple[str, str], ...] = (
    ("encoding", "the feature map as one vector"),
    ("embedding", "Dense + ReLU on the encoding, if the spec has one"),
    ("logits", "a multiclass head's softmax turns them into probabilities over exclusive classes"),
    ("attribute head", "Dense + one sigmoid per attribute, beside the logits"),
)

# Parts of figures 2-3 beyond the five stages, and the notebook that will build each:
# a part is planned until its notebook exists (a stage's other steps come with the stage).
PART_NOTEBOOKS: dict[str, str] = {
    "planning": "06_production",
    "qa": "06_production",
    "continuous learning": "06_production",  # a step of stage 5
    "attribute head": "07_amalgamation",  # representation 4
    "downstream tasks": "07_amalgamation",  # the tasks that reuse the representations
    "serving pipeline": "07_amalgamation",  # versioned, reconfigurable serving components
}


def has_notebook(notebook: str) -> bool:
    """Whether `notebooks/<notebook>.ipynb` exists in the repository."""
    return (repo_root() / "notebooks" / f"{notebook}.ipynb").is_file()


def available(part: str) -> bool:
    """Whether the workbench builds `part` (a key of PART_NOTEBOOKS) yet: its notebook exists."""
    if part not in PART_NOTEBOOKS:
        raise KeyError(f"Unknown part {part!r}; expected one of {list(PART_NOTEBOOKS)}.")
    return has_notebook(PART_NOTEBOOKS[part])


def stage(key: str) -> Stage:
    """The stage called `key` (identify, design, data, train, deploy)."""
    for s in STAGES:
        if s.key == key:
            return s
    raise KeyError(f"Unknown stage {key!r}; expected one of {[s.key for s in STAGES]}.")


def done_stages(run_dir: str | Path) -> set[str]:
    """Keys of the stages that have a current version in `run_dir`."""
    index = read_index(run_dir)
    return {s.key for s in STAGES if index.get(s.key)}
