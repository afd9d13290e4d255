"""Wall time of one sweep on each sweep backend, as a user starts it from the shell.

For each world of ``--worlds`` (default ``corridor``, runs under a second,
``two_humans_door``, runs of about a second, and ``key_door``, runs of about five
seconds on an idle core), writes a sweep of ``--runs`` exact runs
(``theory.beta_r`` and ``seed`` vary) and times, ``--repeats`` times in rotation,
the whole command

    python -m empo sweep --config SWEEP --backend B --workers W --wandb-mode disabled

for every backend B (sequential, multiprocess with W reusable worker processes, Ray
started locally with W CPUs), each into a fresh temporary directory: start-up,
imports, Ray's start and shutdown are all included. With ``--ray-address`` the Ray
sweeps connect to a Ray instance that is already running (e.g. ``ray start --head
--num-cpus 2``) instead, as a user does who keeps one running on a workstation.
Prints, per world, the median duration of one run (as the sequential sweeps recorded
it), each backend's median, min and max wall time and the median of its per-round
ratio to sequential, and the load average before and after::

    python scripts/bench_sweep.py [--worlds corridor two_humans_door key_door]
                                  [--runs 16] [--workers 2] [--repeats 3]
                                  [--backends sequential multiprocess ray]
                                  [--ray-address auto]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BACKENDS = ("sequential", "multiprocess", "ray")


def _sweep(world: str, runs: int) -> dict:
    """A sweep of ``runs`` exact runs: beta_r cycles through 4 values, seeds count."""
    betas = [1.0, 2.0, 5.0, 10.0]
    overrides = [
        {"theory.beta_r": betas[i % len(betas)], "seed": i // len(betas)}
        for i in range(runs)
    ]
    return {"name": "bench", "base": {"world": world}, "overrides": overrides}


def _time(
    config: Path, backend: str, args: argparse.Namespace, root: Path
) -> tuple[float, list[float]]:
    """Seconds of one ``python -m empo sweep`` of ``config`` on ``backend``, and
    the duration of each run as its row records it (every run checked: completed,
    on one torch thread)."""
    with tempfile.TemporaryDirectory() as directory:
        argv = [sys.executable, "-m", "empo", "sweep", "--config", str(config)]
        argv += ["--backend", backend, "--workers", str(args.workers)]
        if backend == "ray" and args.ray_address:
            argv += ["--address", args.ray_address]
        argv += ["--output", str(Path(directory) / "out"), "--wandb-mode", "disabled"]
        start = time.perf_counter()
        done = subprocess.run(
            argv + ["--no-progress"],
            cwd=root,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{backend} failed ({done.returncode}):\n{done.stderr}")
        table = Path(directory) / "out" / "results.jsonl"
        rows = [json.loads(line) for line in table.read_text().splitlines() if line]
    wrong = [r["run"] for r in rows if r["metrics"].get("threads") != 1]
    if len(rows) != args.runs or wrong:
        raise SystemExit(f"{backend}: {len(rows)} rows, not on one thread: {wrong}")
    return wall, [row["duration_s"] for row in rows]


def _bench(world: str, args: argparse.Namespace, root: Path) -> None:
    """Time every backend on a sweep of ``world`` and print the table."""
    backends = list(dict.fromkeys(["sequential", *args.backends]))
    walls: dict[str, list[float]] = {backend: [] for backend in backends}
    durations: list[float] = []
    before = _load()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "sweep.yaml"
        config.write_text(yaml.safe_dump(_sweep(world, args.runs)))
        for _ in range(args.repeats):
            for backend in backends:
                wall, runs = _time(config, backend, args, root)
                walls[backend].append(wall)
                if backend == "sequential":
                    durations += runs
    print(
        f"{args.runs}-run exact sweep of {world} (one run: median "
        f"{statistics.median(durations):.2f} s), {args.repeats} rounds, "
        f"{os.cpu_count()} cores, load average {before:.1f} before, "
        f"{_load():.1f} after"
    )
    print(f"{'backend':<26}{'median':>9}{'min':>9}{'max':>9}{'vs seq.':>9}")
    for backend in backends:
        ratios = [w / s for w, s in zip(walls[backend], walls["sequential"])]
        label = backend if backend == "sequential" else f"{backend} ({args.workers})"
        if backend == "ray" and args.ray_address:
            label = f"ray ({args.workers}, running)"
        times = walls[backend]
        print(
            f"{label:<26}{statistics.median(times):8.1f}s{min(times):8.1f}s"
            f"{max(times):8.1f}s{statistics.median(ratios):9.2f}"
        )


def _load() -> float:
    """The one-minute load average (NaN where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main() -> None:
    """Parse arguments, time each backend in rotation, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--worlds", nargs="+", default=["corridor", "two_humans_door", "key_door"]
    )
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS)
    parser.add_argument(
        "--ray-address", help="connect the Ray sweeps to this running Ray instance"
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    for world in args.worlds:
        _bench(world, args, root)


if __name__ == "__main__":
    main()
