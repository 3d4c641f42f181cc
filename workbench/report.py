"""The run report: `<run_dir>/index.html` and every executed notebook as an HTML page.

`make run` ends by writing it and `workbench report` rewrites it, so a run can be read in a
browser without Jupyter. It opens from the file system without a network: the index links its
pages and figures by relative paths, the pages embed their images and load no script from a
CDN (no require.js, MathJax, Mermaid or widget manager; interactive widgets show their text).
The index shows, per notebook in order, its status (a failed one as failed, with its error),
its duration, its figures and a few numbers its stage left in the run directory.
"""

from __future__ import annotations

import copy
import html
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from workbench.config import read_index
from workbench.errors import ParameterError
from workbench.files import atomic_write_text, read_json
from workbench.stages import STAGES
from workbench.teaching import STATED_MIMETYPE, tags

INDEX_HTML = "index.html"
REPORT_DIR = "report"  # <run_dir>/report/<notebook>.html
ERROR_ANCHOR = "papermill-error-cell"  # papermill marks the failing cell with this id
OFFLINE_NOTE = "Opens offline: interactive widgets show their text, not their controls."

# nbconvert's lab template without what it loads from CDNs: require.js, the widget manager,
# MathJax and Mermaid (the notebooks have no formulas nor diagrams). Each page says so and
# links back to the index.
_PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block body_header %}{{ super() }}
<p style="margin: 0.5em 1em; font: 0.9em sans-serif; color: #555">
<a href="../index.html">&larr; run report</a> &middot; {{ resources.note | e }}</p>
{% endblock body_header %}
"""

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin: 0; }
.note, .meta { color: #555; }
section { border: 1px solid #ddd; border-left: 6px solid #2a7; border-radius: 4px;
          padding: 0.8em 1em; margin: 1em 0; }
section.failed { border-left-color: #c33; }
section.unfinished { border-left-color: #d90; }
.status { font-size: 0.8em; padding: 0.1em 0.5em; border-radius: 3px; color: #fff;
          background: #2a7; vertical-align: middle; }
.status.failed { background: #c33; }
.status.unfinished { background: #d90; }
.error { color: #a00; font-family: monospace; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 0.6em 0; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; }
figure img { max-width: 22em; max-height: 16em; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
"""


@dataclass
class NotebookSummary:
    """What the index shows of one executed notebook."""

    path: Path
    title: str
    status: str  # "ok", "failed" or "unfinished" (papermill recorded no end)
    error: str  # the failing cell's error, when failed
    seconds: float | None
    profile: str | None
    figures: list[str]  # file names in <run_dir>/figures
    metrics: list[tuple[str, str]]  # (what, value) rows of its stage's numbers


def _title(nb: Any, name: str) -> str:
    """The notebook's first Markdown heading, else its name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return name


def _status(nb: Any) -> tuple[str, str]:
    """(status, error): failed when papermill flagged an exception or a cell not tagged
    `raises-exception` holds an error output; unfinished when papermill recorded no end time."""
    papermill = nb.metadata.get("papermill", {})
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error" and "raises-exception" not in tags(cell):
                where = f"cell In [{cell.execution_count}]: " if cell.execution_count else ""
                return "failed", f"{where}{out.ename}: {out.evalue}"
    if papermill.get("exception"):
        return "failed", ""
    return ("unfinished" if papermill.get("end_time") is None else "ok"), ""


def _seconds(nb: Any) -> float | None:
    """Papermill's duration of the notebook, else the sum of its cells' durations (a run
    stopped before papermill wrote its end), else None."""
    total = nb.metadata.get("papermill", {}).get("duration")
    if total is None:
        cells = [c.metadata.get("papermill", {}).get("duration") for c in nb.cells]
        total = sum(c for c in cells if c) if any(cells) else None
    return total


def _profile(nb: Any) -> str | None:
    """The profile the notebook was executed with (its papermill parameters)."""
    return nb.metadata.get("papermill", {}).get("parameters", {}).get("profile")


def _json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} when there is none."""
    return read_json(path) if path.is_file() else {}


def _identify_metrics(run_dir: Path, index: dict[str, Any]) -> list[tuple[str, str]]:
    card = _json(run_dir / "problem" / "card.json")
    if not card:
        return []
    rows = [("data set", str(card.get("dataset"))), ("task", str(card.get("task")))]
    if card.get("input_shape"):
        rows.append(("input shape", " × ".join(map(str, card["input_shape"]))))
    if base := card.get("baseline"):
        rows.append((f"baseline {base['metric']}", f"{base['value']:.3f} ({base['predictor']})"))
    return rows


def _design_metrics(run_dir: Path, index: dict[str, Any]) -> list[tuple[str, str]]:
    spec = _json(run_dir / "design" / "spec.json")
    return [("model spec", f"{spec.get('name')} ({index.get('design')})")] if spec else []


def _data_metrics(run_dir: Path, index: dict[str, Any]) -> list[tuple[str, str]]:
    manifest = _json(run_dir / "data" / str(index.get("data")) / "manifest.json")
    if not manifest:
        return []
    sizes = manifest.get("sizes", {})
    rows = " · ".join(
        f"{split} {sizes[split]}" for split in ("train", "val", "test") if split in sizes
    )
    return [("version", str(manifest.get("id"))), ("source", str(manifest.get("source"))),
            ("rows", rows)]  # fmt: skip


def _train_metrics(run_dir: Path, index: dict[str, Any]) -> list[tuple[str, str]]:
    metrics = _json(run_dir / "train" / str(index.get("train")) / "metrics.json")
    if not metrics:
        return []
    rows = [("run", str(metrics.get("run_id"))), ("selected", str(metrics.get("selected")))]
    rows += [(f"test {name}", f"{value:.4f}") for name, value in metrics.get("test", {}).items()]
    if metrics.get("seconds") is not None:
        rows.append(("training time", f"{metrics['seconds']:.0f} s"))
    return rows


def _deploy_metrics(run_dir: Path, index: dict[str, Any]) -> list[tuple[str, str]]:
    export = _json(run_dir / "deploy" / str(index.get("train")) / "export.json")
    rows = [("registered version", str(index["deploy"]))] if index.get("deploy") else []
    if export:
        diffs = export.get("checks", {}).get("max_abs_diff", {})
        rows.append(("formats", ", ".join(export.get("formats", {}))))
        if diffs:
            rows.append(("largest difference from Keras", f"{max(diffs.values()):.1e}"))
        latency = export.get("latency_ms", {})
        one = [f"{fmt} {ms['1']:.2f} ms" for fmt, ms in latency.items() if "1" in ms]
        if one:
            rows.append(("latency of one row", " · ".join(one)))
    return rows


# A stage's numbers, read from the run directory's current versions (index.json).
_METRICS: dict[str, Callable[[Path, dict[str, Any]], list[tuple[str, str]]]] = {
    "identify": _identify_metrics,
    "design": _design_metrics,
    "data": _data_metrics,
    "train": _train_metrics,
    "deploy": _deploy_metrics,
}
_STAGE_OF = {s.notebook: s.key for s in STAGES}


def _figures(run_dir: Path, names: list[str]) -> dict[str, list[str]]:
    """The figures of each notebook: those named after its number (`04_curves.png`); the
    unnumbered ones (fig1-fig3 of the pipeline) belong to the overview, notebook 00."""
    found: dict[str, list[str]] = {name: [] for name in names}
    by_number = {name[:2]: name for name in names}
    for png in sorted((run_dir / "figures").glob("*.png")):
        number = png.name[:2] if png.name[:2].isdigit() and png.name[2:3] == "_" else "00"
        if number in by_number:
            found[by_number[number]].append(png.name)
    return found


def _check_run_dir(run_dir: Path, notebooks: list[Path] | None) -> list[Path]:
    """The executed notebooks to report, or a ParameterError saying what a run directory is."""
    expected = "a run directory (a folder with the executed notebooks in notebooks/, as "
    expected += f"`workbench run` makes), got {run_dir}"
    if not run_dir.is_dir():
        raise ParameterError(f"Run report: expected {expected}, which is no folder.")
    if notebooks is None:
        notebooks = sorted((run_dir / "notebooks").glob("*.ipynb"))
        if not notebooks:
            raise ParameterError(
                f"Run report: expected {expected}, which has no notebooks/*.ipynb."
            )
    missing = [str(p) for p in notebooks if not Path(p).is_file()]
    if missing:
        raise ParameterError(f"Run report: executed notebook(s) not found: {missing}.")
    return [Path(p) for p in notebooks]


def _for_html(nb: Any) -> Any:
    """A copy without what a page cannot show offline: the widgets' saved state (so each widget
    shows its text) and the numbers `teaching.state` records for tests (JupyterLab hides them)."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if set(o.get("data", {})) != {STATED_MIMETYPE}]
    return nb


def _exporter() -> Any:
    """nbconvert's HTML exporter on the offline page template, images embedded; its warning
    of images without alt text (every matplotlib output) is not for the reader."""
    from nbconvert import HTMLExporter

    log = logging.getLogger(f"{__name__}.nbconvert")
    log.setLevel(logging.ERROR)
    return HTMLExporter(
        template_name="lab", raw_template=_PAGE_TEMPLATE, embed_images=True, log=log
    )


_NOTEBOOK_LINK = re.compile(r'href="([^"/:#]+)\.ipynb(#[^"]*)?"')


def _write_page(exporter: Any, nb: Any, out: Path, pages: set[str]) -> Path:
    """Write the executed notebook `nb` as one self-contained, offline HTML page at `out`.

    A link to another notebook (`02_design.ipynb`) goes to its page among `pages`, else (the
    run did not execute it) to the index.
    """
    resources = {"metadata": {"name": out.stem}, "note": OFFLINE_NOTE}
    body, _ = exporter.from_notebook_node(_for_html(nb), resources=resources)

    def link(match: re.Match[str]) -> str:
        page = f"{match[1]}.html{match[2] or ''}" if match[1] in pages else f"../{INDEX_HTML}"
        return f'href="{page}"'

    return atomic_write_text(out, _NOTEBOOK_LINK.sub(link, body))


def _href(path: str) -> str:
    """A relative path as an attribute value: URL-quoted, then HTML-escaped."""
    return html.escape(quote(path))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "duration unknown"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _section(run_dir: Path, summary: NotebookSummary) -> str:
    """One notebook's part of the index."""
    esc, name = html.escape, summary.path.stem
    page = f"{REPORT_DIR}/{name}.html"
    executed = Path(os.path.relpath(summary.path, run_dir)).as_posix()
    parts = [
        f'<section id="{esc(name)}" class="{summary.status}">',
        f'<h2><a href="{_href(page)}">{esc(summary.title)}</a> '
        f'<span class="status {summary.status}">{summary.status}</span></h2>',
        f'<p class="meta">{esc(summary.path.name)} &middot; {_duration(summary.seconds)} &middot; '
        f'<a href="{_href(executed)}">executed notebook</a></p>',
    ]
    if summary.status == "failed":
        parts.append(
            f'<p class="error">{esc(summary.error or "papermill recorded an exception")} '
            f'&middot; <a href="{_href(page)}#{ERROR_ANCHOR}">traceback</a></p>'
        )
    if summary.metrics:
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary.metrics)
        parts.append(f"<table>{rows}</table>")
    if summary.figures:
        figures = "".join(
            f'<figure><a href="{_href("figures/" + f)}"><img src="{_href("figures/" + f)}" '
            f'alt="{esc(f)}" loading="lazy"></a><figcaption>{esc(f)}</figcaption></figure>'
            for f in summary.figures
        )
        parts.append(f'<div class="figures">{figures}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def _index_page(run_dir: Path, summaries: list[NotebookSummary]) -> str:
    """The whole index.html: a header, a summary table, then one section per notebook."""
    esc = html.escape
    profiles = ", ".join(sorted({s.profile for s in summaries if s.profile})) or "unknown"
    title = f"Run {run_dir.resolve().name} · profile {profiles}"
    known = [s.seconds for s in summaries if s.seconds is not None]
    not_ok = [f"{s.path.stem} {s.status}" for s in summaries if s.status != "ok"]
    verdict = ", ".join(not_ok) if not_ok else "all ok"
    rows = "".join(
        f'<tr><td><a href="#{esc(s.path.stem)}">{esc(s.path.stem)}</a></td>'
        f'<td><span class="status {s.status}">{s.status}</span></td>'
        f"<td>{_duration(s.seconds)}</td></tr>"
        for s in summaries
    )
    sections = "\n".join(_section(run_dir, s) for s in summaries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="note">{len(summaries)} notebook(s), {esc(verdict)}, {_duration(sum(known))} in all.
The numbers are those of each stage's current version (index.json). {esc(OFFLINE_NOTE)}</p>
<table><tr><th>notebook</th><th>status</th><th>duration</th></tr>{rows}</table>
{sections}
</body>
</html>
"""


def write_report(run_dir: str | Path, *, notebooks: list[Path] | None = None) -> Path:
    """Write `<run_dir>/index.html` and `<run_dir>/report/<name>.html` per executed notebook.

    `notebooks` are the executed notebooks, in order (default: `<run_dir>/notebooks/*.ipynb`).
    Returns the index's path. A folder that is not a run directory is a ParameterError.
    Rewriting is safe: every file is replaced atomically, an open page stays whole.
    """
    import nbformat

    run_dir = Path(run_dir)
    paths = _check_run_dir(run_dir, notebooks)
    index = read_index(run_dir)
    figures = _figures(run_dir, [p.stem for p in paths])
    exporter, pages, summaries = _exporter(), {p.stem for p in paths}, []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        _write_page(exporter, nb, run_dir / REPORT_DIR / f"{path.stem}.html", pages)
        status, error = _status(nb)
        stage = _STAGE_OF.get(path.stem)
        summaries.append(
            NotebookSummary(
                path=path,
                title=_title(nb, path.stem),
                status=status,
                error=error,
                seconds=_seconds(nb),
                profile=_profile(nb),
                figures=figures[path.stem],
                metrics=_METRICS[stage](run_dir, index) if stage else [],
            )
        )
    return atomic_write_text(run_dir / INDEX_HTML, _index_page(run_dir, summaries))
