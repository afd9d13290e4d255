"""Benchmark of the exact two-phase solver on random layered acyclic worlds.

Each (preset, size) runs in a fresh subprocess so that its peak memory is its own.
Prints a markdown table: states, non-terminal states, generation time, phase-1 and
phase-2 wall-clock times, non-terminal states per second per phase, the process CPU
time of both phases together (less sensitive than wall-clock time to other processes
on a shared machine), peak RSS and (on CUDA) peak GPU memory.

Examples::

    python scripts/bench_exact.py --sizes 1e3,1e4,1e5
    python scripts/bench_exact.py --preset joint25 --sizes 1e6
    python scripts/bench_exact.py --device cuda --dtype float32 --threads 0

By default the children run with ``THP_MEM_ALLOC_ENABLE=1`` (torch's CPU allocator
then asks for transparent huge pages), which removes most of the page-fault cost of
the solver's large output tensors; ``--no-thp`` turns it off.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PRESETS: dict[str, dict] = {
    "joint25": dict(roles="hr", num_actions=[5, 5], num_goals=[30]),
    "two_humans": dict(roles="hhr", num_actions=[4, 5, 6], num_goals=[10, 20]),
    "two_robots": dict(roles="hrr", num_actions=[7, 4, 4], num_goals=[50]),
}


def run_one(
    preset: str,
    size: int,
    device: str,
    dtype_name: str,
    seed: int,
    window: int | None,
    threads: int,
) -> dict:
    """Generate one world, solve it and measure (runs in the child process)."""
    import torch

    from empo.exact import solve
    from empo.parameters.theory import TheoryParameters
    from empo.worlds.random_world import random_layered_world

    dtype = getattr(torch, dtype_name)
    if threads:
        torch.set_num_threads(threads)
    warm_up = random_layered_world(200, num_layers=4, dtype=dtype, **PRESETS[preset])
    solve(warm_up, TheoryParameters(), device=device, dtype=dtype)
    layers = max(4, min(50, size // 1000))
    start = time.perf_counter()
    world = random_layered_world(
        size,
        num_layers=layers,
        max_outcomes=2,
        stochastic_fraction=0.3,
        seed=seed,
        window=window,
        dtype=dtype,
        **PRESETS[preset],
    ).to(device=device)
    generate = time.perf_counter() - start
    cpu_start = time.process_time()
    solution = solve(
        world, TheoryParameters(), device=device, dtype=dtype, check_world=False
    )
    cpu = time.process_time() - cpu_start
    live = int((~world.terminal).sum())
    peak_gpu = (
        torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    )
    return {
        "preset": preset,
        "states": size,
        "live": live,
        "joint": world.num_joint_actions,
        "goals": world.num_humans * world.max_goals,
        "generate_s": generate,
        "phase1_s": solution.seconds["phase1"],
        "phase2_s": solution.seconds["phase2"],
        "cpu_s": cpu,
        "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "gpu_gib": peak_gpu,
    }


def main() -> None:
    """Parse arguments, run each case in a subprocess and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", default="1e3,1e4,1e5", help="comma-separated state counts"
    )
    parser.add_argument(
        "--preset",
        default="all",
        choices=["all", *PRESETS],
        help="world shape (joint25: 1 human x 1 robot, 5 actions each, 30 goals)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch default); 1 by default because OpenMP "
        "threads on a loaded 2-core machine stall each other (10-30x slower)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="successors within this many states of the state's relative position "
        "in the next layer (locality of an enumerated world); default uniform",
    )
    parser.add_argument(
        "--thp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the children with THP_MEM_ALLOC_ENABLE=1 (transparent huge pages)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, size = args.child.split(":")
        result = run_one(
            preset,
            int(size),
            args.device,
            args.dtype,
            args.seed,
            args.window,
            args.threads,
        )
        print(json.dumps(result))
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    presets = list(PRESETS) if args.preset == "all" else [args.preset]
    print(
        f"device={args.device} dtype={args.dtype} window={args.window} "
        f"threads={args.threads or 'default'} thp={args.thp}"
    )
    print(
        "| preset | joint | goals | states | non-terminal | generate s | phase 1 s "
        "| phase 2 s | phase 1 states/s | phase 2 states/s | CPU s | peak RSS GiB "
        "| peak GPU GiB |"
    )
    print("|" + "---|" * 13)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1" if args.thp else "0")
    for preset in presets:
        for size in sizes:
            command = [
                sys.executable,
                __file__,
                "--child",
                f"{preset}:{size}",
                "--device",
                args.device,
                "--dtype",
                args.dtype,
                "--seed",
                str(args.seed),
                "--threads",
                str(args.threads),
            ] + ([] if args.window is None else ["--window", str(args.window)])
            done = subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                print(
                    f"| {preset} | | | {size} | failed: {done.stderr.strip()[-200:]} |"
                )
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            gpu = "-" if r["gpu_gib"] is None else f"{r['gpu_gib']:.2f}"
            print(
                f"| {preset} | {r['joint']} | {r['goals']} | {r['states']:,} "
                f"| {r['live']:,} | {r['generate_s']:.2f} | {r['phase1_s']:.2f} "
                f"| {r['phase2_s']:.2f} | {r['live'] / r['phase1_s']:,.0f} "
                f"| {r['live'] / r['phase2_s']:,.0f} | {r['cpu_s']:.2f} "
                f"| {r['rss_gib']:.2f} | {gpu} |",
                flush=True,
            )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
