"""Exact policy evaluation: what any robot policy achieves, computed exactly.

Given a compiled world, its exact solution and any robot policy over all states (a
learned solution's ``π_r``, a PPO actor's, a uniform robot's), :func:`evaluate_robot`
computes eqs. (4) and (6)-(9) with that policy in place of eq. (5), by the exact
phase-2 backward induction (:func:`empo.exact.phase2.solve_phase2` given the policy;
the humans keep their exact phase-1 policies): ``V^e_h``, ``X_h``, ``W_h``, ``U_r``,
``Q_r`` and ``V_r`` under the policy. :func:`compare_robots` sets the result next to
the exact robot: the expected human power over time from ``s_0`` (the occupancy
propagation of :func:`empo.evaluation.expected_course`), ``V_r(s_0)``, and where the
exact robot's expected power peaks.

:func:`largest_errors` reports the largest per-state errors of a learned solution's
quantities against the exact ones, over the states either robot visits with
probability at least ``1e-3`` (the largest probability over time steps of being in
the state: for worlds with the time step in the state, the probability of visiting
it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDict
from torch import Tensor

from empo.evaluation import (
    ExpectedCourse,
    expected_course,
    horizon_of,
    json_number,
    state_names,
)
from empo.exact.layout import Layout
from empo.exact.phase2 import solve_phase2
from empo.exact.solution import ExactSolution
from empo.exact.solve import automatic_chunk_size
from empo.solution import Solution, SolutionTables, TabulatedSolution
from empo.worlds.rows import compiled_rows

__all__ = [
    "EvaluatedRobot",
    "RobotComparison",
    "compare_robots",
    "evaluate_robot",
    "largest_errors",
    "policy_report",
    "robot_policy_table",
    "visited_states",
]

VISITED = 1e-3
"""Visit probability above which :func:`largest_errors` looks at a state."""

_CHUNK = 4096


@dataclass
class EvaluatedRobot(TabulatedSolution):
    """The exact values of a world under a given robot policy.

    A :class:`~empo.solution.TabulatedSolution`: ``phase1`` is the exact solution's,
    ``phase2`` holds ``q_r``, ``pi_r`` (the given policy), ``v_e``, ``x_h``, ``u_r``
    and ``v_r`` under it (eqs. 4, 6-9).
    """

    world: Any
    phase1: TensorDict
    phase2: TensorDict
    stats: dict[str, float] = field(default_factory=dict)


def robot_policy_table(
    robot_probs: Callable[[Int64[Tensor, "b dim"]], Float[Tensor, "b a_r"]],
    exact: ExactSolution,
) -> Float[Tensor, "state robot_action"]:
    """A robot policy on every state of the exact solution's compiled world.

    Parameters
    ----------
    robot_probs
        ``π_r`` on a batch of state rows, e.g. a solution's ``robot_probs`` or a
        wrapped actor network.
    exact
        The exact solution (its compiled world gives the rows).
    """
    rows = compiled_rows(exact.world)
    ref = exact.phase2["pi_r"]
    parts = [robot_probs(chunk).to(ref) for chunk in torch.split(rows, _CHUNK)]
    return torch.cat(parts)


def evaluate_robot(
    exact: ExactSolution, robot_policy: Float[Tensor, "state robot_action"]
) -> EvaluatedRobot:
    """Eqs. (4) and (6)-(9) under a given robot policy, exactly.

    Parameters
    ----------
    exact
        The exact solution (world, theory parameters, phase-1 policies).
    robot_policy
        ``[state, robot_action]`` probabilities (:func:`robot_policy_table`); rows of
        terminal states are ignored.

    Raises
    ------
    ValueError
        If the policy has the wrong shape, or a row of a non-terminal state is not a
        distribution over the allowed robot actions (the first such state is named).
    """
    world, theory = exact.world, exact.theory
    expected = tuple(exact.phase2["pi_r"].shape)
    if tuple(robot_policy.shape) != expected:
        raise ValueError(
            f"robot policy has shape {tuple(robot_policy.shape)}, expected {expected}"
        )
    with torch.inference_mode():
        layout = Layout(world)
        policy = robot_policy.to(layout.dtype).to(layout.device)
        live = ~world.terminal
        allowed = layout.robot_mask(torch.arange(world.num_states))
        off = (policy.abs() * ~allowed).sum(-1)
        total = policy.sum(-1)
        bad = live & ((policy < 0).any(-1) | (off > 1e-6) | ((total - 1).abs() > 1e-6))
        if bool(bad.any()):
            state = world.state_name(int(bad.nonzero()[0]))
            raise ValueError(
                f"the robot policy at state {state} is not a distribution over the "
                "allowed robot actions"
            )
        policy = torch.where(live[:, None], policy * allowed, 0.0)
        result = solve_phase2(
            layout,
            theory,
            exact.phase1["pi_h"],
            chunk_size=automatic_chunk_size(world),
            tolerance=1e-12,
            max_iterations=10_000,
            robot_policy=policy,
        )
    phase2 = TensorDict(
        {
            "q_r": result.q_r,
            "pi_r": result.pi_r,
            "v_e": result.v_e,
            "x_h": result.x_h,
            "u_r": result.u_r,
            "v_r": result.v_r,
        },
        batch_size=[world.num_states],
    )
    stats = {"phase2/iterations": float(result.iterations)}
    return EvaluatedRobot(world, exact.phase1, phase2, stats)


@dataclass
class RobotComparison:
    """A robot policy next to the exact robot (see :func:`compare_robots`).

    Attributes
    ----------
    evaluated
        The exact values under the robot's policy.
    robot, exact
        Expected courses (:class:`~empo.evaluation.ExpectedCourse`) from ``s_0``
        under the robot's policy and under the exact robot's.
    humans
        Human names.
    """

    evaluated: EvaluatedRobot
    robot: ExpectedCourse
    exact: ExpectedCourse
    humans: list[str]

    def summary(self, exact: ExactSolution) -> dict[str, Any]:
        """JSON-able figures: ``v_r_s0`` (``{"robot", "exact"}``, ``V_r(s_0)`` under
        each policy); ``w_h_expected`` (per human, ``{"robot", "exact"}``: expected
        ``W_h`` in bits per step while the episode runs); ``peak`` (per human: the
        step at which the exact robot's expected ``W_h`` peaks, both values there)."""
        s0 = exact.world.initial_state
        curves, peaks = {}, {}
        for h, name in enumerate(self.humans):
            ours, theirs = self.robot.w_h[:, h], self.exact.w_h[:, h]
            curves[name] = {
                "robot": [json_number(v) for v in ours.tolist()],
                "exact": [json_number(v) for v in theirs.tolist()],
            }
            t = int(torch.nan_to_num(theirs, nan=-math.inf).argmax())
            peaks[name] = {
                "step": t,
                "robot": json_number(float(ours[t])),
                "exact": json_number(float(theirs[t])),
            }
        return {
            "v_r_s0": {
                "robot": json_number(float(self.evaluated.phase2["v_r"][s0])),
                "exact": json_number(float(exact.phase2["v_r"][s0])),
            },
            "w_h_expected": curves,
            "peak": peaks,
        }


def _course(
    solution: SolutionTables, exact: ExactSolution, horizon: int
) -> ExpectedCourse:
    return expected_course(
        exact.world,
        solution.joint_policy(),
        solution.phase2["x_h"],
        solution.phase2["u_r"],
        horizon,
        exact.theory,
    )


def compare_robots(
    exact: ExactSolution,
    robot: Solution | Callable[[Int64[Tensor, "b dim"]], Float[Tensor, "b a_r"]],
    horizon: int | None = None,
) -> RobotComparison:
    """Another robot next to the exact one, by exact policy evaluation.

    Parameters
    ----------
    exact
        The exact solution.
    robot
        A solution (its ``robot_probs``) or any function of state rows giving ``π_r``.
    horizon
        Steps of the expected courses (default: the height of ``s_0``, or
        :data:`empo.evaluation.CYCLIC_HORIZON`).
    """
    probs = robot.robot_probs if isinstance(robot, Solution) else robot
    evaluated = evaluate_robot(exact, robot_policy_table(probs, exact))
    steps = horizon_of(exact.world, horizon)
    return RobotComparison(
        evaluated=evaluated,
        robot=_course(evaluated, exact, steps),
        exact=_course(exact, exact, steps),
        humans=[exact.world.agents[h] for h in exact.world.humans],
    )


def policy_report(learned: Solution, exact: ExactSolution) -> dict[str, Any]:
    """What ``comparison.json`` holds of exact policy evaluation (issue 15): the
    learned robot next to the exact one (:meth:`RobotComparison.summary`) and the
    largest per-state errors of the learned quantities over the states either
    robot visits with probability at least :data:`VISITED`
    (:func:`largest_errors`).

    Parameters
    ----------
    learned
        The learned solution; it must tabulate on ``exact.world``.
    exact
        The exact solution.
    """
    comparison = compare_robots(exact, learned)
    states = visited_states([comparison.robot, comparison.exact])
    tables = learned.tabulate(exact.world)
    return {
        **comparison.summary(exact),
        "visited_states": int(len(states)),
        "largest_errors": largest_errors(tables, exact, states),
    }


def visited_states(
    courses: list[Any], threshold: float = VISITED
) -> Int64[Tensor, " visited"]:
    """Ids of states whose largest per-step probability under any of the courses
    (:class:`~empo.evaluation.ExpectedCourse`) is at least ``threshold``."""
    peak = torch.stack([c.distribution.amax(0) for c in courses]).amax(0)
    return torch.nonzero(peak >= threshold).flatten()


def largest_errors(
    learned: SolutionTables,
    exact: ExactSolution,
    states: Int64[Tensor, " visited"],
) -> dict[str, dict[str, Any]]:
    """Largest per-state error of each learned quantity over ``states``.

    Values (``v_m``, ``v_e``, ``x_h``, ``v_r``): the largest absolute error over
    humans and goals; policies (``pi_h``, ``pi_r``): the largest total variation.
    Padded goals and terminal states are left out.

    Returns
    -------
    dict
        Per quantity: ``error``, the ``state`` (its name) where it is largest, and
        the learned and exact values there (``learned``, ``exact``; for policies the
        row of the worst human and goal).
    """
    world = exact.world
    states = states[~world.terminal[states]]
    goals = world.goal_weights > 0
    out: dict[str, dict[str, Any]] = {}
    for key, phase, policy in (
        ("v_m", "phase1", False),
        ("pi_h", "phase1", True),
        ("v_e", "phase2", False),
        ("x_h", "phase2", False),
        ("v_r", "phase2", False),
        ("pi_r", "phase2", True),
    ):
        mine = getattr(learned, phase)[key][states].to(torch.float64).cpu()
        theirs = getattr(exact, phase)[key][states].to(torch.float64).cpu()
        diff = (mine - theirs).abs()
        if policy:
            diff = 0.5 * diff.sum(-1)
        if key in ("v_m", "v_e", "pi_h"):
            diff = diff.masked_fill(~goals.cpu(), 0.0)
        flat = diff.reshape(len(states), -1)
        if flat.numel() == 0:
            continue
        where = int(flat.max(-1).values.argmax())
        part = int(flat[where].argmax())
        width = flat.shape[1]
        mine_at = mine[where].reshape(width, -1)[part]
        theirs_at = theirs[where].reshape(width, -1)[part]
        out[key] = {
            "error": float(flat[where, part]),
            "state": state_names(world, [int(states[where])])[0],
            "learned": mine_at.tolist() if policy else float(mine_at),
            "exact": theirs_at.tolist() if policy else float(theirs_at),
        }
    return out
