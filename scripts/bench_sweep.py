"""Wall time of a 16-run exact sweep on each sweep backend.

Runs a 4 beta_r x 4 seed grid of exact solves (``--world``, default ``commitment``)
with the sequential backend, the multiprocess backend (``--workers`` spawned
processes) and Ray started locally with ``--workers`` CPUs, each into a fresh
temporary sweep directory with W&B disabled, and prints one line per backend::

    python scripts/bench_sweep.py [--world menu_size] [--workers 2]

Ray's start-up and shutdown are included in its time; every multiprocess run pays
for a fresh Python process that imports torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from empo import Parameters
from empo.sweep import SweepSpec, run_sweep
from empo.sweep.backends import BACKENDS


def main() -> None:
    """Parse arguments, time each backend, print the wall times."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", default="commitment")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS)
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    spec = SweepSpec.from_grid(
        "bench",
        Parameters(world=args.world, solver="exact"),
        {"theory.beta_r": [1.0, 2.0, 5.0, 10.0], "seed": [1, 2, 3, 4]},
    )
    print(f"{len(spec.runs)}-run exact sweep of {args.world}, {os.cpu_count()} cores")
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as directory:
            start = time.perf_counter()
            result = run_sweep(
                spec,
                Path(directory) / backend,
                backend=backend,
                workers=args.workers,
                wandb_mode="disabled",
                progress=False,
            )
            wall = time.perf_counter() - start
        failed = len(result.failed)
        workers = "" if backend == "sequential" else f" ({args.workers} workers)"
        print(f"{backend:>12}{workers:<12} {wall:7.1f} s  failed runs: {failed}")


if __name__ == "__main__":
    main()
