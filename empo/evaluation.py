"""Evaluation of a solved world from its initial state.

The robot and the humans act under the solved joint policy (``π_r`` of eq. (5) and
the goal-marginal human policies ``π̄_h`` of eq. (4)). Three views of what happens:

* the **most likely trajectory**: the most probable joint action, then the most
  probable successor, until a terminal state or the horizon;
* the **expectation**: the state distribution propagated exactly through the compiled
  successors, giving per time step the probability that the episode is still running,
  the expected power ``W_h = log2 X_h`` (eq. 10) of each human given that it is, and
  the expected robot reward ``U_r`` (eq. 8);
* optional **sampled rollouts**, a Monte Carlo check of ``V_r(s_0)`` (eq. 9).

Since ``V_r(s) = U_r(s) + γ_r E[V_r(s')]`` with ``V_r = terminal_v_r`` at terminal
states, the discounted expected return computed here equals ``V_r(s_0)`` once the
horizon covers every trajectory; :func:`evaluate` reports both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from empo.parameters import EvaluationParameters, TheoryParameters
from empo.solution import (
    Solution,
    SolutionTables,
    marginal_human_probs,
    robot_action_parts,
)
from empo.theory import power_bits
from empo.worlds.base import WorldModel
from empo.worlds.compiled import CompiledWorld

CYCLIC_HORIZON = 100
"""Horizon used for cyclic worlds when ``evaluation.horizon`` is ``None``."""


@dataclass
class Evaluation:
    """What happens from the initial state under the solved joint policy.

    Attributes
    ----------
    humans, robot_actions
        Human names; names of the robots' (joint) actions.
    trajectory
        State ids of the most likely trajectory, ``s_0`` first.
    trajectory_labels
        Readable names of those states.
    trajectory_actions
        Per step, the most likely joint action as ``{agent: action name}``.
    w_h_trajectory
        ``[step, human]`` power ``W_h`` in bits along the most likely trajectory.
    u_r_trajectory
        ``[step]`` robot reward ``U_r`` along it (``nan`` at a terminal state).
    alive
        ``[step]`` probability that the episode has not ended.
    w_h_expected
        ``[step, human]`` expected ``W_h`` given that the episode has not ended.
    u_r_expected
        ``[step]`` expected ``U_r`` (0 contribution from ended episodes).
    robot_policy_s0
        ``{robot action: probability}`` at ``s_0``.
    v_r_s0
        ``V_r(s_0)`` of the solution.
    discounted_return
        ``Σ_t γ_r^t E[U_r(s_t)]`` plus the discounted terminal values, over the
        horizon.
    sampled
        Statistics of the sampled rollouts (empty when none were sampled).
    """

    humans: tuple[str, ...]
    robot_actions: tuple[str, ...]
    trajectory: list[int]
    trajectory_labels: list[str]
    trajectory_actions: list[dict[str, str]]
    w_h_trajectory: Float[Tensor, "step human"]
    u_r_trajectory: Float[Tensor, " step"]
    alive: Float[Tensor, " step"]
    w_h_expected: Float[Tensor, "step human"]
    u_r_expected: Float[Tensor, " step"]
    robot_policy_s0: dict[str, float]
    v_r_s0: float
    discounted_return: float
    sampled: dict[str, float] = field(default_factory=dict)

    def final_step(self) -> int:
        """Index of the last non-terminal state of the most likely trajectory."""
        live = (~torch.isnan(self.u_r_trajectory)).nonzero()
        return int(live[-1]) if len(live) else 0

    def metrics(self) -> dict[str, Any]:
        """Flat JSON-able metrics; non-finite numbers are written as strings."""
        out: dict[str, Any] = {
            "v_r_s0": self.v_r_s0,
            "u_r/expected_discounted_return": self.discounted_return,
            "trajectory/length": len(self.trajectory) - 1,
        }
        final = self.final_step()
        for h, name in enumerate(self.humans):
            out[f"w_h/{name}/s0"] = float(self.w_h_trajectory[0, h])
            out[f"w_h/{name}/final"] = float(self.w_h_trajectory[final, h])
            for t, value in enumerate(self.w_h_trajectory[:, h].tolist()):
                out[f"w_h/{name}/trajectory/{t}"] = value
            for t, value in enumerate(self.w_h_expected[:, h].tolist()):
                out[f"w_h/{name}/expected/{t}"] = value
        for t, value in enumerate(self.u_r_trajectory.tolist()):
            out[f"u_r/trajectory/{t}"] = value
        for t, value in enumerate(self.u_r_expected.tolist()):
            out[f"u_r/expected/{t}"] = value
        for t, value in enumerate(self.alive.tolist()):
            out[f"alive/expected/{t}"] = value
        for action, p in self.robot_policy_s0.items():
            out[f"robot_policy_s0/{action}"] = p
        out.update({f"sampled/{k}": v for k, v in self.sampled.items()})
        return {k: json_number(v) for k, v in out.items()}


def json_number(value: Any) -> Any:
    """``value`` as a plain float, or ``"inf"``/``"-inf"``/``"nan"`` if not finite.

    Parameters
    ----------
    value
        A number or any other JSON-able value (returned unchanged).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def state_names(world: CompiledWorld, states: list[int]) -> list[str]:
    """Readable names of state ids: labels, ``state_table`` rows, or ``s<id>``.

    Parameters
    ----------
    world
        The compiled world.
    states
        State ids.
    """
    if world.state_labels is not None:
        return [str(world.state_labels[s]) for s in states]
    if world.state_table is not None:
        return [str(world.state_table[s].tolist()) for s in states]
    return [f"s{s}" for s in states]


def robot_action_names(world: CompiledWorld) -> tuple[str, ...]:
    """Names of the robots' joint actions (``"a+b"`` for several robots)."""
    names = [""]
    for robot in world.robots:
        names = [
            f"{prefix}+{action}" if prefix else action
            for prefix in names
            for action in world.action_names[robot]
        ]
    return tuple(names)


def robot_marginal(
    world: CompiledWorld, joint: Float[Tensor, "*batch joint"]
) -> Float[Tensor, "*batch robot_action"]:
    """Marginal distribution of the robots' joint action, robots in ``robots`` order.

    Parameters
    ----------
    world
        The compiled world (gives the mixed-radix layout).
    joint
        Probabilities of joint actions.
    """
    batch = joint.shape[:-1]
    per_agent = joint.reshape(*batch, *world.action_counts)
    offset = len(batch)
    others = [offset + a for a in range(len(world.agents)) if a not in world.robots]
    marginal = per_agent.sum(dim=others) if others else per_agent
    order = sorted(world.robots)
    permutation = [order.index(r) for r in world.robots]
    marginal = marginal.permute(*range(offset), *(offset + p for p in permutation))
    return marginal.reshape(*batch, -1)


def horizon_of(world: CompiledWorld, horizon: int | None) -> int:
    """``horizon`` if given, else the height of ``s_0`` (acyclic) or
    :data:`CYCLIC_HORIZON`."""
    if horizon is not None:
        return horizon
    if world.height is None:
        return CYCLIC_HORIZON
    return max(int(world.height[world.initial_state]), 1)


def most_likely_trajectory(
    world: CompiledWorld, joint_policy: Float[Tensor, "state joint"], horizon: int
) -> tuple[list[int], list[int]]:
    """States and joint actions of the most likely trajectory from ``s_0``.

    At each step the most probable joint action is taken and its most probable
    successor followed (ties: the lowest index), until a terminal state or
    ``horizon`` steps.

    Parameters
    ----------
    world
        The compiled world.
    joint_policy
        ``[state, joint]`` probabilities of joint actions.
    horizon
        Largest number of steps.

    Returns
    -------
    tuple of lists
        ``len(horizon') + 1`` state ids and ``horizon'`` joint action ids.
    """
    best_action = joint_policy.argmax(dim=1)
    best_outcome = world.probabilities[
        torch.arange(world.num_states, device=best_action.device), best_action
    ].argmax(dim=1)
    next_state = world.successors[
        torch.arange(world.num_states, device=best_action.device),
        best_action,
        best_outcome,
    ]
    states, actions = [world.initial_state], []
    terminal = world.terminal.tolist()
    next_list, action_list = next_state.tolist(), best_action.tolist()
    while len(actions) < horizon and not terminal[states[-1]]:
        actions.append(action_list[states[-1]])
        states.append(next_list[states[-1]])
    return states, actions


def propagate(
    world: CompiledWorld, joint_policy: Float[Tensor, "state joint"], horizon: int
) -> Float[Tensor, "step state"]:
    """Exact state distributions ``d_0, ..., d_horizon`` from ``s_0``.

    ``d_{t+1}(s') = Σ_{s,a,k: succ(s,a,k)=s'} d_t(s) π(s)(a) P_k(s,a)``; mass that has
    reached a terminal state leaves the distribution one step later.

    Parameters
    ----------
    world
        The compiled world.
    joint_policy
        ``[state, joint]`` probabilities of joint actions (zero at terminal states).
    horizon
        Number of steps.
    """
    flow = joint_policy[:, :, None] * world.probabilities
    flow = flow * (~world.terminal)[:, None, None]
    targets = world.successors.reshape(-1)
    d = torch.zeros(world.num_states, dtype=flow.dtype, device=flow.device)
    d[world.initial_state] = 1.0
    out = [d]
    for _ in range(horizon):
        mass = (d[:, None, None] * flow).reshape(-1)
        d = torch.zeros_like(d).index_add_(0, targets, mass)
        out.append(d)
    return torch.stack(out)


@dataclass
class ExpectedCourse:
    """Exact expectations over time from ``s_0`` under a joint policy.

    Attributes
    ----------
    distribution
        ``[step, state]`` state distributions ``d_0, ..., d_horizon``.
    alive
        ``[step]`` probability that the episode has not ended.
    w_h
        ``[step, human]`` expected ``W_h`` (eq. 10) given that it has not.
    u_r
        ``[step]`` expected ``U_r`` (eq. 8; ended episodes contribute 0).
    discounted_return
        ``Σ_t γ_r^t E[U_r(s_t)]`` plus the discounted terminal values.
    """

    distribution: Float[Tensor, "step state"]
    alive: Float[Tensor, " step"]
    w_h: Float[Tensor, "step human"]
    u_r: Float[Tensor, " step"]
    discounted_return: float


def expected_course(
    world: CompiledWorld,
    joint_policy: Float[Tensor, "state joint"],
    x_h: Float[Tensor, "state human"],
    u_r: Float[Tensor, " state"],
    horizon: int,
    theory: TheoryParameters,
) -> ExpectedCourse:
    """Propagate the state distribution from ``s_0`` (:func:`propagate`) and take
    the expected power, robot reward and discounted return per step.

    Parameters
    ----------
    world
        The compiled world.
    joint_policy
        ``[state, joint]`` probabilities of joint actions.
    x_h, u_r
        ``X_h`` (eq. 7) and ``U_r`` (eq. 8) per state.
    horizon
        Number of steps.
    theory
        Its ``gamma_r`` and ``terminal_v_r``: robot discount and terminal value
        (eqs. 4 and 9).
    """
    gamma_r, terminal_v_r = theory.gamma_r, theory.terminal_v_r
    w_h = power_bits(x_h)
    d = propagate(world, joint_policy, horizon)
    live_mass = d * (~world.terminal)
    alive = live_mass.sum(dim=1)
    weighted_w = torch.where(live_mass[:, :, None] > 0, w_h[None], 0.0)
    w_expected = (live_mass[:, :, None] * weighted_w).sum(dim=1) / alive[:, None]
    w_expected = torch.where(alive[:, None] > 0, w_expected, math.nan)
    u_masked = torch.where(live_mass > 0, u_r[None], 0.0)
    u_expected = (live_mass * u_masked).sum(dim=1)
    terminal_mass = (d * world.terminal).sum(dim=1)
    discounts = gamma_r ** torch.arange(horizon + 1, dtype=d.dtype, device=d.device)
    discounted = float((discounts * (u_expected + terminal_v_r * terminal_mass)).sum())
    return ExpectedCourse(d, alive, w_expected, u_expected, discounted)


def _sample(
    world: CompiledWorld,
    joint_policy: Float[Tensor, "state joint"],
    u_r: Float[Tensor, " state"],
    w_h: Float[Tensor, "state human"],
    theory: TheoryParameters,
    rollouts: int,
    horizon: int,
    generator: torch.Generator,
    humans: tuple[str, ...],
) -> dict[str, float]:
    """Monte Carlo statistics of ``rollouts`` trajectories, sampled as one batch."""
    gamma_r, terminal_v_r = theory.gamma_r, theory.terminal_v_r
    states: Int64[Tensor, " rollout"] = torch.full(
        (rollouts,), world.initial_state, device=u_r.device
    )
    last_live = states.clone()
    ret = torch.zeros(rollouts, dtype=u_r.dtype, device=u_r.device)
    length = torch.zeros(rollouts, dtype=torch.long, device=u_r.device)
    for t in range(horizon + 1):
        live = ~world.terminal[states]
        ret += torch.where(live, u_r[states], terminal_v_r * (length == t)) * gamma_r**t
        if t == horizon or not live.any():
            break
        last_live = torch.where(live, states, last_live)
        rows = joint_policy[states[live]]
        action = torch.multinomial(rows, 1, generator=generator).squeeze(1)
        outcome = torch.multinomial(
            world.probabilities[states[live], action], 1, generator=generator
        ).squeeze(1)
        states = states.clone()
        states[live] = world.successors[states[live], action, outcome]
        length += live.long()
    stats = {
        "rollouts": float(rollouts),
        "mean_length": float(length.double().mean()),
        "discounted_return_mean": float(ret.double().mean()),
        "discounted_return_std": float(ret.double().std()) if rollouts > 1 else 0.0,
    }
    final_w = w_h[last_live]
    for h, name in enumerate(humans):
        stats[f"w_h/{name}/final_mean"] = float(final_w[:, h].double().mean())
    return stats


def evaluate(
    solution: SolutionTables,
    evaluation: EvaluationParameters,
    theory: TheoryParameters,
    generator: torch.Generator | None = None,
) -> Evaluation:
    """Evaluate a solution from its initial state (see the module docstring).

    Parameters
    ----------
    solution
        The solution on every state of its compiled world (``phase2`` keys
        ``x_h [S, H]``, ``u_r [S]``, ``v_r [S]``).
    evaluation
        Horizon and number of sampled rollouts.
    theory
        Its ``gamma_r`` and ``terminal_v_r``: robot discount and terminal value of
        THEORY.md (eqs. 4 and 9).
    generator
        Random source of the sampled rollouts.

    Returns
    -------
    Evaluation
        Trajectory, expectation and rollout statistics.
    """
    world = solution.world
    joint = solution.joint_policy()
    x_h = solution.phase2["x_h"]
    u_r = solution.phase2["u_r"]
    w_h = power_bits(x_h)
    horizon = horizon_of(world, evaluation.horizon)
    s0 = world.initial_state
    humans = tuple(world.agents[h] for h in world.humans)

    states, actions = most_likely_trajectory(world, joint, horizon)
    index = torch.tensor(states, device=u_r.device)
    live = ~world.terminal[index]
    nan = torch.full_like(u_r[index], math.nan)
    per_agent = world.split_joint_actions(torch.tensor(actions, dtype=torch.long))
    step_actions = [
        {world.agents[a]: world.action_names[a][int(i)] for a, i in enumerate(row)}
        for row in per_agent.tolist()
    ]

    course = expected_course(world, joint, x_h, u_r, horizon, theory)

    pi_r_s0 = robot_marginal(world, joint[s0])
    sampled: dict[str, float] = {}
    if evaluation.rollouts > 0 and not bool(world.terminal[s0]):
        sampled = _sample(
            world,
            joint,
            u_r,
            w_h,
            theory,
            evaluation.rollouts,
            horizon,
            generator or torch.Generator(device=u_r.device),
            humans,
        )
    return Evaluation(
        humans=humans,
        robot_actions=robot_action_names(world),
        trajectory=states,
        trajectory_labels=state_names(world, states),
        trajectory_actions=step_actions,
        w_h_trajectory=w_h[index].cpu(),
        u_r_trajectory=torch.where(live, u_r[index], nan).cpu(),
        alive=course.alive.cpu(),
        w_h_expected=course.w_h.cpu(),
        u_r_expected=course.u_r.cpu(),
        robot_policy_s0=dict(zip(robot_action_names(world), pi_r_s0.tolist())),
        v_r_s0=float(solution.phase2["v_r"][s0]),
        discounted_return=course.discounted_return,
        sampled=sampled,
    )


def most_likely_rollout(
    model: WorldModel, solution: Solution, max_steps: int = 1000
) -> tuple[Int64[Tensor, "visit dim"], Int64[Tensor, "step agent"]]:
    """The most likely rollout of any solution on state rows, from the first initial
    state: every human plays the most likely action of its goal-marginal policy
    ``π̄_h`` (eq. 4), the robots the most likely joint action of ``π_r`` (eq. 5), and
    the most likely successor is followed, until a terminal state or ``max_steps``.

    Parameters
    ----------
    model
        The world model whose rows the solution reads.
    solution
        Any solution.
    max_steps
        Largest number of steps.

    Returns
    -------
    tuple
        ``[T + 1, dim]`` rows and ``[T, agent]`` per-agent actions.
    """
    row = model.initial_states()[:1].to(torch.int64)
    counts = tuple(len(names) for names in model.action_names)
    parts = robot_action_parts(counts, tuple(model.robots))
    weights = model.goal_weights.to(torch.float64)
    rows, actions = [row], []
    for _ in range(max_steps):
        if bool(model.is_terminal(row)[0]):
            break
        pi_bar = marginal_human_probs(solution, row, weights)[0].cpu()
        profile = torch.zeros(1, len(counts), dtype=torch.int64)
        profile[0, list(model.humans)] = pi_bar.argmax(-1)
        robot = int(solution.robot_probs(row).argmax(-1)[0])
        profile[0, list(model.robots)] = parts[robot]
        succ, prob = model.transitions(row, profile.to(row.device))
        row = succ[:, prob[0].argmax()]
        rows.append(row)
        actions.append(profile)
    if not actions:
        return torch.cat(rows), torch.zeros(0, len(counts), dtype=torch.int64)
    return torch.cat(rows), torch.cat(actions)
