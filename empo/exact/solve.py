"""Entry point of the exact two-phase solver (THEORY.md, phases 1 and 2).

:func:`solve` compiles any world, checks it and the parameters, then runs phase 1
(eqs. 1-3) and phase 2 (eqs. 4-9). Acyclic worlds are solved by backward induction
over topological heights, each height in chunks that are vectorised over states,
humans, goals and joint actions; cyclic worlds by synchronous value iteration to a
tolerance. Everything runs on the chosen device under :func:`torch.inference_mode`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import torch

from empo.exact.human_model import HumanModel
from empo.exact.layout import Layout
from empo.exact.phase1 import solve_phase1
from empo.exact.phase2 import solve_phase2
from empo.exact.solution import ExactSolution, infinite_utility_states, make_tensordict
from empo.parameters.theory import TheoryParameters
from empo.worlds.compiled import CompiledWorld
from empo.worlds.registry import compile_any

logger = logging.getLogger(__name__)

CHUNK_MEMORY_BYTES = 64 * 2**20
"""Memory budget of the per-chunk intermediates when ``chunk_size`` is automatic."""


class NotConvergedError(RuntimeError):
    """Value iteration on a cyclic world did not reach the tolerance."""


def automatic_chunk_size(world: CompiledWorld, budget: int = CHUNK_MEMORY_BYTES) -> int:
    """States per chunk so that the gathered intermediates fit in ``budget`` bytes.

    Per state the solver holds a few ``[joint, human * goal]`` float tensors and the
    ``[joint, K]`` transitions.
    """
    item = world.probabilities.element_size()
    joint, k = world.successors.shape[1], world.successors.shape[2]
    columns = world.num_humans * world.max_goals
    per_state = joint * (4 * columns * item + k * (8 + item) * 2)
    return max(1, budget // max(per_state, 1))


def _check_world(world: CompiledWorld, theory: TheoryParameters) -> None:
    agents = set(range(len(world.agents)))
    roles = set(world.humans) | set(world.robots)
    if roles != agents:
        missing = [world.agents[a] for a in sorted(agents - roles)]
        raise ValueError(f"agents {missing} are neither humans nor robots")
    if not world.humans:
        raise ValueError("the world has no human: power is undefined")
    if world.durations is not None:
        raise ValueError(
            "the exact solver does not support transition durations; compile the "
            "world without them"
        )
    if world.height is None:
        for name in ("gamma_h", "gamma_r"):
            if getattr(theory, name) >= 1:
                raise ValueError(
                    f"theory.{name} = {getattr(theory, name)} is not allowed for a "
                    "cyclic world (values would not converge): use a value < 1"
                )


def _clock(world: CompiledWorld) -> float:
    """Wall-clock time after the device's queued work is done."""
    device = world.probabilities.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _check_convergence(
    name: str, converged: bool, iterations: int, allow_unconverged: bool
) -> None:
    if converged:
        return
    message = (
        f"{name} value iteration did not converge within {iterations} iterations "
        "(raise max_iterations, lower the discounts or beta_h)"
    )
    if not allow_unconverged:
        raise NotConvergedError(message)
    warnings.warn(message + "; the solution is marked unconverged", stacklevel=3)


def solve(
    world: Any,
    theory: TheoryParameters | None = None,
    *,
    human_model: HumanModel | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    tolerance: float = 1e-10,
    max_iterations: int = 10_000,
    chunk_size: int | None = None,
    allow_unconverged: bool = False,
    check_world: bool = True,
) -> ExactSolution:
    """Solve phases 1 and 2 exactly.

    Parameters
    ----------
    world
        Any world object :func:`~empo.worlds.registry.compile_any` accepts.
    theory
        Theory parameters (default: the paper's recommendation).
    human_model
        Per-state/goal ``beta_h``, ``nu_h``, ``pi0_h`` and ``mu_-h`` overriding the
        scalars in ``theory``.
    device, dtype
        Where and in which float precision to compute.
    tolerance, max_iterations
        Stopping rule of the value iteration on cyclic worlds.
    chunk_size
        States per vectorised chunk; default from a memory budget
        (:data:`CHUNK_MEMORY_BYTES`).
    allow_unconverged
        Return an unconverged cyclic solution (with a warning, marked in
        ``ExactSolution.converged``) instead of raising :class:`NotConvergedError`.
    check_world
        Run :meth:`CompiledWorld.validate` first (costs time on huge worlds).

    Returns
    -------
    ExactSolution
        Both phases' tensors with label-level accessors.

    Raises
    ------
    ValueError
        For invalid worlds, parameters or human-model tensors, and for ``gamma = 1``
        on a cyclic world.
    NotConvergedError
        If value iteration does not converge and ``allow_unconverged`` is False.
    """
    theory = theory if theory is not None else TheoryParameters()
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a positive number, got {tolerance}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be at least 1, got {max_iterations}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    compiled = compile_any(world, device=device, dtype=dtype)
    if check_world:
        compiled.validate()
    _check_world(compiled, theory)
    chunk = chunk_size or automatic_chunk_size(compiled)
    with torch.inference_mode():
        layout = Layout(compiled)
        humans = (human_model or HumanModel()).resolve(compiled, theory)
        options = dict(
            chunk_size=chunk, tolerance=tolerance, max_iterations=max_iterations
        )
        start = _clock(compiled)
        first = solve_phase1(layout, humans, theory, **options)
        middle = _clock(compiled)
        _check_convergence(
            "phase 1", first.converged, first.iterations, allow_unconverged
        )
        second = solve_phase2(layout, theory, first.pi_h, **options)
        end = _clock(compiled)
        _check_convergence(
            "phase 2", second.converged, second.iterations, allow_unconverged
        )
    S = compiled.num_states
    solution = ExactSolution(
        world=compiled,
        theory=theory,
        phase1=make_tensordict(
            {"q_m": first.q_m, "pi_h": first.pi_h, "v_m": first.v_m}, S
        ),
        phase2=make_tensordict(
            {
                "q_r": second.q_r,
                "pi_r": second.pi_r,
                "v_e": second.v_e,
                "x_h": second.x_h,
                "u_r": second.u_r,
                "v_r": second.v_r,
            },
            S,
        ),
        converged={"phase1": first.converged, "phase2": second.converged},
        iterations={"phase1": first.iterations, "phase2": second.iterations},
        seconds={"phase1": middle - start, "phase2": end - middle},
    )
    bad = infinite_utility_states(solution)
    if len(bad):
        names = [compiled.state_name(s) for s in bad[:5].tolist()]
        warnings.warn(
            f"U_r = -inf at {len(bad)} non-terminal states (e.g. {', '.join(names)}): "
            "some human has X_h = 0 there (no goal reachable); set theory.eps_x > 0 "
            "or give the goals full coverage",
            stacklevel=2,
        )
    return solution
