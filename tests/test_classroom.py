"""`make classroom`: the dashboard over a run directory, headless, served by Voilà, in a browser.

Headless: a missing or empty run directory says how to make one (`make run`), never raises; over
the executed smoke sequence every tab shows its stage, a control on it reacts, opening the tabs
writes nothing, and the one button that starts something (the REST service) starts and stops it.
Served: `workbench classroom` answers with the rendered page; in Chromium (when installed, always
on CI) the page shows no traceback and a control reacts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import stop, wait_answering

from workbench import classroom
from workbench.config import read_index, repo_root
from workbench.deploy.launch import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What a failing cell leaves in Voilà's page (with --show-tracebacks: the traceback itself) and
# what a warning printed while the dashboard was built leaves: none may be on the page.
PAGE_ERRORS = ("Traceback", "There was an error when executing cell", "jupyter.stderr")


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below `folder` with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_a_missing_run_directory_says_make_run_on_every_tab(tmp_path):
    missing = tmp_path / "runs" / "latest"
    dash = classroom.dashboard(missing, lazy=False)
    assert set(dash.pages) == set(classroom.PAGES)
    assert all(page.missing for key, page in dash.pages.items() if key != "run")
    for page in dash.pages.values():
        assert "make run" in page.text, page.key
    assert "No run directory at" in dash.page("run").text
    assert not missing.exists()  # reading created nothing
    dash.close()


def test_an_empty_run_directory_names_what_is_missing_and_its_notebook(tmp_path):
    dash = classroom.dashboard(tmp_path, lazy=False)
    assert "(not run)" in dash.page("run").text
    for key, (_, notebook) in classroom.PAGES.items():
        if key != "run":
            page = dash.page(key)
            assert page.missing and "make run" in page.text and notebook in page.text, key
    assert _tree(tmp_path) == {}
    dash.close()


def test_a_file_as_run_directory_is_said_not_raised(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("not a run directory")
    dash = classroom.dashboard(file, lazy=False)
    assert "expected a folder" in dash.text and "make run" in dash.text
    dash.close()


def test_tabs_are_read_when_first_opened():
    dash = classroom.dashboard("/nonexistent/run")  # lazy: only the first tab is read
    assert set(dash.pages) == {"run"}
    dash.widget.selected_index = dash.keys.index("design")  # a click on the tab
    assert "design" in dash.pages and "make run" in dash.pages["design"].text
    dash.close()


@pytest.mark.notebook
def test_every_tab_shows_its_stage_of_an_executed_run_and_its_controls_react(executed):
    from workbench.deploy import registry
    from workbench.design import preset, summarize

    executed("07_amalgamation")  # 00-07 once per session into executed.run_dir
    run_dir = executed.run_dir
    before = _tree(run_dir)
    name = read_index(run_dir)["deploy"].split("/")[0]
    versions = len(registry.list_versions(name))
    dash = classroom.dashboard(run_dir, lazy=False)
    problems = {k: p.missing for k, p in dash.pages.items() if p.missing}
    assert problems == {}
    assert _tree(run_dir) == before  # opening every tab wrote nothing
    assert len(registry.list_versions(name)) == versions  # and registered nothing

    assert "ProblemCard(digits)" in dash.page("identify").text
    problem = dash.page("identify").views["identify"]
    shown = problem.html
    problem.set(modality="tabular")  # selects its first data set: a new card
    assert problem.dataset == "sklearn:breast_cancer" and problem.html != shown

    design = dash.page("design").views["design"]
    card = design.card
    assert design.summary.params == summarize(design.spec, card).params
    design.set(preset="resnet")
    assert design.summary.params == summarize(preset("resnet", card), card).params
    assert f"{design.summary.params:,}" in dash.page("design").text

    samples = dash.page("data").views["samples"]
    first = samples.png
    samples.set(classes=3)
    assert samples.png != first
    assert "leakage" in dash.page("data").views["report"].html

    runs = dash.page("train").views["train"]
    assert runs.value == read_index(run_dir)["train"]
    assert "(the run directory's current run)" in dash.page("train").text
    other = next(o for o in runs.options if o != runs.value)
    runs.value = other
    assert re.search(rf"^run\s+{re.escape(other)}", dash.page("train").text, re.MULTILINE)
    assert "(the run directory's current run)" not in dash.page("train").text

    assert "champion" in dash.page("deploy").text
    assert "Start the service: workbench serve" in dash.page("deploy").text

    lineage = dash.page("production").views["production"]
    assert "promote" in dash.page("production").text
    shown = dash.page("production").text
    lineage.value = next(v for v in lineage.options if v != lineage.value)
    assert dash.page("production").text != shown

    amalgam = dash.page("amalgam").views["amalgam"]
    digit = dict(amalgam.answers)
    amalgam.set(source="photo patches")
    assert amalgam.answers["ood_score"] != digit["ood_score"]
    dash.close()


@pytest.mark.notebook
def test_the_service_button_starts_the_service_and_stop_ends_it(executed):
    executed("05_deploy")
    dash = classroom.dashboard(executed.run_dir)
    service = dash.page("deploy").views["service"]
    assert "No service" in service.view.test_request()  # nothing runs before the click
    said = service.start()
    try:
        assert said.startswith("Serving digits@champion at http://127.0.0.1:"), said
        answer = service.view.test_request()
        assert answer.startswith("champion (version"), answer
    finally:
        assert service.stop() == "The service stopped (exit code 0)."
    assert service.service is None
    dash.close()


# ---- served by Voilà ---------------------------------------------------------------------


@contextmanager
def _served(run_dir: Path, log: Path) -> Iterator[str]:
    """`workbench classroom --run-dir RUN_DIR` on a free port until SIGTERM: its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "classroom", "--run-dir", str(run_dir)]
    cmd += ["--port", str(port), "--show-tracebacks"]
    with log.open("w") as out:
        voila = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        alive = lambda: voila.poll() is None  # noqa: E731
        wait_answering(f"{url}api/kernelspecs", alive, 60, log, status=0)  # up, any answer
        yield url
    finally:
        stop(voila)


def _page(url: str) -> str:
    import httpx

    response = httpx.get(url, timeout=120)  # Voilà runs the notebook for this request
    assert response.status_code == 200, response.text[:2000]
    return response.text


def _check_page(text: str) -> None:
    assert "<title>Workbench classroom</title>" in text
    assert "application/vnd.jupyter.widget-view+json" in text  # the dashboard's tabs
    assert [e for e in PAGE_ERRORS if e in text] == []
    assert "classroom.dashboard(run_dir)" not in text  # no code shown


@pytest.fixture(scope="module")
def served(executed, tmp_path_factory) -> Iterator[str]:
    executed("07_amalgamation")
    log = tmp_path_factory.mktemp("classroom") / "voila.log"
    with _served(executed.run_dir, log) as url:
        yield url


@pytest.mark.notebook
def test_workbench_classroom_serves_the_dashboard_over_http(served):
    _check_page(_page(served))


@pytest.fixture(scope="module")
def served_fresh(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("fresh-clone")
    with _served(folder / "runs" / "latest", folder / "voila.log") as url:
        yield url, folder / "runs"


@pytest.mark.notebook
def test_workbench_classroom_on_a_fresh_clone_serves_a_page_not_an_error(served_fresh):
    url, runs = served_fresh
    _check_page(_page(url))
    assert not runs.exists()


def _browser():
    """Chromium (the system's: never downloaded) through Playwright, or a skip with the reason;
    on CI a missing Chromium fails."""
    if not CHROMIUM.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: the browser check must run on CI")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api


@pytest.mark.notebook
def test_in_a_browser_the_dashboard_renders_and_a_control_reacts(served, executed):
    from workbench.design import load_spec, preset, summarize
    from workbench.identify import load_card

    sync_api = _browser()
    card, spec = load_card(executed.run_dir), load_spec(executed.run_dir)
    other = "resnet" if spec.name != "resnet" else "compact"
    expected = f"{summarize(preset(other, card), card).params:,}"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(served, timeout=120_000)
            page.get_by_text("Each tab reads what its stage left here").wait_for(timeout=120_000)
            assert "Traceback" not in page.inner_text("body")
            page.get_by_role("tab", name="2 Design").click()
            page.get_by_text("Explore presets").wait_for(timeout=60_000)
            assert expected not in page.inner_text("body")
            label = page.locator("label", has_text=re.compile(r"^preset$"))
            dropdown = page.locator(".widget-dropdown").filter(has=label).locator("select")
            dropdown.select_option(label=other)
            page.get_by_text(expected).first.wait_for(timeout=30_000)  # the new parameter count
            body = page.inner_text("body")
            assert "Traceback" not in body and "There was an error" not in body
        finally:
            browser.close()


@pytest.mark.notebook
def test_in_a_browser_a_fresh_clone_is_told_to_make_run(served_fresh):
    sync_api = _browser()
    url, _ = served_fresh
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(url, timeout=120_000)
            page.get_by_text("No run directory at").wait_for(timeout=120_000)
            page.get_by_role("tab", name="4 Train").click()
            told = page.get_by_text("No run directory at").filter(visible=True)
            told.wait_for(timeout=30_000)  # the Train tab, now shown, says it too
            body = page.inner_text("body")
            assert "make run" in body and "Traceback" not in body
        finally:
            browser.close()


def test_the_command_serves_the_dashboard_on_loopback_with_this_environments_kernel():
    cmd = classroom.voila_command(port=9999)
    assert cmd[:3] == [sys.executable, "-m", "voila"]
    assert Path(cmd[3]) == repo_root() / "classroom" / "dashboard.ipynb"
    assert Path(cmd[3]).is_file()
    assert {"--no-browser", "--port=9999", "--Voila.ip=127.0.0.1"} <= set(cmd)
    share = str(Path(sys.prefix) / "share" / "jupyter")
    assert share in os.environ["JUPYTER_PATH"].split(os.pathsep)
