"""The world-model protocol: what a world must offer to be compiled and simulated.

A world model answers two questions (DESIGN.md, "World model"): *what happens*
(a batched TorchRL ``EnvBase``, implemented per world) and *what can happen, with what
probability* (this protocol). States are integer tensors of a fixed width
``state_dim`` so that millions of them can be enumerated and hashed; the time step is
part of the state for worlds with a horizon, which makes them acyclic.

The generic compiler (:func:`empo.worlds.compiler.compile_world`) turns any
:class:`WorldModel` into a :class:`~empo.worlds.compiled.CompiledWorld` by batched
breadth-first search.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from jaxtyping import Bool, Float, Int64
from torch import Tensor


@runtime_checkable
class WorldModel(Protocol):
    """Batched explicit world model.

    Attributes
    ----------
    agents
        Agent names in joint-action order.
    humans, robots
        Indices into ``agents``.
    action_names
        Per agent, the names of all its actions.
    rest_action
        Per agent, the index of its rest action (e.g. "still"), or ``None``.
    state_dim
        Width of the integer state encoding.
    max_outcomes
        Upper bound ``K`` on the number of successors of one joint action.
    goal_names
        Per human (in ``humans`` order), the goal names.
    goal_weights
        ``[human, goal]`` weights, 0 on padding.
    """

    agents: tuple[str, ...]
    humans: tuple[int, ...]
    robots: tuple[int, ...]
    action_names: tuple[tuple[str, ...], ...]
    rest_action: tuple[int | None, ...]
    state_dim: int
    max_outcomes: int
    goal_names: tuple[tuple[str, ...], ...]
    goal_weights: Float[Tensor, "human goal"]

    def initial_states(self) -> Int64[Tensor, "n dim"]:
        """Initial state(s) to start the enumeration from."""

    def is_terminal(self, states: Int64[Tensor, "batch dim"]) -> Bool[Tensor, " batch"]:
        """Which states are terminal."""

    def action_mask(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch agent max_action"]:
        """Allowed actions per agent (padded to the largest action count)."""

    def transitions(
        self,
        states: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
    ) -> tuple[Int64[Tensor, "batch k dim"], Float[Tensor, "batch k"]]:
        """All successors of each (state, per-agent action) pair with probabilities.

        Entries beyond a pair's real outcomes are padding with probability 0 (their
        state is arbitrary but must be a valid encoding, e.g. a copy of the input).
        Probabilities of each pair sum to 1 for non-terminal states and allowed
        actions; duplicates are allowed and are summed by consumers.
        """

    def goal_membership(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Whether each state lies in each goal of each human (padded goals False)."""
