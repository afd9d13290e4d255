"""Which exact solver a run uses, chosen by the memory budget (issues 17 and 19).

:func:`plan_exact` reads ``Parameters.exact`` (``method``, ``max_states``,
``memory_gib``). A world whose states carry their layer (``layer_column``) is first
enumerated layer by layer as packed keys (cheap: 8 bytes a state), with the budget
checked as states are found; the estimate of the in-memory solver for the states
found (:func:`~empo.worlds.budget.in_memory_bytes_per_state`) then chooses:

* ``method = "auto"``: the in-memory solver where it fits the budget (the compiled
  world is built from the enumerated layers, :func:`compile_layers`), else the
  layered solver (:func:`~empo.exact.layered.solve_layered`);
* ``"in_memory"`` / ``"layered"``: that solver (``"layered"`` needs layers).

The enumeration keeps every transition it computes on disk
(:class:`~empo.worlds.transition_cache.TransitionCache`, where keys are packed
exactly), and the chosen solver reads them back instead of calling the world model a
second time; :func:`discard_plan` deletes them when no solver runs.

Other worlds are compiled by :func:`~empo.worlds.compiler.compile_world` with the
same budget. Either way a world too large fails during enumeration with one line
naming the world, the states reached and the budget
(:class:`~empo.worlds.budget.BudgetExceededError`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empo.evaluation import json_number
from empo.exact.layered import (
    CHUNK_BYTES,
    LayeredSolution,
    layer_sizes,
    solve_layered,
)
from empo.exact.layered_store import floats_per_state
from empo.parameters import ExactMethod, Parameters
from empo.theory import power_bits
from empo.utils.memory import peak_rss_gib
from empo.utils.solution_files import layered_outputs
from empo.worlds.budget import (
    GIB,
    StateBudget,
    in_memory_bytes_per_state,
)
from empo.worlds.compiled import CompiledWorld
from empo.worlds.compiler import compile_layers, compile_world
from empo.worlds.layers import StateLayers, enumerate_kept, is_layered, world_size
from empo.worlds.registry import compile_any

log = logging.getLogger(__name__)


def exact_budget(params: Parameters) -> StateBudget:
    """The :class:`~empo.worlds.budget.StateBudget` of ``params.exact``."""
    name = getattr(params.world.name, "value", params.world.name)
    return StateBudget(
        max_states=params.exact.max_states,
        memory_bytes=int(params.exact.memory_gib * GIB),
        world=str(name),
    )


@dataclass
class ExactPlan:
    """The solver chosen for a run.

    Attributes
    ----------
    layered
        Solve layer by layer (else in memory).
    layers
        The enumerated layers (layered worlds), else ``None``.
    in_memory_gib
        Estimated memory of the in-memory solver (layered worlds), else ``None``.
    """

    layered: bool
    layers: StateLayers | None = None
    in_memory_gib: float | None = None


def plan_exact(
    world: Any,
    params: Parameters,
    device: torch.device | str | None = None,
    scratch: str | Path | None = None,
) -> ExactPlan:
    """Choose the exact solver of a run (see the module docstring).

    Parameters
    ----------
    world
        The world model.
    params
        The run's parameters (``exact``, ``output``).
    device
        Where the enumeration runs.
    scratch
        Where the enumeration keeps its transitions until the solver has read them
        (the run's directory; ``None``: the system's temporary directory).

    Raises
    ------
    BudgetExceededError
        If the world exceeds ``exact.max_states`` or needs more memory than
        ``exact.memory_gib`` in every solver it can use.
    ValueError
        For ``exact.method = "layered"`` on a world without layers.
    """
    method = params.exact.method
    if not is_layered(world):
        if method is ExactMethod.LAYERED:
            raise ValueError(
                "exact.method = 'layered' needs a world whose states carry their "
                f"time step (layer_column); world {exact_budget(params).world!r} "
                "has none"
            )
        return ExactPlan(layered=False)
    if method is ExactMethod.IN_MEMORY:
        return ExactPlan(layered=False)
    budget = exact_budget(params)
    outputs = layered_outputs(params.output)
    stored = [n for n in outputs if n not in ("v_m", "v_e", "v_r")]
    layers = enumerate_kept(
        world,
        scratch=scratch,
        budget=budget,
        device=device,
        chunk_bytes=CHUNK_BYTES,
        stored=floats_per_state(stored, layer_sizes(world)),
    )
    item = getattr(torch, params.exact.dtype.value).itemsize
    size = world_size(world, layers.max_outcomes, item)
    needed = layers.num_states * in_memory_bytes_per_state(size)
    layered = method is ExactMethod.LAYERED or not budget.fits(needed)
    log.info(
        "%d states in %d layers (%.1f s); the in-memory solver would need about "
        "%.2f GiB (budget %g GiB): solving %s",
        layers.num_states,
        len(layers.keys),
        layers.seconds,
        needed / GIB,
        params.exact.memory_gib,
        "layer by layer" if layered else "in memory",
    )
    return ExactPlan(layered=layered, layers=layers, in_memory_gib=needed / GIB)


def discard_plan(plan: ExactPlan) -> None:
    """Delete the transitions a plan's enumeration kept (when no solver reads them)."""
    if plan.layers is not None and plan.layers.transitions is not None:
        plan.layers.transitions.close()
        plan.layers.transitions = None


def compile_planned(
    world: Any, plan: ExactPlan, params: Parameters, device: torch.device
) -> CompiledWorld:
    """The compiled world for the in-memory solver, within the run's budget (from
    the plan's layers and the transitions they kept, where enumerated)."""
    dtype = getattr(torch, params.exact.dtype.value)
    if plan.layers is not None:
        return compile_layers(world, plan.layers, dtype=dtype).to(device=device)
    if isinstance(world, CompiledWorld) or hasattr(world, "compile"):
        return compile_any(world, device=device, dtype=dtype)
    return compile_world(world, device=device, dtype=dtype, budget=exact_budget(params))


def solve_layered_run(
    world: Any,
    params: Parameters,
    plan: ExactPlan,
    device: torch.device,
    run_dir: Path,
    metrics: dict[str, Any],
    progress: bool,
) -> LayeredSolution:
    """Solve a run layer by layer; per-state arrays go to ``run_dir/exact``.

    Writes ``exact/<name>.npy`` (``v_m``, ``v_e``, ``v_r`` and
    the quantities ``params.output`` asks for), ``exact/keys.npy`` (every state's packed key, in
    state order) and ``exact/layers.json`` (per layer: layer value, first state id,
    states, seconds, resident GiB); adds the sizes, times and the initial state's
    ``V_r`` and ``W_h`` (``v_r_s0``, ``w_h/<human>/s0``) to ``metrics``.
    """
    directory = run_dir / "exact"
    solution = solve_layered(
        world,
        params.theory,
        layers=plan.layers,
        device=device,
        dtype=getattr(torch, params.exact.dtype.value),
        directory=directory,
        outputs=layered_outputs(params.output),
        progress=progress,
    )
    layers = solution.layers
    np.save(directory / "keys.npy", torch.cat(layers.keys).cpu().numpy())
    table = [
        {
            "layer": stats.layer,
            "first_id": first,
            "states": stats.states,
            "seconds": stats.seconds,
            "rss_gib": stats.rss_gib,
        }
        for stats, first in zip(solution.layer_stats, layers.offsets)
    ]
    (directory / "layers.json").write_text(json.dumps(table, indent=1) + "\n")
    s0 = world.initial_states()[:1]
    v_r = float(solution.robot_values(s0)[0])
    bits = power_bits(solution.human_power(s0)[0].double())
    metrics.update(
        {
            "exact/method": "layered",
            "num_states": layers.num_states,
            "num_layers": len(layers.keys),
            "num_joint_actions": int(solution.context.per_agent.shape[0]),
            "time/compile_s": solution.seconds["enumeration"],
            "time/exact_solve_s": solution.seconds["solve"],
            "exact/in_memory_gib_estimate": plan.in_memory_gib,
            "exact/peak_rss_gib": peak_rss_gib(),
            "v_r_s0": json_number(v_r),
        }
    )
    for h, agent in enumerate(world.humans):
        metrics[f"w_h/{world.agents[agent]}/s0"] = json_number(float(bits[h]))
    return solution
