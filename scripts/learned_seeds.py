"""The learned solver with its default knobs, one row per seed (issue 15).

For each seed, train the learned solver on a built-in world (``--world``, default
``key_door``) with the default knobs (there: the layered schedule with networks,
:mod:`empo.learning.layered`) and the paper's normative parameters (``--beta-r``
overrides ``theory.beta_r``), and print one JSON row:

* on key_door, key / door / away: whether the learned robot's most likely rollout
  (humans resting) picks up the key, opens the door and ends neither on nor next to
  the door cell (:func:`bench_learning.key_door_success`), and the first step where
  it takes an action the exact robot rates worse;
* ``π_r`` TV and ``V^e`` MAE against the exact solution (:func:`empo.analysis.
  compare`, weighted by the exact joint policy's visits), and the largest ``V^e``
  and ``π_r`` errors over the states either robot visits with probability at least
  1e-3 (:func:`empo.analysis.policy_report`);
* the expected human power ``W_h`` (bits) under the learned robot's own stochastic
  policy, by exact policy evaluation over the compiled world with the exact human
  policy, at the step where the exact robot's expected power peaks, next to the
  exact robot's, and their ratio;
* the training wall time and CPU time (both phases; compiling and the exact solve
  excluded).

Run the seeds one at a time (the machine is shared)::

    python scripts/learned_seeds.py --seeds 12 22 32 42 52
    python scripts/learned_seeds.py --seeds 12 22 32 42 52 --beta-r 100
    python scripts/learned_seeds.py --world corridor --seeds 1 2 3

``--set KEY=VALUE`` overrides a parameter (e.g. ``phase1.layer_updates=800``);
``--progress`` prints one line per fitted layer on stderr; ``--layers`` adds, per
layer (steps before the horizon), over the non-terminal states the exact robot visits
with probability at least 1e-3: the visit-weighted and largest ``π_r`` TV, the
largest error of the action-dependent part of ``log(−Q_r)`` (each state's errors
minus their mean over the allowed actions), and the largest ``V^e`` error and
``π_h`` TV (where the errors that eq. (5) amplifies sit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import torch
import yaml

from bench_learning import first_deviation, key_door_success
from empo import Parameters
from empo.analysis import compare, policy_report
from empo.analysis.policy_evaluation import compare_robots, visited_states
from empo.exact import solve
from empo.learning import train
from empo.learning.evaluate import greedy_rollout
from empo.worlds.registry import build_world, compile_any


def layer_log(metrics: dict[str, float], step: int) -> None:
    """Print a fitted layer's losses on stderr."""
    text = " ".join(f"{k}={v:.3g}" for k, v in sorted(metrics.items()))
    print(f"[{time.strftime('%H:%M:%S')}] step {step}: {text}", file=sys.stderr)


def layer_errors(tables: Any, exact: Any, solution: Any) -> list[dict[str, Any]]:
    """Per-layer errors over the states the exact robot visits (``--layers``)."""
    course = compare_robots(exact, solution).exact
    world = exact.world
    weight = course.distribution.sum(0).cpu().double()
    visited = torch.zeros(world.num_states, dtype=torch.bool)
    visited[visited_states([course])] = True
    visited &= ~world.terminal.cpu()
    height = world.height.cpu()
    learned2, exact2 = tables.phase2, exact.phase2
    pi_e = exact2["pi_r"].double().cpu()
    tv = 0.5 * (learned2["pi_r"].double() - pi_e).abs().sum(-1)
    allowed = pi_e > 0
    log_l = torch.log(-learned2["q_r"].double().clamp_max(-1e-300))
    log_e = torch.log(-exact2["q_r"].double().cpu().clamp_max(-1e-300))
    error = torch.where(allowed, log_l - log_e, 0.0)
    mean = error.sum(-1) / allowed.sum(-1).clamp_min(1)
    advantage = torch.where(allowed, error - mean[:, None], 0.0).abs().amax(-1)
    goals = (world.goal_weights > 0).cpu()
    v_e = (learned2["v_e"].double() - exact2["v_e"].double().cpu()).abs() * goals
    pi_h = tables.phase1["pi_h"].double() - exact.phase1["pi_h"].double().cpu()
    pi_h = 0.5 * pi_h.abs().sum(-1) * goals
    rows = []
    for h in sorted(set(height[visited].tolist()), reverse=True):
        at = visited & (height == h)
        w = weight[at] / weight[at].sum()
        rows.append(
            {
                "height": h,
                "states": int(at.sum()),
                "pi_r_tv": float((w * tv[at]).sum()),
                "pi_r_tv_max": float(tv[at].max()),
                "log_q_r_advantage_max": float(advantage[at].max()),
                "v_e_max": float(v_e[at].flatten(1).amax(-1).max()),
                "pi_h_max": float(pi_h[at].flatten(1).amax(-1).max()),
            }
        )
    return rows


def seed_row(
    world: Any,
    compiled: Any,
    exact: Any,
    params: Parameters,
    progress: bool,
    layers: bool = False,
) -> dict[str, Any]:
    """Train one seed and measure it (module docstring)."""
    start, cpu = time.perf_counter(), time.process_time()
    solution = train(
        compiled, params, progress=False, logger=layer_log if progress else None
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    tables = solution.tabulate(compiled)
    errors = compare(tables, exact)
    report = policy_report(solution, exact)
    (peak,) = report["peak"].values()
    row: dict[str, Any] = {
        "world": params.world.name.value,
        "seed": int(params.seed),
        "beta_r": float(params.theory.beta_r),
    }
    if params.world.name.value == "key_door":
        pi_r = tables.phase2["pi_r"].cpu()
        path = greedy_rollout(compiled, pi_r)
        checks = key_door_success(world, compiled, path)
        row.update(checks)
        keys = ("fetched_key", "opened_door", "left_doorway")
        row["success"] = all(checks[k] for k in keys)
        row["first_worse_action"] = first_deviation(path, pi_r, exact, 1e-9)
    largest = report["largest_errors"]
    row.update(
        {
            "pi_r_tv": errors["pi_r"],
            "v_e_mae": errors["v_e"],
            "pi_h_tv": errors["pi_h"],
            "visited_states": report["visited_states"],
            "v_e_max_visited": largest["v_e"]["error"],
            "pi_r_max_visited": largest["pi_r"]["error"],
            "v_e_worst_state": largest["v_e"]["state"],
            "pi_h_max_visited": largest["pi_h"]["error"],
            "peak_step": peak["step"],
            "power_learned": peak["robot"],
            "power_exact": peak["exact"],
            "power_ratio": peak["robot"] / peak["exact"],
            "seconds": seconds,
            "cpu_seconds": cpu,
            "load_average": os.getloadavg()[0],
        }
    )
    if layers:
        row["layers"] = layer_errors(tables, exact, solution)
    return row


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="key_door")
    parser.add_argument("--seeds", type=int, nargs="+", default=[12, 22, 32, 42, 52])
    parser.add_argument("--beta-r", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--layers", action="store_true", help="per-layer errors")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    if args.beta_r is not None:
        overrides["theory.beta_r"] = args.beta_r
    world = build_world(args.world)
    compiled = compile_any(world)
    base = Parameters(world=args.world, solver="learned").with_overrides(overrides)
    exact = solve(compiled, base.theory)
    for seed in args.seeds:
        params = base.with_overrides({"seed": seed})
        row = seed_row(world, compiled, exact, params, args.progress, args.layers)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
