"""The learned solver past enumeration: ``key_door_hall`` (issue 15, item 4).

``key_door_hall`` is key and door with two humans and a robot (343 joint actions) in
which the robot can free the humans within three steps; at its default horizon it has
more than 10^8 states. Three commands, each printing JSON rows:

``count``
    The states of the world at ``--horizon`` (default: the world's): the exact size
    ``L_t`` of every layer up to ``k = --exact-upto``
    (:func:`empo.worlds.layers.enumerate_layers`), and the lower bound
    ``Σ_{t≤k} L_t + (T − k) L_k``. It holds because every agent may stay still and
    nothing ends an episode before the horizon: a state of layer ``t < T`` has a
    successor in layer ``t + 1`` with the same configuration, so no layer is smaller
    than the one before.
``compare``
    Train the learned solver on rows (``phase1.world_access: sampled``: the world is
    never enumerated for training) at a horizon short enough to enumerate
    (``--horizon``, default 6: 58,913 states), then solve the same map exactly and
    print the errors (:func:`empo.analysis.compare`, weighted by the exact policy's
    visits), the exact evaluation of the learned robot's own policy
    (:func:`empo.analysis.policy_report`: expected human power at the step where
    the exact robot's peaks) and both robots' most likely rollouts.
``big``
    Train the learned solver on rows at the world's default horizon (no enumeration
    anywhere) and print the learned robot's most likely rollout.

Every command prints the CPU and wall time of the training, the peak resident memory
and the load average. The exact comparison of ``compare`` needs about 3 GiB of address
space at horizon 6 beside the training (the compiled world's 343 joint actions per
state). ``--schedule`` picks ``layered`` or ``online``, ``--set
KEY=VALUE`` overrides a parameter. Run one at a time under a memory limit::

    prlimit --as=3221225472 python scripts/past_enumeration.py count --exact-upto 10
    prlimit --as=4294967296 python scripts/past_enumeration.py compare --seed 1
    prlimit --as=3221225472 python scripts/past_enumeration.py big --seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import torch
import yaml

from empo import Parameters
from empo.analysis import compare, policy_report
from empo.exact import solve
from empo.learning import train
from empo.solution import Solution
from empo.utils.memory import peak_rss_gib
from empo.worlds.layers import enumerate_layers
from empo.worlds.registry import build_world, compile_any

WORLD = "key_door_hall"


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def count(args: argparse.Namespace) -> None:
    """Exact layer sizes up to ``--exact-upto`` and the lower bound at ``--horizon``
    (module docstring)."""
    start, wall = time.process_time(), time.perf_counter()
    small = build_world(WORLD, {"max_steps": args.exact_upto})

    def report(layer: int, states: int, total: int, seconds: float) -> None:
        row = {"layer": layer, "states": states, "states_so_far": total}
        print(json.dumps(row), flush=True)

    sizes = enumerate_layers(small, on_layer=report).sizes
    k = len(sizes) - 1
    summary = {
        "horizon": args.horizon,
        "lower_bound": sum(sizes) + (args.horizon - k) * sizes[k],
        "exact_upto": k,
        "exact_states_upto": sum(sizes),
        "cpu_seconds": round(time.process_time() - start, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "load_average": _load(),
    }
    print(json.dumps(summary), flush=True)


def behaviour(world: Any, solution: Solution, rest: bool) -> dict[str, Any]:
    """The most likely rollout of ``solution`` from ``s_0``: the robot takes its most
    likely joint action, the humans their rest action (``rest``) or the most likely
    action of their goal-marginal policy, the most likely successor is followed.
    Returns the steps at which the robot first carries the key, the door is first
    open and each human first stands outside the room, and where every agent ends."""
    from empo.evaluation import robot_action_parts
    from empo.solution import marginal_human_probs

    row = world.initial_states()[:1].to(torch.int64)
    counts = tuple(len(names) for names in world.action_names)
    parts = robot_action_parts(counts, tuple(world.robots))
    robot = world.agents.index("robot0") if "robot0" in world.agents else 2
    key = door = None
    outside: dict[str, int | None] = {world.agents[h]: None for h in world.humans}
    path = []
    step = 0
    while True:
        state = world.decode(row[0])
        agents = state["agents"]
        path.append([(a["pos"], a["dir"]) for a in agents])
        if key is None and agents[robot]["carrying"] >= 0:
            key = step
        if door is None and "locked" not in state["doors"]:
            door = step
        for h in world.humans:
            name = world.agents[h]
            if outside[name] is None and agents[h]["pos"][0] >= 3:
                outside[name] = step
        if bool(world.is_terminal(row)[0]):
            break
        profile = torch.zeros(1, len(counts), dtype=torch.int64)
        if rest:
            profile[0, list(world.humans)] = torch.tensor(
                [world.rest_action[h] for h in world.humans]
            )
        else:
            weights = world.goal_weights.to(torch.float64)
            pi_bar = marginal_human_probs(solution, row, weights)[0]
            profile[0, list(world.humans)] = pi_bar.argmax(-1).cpu()
        profile[0, list(world.robots)] = parts[int(solution.robot_probs(row).argmax())]
        succ, prob = world.transitions(row, profile)
        row = succ[:, prob[0].argmax()]
        step += 1
    final = world.decode(row[0])
    return {
        "key_step": key,
        "door_step": door,
        "outside_step": outside,
        "robot_end": final["agents"][robot]["pos"],
        "humans_end": [final["agents"][h]["pos"] for h in world.humans],
        "doors_end": final["doors"],
    }


def _params(args: argparse.Namespace, horizon: int | None) -> Parameters:
    overrides: dict[str, Any] = {
        "seed": args.seed,
        "phase1.world_access": "sampled",
        "phase1.schedule": args.schedule,
    }
    if horizon is not None:
        overrides["world.options"] = {"max_steps": horizon}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    return Parameters(world=WORLD, solver="learned").with_overrides(overrides)


def _train(world: Any, params: Parameters) -> tuple[Any, dict[str, Any]]:
    start, cpu = time.perf_counter(), time.process_time()
    solution = train(world, params, progress=False)
    figures = {
        "train_wall_min": round((time.perf_counter() - start) / 60, 2),
        "train_cpu_min": round((time.process_time() - cpu) / 60, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "load_average": _load(),
        "states_fitted": solution.stats.get("layered/states"),
    }
    return solution, figures


def compare_small(args: argparse.Namespace) -> None:
    """Train on rows at ``--horizon``, compare with the exact solution there."""
    params = _params(args, args.horizon)
    world = build_world(WORLD, {"max_steps": args.horizon})
    learned, figures = _train(world, params)
    print(json.dumps({"trained": figures}), flush=True)
    compiled = compile_any(world)
    exact = solve(compiled, params.theory)
    errors = compare(learned.tabulate(compiled), exact)
    report = policy_report(learned, exact)
    peaks = report["peak"]
    row = {
        "horizon": args.horizon,
        "schedule": args.schedule,
        "seed": args.seed,
        "states": int(compiled.num_states),
        **{k: errors[k] for k in ("pi_h", "v_m", "v_e", "x_h", "pi_r", "v_r_rel")},
        "max_visited": {k: v["error"] for k, v in report["largest_errors"].items()},
        "power_peak": peaks,
        "v_r_s0": report["v_r_s0"],
        "learned_rollout": behaviour(world, learned, rest=True),
        "exact_rollout": behaviour(world, exact, rest=True),
        **figures,
        "peak_rss_gib_with_exact": round(peak_rss_gib(), 2),
    }
    print(json.dumps(row), flush=True)


def big(args: argparse.Namespace) -> None:
    """Train on rows at the world's default horizon, print the learned behaviour."""
    params = _params(args, args.horizon)
    world = build_world(
        WORLD, {} if args.horizon is None else {"max_steps": args.horizon}
    )
    learned, figures = _train(world, params)
    row = {
        "horizon": int(world.max_steps),
        "schedule": args.schedule,
        "seed": args.seed,
        "rollout_humans_rest": behaviour(world, learned, rest=True),
        "rollout_humans_likely": behaviour(world, learned, rest=False),
        **figures,
    }
    print(json.dumps(row), flush=True)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["count", "compare", "big"])
    parser.add_argument("--horizon", type=int, default=None)
    parser.add_argument("--exact-upto", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schedule", default="layered")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.command == "count":
        if args.horizon is None:
            args.horizon = int(build_world(WORLD).max_steps)
        count(args)
    elif args.command == "compare":
        args.horizon = args.horizon or 6
        compare_small(args)
    else:
        big(args)


if __name__ == "__main__":
    main()
