"""Acting on a solution: the robot's most likely actions from the initial state."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from empo.worlds.compiled import CompiledWorld

__all__ = ["greedy_rollout"]


@torch.no_grad()
def greedy_rollout(world: CompiledWorld, pi_r: Float[Tensor, "state a_r"]) -> list[int]:
    """State ids visited when the robot takes its most likely action everywhere.

    The humans take their rest action (the first allowed action where they have
    none) and each step follows the most probable outcome, so the trajectory is
    deterministic. It ends at a terminal state or when a state repeats.

    Parameters
    ----------
    world
        The compiled world.
    pi_r
        ``[state, robot_action]`` robot policy (mixed radix over ``world.robots``).

    Returns
    -------
    list of int
        The visited state ids, starting with ``world.initial_state``.
    """
    counts = world.action_counts
    state = world.initial_state
    path = [state]
    seen = {state}
    while not bool(world.terminal[state]):
        actions = [0] * len(counts)
        for h in world.humans:
            allowed = world.action_mask[state, h, : counts[h]]
            rest = world.rest_action[h]
            if rest is not None and bool(allowed[rest]):
                actions[h] = rest
            else:
                actions[h] = int(torch.nonzero(allowed)[0, 0])
        robot = int(pi_r[state].argmax())
        for r in reversed(world.robots):
            actions[r] = robot % counts[r]
            robot //= counts[r]
        joint = world.joint_action_index(actions)
        outcome = int(world.probabilities[state, joint].argmax())
        state = int(world.successors[state, joint, outcome])
        path.append(state)
        if state in seen:
            break
        seen.add(state)
    return path
