"""Run directory, profiles, seeding and the Keras backend.

Stages hand over through a run directory: each stage reads its inputs there and writes its
outputs there. A small index (`index.json`) names the current version per stage.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import params
from workbench.errors import ParameterError
from workbench.files import atomic_write_json, read_json, save_figure

DEFAULT_RUN_DIR = "runs/latest"  # the `run_dir` default of every notebook's parameters cell
RUN_DIR_ENV = "WORKBENCH_RUN_DIR"  # overrides DEFAULT_RUN_DIR (tests, nbval, CI)
INDEX_FILE = "index.json"


def repo_root() -> Path:
    """The repository this package was installed from (editable install), else the cwd."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "workbench").is_dir():
        return here
    return Path.cwd()


def resolve_run_dir(run_dir: str | Path | None = DEFAULT_RUN_DIR) -> Path:
    """Resolve `run_dir` against the repository root, whatever the kernel's working folder.

    The default (`None` or "runs/latest") is replaced by `$WORKBENCH_RUN_DIR` when that is set.
    """
    if run_dir is None or str(run_dir) == DEFAULT_RUN_DIR:
        run_dir = os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR
    path = params.check_path("run_dir", run_dir, must_exist=False)
    if not path.is_absolute():
        path = repo_root() / path
    if path.exists() and not path.is_dir():
        raise ParameterError(
            f"Parameter 'run_dir': expected a folder, got {str(run_dir)!r}, which is a file."
        )
    return path


def display_path(path: str | Path) -> str:
    """`path` as outputs show it: relative to the repository when inside it, else `.../<name>`,
    so committed notebook outputs hold no machine's folders (home, /tmp, a checkout's place)."""
    path = Path(os.path.abspath(path))  # not resolve(): runs/latest stays runs/latest
    try:
        return path.relative_to(repo_root()).as_posix()
    except ValueError:
        return f".../{path.name}"


# ---- profiles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How big a run is: `smoke` for tests (seconds), `full` for classes and `make run`."""

    name: str
    dataset: str  # default data source of stage 3
    epochs: int  # default training epochs of stage 4
    batch_size: int  # default batch size of the feed and of training
    preset: str  # default model preset of stage 2 (workbench.design.list_presets)
    description: str = ""


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "digits", 8, 64, "compact", "scikit-learn digits 8x8, 8 epochs"),
    "full": Profile("full", "mnist5k", 28, 64, "compact_bn", "5,000 MNIST images 28x28"),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a ParameterError listing the known ones."""
    params.check_choice("profile", name, PROFILES)
    return PROFILES[name]


# ---- seeding and backend -------------------------------------------------------------------


# TensorFlow's native start-up INFO lines ignore TF_CPP_MIN_LOG_LEVEL (absl logs them before
# reading it); they would fill every notebook's first cell. Everything else on stderr is kept.
_STARTUP_NOISE = re.compile(
    r"^(I\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:)"
)


@contextmanager
def _drop_native_startup_info() -> Iterator[None]:
    """Capture the process's stderr (file descriptor 2) and re-emit all but start-up INFO lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _STARTUP_NOISE.match(line))
            if kept:
                sys.stderr.write(kept)


_KERAS_LOCK = threading.RLock()


@contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Logger `name` at ERROR for the duration: e.g. TensorFlow's notes that new models and batch
    sizes trace new graphs, expected where models are checked or embedded, not a problem."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_keras():
    """Import Keras with quiet TensorFlow logs and the TensorFlow backend unless one is chosen.

    `KERAS_BACKEND` (tensorflow, jax, torch) is respected when set.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _KERAS_LOCK:  # a second thread waits here until the first import has finished
        if "keras" in sys.modules and not _importing(sys.modules["keras"]):
            return sys.modules["keras"]
        with _drop_native_startup_info():
            import keras

    return keras


def _importing(module) -> bool:
    """Whether `module` is still being imported (its spec says so while it initialises)."""
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and Keras (and its backend) from one integer: the only seeding place."""
    import numpy as np

    params.check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    return seed


# ---- the run directory's index -------------------------------------------------------------


def read_index(run_dir: str | Path) -> dict[str, Any]:
    """The index of current versions per stage (empty when the run directory is new)."""
    path = Path(run_dir) / INDEX_FILE
    return read_json(path) if path.is_file() else {}


def current(run_dir: str | Path, stage: str) -> str | None:
    """The current version of `stage` in `run_dir`, or None."""
    return read_index(run_dir).get(stage)


def set_current(run_dir: str | Path, stage: str, version: str) -> None:
    """Make `version` the current one of `stage` (atomic rewrite of the index)."""
    index = read_index(run_dir)
    index[stage] = version
    atomic_write_json(Path(run_dir) / INDEX_FILE, index)


# ---- a notebook's run --------------------------------------------------------------------


@dataclass
class Run:
    """What a notebook's validation cell returns: where to read and write, how big, which seed."""

    dir: Path
    profile: Profile
    seed: int
    figures: Path = field(init=False)

    def __post_init__(self) -> None:
        self.figures = self.dir / "figures"

    def __repr__(self) -> str:
        where = display_path(self.dir)
        return f"Run(dir={where!r}, profile={self.profile.name!r}, seed={self.seed})"

    def save_figure(self, fig, name: str):
        """Keep `fig` as `<run_dir>/figures/<name>.png` and return it, so a cell displays it."""
        save_figure(fig, self.figures / f"{name}.png")
        return fig


def setup(*, run_dir: str | Path = DEFAULT_RUN_DIR, profile: str = "smoke", seed: int = 0) -> Run:
    """Validate the common parameters, create the run directory and seed everything.

    A `run_dir` that cannot be created or written (below a file, in a system folder) is a
    ParameterError here, in a notebook's first cell, rather than an OSError in a later stage.
    """
    prof = get_profile(profile)
    params.check_int("seed", seed, minimum=0)
    path = params.check_folder("run_dir", resolve_run_dir(run_dir))
    seed_everything(seed)
    return Run(path, prof, seed)
