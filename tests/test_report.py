"""The run report: index.html and each executed notebook as an offline page."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from conftest import write_notebook
from nbformat.v4 import new_output

from workbench import cli, runner
from workbench.errors import ParameterError
from workbench.report import write_report

# A script, stylesheet or image fetched from elsewhere (http, https or protocol-relative).
REMOTE = re.compile(
    r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I
)
LINK = re.compile(r"\b(?:href|src)=\"([^\"]*)\"")


def _smoke_run(executed, tmp_path: Path) -> Path:
    """A run directory as `make run` leaves it, from the session's executed notebooks (00-04):
    the shared run directory copied without its large files, the notebooks in notebooks/."""
    executed("04_train")
    run = tmp_path / "20260101-000000"
    heavy = shutil.ignore_patterns("executed", "sweeps", "*.keras", "*.npz", "*.onnx", "backup")
    shutil.copytree(executed.run_dir, run, ignore=heavy)
    (run / "notebooks").mkdir()
    for nb in sorted((executed.run_dir / "executed").glob("*.ipynb")):
        shutil.copy(nb, run / "notebooks" / nb.name)
    return run


def _sections(index: str) -> dict[str, str]:
    """Each notebook's <section> of the index, by notebook name."""
    return dict(re.findall(r'<section id="([^"]+)"[^>]*>(.*?)</section>', index, re.S))


def _assert_links_resolve(page: Path) -> None:
    """Every relative link and image of `page` names a file, every fragment an id of the page
    (links with a scheme, data: images and the documentation's https pages, are not files)."""
    text = page.read_text(encoding="utf-8")
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    for link in map(html.unescape, LINK.findall(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):
            continue
        target, _, fragment = link.partition("#")
        if target:
            assert (page.parent / unquote(target)).is_file(), (page.name, link)
        else:
            assert fragment in ids, (page.name, link)


@pytest.mark.notebook
def test_the_index_links_every_notebook_offline(executed, tmp_path):
    run = _smoke_run(executed, tmp_path)
    index_path = write_report(run)
    assert index_path == run / "index.html"
    index = index_path.read_text(encoding="utf-8")
    assert "<title>Run 20260101-000000 · profile smoke</title>" in index
    sections = _sections(index)
    names = [p.stem for p in sorted((run / "notebooks").glob("*.ipynb"))]
    assert names[:5] == ["00_overview", "01_identify", "02_design", "03_data", "04_train"]
    assert list(sections) == names
    for name in names:
        assert f'href="report/{name}.html"' in sections[name]
        assert '<span class="status ok">ok</span>' in sections[name]
        assert re.search(r"&middot; \d+ s &middot;", sections[name]), name
        page = run / "report" / f"{name}.html"
        nb = nbformat.read(run / "notebooks" / f"{name}.ipynb", as_version=4)
        heading = next(c.source for c in nb.cells if c.cell_type == "markdown").splitlines()[0]
        text = page.read_text(encoding="utf-8")
        assert heading.lstrip("# ") in html.unescape(text), name
        assert "data:image/png;base64," in text, name
        assert not REMOTE.search(text), name
        _assert_links_resolve(page)
    assert not REMOTE.search(index)
    _assert_links_resolve(index_path)
    assert 'src="figures/fig1_discovery.png"' in sections["00_overview"]
    assert 'src="figures/04_curves.png"' in sections["04_train"]
    assert "figures/04_" not in sections["01_identify"]
    assert "<th>baseline accuracy</th><td>0.100 (majority class" in sections["01_identify"]
    assert re.search(r"<th>test accuracy</th><td>0\.\d{4}</td>", sections["04_train"])
    assert "widgets show their text" in index
    assert 'href="01_identify.html"' in (run / "report" / "00_overview.html").read_text()


@pytest.mark.notebook
def test_a_failed_notebook_shows_as_failed(executed, tmp_path):
    run = _smoke_run(executed, tmp_path)
    shutil.rmtree(run / "train")  # a stage that left nothing: no numbers, no error
    for extra in sorted((run / "notebooks").glob("*.ipynb"))[2:]:
        if extra.stem != "04_train":
            extra.unlink()
    path = run / "notebooks" / "04_train.ipynb"
    nb = nbformat.read(path, as_version=4)
    next(
        c for c in nb.cells if c.cell_type == "markdown"
    ).source = "# 04 · Train <b>the</b> model & more"
    cell = next(c for c in nb.cells[3:] if c.cell_type == "code")
    cell.outputs.append(
        new_output("error", ename="ValueError", evalue="shape <8, 8> & co", traceback=["..."])
    )
    nb.metadata.papermill.exception = True
    nbformat.write(nb, path)
    index = write_report(run).read_text(encoding="utf-8")
    sections = _sections(index)
    assert list(sections) == ["00_overview", "01_identify", "04_train"]
    assert '<span class="status failed">failed</span>' in sections["04_train"]
    assert '<span class="status ok">ok</span>' in sections["01_identify"]
    assert f"cell In [{cell.execution_count}]: ValueError: shape &lt;8, 8&gt; &amp; co" in index
    assert "Train &lt;b&gt;the&lt;/b&gt; model &amp; more" in index and "<b>the" not in index
    assert 'href="report/04_train.html#papermill-error-cell"' in sections["04_train"]
    assert "<table>" not in sections["04_train"]
    assert "04_train failed" in index
    # 01's link to the next notebook, which this run did not execute, goes to the index
    assert 'href="../index.html">02_design' in (run / "report" / "01_identify.html").read_text()


@pytest.mark.notebook
def test_a_failing_sequence_still_writes_its_report(tmp_path, capsys):
    ok = write_notebook(tmp_path / "00_ok.ipynb", 'run_dir = "runs/latest"\nprofile = "smoke"')
    bad = write_notebook(tmp_path / "01_bad.ipynb", "run_dir = None", "1 / 0")
    with pytest.raises(runner.NotebookFailure):
        runner.run_sequence(runs=tmp_path / "runs", notebooks=[ok, bad], progress=False)
    run = (tmp_path / "runs" / "latest").resolve()
    assert f"Run report (up to the failure): {run / 'index.html'}" in capsys.readouterr().out
    sections = _sections((run / "index.html").read_text(encoding="utf-8"))
    assert '<span class="status ok">ok</span>' in sections["00_ok"]
    assert "cell In [3]: ZeroDivisionError: division by zero" in sections["01_bad"]
    page = (run / "report" / "01_bad.html").read_text(encoding="utf-8")
    assert 'id="papermill-error-cell"' in page and "ZeroDivisionError" in page
    (run / "index.html").unlink()
    assert cli.main(["report", str(run)]) == 0
    assert capsys.readouterr().out == f"Run report: {run / 'index.html'}\n"
    assert (run / "index.html").is_file()


def test_a_folder_that_is_no_run_directory_is_refused(tmp_path, capsys):
    expected = r"expected a run directory \(a folder with the executed notebooks in notebooks/, "
    with pytest.raises(ParameterError, match=expected + r".*missing, which is no folder"):
        write_report(tmp_path / "missing")
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(ParameterError, match=r"which has no notebooks/\*\.ipynb"):
        write_report(tmp_path)
    with pytest.raises(ParameterError, match=r"executed notebook\(s\) not found"):
        write_report(tmp_path, notebooks=[tmp_path / "notebooks" / "00_x.ipynb"])
    assert cli.main(["report", str(tmp_path)]) == 1
    assert "error: Run report: expected a run directory" in capsys.readouterr().err
