"""The headless runner behind `make run`: run directories, runs/latest, failures, kernels."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import outputs_text, write_notebook

from workbench import runner
from workbench.errors import ParameterError
from workbench.runner import NotebookFailure


def test_sequence_runs_in_order_and_stops_at_the_failing_cell(tmp_path):
    ok = write_notebook(
        tmp_path / "00_ok.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0',
        "import pathlib; pathlib.Path(run_dir, 'marker').write_text(profile)",
    )
    bad = write_notebook(tmp_path / "01_bad.ipynb", "run_dir = None", "x = 1", "1 / 0")
    runs = tmp_path / "runs"
    (runs / "latest").mkdir(parents=True)  # a folder of the user's own: kept, not lost
    (runs / "latest" / "mine.txt").write_text("keep me")
    with pytest.raises(NotebookFailure) as e:
        runner.run_sequence(profile="full", runs=runs, notebooks=[ok, bad], progress=False)
    assert "01_bad.ipynb failed in cell In [4], line 1: 1 / 0\nZeroDivisionError" in str(e.value)
    latest = runs / "latest"
    assert latest.is_symlink()
    run_dir = latest.resolve()
    assert (run_dir / "marker").read_text() == "full"
    assert (run_dir / "notebooks" / "00_ok.ipynb").is_file()
    assert (run_dir / "notebooks" / "01_bad.ipynb").is_file()  # kept, with the traceback
    kept = [p for p in runs.iterdir() if p.name.startswith("manual-")]
    assert len(kept) == 1 and (kept[0] / "mine.txt").read_text() == "keep me"


def test_sequence_parameters_go_to_the_notebooks_that_declare_them(tmp_path):
    first = write_notebook(
        tmp_path / "00_a.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0\ndataset = None',
        "import pathlib; pathlib.Path(run_dir, 'a').write_text(str(dataset))",
    )
    second = write_notebook(
        tmp_path / "01_b.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0',
        "import pathlib; pathlib.Path(run_dir, 'b').write_text(str(globals().get('dataset')))",
    )
    runs = tmp_path / "runs"
    given = {"dataset": "csv:data/my.csv"}
    result = runner.run_sequence(
        profile="smoke", runs=runs, notebooks=[first, second], progress=False, parameters=given
    )
    assert (result.run_dir / "a").read_text() == "csv:data/my.csv"
    assert (result.run_dir / "b").read_text() == "None"  # not declared there: not injected
    with pytest.raises(
        ParameterError,
        match=r"Parameter\(s\) \['datset'\]: no notebook of .* "
        r"expected one of \['dataset'\]",
    ):
        runner.run_sequence(runs=runs, notebooks=[first, second], parameters={"datset": "x"})


def test_environment_kernel_comes_first(monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", "/elsewhere")
    runner.use_environment_kernel()
    first = os.environ["JUPYTER_PATH"].split(os.pathsep)[0]
    assert first == str(Path(sys.prefix) / "share" / "jupyter")


def test_list_notebooks_is_numbered_and_ordered(tmp_path):
    for name in ("02_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.list_notebooks(tmp_path)] == [
        "00_a.ipynb",
        "02_b.ipynb",
        "10_c.ipynb",
    ]


def test_printed_lines_are_prefixed_whole_lines():
    out = io.StringIO()
    lines = runner.PrefixedLines(out, "04_train | ")
    lines.write("Epoch 1/3\n20/20 - loss: 1.9")
    assert out.getvalue() == "04_train | Epoch 1/3\n"  # the partial line waits for its end
    lines.write("\r\n\nbar 10%\rbar 100%\n")
    lines.write("last, without a line end")
    lines.close()
    assert out.getvalue().splitlines() == [
        "04_train | Epoch 1/3",
        "04_train | 20/20 - loss: 1.9",  # blank lines dropped
        "04_train | bar 100%",  # a line rewritten with \r: its final state
        "04_train | last, without a line end",
    ]


def test_progress_streams_a_notebooks_lines_while_it_runs(tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        """Stands in for sys.stdout; tells the notebook, through a file, that a line arrived."""

        def write(self, text):
            if "Epoch 1/3" in text:
                (tmp_path / "seen").touch()
            return super().write(text)

    nb = write_notebook(
        tmp_path / "00_live.ipynb",
        'seen = ""',
        "import pathlib, sys, time\n"
        "print('Epoch 1/3', flush=True)\n"
        "for _ in range(2400):  # the cell goes on only once the runner has shown the line\n"
        "    if pathlib.Path(seen).exists():\n"
        "        break\n"
        "    time.sleep(0.05)\n"
        "else:\n"
        "    raise RuntimeError('the line did not reach the terminal while the cell ran')\n"
        "print('Epoch 2/3', end='')\n"
        "print(' - loss: 0.5')\n"
        "print('a warning', file=sys.stderr)",
        "print('✎ Your turn — exercise 1.1')",
    )
    node = nbformat.read(nb, as_version=4)
    node.cells[-1].metadata["tags"] = ["exercise"]  # speaks to a student: not in the terminal
    nbformat.write(node, nb)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    runner.execute(nb, tmp_path / "out.ipynb", parameters={"seen": str(tmp_path / "seen")})
    lines = terminal.getvalue().splitlines()
    assert lines[0] == "00_live | Epoch 1/3"
    assert sorted(lines[1:]) == ["00_live | Epoch 2/3 - loss: 0.5", "00_live | a warning"]
    assert "Your turn" in outputs_text(nbformat.read(tmp_path / "out.ipynb", as_version=4))


def test_quiet_execution_prints_nothing_and_env_reaches_only_the_kernel(tmp_path, capfd):
    probe = "import os; print('only in the notebook', os.environ.get('WORKBENCH_PROBE'))"
    nb = write_notebook(tmp_path / "00_quiet.ipynb", "x = 1", probe)
    runner.execute(nb, tmp_path / "out.ipynb", progress=False, env={"WORKBENCH_PROBE": "seen"})
    assert "only in the notebook seen" in outputs_text(nbformat.read(tmp_path / "out.ipynb", 4))
    assert "WORKBENCH_PROBE" not in os.environ  # a sweep point's one thread stays its own
    out, err = capfd.readouterr()
    assert "without encryption" not in err  # ipykernel 7's warning on every kernel start
    assert out == "" and "only in the notebook" not in err
    # Rarely, the kernel process prints a line while it shuts down, after the notebook ran:
    # libzmq's "Assertion failed: pfd.revents & POLLIN (src/signaler.cpp:238)", or, on a loaded
    # machine where the shutdown request outlasts jupyter_client's wait and it interrupts the
    # kernel, ipykernel's "KeyboardInterrupt caught in kernel". Those lines are the kernel's,
    # not the runner's, so only they are tolerated here.
    kernel = ("src/signaler.cpp", "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.")
    assert [line for line in err.splitlines() if not any(k in line for k in kernel)] == []
