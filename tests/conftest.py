"""Session-wide test set-up: a temporary run directory, quiet TensorFlow, headless matplotlib,
each notebook executed by papermill at most once per session (the test budget), and the
tests grouped for the two pytest-xdist workers of `make test`."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from workbench.data.versioning import DatasetVersion
from workbench.design import Group, ModelSpec, Stem, Task
from workbench.identify import ProblemCard, identify

ROOT = Path(__file__).resolve().parent.parent
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="workbench-tests-"))

TINY = ModelSpec(  # a few hundred parameters: seconds per training on 8x8 digits
    name="tiny",
    stem=Stem(filters=(8,)),
    groups=(Group(8, 1, "conv", "pool"),),
    task=Task(pooling="avg"),
    batch_norm=False,
)


def pytest_configure(config: pytest.Config) -> None:
    # Before any kernel starts: nbval's and papermill's kernels inherit this environment.
    os.environ["WORKBENCH_RUN_DIR"] = str(_SESSION_TMP / "nbval-run")
    # One temporary tracking database for the whole session (tests and notebook kernels).
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_TMP / 'mlflow.db'}"
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from workbench.runner import use_environment_kernel

    use_environment_kernel()


# Session fixtures that execute notebooks or train: the tests that use one run in one worker
# (pytest-xdist's loadgroup), so each is built once; every other test runs with its module.
SHARED_FIXTURES = {"executed": "sequence", "tiny_amalgam": "tiny-amalgam"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = [g for f, g in SHARED_FIXTURES.items() if f in getattr(item, "fixturenames", ())]
        item.add_marker(pytest.mark.xdist_group(used[0] if used else item.path.name))


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP


class ExecutedNotebooks:
    """Runs each notebook once per session, in pipeline order, into one shared run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._done: dict[str, Path] = {}

    def __call__(self, name: str):
        """Execute `name` (and, first, the notebooks before it, as `make run` does)."""
        import nbformat

        from workbench.runner import execute, list_notebooks

        for nb in list_notebooks(ROOT / "notebooks"):
            if nb.stem not in self._done:
                out = self.run_dir / "executed" / nb.name
                # solutions=True: every exercise also checks its reference solution here;
                # nbval covers the committed, unanswered (solutions=False) notebooks.
                params = {
                    "run_dir": str(self.run_dir),
                    "profile": "smoke",
                    "seed": 0,
                    "solutions": True,
                }
                execute(nb, out, parameters=params, progress=False)
                self._done[nb.stem] = out
            if nb.stem == name:
                return nbformat.read(self._done[name], as_version=4)
        raise FileNotFoundError(f"no notebook notebooks/{name}.ipynb")


@pytest.fixture(scope="session")
def executed(session_tmp: Path) -> ExecutedNotebooks:
    """`executed("01_identify")` -> the executed notebook (run once, shared run directory)."""
    return ExecutedNotebooks(session_tmp / "sequence-run")


def write_notebook(path: Path, *cells: str) -> Path:
    """A small notebook of code `cells` at `path`, the first one tagged `parameters`."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
    return path


def outputs_text(nb) -> str:
    """All text a notebook printed (streams and plain-text results), for assertions."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def card_for_version(version: DatasetVersion) -> ProblemCard:
    """Stage 1 on a prepared data set version: its training labels and its transformed input
    shape (after feature engineering such as one-hot columns the model sees that shape)."""
    return identify(
        version.split("train")[1],
        modality=version.manifest["notes"]["modality"],
        task=version.task,
        input_shape=version.transform.output_shape,
        class_names=version.class_names,
        dataset=version.source,
    )


def write_messy_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """A CSV as downloaded tables come: the class column first (text), an identifier, numeric
    columns with `NA` and empty cells, a text category, a `?` marker and quoted fields that
    hold the delimiter. Two numeric columns and the category carry the class; one row has no
    class. Written with plain text (not the workbench), as a user's file would be."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = ['species,id,"bill, mm",mass_g,island,comment']
    for i in range(n):
        c = i % 3
        bill = f"{38 + 6 * c + rng.normal(0, 1.6):.1f}" if rng.random() > 0.1 else "NA"
        mass = f"{3500 + 700 * (c == 2) + rng.normal(0, 200):.0f}" if rng.random() > 0.1 else ""
        mass = "?" if i == 7 else mass
        island = ["Biscoe", "Dream", "Torgersen"][(c + (rng.random() < 0.15)) % 3]
        island = "" if rng.random() < 0.05 else island
        label = "" if i == 11 else ["Adelie", "Chinstrap", "Gentoo"][c]
        lines.append(f'{label},P{1000 + i},{bill},{mass},{island},"seen, {i % 4} times"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_amalgam(tmp_path_factory):
    """(run directory, digits version, card, amalgam of TINY trained 2 epochs): one training
    for the assembly and the serving-pipeline tests, which write below the run directory in
    folders of their own."""
    from workbench.amalgam.model import build_amalgam, fit_amalgam
    from workbench.data import prepare

    run = tmp_path_factory.mktemp("tiny-amalgam")
    version = prepare("digits", run_dir=run)
    card = card_for_version(version)
    model = build_amalgam(TINY, card)
    fit_amalgam(model, version, card, epochs=2)
    return run, version, card, model


class Service:
    """A uvicorn server running the app in a thread on a free loopback port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> Service:
        self.thread.start()
        wait_ready(self.url, self.thread.is_alive)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def wait_ready(url: str, alive=lambda: True, timeout: float = 90) -> None:
    """Poll the service's /v2/health/ready until it answers 200 (the models loaded, warmed)."""
    wait_answering(f"{url}/v2/health/ready", alive, timeout)


def wait_answering(
    url: str, alive=lambda: True, timeout: float = 90, log: Path | None = None, status: int = 200
) -> None:
    """Poll `url` until it answers `status` (0: any answer at all); fail, with the server's
    `log`, if `alive()` turns False or `timeout` seconds pass."""
    import httpx

    def failed(why: str) -> AssertionError:
        return AssertionError(f"{url} {why}" + (f":\n{log.read_text()}" if log else ""))

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise failed("will not answer: its server exited before it was ready")
        try:
            code = httpx.get(url, timeout=2).status_code
            if not status or code == status:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise failed(f"was not ready after {timeout:g} s")


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL if the process has not exited after `timeout` seconds (a loaded
    machine can keep JupyterLab or Voila shutting down longer: not what the tests check)."""
    process.terminate()
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout)
