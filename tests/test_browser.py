"""Every notebook in a real browser: JupyterLab from .venv, Debian's Chromium through Playwright.

The notebooks are copied with their outputs cleared to a temporary folder (autosave never
touches the committed files); a temporary run directory and tracking store; one JupyterLab on a
free loopback port with a token. Each notebook, in order: Run -> Run All Cells from the menu,
wait until every code cell has run and the kernel is idle, save (Ctrl+S), then read the saved
file from disk: every code cell ran and no output is an error. JupyterLab renders long
notebooks in a window of cells, so counting prompts in the page would miss cells; the saved
file does not. In the page, the widgets render and react: the card in 01 and the parameter
count in 02 follow a dropdown, 05's promote button moves the champion alias, and in 07 picking
another image changes every task's answer. Screenshots stay in the pytest temporary folder.

Chromium comes from Debian (`apt-get install chromium`); Playwright never downloads a browser.
Without /usr/bin/chromium the test is skipped locally and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, stop, wait_answering

from workbench.cli import lab_command
from workbench.deploy.launch import free_port
from workbench.runner import list_notebooks

pytestmark = pytest.mark.notebook

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "workbench-browser-test"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
RUN_TIMEOUT = 300  # seconds for one notebook's Run All (06 and 07 take about a minute)

KERNEL_STATE = """(path) => {
    if (!window.jupyterapp || !window.jupyterapp.shell) return null;  // the page still loading
    const w = Array.from(window.jupyterapp.shell.widgets("main"))
        .find(w => w.context && w.context.path === path);
    if (!w || !w.model || !w.sessionContext || !w.sessionContext.session) return null;
    const kernel = w.sessionContext.session.kernel;
    let pending = 0, errors = 0, code = 0;
    for (let i = 0; i < w.model.cells.length; i++) {
        const cell = w.model.cells.get(i);
        if (cell.type !== "code") continue;
        code += 1;
        if (cell.executionCount === null) pending += 1;
        for (const out of cell.outputs.toJSON()) if (out.output_type === "error") errors += 1;
    }
    return {status: kernel ? kernel.status : "none", pending, errors, code,
            dirty: w.context.model.dirty};
}"""


def _fail_without_browser() -> None:
    if not CHROMIUM.exists():
        reason = "needs Debian's Chromium at /usr/bin/chromium (sudo apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on copies of the notebooks (outputs cleared), with its own run directory."""
    _fail_without_browser()
    root = tmp_path_factory.mktemp("browser")
    folder = root / "notebooks"
    folder.mkdir()
    for path in list_notebooks(ROOT / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, folder / path.name)
    env = {**os.environ, "WORKBENCH_RUN_DIR": str(root / "run"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}  # fmt: skip
    port = free_port()
    args = ["--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True"]  # fmt: skip
    cmd = lab_command(args, notebook_dir=folder)
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url, alive = f"http://127.0.0.1:{port}", lambda: server.poll() is None
    wait_answering(f"{url}/api/status?token={TOKEN}", alive, 120, root / "lab.log")
    yield {"url": url, "folder": folder, "root": root, "env": env}
    stop(server)
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        chromium.close()


def _open(page, lab, name: str) -> None:
    """The notebook opened as the only tab: the first by its URL, the next ones from the open
    page (closing what is open, then File -> Open's command), which spares a reload of
    JupyterLab per notebook."""
    if "/lab" not in page.url:
        page.goto(f"{lab['url']}/lab/tree/{name}.ipynb?reset&token={TOKEN}")
    else:
        page.evaluate(
            """async (path) => {
                const app = window.jupyterapp;
                await app.commands.execute("application:close-all");
                await app.commands.execute("docmanager:open", {path, factory: "Notebook"});
            }""",
            f"{name}.ipynb",
        )
    page.wait_for_function(
        f"(path) => {{ const s = ({KERNEL_STATE})(path); return s && s.status === 'idle'; }}",
        arg=f"{name}.ipynb",
        timeout=120_000,
    )


def _run_all(page, lab, name: str) -> dict:
    """Run -> Run All Cells, wait until every code cell ran (or one failed) and the kernel is
    idle, then Ctrl+S and wait until the file is saved. Returns the last kernel state."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline, state, idle_since = time.monotonic() + RUN_TIMEOUT, None, None
    while time.monotonic() < deadline:
        state = page.evaluate(KERNEL_STATE, f"{name}.ipynb")
        done = state["pending"] == 0 or state["errors"] > 0
        if done and state["status"] == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 1.0:  # idle for a second, not between cells
                break
        else:
            idle_since = None
        time.sleep(0.5)
    page.keyboard.press("Control+s")
    page.wait_for_function(f"(path) => !({KERNEL_STATE})(path).dirty", arg=f"{name}.ipynb")
    return state


def _widget_text(page, control: str) -> str:
    """The text of the output area holding a widget with a control labelled `control`."""
    labelled = page.locator(".widget-dropdown, .widget-slider", has_text=control)
    return page.locator(".jp-OutputArea-output").filter(has=labelled).first.inner_text()


def _show_cell(page, source_part: str) -> None:
    """Scroll the notebook to the first cell whose source contains `source_part`."""
    page.evaluate(
        """async (part) => {
            const nb = window.jupyterapp.shell.currentWidget.content;  // the notebook opened
            const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes(part));
            nb.activeCellIndex = i;
            await nb.scrollToItem(i, "auto");
        }""",
        source_part,
    )
    page.wait_for_timeout(500)


def _interact(page, name: str, lab) -> None:
    """The in-page checks of the notebooks that have them."""
    if name == "01_identify":
        _show_cell(page, "ProblemView()")
        before = _widget_text(page, "task")
        page.get_by_label("task", exact=True).select_option("binary")
        page.wait_for_timeout(1500)
        assert _widget_text(page, "task") != before
    elif name == "02_design":
        _show_cell(page, "DesignView(card")
        before = _widget_text(page, "preset")
        dropdown = page.get_by_label("preset", exact=True)
        options = dropdown.locator("option").all_inner_texts()
        dropdown.select_option(next(o for o in options if o != dropdown.input_value()))
        page.wait_for_timeout(2500)
        after = _widget_text(page, "preset")
        assert after != before and "param" in after.lower()
    elif name == "05_deploy":
        _register_a_challenger(lab)
        _show_cell(page, "RegistryView(champion.name)")
        page.get_by_role("button", name="promote challenger").click()
        page.wait_for_timeout(3000)
        from workbench.deploy import registry

        assert registry.aliases("digits").get("champion") == "2"
    elif name == "07_amalgamation":
        _show_cell(page, "AmalgamView(")
        before = _widget_text(page, "pair with")
        handle = page.locator(".widget-slider", has_text="image").locator(".noUi-handle").first
        handle.click()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.wait_for_timeout(3000)
        assert _widget_text(page, "pair with") != before
        page.get_by_label("source", exact=True).select_option("drawn by hand")
        page.wait_for_timeout(1500)
        assert "Draw a digit" in _widget_text(page, "pair with")
        pad = page.locator(".jp-OutputArea-output canvas").last.bounding_box()
        page.mouse.move(pad["x"] + 100, pad["y"] + 25)
        page.mouse.down()
        for y in range(35, 180, 10):  # a "1", top to bottom
            page.mouse.move(pad["x"] + 100, pad["y"] + y)
        page.mouse.up()
        page.wait_for_timeout(4000)
        assert "predicted class" in _widget_text(page, "pair with")  # every task answered


def _shut_down_kernels(lab) -> None:
    """Every session of the server ended (its kernel shut down), as closing the tab would."""
    import httpx

    with httpx.Client(base_url=lab["url"], headers={"Authorization": f"token {TOKEN}"}) as c:
        for session in c.get("/api/sessions").json():
            c.delete(f"/api/sessions/{session['id']}")


def _register_a_challenger(lab) -> None:
    """A second version of 05's model, registered as challenger from outside the page: two
    epochs from the same spec on the same data, exported and registered."""
    from workbench import config, upstream
    from workbench.deploy import export, registry
    from workbench.train import TrainConfig, train

    os.environ["MLFLOW_TRACKING_URI"] = lab["env"]["MLFLOW_TRACKING_URI"]
    run = config.setup(run_dir=lab["env"]["WORKBENCH_RUN_DIR"], profile="smoke", seed=1)
    card = upstream.ensure_card(run)
    version, spec = upstream.ensure_data(run, card), upstream.ensure_spec(run, card)
    result = train(spec, version, TrainConfig(epochs=2), card=card, run_dir=run.dir,
                   track=False, verbose=0)  # fmt: skip
    export.export_model(result, name="digits")  # into <run_dir>/deploy/<its run id>
    registry.register(run.dir / "deploy" / result.run_id)


def test_every_notebook_runs_in_the_browser_and_its_widgets_react(lab, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    problems = []
    try:
        for path in list_notebooks(ROOT / "notebooks"):
            name, start = path.stem, time.monotonic()
            _open(browser, lab, name)
            state = _run_all(browser, lab, name)
            browser.screenshot(path=str(shots / f"{name}.png"), full_page=False)
            saved = nbformat.read(lab["folder"] / path.name, as_version=4)
            code = [c for c in saved.cells if c.cell_type == "code"]
            unrun = [i for i, c in enumerate(code) if c.execution_count is None]
            errors = [o for c in code for o in c.outputs if o.output_type == "error"]
            if unrun or errors:
                failed = [(e.ename, e.evalue[:200]) for e in errors]
                problems.append(f"{name}: cells not run {unrun}, errors {failed} ({state})")
                continue
            _interact(browser, name, lab)
            browser.screenshot(path=str(shots / f"{name}-after.png"), full_page=False)
            _shut_down_kernels(lab)
            print(f"{name}: ran in the browser, {time.monotonic() - start:.0f} s", flush=True)
    finally:
        if tracking is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = tracking
        log = lab["root"] / "lab.log"
        if problems and log.is_file():
            shutil.copy(log, shots / "lab.log")
    assert not problems, "\n".join(problems) + f"\n(screenshots and log: {shots})"
    assert json.loads((lab["root"] / "run" / "index.json").read_text())  # the run dir was used
