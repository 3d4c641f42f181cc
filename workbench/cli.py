"""`workbench run | report | batch | notebooks | student | lab | serve` (or python -m workbench)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workbench.errors import WorkbenchError

# JupyterLab's first start asks whether to fetch Jupyter news; a classroom wants calm.
LAB_OVERRIDES = (
    '{"@jupyterlab/apputils-extension:notification": '
    '{"fetchNews": "false", "checkForUpdates": false}}\n'
)


def _run(args: argparse.Namespace) -> int:
    from workbench import runner
    from workbench.sweep import parse_value

    given = {name: parse_value(value) for name, value in args.parameter or []}
    result = runner.run_sequence(profile=args.profile, seed=args.seed, parameters=given)
    print(f"\nExecuted {len(result.executed)} notebook(s) in {result.seconds:.0f} s.")
    print(f"Run directory:       {result.run_dir} (also runs/latest)")
    print(f"Executed notebooks:  {result.run_dir / 'notebooks'}")
    print(f"Figures:             {result.run_dir / 'figures'}")
    print(f"Run report:          {result.report}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from workbench.config import resolve_run_dir
    from workbench.report import write_report

    print(f"Run report: {write_report(resolve_run_dir(args.run_dir))}")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from workbench import sweep
    from workbench.tables import format_table

    grid = {name: [sweep.parse_value(v) for v in values] for name, *values in args.parameter}
    result = sweep.sweep(
        args.notebook,
        grid,
        run_dir=args.run_dir,
        profile=args.profile,
        seed=args.seed,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    rows = sweep.report_sweep(result)
    print(result.summary())
    print(format_table(rows))
    print(f"results: {result.folder / 'results.json'}, figure: {result.folder / 'comparison.png'}")
    for p in result.failures():
        print(f"FAILED point {p.index} {p.parameters}:\n  {p.error}", file=sys.stderr)
    return 1 if result.failures() else 0


def _notebooks(args: argparse.Namespace) -> int:
    from workbench.outputs import store_outputs

    stored = store_outputs()
    print(f"Stored smoke-profile outputs in {len(stored)} notebook(s).")
    return 0


def _student(args: argparse.Namespace) -> int:
    from workbench.student import main_student

    return main_student(args.out)


def _serve(args: argparse.Namespace) -> int:
    from workbench.deploy.service import serve

    serve(
        args.model,
        model_dir=args.model_dir,
        host=args.host,
        port=args.port,
        backend=args.backend,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue,
        request_timeout=args.request_timeout,
        max_body_bytes=args.max_body_bytes,
        poll_seconds=args.poll,
    )
    return 0


def _add_serve(sub) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve models over REST (TF Serving and KServe v2 clients) until SIGTERM",
        description="Serve models to TF Serving REST and Open Inference Protocol v2 clients. "
        "SIGTERM or Ctrl-C stops accepting, finishes the requests in flight, then exits.",
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME[@LABEL|/VERSION]",
        help="a model to serve, e.g. digits@champion or digits/3 (repeat --model); a bare "
        "name serves its champion (else its latest version). Default with --model-dir: every "
        "model in the folder",
    )
    serve.add_argument(
        "--model-dir",
        help="a folder in TF Serving's layout, <dir>/<name>/<version>/export.json, with labels "
        "in <dir>/<name>/labels.json (default: the MLflow model registry)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8500)
    serve.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnx", "keras"],
        help="auto: onnxruntime where the ONNX export passed its check, else Keras",
    )
    serve.add_argument("--max-batch", type=int, default=256, help="most rows per model call")
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="wait this long for more rows when a batch is not full (0: run what queued)",
    )
    serve.add_argument(
        "--queue", type=int, default=64, help="requests that may wait per version; then 429"
    )
    serve.add_argument(
        "--request-timeout", type=float, default=1.0, help="seconds before a 504 answer"
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="larger bodies get 413"
    )
    serve.add_argument(
        "--poll",
        type=float,
        default=5.0,
        help="seconds between label checks (0: only POST /admin/reload from loopback)",
    )
    serve.set_defaults(func=_serve)


def lab_command(
    lab_args: list[str] | tuple[str, ...] = (), *, notebook_dir: str | Path | None = None
) -> list[str]:
    """The JupyterLab command line on `notebook_dir` (default notebooks/) with this
    environment's kernel and settings (news and update checks off); as root, as in many
    classroom containers, `--allow-root`."""
    from workbench.config import repo_root
    from workbench.files import atomic_write_text
    from workbench.runner import use_environment_kernel

    use_environment_kernel()
    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings / "overrides.json", LAB_OVERRIDES)
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebook_dir or repo_root() / 'notebooks'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *as_root,
        *lab_args,
    ]


def _lab(args: argparse.Namespace) -> int:
    cmd = lab_command(args.lab_args)
    os.execv(cmd[0], cmd)
    return 0  # not reached


def _classroom(args: argparse.Namespace) -> int:
    from workbench.classroom import serve_dashboard

    tracebacks = ["--show_tracebacks=True"] if args.show_tracebacks else []
    serve_dashboard(args.run_dir, port=args.port, voila_args=tracebacks)
    return 0  # not reached: Voila replaces this process


def _add_classroom(sub) -> None:
    classroom = sub.add_parser(
        "classroom",
        help="serve the stage widgets over a run directory as a dashboard (Voila, loopback)",
        description="Serve classroom/dashboard.ipynb with Voila on http://127.0.0.1:PORT/: one "
        "tab per stage over a run directory, no code shown. Opening the page only reads the run "
        "directory; its buttons say what they start. Ctrl-C or SIGTERM stops it.",
    )
    classroom.add_argument(
        "--run-dir", default="runs/latest", help="the run directory shown (default: runs/latest)"
    )
    classroom.add_argument("--port", type=int, default=8866, help="default: 8866")
    classroom.add_argument(
        "--show-tracebacks", action="store_true", help="show a failing cell's traceback on the page"
    )
    classroom.set_defaults(func=_classroom)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; workbench errors print as one clear line."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every notebook headless into runs/<timestamp>/")
    run.add_argument("--profile", default="full", choices=["smoke", "full"])
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter for the notebooks that declare it, e.g. -p dataset csv:my.csv "
        "-p target label (repeat -p)",
    )
    run.set_defaults(func=_run)
    report = sub.add_parser(
        "report", help="(re)write a run's report, <run_dir>/index.html, from its notebooks"
    )
    report.add_argument("run_dir", nargs="?", default="runs/latest", help="default: runs/latest")
    report.set_defaults(func=_report)
    sw = sub.add_parser(
        "batch", help="run a notebook over a parameter grid, in parallel on Dask distributed"
    )
    sw.add_argument("notebook", help="e.g. notebooks/04_train.ipynb")
    sw.add_argument(
        "-p",
        "--parameter",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter and its values, e.g. -p learning_rate 0.01 0.003 (repeat -p)",
    )
    sw.add_argument("--run-dir", default="runs/latest", help="the upstream run directory")
    sw.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    sw.add_argument("--seed", type=int, default=0)
    sw.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of the local Dask cluster, one notebook each (default 2)",
    )
    sw.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: "
        "$DASK_SCHEDULER_ADDRESS, else a local cluster of --workers); its workers must see the "
        "run directory at the same path",
    )
    sw.set_defaults(func=_batch)
    nbs = sub.add_parser("notebooks", help="re-execute the notebooks (smoke) and keep outputs")
    nbs.set_defaults(func=_notebooks)
    student = sub.add_parser("student", help="write student copies (no solutions, no notes)")
    student.add_argument("--out", default="student", help="folder, relative to the repository")
    student.set_defaults(func=_student)
    lab = sub.add_parser("lab", help="open JupyterLab on notebooks/ with this environment's kernel")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER)
    lab.set_defaults(func=_lab)
    _add_classroom(sub)
    _add_serve(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
