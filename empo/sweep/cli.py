"""The ``sweep`` subcommand of ``python -m empo``.

::

    python -m empo sweep --config sweep.yaml [--backend ray --workers 8
                         --address host:port] [--output DIR]
    python -m empo sweep --config sweep.yaml --dry-run   # validate, list the runs
    python -m empo sweep --summary DIR                   # print a sweep's table

``sweep.yaml`` holds ``name``, ``base`` (parameters, or a parameter file), ``grid``
(``{dotted path: [values]}`` or a list of them) and ``overrides`` (a list of
``{dotted path: value}``); see :mod:`empo.sweep.spec`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import torch

from empo.sweep.backends import BACKENDS
from empo.sweep.runner import SPEC_NAME, run_sweep
from empo.sweep.spec import SweepError, format_overrides, load_sweep
from empo.sweep.table import (
    COMPLETED,
    DEFAULT_SUMMARY_METRICS,
    FAILED,
    format_table,
    ordered_rows,
    read_rows,
)

logger = logging.getLogger(__name__)

_EPILOG = """\
sweep file (YAML or JSON):
  name: beta-seed                 # run-name prefix and W&B group
  base: {world: commitment, solver: exact}   # or a parameter file path
  grid: {theory.beta_r: [1, 5, 10], seed: [12, 22, 32]}   # or a list of grids
  overrides: [{theory.zeta: 1.5}] # extra explicit runs

Re-running the same sweep into the same directory skips completed runs."""


def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to an argparse subparsers object.

    Parameters
    ----------
    subparsers
        The object ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``sweep`` parser.
    """
    parser = subparsers.add_parser(
        "sweep",
        help="run a hyperparameter sweep or print a sweep's results table",
        description="Run every run of a sweep (resuming a partial one), or print "
        "the results table of a sweep directory.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--config", type=Path, help="sweep file (YAML or JSON)")
    action.add_argument(
        "--summary", type=Path, metavar="DIR", help="print the table of a sweep dir"
    )
    parser.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default="sequential",
        help="where runs execute",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs in flight (default: 1 locally, the cluster's capacity with "
        "--address)",
    )
    parser.add_argument(
        "--address", help="Ray cluster address host:port or 'auto' (ray backend)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="sweep directory (default: sweeps/<name>)",
    )
    parser.add_argument(
        "--devices",
        default=None,
        help="comma-separated devices: multiprocess slots cycle through them, "
        "sequential uses the first (default: the run's default, CPU; one per GPU "
        "for multiprocess with several GPUs)",
    )
    parser.add_argument(
        "--cpus-per-run", type=float, default=1.0, help="Ray CPU request"
    )
    parser.add_argument(
        "--gpus-per-run", type=float, default=0.0, help="Ray GPU request"
    )
    parser.add_argument(
        "--wandb-mode",
        choices=["online", "offline", "disabled"],
        default="offline",
        help="W&B mode of every run (group: the sweep name)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and list the runs, run nothing"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--metrics",
        default=None,
        help="with --summary: comma-separated glob patterns of the metrics to show, "
        "'!pattern' hides (default: hide per-step series and timings)",
    )
    return parser


def _summary(sweep_dir: Path, metrics: str | None) -> int:
    """Print a sweep directory's table and counts; the exit code."""
    if (
        not (sweep_dir / "results.jsonl").exists()
        and not (sweep_dir / SPEC_NAME).exists()
    ):
        print(f"error: {sweep_dir} is not a sweep directory", file=sys.stderr)
        return 2
    order: list[str] = []
    spec_path = sweep_dir / SPEC_NAME
    if spec_path.exists():
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        order = [run["run"] for run in spec.get("runs", [])]
    rows = ordered_rows(read_rows(sweep_dir), order)
    completed = sum(row["status"] == COMPLETED for row in rows)
    failed = sum(row["status"] == FAILED for row in rows)
    missing = len([name for name in order if name not in {r["run"] for r in rows}])
    if rows:
        patterns = metrics.split(",") if metrics else DEFAULT_SUMMARY_METRICS
        print(format_table(rows, patterns))
    print(
        f"{len(rows) + missing} runs: {completed} completed, {failed} failed, "
        f"{missing} not run ({sweep_dir})"
    )
    return 0


def run_sweep_command(args: argparse.Namespace) -> int:
    """Execute the ``sweep`` subcommand.

    Parameters
    ----------
    args
        Parsed arguments of the parser from :func:`add_sweep_parser`.

    Returns
    -------
    int
        0 when every run completed, 1 when some run failed, 2 on bad input (one
        message on stderr, no traceback), 130 after SIGINT and 143 after SIGTERM
        (the table keeps every finished run; the same command resumes).
    """
    try:
        if args.summary is not None:
            return _summary(args.summary, args.metrics)
        spec = load_sweep(args.config)
        if args.dry_run:
            for run in spec.runs:
                print(f"{run.name}\t{format_overrides(run.overrides)}")
            print(f"{len(spec.runs)} runs, all valid")
            return 0
        workers = args.workers
        if workers is None:
            workers = None if args.address else 1
        devices = args.devices.split(",") if args.devices else None
        torch.set_num_threads(1)  # as `run` and every sweep worker: same results
        result = run_sweep(
            spec,
            args.output or Path("sweeps") / spec.name,
            backend=args.backend,
            workers=workers,
            address=args.address,
            devices=devices,
            cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run,
            wandb_mode=args.wandb_mode,
            progress=not args.no_progress,
        )
    except (SweepError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(
            "interrupted: finished runs are in the table; run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return 128 + getattr(error, "signal_number", signal.SIGINT)
    for row in result.failed:
        print(f"failed: {row['run']}: {row['error']}", file=sys.stderr)
    print(
        f"{len(result.rows)} runs ({len(result.skipped)} resumed), "
        f"{len(result.failed)} failed; table: {result.csv_path}"
    )
    return 1 if result.failed else 0
