"""`workbench run | batch | notebooks | student | lab` (also `python -m workbench`)."""

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


def lab_command(lab_args: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The JupyterLab command line on notebooks/ with this environment's kernel and settings
    (news and update checks off); as root, as in many classroom containers, `--allow-root`."""
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
        f"--notebook-dir={repo_root() / 'notebooks'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *as_root,
        *lab_args,
    ]


def _lab(args: argparse.Namespace) -> int:
    cmd = lab_command(args.lab_args)
    os.execv(cmd[0], cmd)
    return 0  # not reached


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
    sw = sub.add_parser("batch", help="run a notebook over a parameter grid, in parallel")
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
    sw.add_argument("--workers", type=int, default=2, help="notebooks run at once")
    sw.set_defaults(func=_batch)
    nbs = sub.add_parser("notebooks", help="re-execute the notebooks (smoke) and keep outputs")
    nbs.set_defaults(func=_notebooks)
    student = sub.add_parser("student", help="write student copies (no solutions, no notes)")
    student.add_argument("--out", default="student", help="folder, relative to the repository")
    student.set_defaults(func=_student)
    lab = sub.add_parser("lab", help="open JupyterLab on notebooks/ with this environment's kernel")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER)
    lab.set_defaults(func=_lab)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
