"""`make classroom`: the stage widgets as a code-free dashboard (Voilà) over a run directory.

    dash = dashboard("runs/latest")   # one tab per stage 1-5, the production loop, the amalgam
    dash.page("design").views["design"].set(preset="resnet")   # as a user would click

`classroom/dashboard.ipynb` is one call to `dashboard`; `workbench classroom` serves it with
Voilà on loopback (`voila_command`), so an instructor walks a class through the stages by
clicking, without code. Each tab shows what the run directory holds for its stage: the problem
card, the model spec and its cost, data samples and the data report, learning curves and
metrics, the registry's versions, the production model's lineage, the amalgam's answers.

Opening the page only reads from disk: it never trains, exports, registers or starts a service.
A tab is read when it is first opened, so the page comes up at once. The buttons that start
something say what they start (the REST service of stage 5, on loopback, and its stop button);
the widgets' own buttons (promote, rollback) move registry aliases, as in notebook 05. A missing
run directory, or a stage missing from it, is said with what makes it (`make run`, or the
stage's notebook), never as a traceback.
"""

from __future__ import annotations

import atexit
import html
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.config import RUN_DIR_ENV, display_path, read_index, repo_root, resolve_run_dir
from workbench.errors import WorkbenchError
from workbench.files import read_json
from workbench.stages import STAGES
from workbench.tables import format_table
from workbench.widgets.base import View, png

NOTEBOOK = Path("classroom") / "dashboard.ipynb"  # in the repository
DEFAULT_PORT = 8866  # Voilà's own default
CULL_SECONDS = 600  # a page's kernel ends this long after its page closed
SAMPLES = 200  # test images offered to the amalgam view (and as many photo patches)

# key -> (tab title, the notebook that makes what the tab shows)
PAGES: dict[str, tuple[str, str]] = {
    "run": ("Run", "00_overview"),
    **{s.key: (f"{s.number} {s.key.capitalize()}", s.notebook) for s in STAGES},
    "production": ("5+ Production", "06_production"),
    "amalgam": ("Amalgamation", "07_amalgamation"),
}

# the pages beyond the index's stages, and the file that says their notebook ran
ARTIFACTS = {"production": "deploy/production.log", "amalgam": "amalgam/pipeline.json"}
ERROR = "color:#b00020"
PRE = "margin:0.3em 0; line-height:1.35"  # a widget's HTML has the controls' line height
NOTE = "color:#555"


class Missing(Exception):
    """What a page needs and the run directory lacks (said on the page, never raised out)."""


# ---- small widgets ---------------------------------------------------------------------------


def _html(text: str, style: str = "") -> w.HTML:
    return w.HTML(f"<div style='{style}'>{text}</div>" if style else text)


def _pre(text: str) -> w.HTML:
    return w.HTML(f"<pre style='{PRE}'>{html.escape(text)}</pre>")


def _table(rows: list[dict[str, Any]]) -> w.HTML:
    return _pre(format_table(rows) if rows else "(none)")


def _heading(text: str) -> w.HTML:
    return w.HTML(f"<h3 style='margin:0.6em 0 0.2em'>{html.escape(text)}</h3>")


def _image(data: bytes, width: str = "") -> w.Image:
    layout = w.Layout(max_width=width or "100%", height="auto")
    return w.Image(value=data, format="png", layout=layout)


def _figures(
    run_dir: Path, prefix: str, *, skip: tuple[str, ...] = (), width: str = "420px"
) -> list[w.Widget]:
    """The figures a notebook saved in `<run_dir>/figures/` (`04_confusion.png`...), captioned
    (those named in `skip` left out)."""
    folder = run_dir / "figures"
    shown = []
    for path in sorted(folder.glob(f"{prefix}*.png")) if folder.is_dir() else []:
        if path.stem in skip:
            continue
        caption = w.HTML(f"<small style='{NOTE}'>{html.escape(path.stem)}</small>")
        shown.append(w.VBox([_image(path.read_bytes(), width), caption]))
    return [w.HBox(shown, layout=w.Layout(flex_flow="row wrap"))] if shown else []


def no_run_dir(run_dir: Path) -> str:
    """What the page says when the run directory does not exist (a fresh clone): make one."""
    return (
        f"<b>No run directory at <code>{html.escape(display_path(run_dir))}</code> yet.</b><br>"
        "Make one with <code>make run</code>: every notebook in order on the full profile, into "
        "<code>runs/latest</code> (<code>python -m workbench run --profile smoke</code> is the "
        "quick one). Then reload this page.<br>"
        "Or show another run directory: <code>workbench classroom --run-dir DIR</code>."
    )


def make_hint(what: str, notebook: str) -> str:
    """How to make `what`: `make run` (every notebook) or the notebook that makes it (HTML)."""
    return (
        f"<b>Not in this run directory yet:</b> {html.escape(what)}.<br>"
        f"Make it with <code>make run</code> (every notebook, into <code>runs/latest</code>), or "
        f"run <code>notebooks/{notebook}.ipynb</code> (<code>make lab</code>) with "
        f"<code>run_dir</code> set to this folder; then reload this page."
    )


def text_of(widget: w.Widget) -> str:
    """Every text a widget tree shows (HTML, labels, button and control descriptions, the
    values of dropdowns) as plain text, for tests and for reading a page headless."""
    text = re.sub(r"<br\s*/?>", "\n", _markup(widget))
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _markup(widget: w.Widget) -> str:
    parts = []
    if isinstance(widget, w.HTML | w.Label | w.HTMLMath):
        parts.append(widget.value)
    if isinstance(widget, w.Button):
        parts.append(widget.description)
    if isinstance(widget, w.Dropdown) and widget.label is not None:
        parts.append(f"{widget.description}: {widget.label}")
    for child in getattr(widget, "children", ()):
        parts.append(_markup(child))
    if isinstance(widget, w.Tab):
        parts[:0] = widget.titles
    return "\n".join(p for p in parts if p)


# ---- the pages -------------------------------------------------------------------------------


@dataclass
class Page:
    """One tab: its widget, the stage widgets on it by name, and what it lacked (if anything)."""

    key: str
    widget: w.VBox
    views: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None

    @property
    def text(self) -> str:
        return text_of(self.widget)


class _Reader:
    """The run directory's artifacts, each read once, a clear `Missing` when absent."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.index = read_index(run_dir) if run_dir.is_dir() else {}
        self._cache: dict[str, Any] = {}

    def _once(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def card(self):
        from workbench.identify import CARD_FILE, load_card

        if not (self.dir / CARD_FILE).is_file():
            raise Missing(f"the problem card ({CARD_FILE.as_posix()}) of stage 1", "01_identify")
        return self._once("card", lambda: load_card(self.dir))

    def spec(self):
        from workbench.design import load_spec
        from workbench.design.spec import SPEC_FILE

        if not self.index.get("design") or not (self.dir / SPEC_FILE).is_file():
            raise Missing(f"the model spec ({SPEC_FILE.as_posix()}) of stage 2", "02_design")
        return self._once("spec", lambda: load_spec(self.dir))

    def version(self):
        from workbench.data import load_version

        if not self.index.get("data"):
            raise Missing("a data set version (data/<version>/) of stage 3", "03_data")
        return self._once("version", lambda: load_version(self.dir))

    def train_runs(self) -> list[Path]:
        folder = self.dir / "train"
        found = sorted(folder.iterdir()) if folder.is_dir() else []
        runs = [p for p in found if (p / "metrics.json").is_file()]
        if not runs:
            raise Missing("a trained model (train/<run>/metrics.json) of stage 4", "04_train")
        return runs

    def registry(self, notebook: str) -> None:
        """Missing unless the tracking store exists (reading a new one would create it)."""
        from workbench import tracking

        uri = tracking.tracking_uri()
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            db = display_path(uri.removeprefix("sqlite:///"))
            raise Missing(f"the model registry ({db})", notebook)


def _run_page(reader: _Reader) -> list[w.Widget]:
    from workbench.plots.pipeline import where_am_i

    where = display_path(reader.dir)
    rows = []
    for key, (title, notebook) in PAGES.items():
        if key == "run":
            continue
        current = reader.index.get(key)
        if key in ARTIFACTS:
            current = ARTIFACTS[key] if (reader.dir / ARTIFACTS[key]).is_file() else None
        made = f"notebooks/{notebook}.ipynb" + ("" if current else " (not run)")
        rows.append({"tab": title, "current": current or "-", "made by": made})
    shown = [
        _html(
            f"Run directory <code>{html.escape(where)}</code>. Each tab reads what its stage "
            "left here when the tab is first opened; nothing is trained, registered or "
            "started by opening one."
        ),
        _table(rows),
        _image(png(where_am_i(None, run_dir=reader.dir), dpi=80), "900px"),
    ]
    if (reader.dir / "index.html").is_file():
        report = display_path(reader.dir / "index.html")
        shown.append(_html(f"The run report (offline pages): <code>{html.escape(report)}</code>"))
    return shown


def _identify_page(reader: _Reader, page: Page) -> list[w.Widget]:
    from workbench.widgets.identify import DATASETS, ProblemView

    card = reader.card()
    reasoning = "<br>".join(html.escape(line) for line in card.reasoning().splitlines())
    shown = [_heading("The run's problem card"), _pre(repr(card)), _html(reasoning)]
    shown += _figures(reader.dir, "01_")
    choice = {"modality": card.modality, "dataset": card.dataset, "task": card.task}
    if card.dataset not in DATASETS.get(card.modality, ()):
        choice = {}  # a file or download: the view offers the offline sources
    view = page.views["identify"] = ProblemView(**choice)
    shown += [
        _heading("Try other choices"),
        _html(
            "Pick a modality, data set and task: the card and its reasoning update here; the "
            "run directory is not changed.",
            NOTE,
        ),
        view.widget,
    ]
    return shown


def _design_page(reader: _Reader, page: Page) -> list[w.Widget]:
    from workbench.design import list_presets, summarize
    from workbench.widgets.design import DesignView

    spec, card = reader.spec(), reader.card()  # its own artifact first: its notebook named
    cost = summarize(spec, card)
    shown = [_heading(f"The run's model spec: {spec.name}"), _pre(repr(spec))]
    shown.append(_html(f"<b>{cost.params:,}</b> parameters, <b>{cost.macs:,}</b> multiply-adds "
                       "per example."))  # fmt: skip
    names = list_presets(card)
    view = page.views["design"] = DesignView(
        card, preset_name=spec.name if spec.name in names else names[0]
    )
    shown += [
        _heading("Explore presets"),
        _html(
            "Change the preset, width, blocks or embedding: the parameter count and the "
            "diagram update at once (nothing is built or trained).",
            NOTE,
        ),
        view.widget,
    ]
    return shown


def _data_page(reader: _Reader, page: Page) -> list[w.Widget]:
    from workbench.widgets.data import DataReportView, SampleGrid

    version, card = reader.version(), reader.card()
    m = version.manifest
    counts = [
        {"split": s, "rows": m["sizes"][s],
         **{c: m["class_counts"][s].get(c, 0) for c in version.class_names[:12]}}
        for s in ("train", "val", "test") if "class_counts" in m and s in m["sizes"]
    ]  # fmt: skip
    shown = [_heading(f"Data set version {version.id}"), _pre(repr(version))]
    shown.append(_table(counts) if counts else _pre(f"sizes: {m['sizes']}"))
    x, y = version.split("train")
    if card.modality == "image" and version.class_names:
        view = page.views["samples"] = SampleGrid(x, y, version.class_names)
        shown += [_heading("Training samples"), _html("Pick a class.", NOTE), view.widget]
    report = page.views["report"] = DataReportView(version.report())
    shown += [_heading("The data report (every split)"), report.widget]
    return shown


def _train_page(reader: _Reader, page: Page) -> list[w.Widget]:
    from workbench.plots.train import plot_history
    from workbench.train import history_from_rows

    runs = {p.name: p for p in reader.train_runs()}
    current = reader.index.get("train")
    picked = w.Dropdown(
        options=list(runs), value=current if current in runs else next(iter(runs)),
        description="run", layout=w.Layout(width="max-content"),
    )  # fmt: skip
    details, curves = w.HTML(), _image(b"", "720px")

    def show(_change=None) -> None:
        folder = runs[picked.value]
        metrics = read_json(folder / "metrics.json")
        rows = [("run", metrics.get("run_id", folder.name)), ("selected", metrics.get("selected")),
                ("epochs run", metrics.get("epochs_run")),
                ("data version", metrics.get("data_version")),
                ("spec", (metrics.get("spec") or {}).get("name"))]  # fmt: skip
        rows += [(f"test {k}", f"{v:.4f}") for k, v in (metrics.get("test") or {}).items()]
        rows += [(k, f"{v:.4f}") for k, v in (metrics.get("validation") or {}).items()]
        if metrics.get("seconds") is not None:
            rows.append(("training time", f"{metrics['seconds']:.0f} s"))
        if (folder / "retrain.json").is_file():
            start = read_json(folder / "retrain.json")
            rows.append(("started", f"{start.get('kind')} from run {start.get('champion_run')}"))
        mark = " (the run directory's current run)" if picked.value == current else ""
        table = format_table([{"": k, "value": str(v)} for k, v in rows])
        details.value = f"<pre style='{PRE}'>{html.escape(table)}</pre><i>{html.escape(mark)}</i>"
        history = folder / "history.json"
        curves.value = b""
        if history.is_file():
            hist = history_from_rows(read_json(history))
            best = metrics.get("best_epoch")
            curves.value = png(plot_history(hist, best_epoch=best, title=folder.name))

    picked.observe(show, names="value")
    show()
    page.views["train"] = picked
    shown = [_heading("Training runs"), _html("Pick a run: its numbers and learning curves.", NOTE)]
    shown += [picked, details, curves]
    figures = _figures(reader.dir, "04_", skip=("04_curves", "04_runs"))
    if figures:
        shown += [_heading("Figures of notebook 04 (the current run)"), *figures]
    return shown


class ServiceControl:
    """Start and stop buttons for `workbench serve NAME@champion` on loopback (stage 5's REST
    service), and the registry view whose test request goes to it while it runs."""

    def __init__(self, name: str, log: Path, example: Any, about: str = "a test image") -> None:
        from workbench.widgets.deploy import RegistryView

        self.name, self.log, self.example, self.about = name, log, example, about
        self.service = None
        self.view = RegistryView(name, example=example)
        self._start = w.Button(
            description=f"Start the service: workbench serve {name}@champion on 127.0.0.1",
            icon="play", layout=w.Layout(width="auto"),
            tooltip="starts a REST service process on a free loopback port (a few seconds)",
        )  # fmt: skip
        self._stop = w.Button(
            description="Stop the service", icon="stop", disabled=True,
            layout=w.Layout(width="auto"),
        )  # fmt: skip
        self._start.on_click(lambda _: self.start())
        self._stop.on_click(lambda _: self.stop())
        self._status = w.HTML(
            f"<span style='{NOTE}'>No service running: the test request needs one.</span>"
        )
        self._slot = w.VBox([self.view.widget])
        self.widget = w.VBox([self._slot, w.HBox([self._start, self._stop]), self._status])
        atexit.register(self.stop)  # the kernel ends (page closed): the service ends with it

    def _show(self, url: str | None) -> None:
        from workbench.widgets.deploy import RegistryView

        old, self.view = self.view, RegistryView(self.name, url=url, example=self.example)
        self._slot.children = (self.view.widget,)
        old.close()

    def start(self) -> str:
        """Start the service (one at a time) and point the test request at it."""
        from workbench.deploy import launch

        if self.service is not None and self.service.running:
            return self._say(f"Already serving at {self.service.url}.")
        self._start.disabled = True
        self._say(f"Starting workbench serve {self.name}@champion (loading the model)...")
        try:
            self.service = launch.start(f"{self.name}@champion", log=self.log)
        except Exception as e:  # a button shows the error instead of raising it
            self._start.disabled = False
            return self._say(f"{type(e).__name__}: {e}", error=True)
        self._stop.disabled = False
        self._show(self.service.url)
        return self._say(
            f"Serving {self.name}@champion at {self.service.url} (log: "
            f"{display_path(self.log)}). Press 'test request' to send it {self.about}."
        )

    def stop(self) -> str:
        """Stop the service (SIGTERM: requests in flight finish) if one runs."""
        if self.service is None:
            return "No service running."
        code, self.service = self.service.stop(), None
        self._start.disabled, self._stop.disabled = False, True
        self._show(None)
        return self._say(f"The service stopped (exit code {code}).")

    def _say(self, text: str, *, error: bool = False) -> str:
        self._status.value = f"<code style='{ERROR if error else ''}'>{html.escape(text)}</code>"
        return text


def _deploy_page(reader: _Reader, page: Page) -> list[w.Widget]:
    ref = reader.index.get("deploy")
    if not ref:
        raise Missing("a registered model (index.json 'deploy') of stage 5", "05_deploy")
    reader.registry("05_deploy")
    name = str(ref).split("/")[0]
    example, about = None, "a test example"
    if reader.index.get("data"):
        version = reader.version()
        x_test, y_test = version.split("test")
        example = x_test[0]
        if version.class_names and version.task in ("binary", "multiclass"):
            about = f"the first test example (true class {version.class_names[int(y_test[0])]})"
    log = reader.dir / "deploy" / "classroom-service.log"
    control = ServiceControl(name, log, example, about)
    page.views["service"] = control
    page.views["registry"] = control.view
    shown = [
        _heading(f"The registry: {name}"),
        _html(
            f"The run registered <code>{html.escape(str(ref))}</code>. Promote and rollback "
            "move the champion alias in the registry, as in notebook 05; the test request "
            "asks the running service.",
            NOTE,
        ),
        control.widget,
    ]
    train = reader.index.get("train")
    export = reader.dir / "deploy" / str(train) / "export.json"
    if train and export.is_file():
        data = read_json(export)
        diffs = data.get("checks", {}).get("max_abs_diff", {})
        rows = [{"": "formats", "value": ", ".join(data.get("formats", {}))}]
        if diffs:
            rows.append(
                {"": "largest difference from Keras", "value": f"{max(diffs.values()):.1e}"}
            )
        shown += [_heading(f"The export of {train}"), _table(rows)]
    shown += _figures(reader.dir, "05_")
    return shown


def _production_page(reader: _Reader, page: Page) -> list[w.Widget]:
    from workbench.deploy import registry
    from workbench.deploy.export import model_name
    from workbench.errors import ServingError

    what = "the production model (<data source>-production in the registry)"
    if not reader.index.get("data"):
        raise Missing(what, "06_production")
    reader.registry("06_production")
    name = f"{model_name(reader.version())}-production"
    try:
        versions = registry.list_versions(name)
    except ServingError as e:
        raise Missing(f"the production model {name!r} in the registry", "06_production") from e
    if not versions:
        raise Missing(f"a version of the production model {name!r}", "06_production")
    rows = registry.compare(name)
    keep = ("version", "aliases", "gate", "data version", "train run")
    table = [{k: v for k, v in r.items() if k in keep or k.startswith("test.")} for r in rows]
    by_version = {v.version: v for v in versions}
    champion = next((v.version for v in versions if "champion" in v.aliases), versions[-1].version)
    picked = w.Dropdown(
        options=list(by_version), value=champion, description="version",
        layout=w.Layout(width="max-content"),
    )  # fmt: skip
    lineage = w.HTML()

    def show(_change=None) -> None:
        v = by_version[picked.value]
        lin, gate = v.lineage, v.lineage.get("gate", {})
        rows = [("aliases", ", ".join(v.aliases) or "-"), ("registered", lin.get("registered")),
                ("train run", lin.get("train_run")), ("data version", lin.get("data_version")),
                ("spec", lin.get("spec")), ("gate", gate.get("decision", "not gated")),
                ("gate accuracy", gate.get("accuracy", "-")),
                ("against champion", gate.get("champion") or "-")]  # fmt: skip
        retrain = reader.dir / "train" / str(lin.get("train_run")) / "retrain.json"
        if retrain.is_file():
            start = read_json(retrain)
            how = f"{start.get('kind')} start from run {start.get('champion_run')}"
            rows.append(("trained", f"{how}, data {start.get('data_version')}"))
        text = format_table([{"": k, "value": str(val)} for k, val in rows])
        reasons = gate.get("reasons")
        if reasons:
            try:
                text += "\n\nwhy:\n" + "\n".join(f"  {r}" for r in json.loads(reasons))
            except ValueError:
                text += f"\n\nwhy: {reasons}"
        lineage.value = f"<pre style='{PRE}'>{html.escape(text)}</pre>"

    picked.observe(show, names="value")
    show()
    page.views["production"] = picked
    return [
        _heading(f"The production model: {name}"),
        _html(
            "What the production loop of notebook 06 left in the registry: every version, "
            "its QA gate decision and lineage (the live loop and its rollback button are "
            "in notebook 06).",
            NOTE,
        ),
        _table(table),
        _heading("Lineage of one version"),
        picked,
        lineage,
    ]


def _amalgam_page(reader: _Reader, page: Page) -> list[w.Widget]:
    import numpy as np

    from workbench.amalgam import ood
    from workbench.amalgam.model import attribute_names, check_card
    from workbench.amalgam.pipeline import load_pipeline
    from workbench.errors import ParameterError
    from workbench.widgets.amalgam import AmalgamView

    config = reader.dir / "amalgam" / "pipeline.json"
    if not config.is_file():
        raise Missing("the amalgam's serving pipeline (amalgam/pipeline.json)", "07_amalgamation")
    card, version = reader.card(), reader.version()
    try:
        check_card(card)
    except ParameterError as e:
        return [_html(html.escape(str(e)), ERROR)]
    served = load_pipeline(config)
    x_test, y_test = version.split("test")
    pick = np.unique(np.linspace(0, len(y_test) - 1, SAMPLES).astype(int))  # spread: some sorted
    x_test, y_test = np.asarray(x_test[pick], np.float32), np.asarray(y_test[pick])
    if x_test.ndim == 3:
        x_test = x_test[..., None]
    patches = ood.patches(
        len(x_test), card.input_shape[0], seed=0, match_mean=ood.mean_intensity(x_test),
        value_range=(0.0, float(version.transform.scale)),
    )  # fmt: skip
    view = page.views["amalgam"] = AmalgamView(
        served,
        {"test digits": x_test, "photo patches": patches},
        labels={"test digits": y_test},
        class_names=card.class_names,
        attribute_names=attribute_names(card),
        pair="pair" if "pair" in served.functions else None,
    )
    shown = [
        _heading("One image, every task of the served pipeline"),
        _html(
            "Pick the source and an image: the pipeline of amalgam/pipeline.json (the objects "
            "the service runs, loaded here) answers every task at once; photo patches should "
            "raise the out-of-distribution score.",
            NOTE,
        ),
        view.widget,
    ]
    return shown + _figures(reader.dir, "07_", width="900px")


_BUILDERS: dict[str, Callable[[_Reader, Page], list[w.Widget]]] = {
    "identify": _identify_page,
    "design": _design_page,
    "data": _data_page,
    "train": _train_page,
    "deploy": _deploy_page,
    "production": _production_page,
    "amalgam": _amalgam_page,
}


# ---- the dashboard ---------------------------------------------------------------------------


class Dashboard(View):
    """Tabs over a run directory: "Run" (what it holds), the five stages, the production loop
    and the amalgamation. A tab is read when first opened (`page(key)` reads it headless)."""

    def __init__(self, run_dir: str | Path | None = None, *, lazy: bool = True) -> None:
        self.pages: dict[str, Page] = {}
        self.controls = {}
        self._slots = {key: w.VBox([w.HTML(f"<i style='{NOTE}'>Reading...</i>")]) for key in PAGES}
        self._root = w.Tab(
            children=list(self._slots.values()), titles=[t for t, _ in PAGES.values()]
        )
        try:
            self.run_dir: Path | None = resolve_run_dir(run_dir)
        except WorkbenchError as e:  # e.g. run_dir names a file: said on the page
            self.run_dir, self._reader = None, None
            message = _html(
                f"{html.escape(str(e))}<br>Show a run directory: <code>workbench classroom "
                "--run-dir DIR</code>, or make one with <code>make run</code>."
            )
            self._slots["run"].children = (message,)
            self.pages["run"] = Page("run", self._slots["run"], missing=str(e))
        else:
            self._reader = _Reader(self.run_dir)
            self.page("run")
        self._root.observe(self._on_tab, names="selected_index")
        self._root.selected_index = 0
        if not lazy:
            for key in PAGES:
                self.page(key)

    @property
    def keys(self) -> list[str]:
        return list(PAGES)

    @property
    def text(self) -> str:
        """Every text the dashboard shows now (tabs not opened yet show 'Reading...')."""
        return text_of(self._root)

    def _on_tab(self, change: dict) -> None:
        if change["new"] is not None:
            self.page(self.keys[change["new"]])

    def select(self, key: str) -> Page:
        """Open tab `key` as a user would (reading it if it is new)."""
        self._root.selected_index = self.keys.index(key)
        return self.page(key)

    def page(self, key: str) -> Page:
        """Tab `key`, read from the run directory on first use; what it lacks is said on it."""
        if key in self.pages:
            return self.pages[key]
        slot = self._slots[key]
        page = self.pages[key] = Page(key, slot)
        if self._reader is None or not self._reader.dir.is_dir():
            page.missing = "the run directory"
            slot.children = (
                self._slots["run"].children
                if self._reader is None
                else (_html(no_run_dir(self._reader.dir)),)
            )
            return page
        try:
            build = _BUILDERS.get(key)
            children = build(self._reader, page) if build else _run_page(self._reader)
        except Missing as e:
            what, notebook = e.args
            page.missing = what
            children = [_html(make_hint(what, notebook))]
        except Exception as e:  # a page says what went wrong instead of raising it
            page.missing = f"{type(e).__name__}: {e}"
            notebook = PAGES[key][1]
            children = [
                _html(f"This tab could not be read from the run directory: "
                      f"{html.escape(type(e).__name__)}: {html.escape(str(e))}", ERROR),
                _html(f"Running notebooks/{notebook}.ipynb again (or <code>make run</code>) "
                      "makes its artifacts anew.", NOTE),
            ]  # fmt: skip
        slot.children = tuple(children)
        return page

    def close(self) -> None:
        for page in self.pages.values():
            service = page.views.get("service")
            if service is not None:
                service.stop()
        super().close()


def dashboard(run_dir: str | Path | None = None, *, lazy: bool = True) -> Dashboard:
    """The classroom dashboard over `run_dir` (default: $WORKBENCH_RUN_DIR, else runs/latest)."""
    return Dashboard(run_dir, lazy=lazy)


# ---- the command -----------------------------------------------------------------------------


def voila_command(
    *,
    port: int = DEFAULT_PORT,
    cull_seconds: int = CULL_SECONDS,
    voila_args: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The Voilà command line serving classroom/dashboard.ipynb on 127.0.0.1:`port` with this
    environment's kernel (no browser opened, no code shown). The kernel of a closed page ends
    `cull_seconds` later (and with it a service its button started); all end with Voilà."""
    from workbench.runner import use_environment_kernel

    use_environment_kernel()
    return [
        sys.executable,
        "-m",
        "voila",
        str(repo_root() / NOTEBOOK),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--strip_sources=True",
        f"--MappingKernelManager.cull_idle_timeout={cull_seconds}",
        f"--MappingKernelManager.cull_interval={min(60, cull_seconds)}",
        *_encryption(),
        *voila_args,
    ]


def _encryption() -> list[str]:
    """CurveZMQ between Voilà and its kernels where jupyter_client and pyzmq offer it (as the
    notebook runner does), so ipykernel does not warn of plain TCP on every page."""
    import zmq
    from jupyter_client.manager import KernelManager

    if "transport_encryption" not in KernelManager.class_trait_names() or not zmq.has("curve"):
        return []
    return ["--KernelManager.transport_encryption=auto"]


def serve_dashboard(
    run_dir: str | Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    voila_args: list[str] | tuple[str, ...] = (),
) -> None:
    """Replace this process with Voilà serving the dashboard over `run_dir` (its kernels read
    it from $WORKBENCH_RUN_DIR)."""
    path = resolve_run_dir(run_dir)
    os.environ[RUN_DIR_ENV] = str(path)
    cmd = voila_command(port=port, voila_args=voila_args)
    print(f"Classroom dashboard over {display_path(path)}: http://127.0.0.1:{port}/", flush=True)
    os.execv(cmd[0], cmd)
