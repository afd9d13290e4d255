"""Benchmark the learned solver on the transport worlds, reached by state rows.

Large network (default ``transport_large``: 4x4 roads, 2 vehicles, 4 humans, 24 steps,
102,400 joint actions; never enumerated): frames per second of the rollouts and
gradient steps per second of the updates, per phase, wall time, and the learned
``V_r(s0)`` and ``W_h(s0)``. Small network (``transport_small``, 115 states): the same
solver with ``phase1.world_access = "sampled"`` against the exact solution
(:func:`empo.analysis.compare`: visit-weighted MAE of values, TV of policies), and
with ``--scaled-frames`` also a 3x3 ``transport_large`` (1 vehicle, 2 humans, 6
steps, 9,194 states)::

    python scripts/bench_transport_learned.py --frames 16384 --scaled-frames 30000
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch

from empo import Parameters
from empo.analysis import compare
from empo.exact import solve
from empo.learning import train
from empo.worlds.registry import compile_any
from empo.worlds.transport.builtin import large, small

SMALL_KNOBS: dict[str, Any] = {
    "learning_rate": 3e-3,
    "learning_rate_decay": 0.1,
    "updates_per_batch": 8,
    "frames_per_batch": 128,
    "num_frames": 10_000,
    "batch_size": 64,
    "hidden_sizes": [64, 64],
    "samples_per_state": 4,
    "target_update_tau": 0.05,
    "epsilon_start": 0.5,
    "epsilon_steps": 3000,
    "buffer_size": 4000,
    "num_envs": 16,
}


def large_parameters(frames: int, batch_size: int, samples: int) -> Parameters:
    """Knobs of the large-network run (the rest are the defaults)."""
    knobs = {
        "learning_rate": 3e-3,
        "target_update_tau": 0.05,
        "num_frames": frames,
        "frames_per_batch": 256,
        "updates_per_batch": 4,
        "batch_size": batch_size,
        "samples_per_state": samples,
        "num_envs": 32,
        "embed_dim": 32,
        "hidden_sizes": [64, 64],
        "epsilon_steps": frames // 2,
    }
    return Parameters.from_dict(
        {
            "world": "transport_large",
            "solver": "learned",
            "phase1": {**knobs, "world_access": "sampled", "schedule": "online"},
            "phase2": {**knobs, "beta_r_steps": frames // 2},
        }
    )


def bench_large(frames: int, batch_size: int, samples: int) -> dict[str, Any]:
    """Train on the default large network; throughput and initial-state values."""
    params = large_parameters(frames, batch_size, samples)
    start = time.perf_counter()
    solution = train(large(), params, progress=False)
    wall = time.perf_counter() - start
    out: dict[str, Any] = {"wall_s": wall, "batch_size": batch_size, "M": samples}
    for phase in ("phase1", "phase2"):
        stats = {k.split("/")[1]: v for k, v in solution.stats.items() if phase in k}
        out[phase] = {
            "frames": stats["frames"],
            "grad_steps": stats["grad_steps"],
            "frames_per_s": stats["frames"] / stats["collect_seconds"],
            "grad_steps_per_s": stats["grad_steps"] / stats["update_seconds"],
        }
    out.update(initial_values(solution))
    return out


def initial_values(solution: Any) -> dict[str, Any]:
    """The learned ``V_r`` and ``W_h`` (bits) at the initial state."""
    s0 = solution.data.initial_row[None]
    bits = torch.log2(solution.human_power(s0)[0].double())
    return {"V_r(s0)": float(solution.robot_values(s0)[0]), "W_h(s0)": bits.tolist()}


def bench_against_exact(world: Any, frames: int) -> dict[str, Any]:
    """Sampled solver vs exact on a world small enough to compile."""
    knobs = {**SMALL_KNOBS, "num_frames": frames}
    params = Parameters.from_dict(
        {
            "phase1": {**knobs, "world_access": "sampled", "schedule": "online"},
            "phase2": {**knobs, "beta_r_steps": frames * 2 // 5},
        }
    )
    start = time.perf_counter()
    solution = train(world, params, progress=False)
    wall = time.perf_counter() - start
    compiled = compile_any(world)
    exact = solve(compiled, params.theory)
    s0 = compiled.initial_state
    learned = initial_values(solution)
    return {
        "states": compiled.num_states,
        "wall_s": wall,
        "errors": compare(solution.tabulate(compiled), exact),
        "V_r(s0)": {
            "learned": learned["V_r(s0)"],
            "exact": float(exact.phase2["v_r"][s0]),
        },
        "W_h(s0)": {
            "learned": learned["W_h(s0)"][0],
            "exact": math.log2(float(exact.phase2["x_h"][s0, 0])),
        },
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2048, help="frames per phase")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=2, help="M per state")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--exact-frames",
        type=int,
        default=10_000,
        help="frames per phase of the comparisons with exact (0: skip them)",
    )
    parser.add_argument(
        "--scaled-frames",
        type=int,
        default=0,
        help="frames per phase of a comparison on a 3x3 large network (0: skip)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"large": bench_large(args.frames, args.batch_size, args.samples)}
    if args.exact_frames:
        results["small"] = bench_against_exact(small(), args.exact_frames)
    if args.scaled_frames:
        results["large_3x3"] = bench_against_exact(
            large(rows=3, cols=3, n_vehicles=1, n_humans=2, horizon=6),
            args.scaled_frames,
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
