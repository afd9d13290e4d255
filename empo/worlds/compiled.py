"""The compiled (tabular) form of a world that the exact solvers read.

A :class:`CompiledWorld` holds an enumerated world as dense padded tensors
(DESIGN.md, "Compiled world"). Conventions every producer and consumer shares:

* **Agents** are named in ``agents``; ``humans`` and ``robots`` are indices into it.
* **Joint actions** are mixed-radix indices over *all* agents in ``agents`` order,
  agent 0 most significant: ``joint = ((a_0 * n_1 + a_1) * n_2 + a_2) ...`` with
  ``n_i = len(action_names[i])``. Reshaping the joint axis to ``(n_0, n_1, ...)``
  therefore gives one axis per agent.
* **Action masks**: ``action_mask[s, i, a]`` is True where agent ``i`` may take its
  action ``a`` in state ``s`` (padded to the largest action count). A joint action
  in which some agent takes a masked action has all probabilities 0.
* **Successors**: ``successors[s, j, k]`` and ``probabilities[s, j, k]`` list the
  ``K`` possible next states of joint action ``j``; padding entries point to ``s``
  itself with probability 0. Rows of allowed joint actions of non-terminal states sum
  to 1. Terminal states have no allowed action (all probabilities 0).
* **Goals**: ``goal_membership[h, g, s]`` is True where state ``s`` is in goal ``g`` of
  the ``h``-th human (``h`` indexes ``humans``); padded goals have no member and weight
  0 (``goal_mask`` is False there).
* **Levels**: ``height[s]`` is 0 for terminal states and ``1 + max`` over successors
  otherwise, so backward induction processes heights 1, 2, ... in order; ``height`` is
  ``None`` for a cyclic world.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Hashable, Sequence

import numpy as np
import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor


@dataclass
class CompiledWorld:
    """An enumerated world as dense padded tensors (see the module docstring).

    Parameters
    ----------
    agents
        Agent names in joint-action order.
    humans, robots
        Indices into ``agents``; the robots act as one team.
    action_names
        Per agent, the names of all its actions (its largest action set).
    action_mask
        ``[state, agent, max_action]``: allowed actions per state.
    successors, probabilities
        ``[state, joint_action, K]``: successor ids and their probabilities.
    terminal
        ``[state]``: terminal states.
    goal_membership
        ``[human, goal, state]``: whether a state lies in a goal.
    goal_weights
        ``[human, goal]``: goal weights ``w_h(g) > 0``, 0 on padding.
    goal_names
        Per human, the names of its goals (unpadded).
    height
        ``[state]`` topological height, or ``None`` for a cyclic world.
    initial_state
        Id of the initial state.
    rest_action
        Per agent, the index of its rest action, or ``None``.
    state_labels
        Optional hashable label per state (hand-written tabular worlds).
    state_table
        Optional ``[state, state_dim]`` integer encoding (generic worlds).
    durations
        Optional ``[state, joint_action, K]`` transition durations (THEORY.md,
        continuous-time extension).
    """

    agents: tuple[str, ...]
    humans: tuple[int, ...]
    robots: tuple[int, ...]
    action_names: tuple[tuple[str, ...], ...]
    action_mask: Bool[Tensor, "state agent max_action"]
    successors: Int64[Tensor, "state joint k"]
    probabilities: Float[Tensor, "state joint k"]
    terminal: Bool[Tensor, " state"]
    goal_membership: Bool[Tensor, "human goal state"]
    goal_weights: Float[Tensor, "human goal"]
    goal_names: tuple[tuple[str, ...], ...]
    height: Int64[Tensor, " state"] | None
    initial_state: int
    rest_action: tuple[int | None, ...]
    state_labels: Sequence[Hashable] | None = None
    state_table: Int64[Tensor, "state dim"] | None = None
    durations: Float[Tensor, "state joint k"] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_states(self) -> int:
        """Number of states ``S``."""
        return int(self.terminal.shape[0])

    @property
    def num_joint_actions(self) -> int:
        """Number of joint actions (product of all agents' action counts)."""
        return int(self.successors.shape[1])

    @property
    def num_humans(self) -> int:
        """Number of humans."""
        return len(self.humans)

    @property
    def max_goals(self) -> int:
        """Largest number of goals of one human (the padded goal axis)."""
        return int(self.goal_weights.shape[1])

    @property
    def action_counts(self) -> tuple[int, ...]:
        """Per agent, the size of its largest action set (the mixed-radix bases)."""
        return tuple(len(names) for names in self.action_names)

    def to(
        self,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> CompiledWorld:
        """Return a copy with all tensors on ``device`` and float tensors in ``dtype``.

        Parameters
        ----------
        device
            Target device; ``None`` keeps each tensor where it is.
        dtype
            Float dtype of ``probabilities``, ``goal_weights`` and ``durations``;
            ``None`` keeps it.
        """

        def move(tensor: Tensor | None, is_float: bool) -> Tensor | None:
            if tensor is None:
                return None
            return tensor.to(device=device, dtype=dtype if is_float else None)

        return replace(
            self,
            action_mask=move(self.action_mask, False),
            successors=move(self.successors, False),
            probabilities=move(self.probabilities, True),
            terminal=move(self.terminal, False),
            goal_membership=move(self.goal_membership, False),
            goal_weights=move(self.goal_weights, True),
            height=move(self.height, False),
            state_table=move(self.state_table, False),
            durations=move(self.durations, True),
            metadata=dict(self.metadata),
        )

    def levels(self) -> list[Int64[Tensor, " n"]]:
        """State ids grouped by height ``1, 2, ..., max`` for backward induction.

        Returns
        -------
        list of Tensor
            Entry ``i`` holds the ids of the states of height ``i + 1`` (terminal
            states, height 0, are not listed).

        Raises
        ------
        ValueError
            If the world is cyclic (``height`` is ``None``).
        """
        if self.height is None:
            raise ValueError("the world is cyclic: it has no topological levels")
        order = torch.argsort(self.height, stable=True)
        counts = torch.bincount(self.height, minlength=1)
        groups = torch.split(order, counts.tolist())
        return list(groups[1:])

    def joint_action_mask(self) -> Bool[Tensor, "state joint"]:
        """Whether every agent's part of each joint action is allowed in each state."""
        mask = torch.ones(
            self.num_states, 1, dtype=torch.bool, device=self.terminal.device
        )
        for agent, count in enumerate(self.action_counts):
            allowed = self.action_mask[:, agent, :count]
            mask = (mask[:, :, None] & allowed[:, None, :]).reshape(self.num_states, -1)
        return mask

    def joint_action_index(
        self, per_agent_actions: Sequence[int | str] | Int64[Tensor, "... agent"]
    ) -> int | Int64[Tensor, "..."]:
        """Mixed-radix joint action index of per-agent actions (agent 0 first).

        Parameters
        ----------
        per_agent_actions
            One action per agent, as indices or action names, or an integer tensor
            whose last axis runs over the agents.

        Returns
        -------
        int or Tensor
            The joint index (a tensor of the leading shape for tensor input).
        """
        counts = self.action_counts
        if isinstance(per_agent_actions, Tensor):
            if per_agent_actions.shape[-1] != len(counts):
                raise ValueError(
                    f"expected {len(counts)} per-agent actions on the last axis, "
                    f"got shape {tuple(per_agent_actions.shape)}"
                )
            joint = torch.zeros_like(per_agent_actions[..., 0])
            for agent, count in enumerate(counts):
                joint = joint * count + per_agent_actions[..., agent]
            return joint
        actions = list(per_agent_actions)
        if len(actions) != len(counts):
            raise ValueError(
                f"expected one action per agent {self.agents}, got {actions!r}"
            )
        joint = 0
        for agent, (action, count) in enumerate(zip(actions, counts)):
            if isinstance(action, str):
                if action not in self.action_names[agent]:
                    raise ValueError(
                        f"agent {self.agents[agent]!r} has no action {action!r}; "
                        f"its actions are {self.action_names[agent]}"
                    )
                action = self.action_names[agent].index(action)
            if not 0 <= int(action) < count:
                raise ValueError(
                    f"action index {action} of agent {self.agents[agent]!r} "
                    f"is outside 0..{count - 1}"
                )
            joint = joint * count + int(action)
        return joint

    def split_joint_actions(
        self, joint: Int64[Tensor, "..."] | None = None
    ) -> Int64[Tensor, "... agent"]:
        """Per-agent action indices of joint actions (inverse of the mixed radix).

        Parameters
        ----------
        joint
            Joint action indices; ``None`` decodes all ``num_joint_actions`` of them.

        Returns
        -------
        Tensor
            ``[..., agent]`` per-agent action indices.
        """
        if joint is None:
            joint = torch.arange(self.num_joint_actions, device=self.terminal.device)
        parts = []
        rest = joint
        for count in reversed(self.action_counts):
            parts.append(rest % count)
            rest = torch.div(rest, count, rounding_mode="floor")
        return torch.stack(parts[::-1], dim=-1)

    def index_of(self, label: Hashable | Sequence[int] | Tensor) -> int:
        """State id of a state given by its label or its ``state_table`` row.

        Parameters
        ----------
        label
            A state label (worlds with ``state_labels``) or an integer row of
            ``state_table`` (a tensor or a sequence of ints).

        Raises
        ------
        KeyError
            If no state has that label or encoding.
        """
        if self.state_labels is not None and not isinstance(label, Tensor):
            for index, known in enumerate(self.state_labels):
                if known == label:
                    return index
            if self.state_table is None:
                raise KeyError(f"no state is labelled {label!r}")
        if self.state_table is None:
            raise KeyError(f"{label!r}: this world has neither labels nor state table")
        row = torch.as_tensor(label, dtype=torch.int64, device=self.state_table.device)
        if row.shape != self.state_table.shape[1:]:
            raise KeyError(
                f"state {label!r} does not have the state width "
                f"{self.state_table.shape[1]}"
            )
        hits = torch.nonzero((self.state_table == row).all(dim=1)).flatten()
        if hits.numel() == 0:
            raise KeyError(f"no state has the encoding {row.tolist()}")
        return int(hits[0])

    def validate(self, atol: float = 1e-6) -> None:
        """Check shapes and the conventions of the module docstring.

        Parameters
        ----------
        atol
            Tolerance on the probability sums.

        Raises
        ------
        ValueError
            On the first violated convention, naming the state (and joint action).
        """
        num_states, num_agents = self.num_states, len(self.agents)
        counts = self.action_counts
        joint_count = 1
        for count in counts:
            joint_count *= count
        expected = {
            "action_mask": (num_states, num_agents, max(counts, default=0)),
            "successors": (num_states, joint_count, self.successors.shape[2]),
            "probabilities": tuple(self.successors.shape),
            "goal_membership": (self.num_humans, self.max_goals, num_states),
            "goal_weights": (self.num_humans, self.max_goals),
        }
        if self.height is not None:
            expected["height"] = (num_states,)
        if self.durations is not None:
            expected["durations"] = tuple(self.successors.shape)
        for name, shape in expected.items():
            actual = tuple(getattr(self, name).shape)
            if actual != shape:
                raise ValueError(f"{name} has shape {actual}, expected {shape}")
        if len(self.action_names) != num_agents or len(self.rest_action) != num_agents:
            raise ValueError("action_names and rest_action need one entry per agent")
        for index in (*self.humans, *self.robots):
            if not 0 <= index < num_agents:
                raise ValueError(f"agent index {index} is outside 0..{num_agents - 1}")
        if set(self.humans) & set(self.robots):
            raise ValueError("an agent cannot be both a human and a robot")
        if len(self.goal_names) != self.num_humans:
            raise ValueError("goal_names needs one entry per human")
        if not 0 <= self.initial_state < num_states:
            raise ValueError(f"initial_state {self.initial_state} is not a state id")
        if self.state_labels is not None and len(self.state_labels) != num_states:
            raise ValueError("state_labels needs one label per state")
        succ, prob = self.successors, self.probabilities
        if bool(((succ < 0) | (succ >= num_states)).any()):
            bad = torch.nonzero((succ < 0) | (succ >= num_states))[0]
            raise ValueError(
                f"state {self.state_name(bad[0])}: successor id out of range"
            )
        if bool((prob < -atol).any()):
            bad = torch.nonzero(prob < -atol)[0]
            raise ValueError(f"state {self.state_name(bad[0])}: negative probability")
        for agent, count in enumerate(counts):
            if bool(self.action_mask[:, agent, count:].any()):
                raise ValueError(
                    f"action_mask allows padded actions of agent {self.agents[agent]!r}"
                )
        joint_allowed = self.joint_action_mask()
        sums = prob.sum(dim=2)
        live = ~self.terminal
        no_action = live & ~self.action_mask.any(dim=2).all(dim=1)
        if bool(no_action.any()):
            state = int(torch.nonzero(no_action)[0])
            raise ValueError(
                f"non-terminal state {self.state_name(state)} leaves some agent no action"
            )
        bad_sum = live[:, None] & joint_allowed & ((sums - 1).abs() > atol)
        if bool(bad_sum.any()):
            state, joint = torch.nonzero(bad_sum)[0].tolist()
            raise ValueError(
                f"state {self.state_name(state)}, joint action {joint}: probabilities sum "
                f"to {float(sums[state, joint]):.9g}, not 1"
            )
        stray = (~(live[:, None] & joint_allowed)) & (sums.abs() > atol)
        if bool(stray.any()):
            state, joint = torch.nonzero(stray)[0].tolist()
            raise ValueError(
                f"state {self.state_name(state)}, joint action {joint}: a terminal state or "
                "masked joint action has positive probability"
            )
        if bool(self.action_mask[self.terminal].any()):
            state = int(torch.nonzero(self.terminal & self.action_mask.any((1, 2)))[0])
            raise ValueError(f"terminal state {self.state_name(state)} allows actions")
        goal_mask = self.goal_weights > 0
        if bool((self.goal_weights < 0).any()):
            raise ValueError("goal_weights must be non-negative")
        if bool((self.goal_membership & ~goal_mask[:, :, None]).any()):
            raise ValueError("a padded goal (weight 0) has member states")
        for human, names in enumerate(self.goal_names):
            if int(goal_mask[human].sum()) != len(names):
                raise ValueError(
                    f"human {self.agents[self.humans[human]]!r} has {len(names)} goal "
                    f"names but {int(goal_mask[human].sum())} goals of positive weight"
                )
        if self.height is not None:
            reference = compute_height(succ, prob)
            if reference is None or not torch.equal(reference, self.height):
                raise ValueError("height does not match the successor structure")

    def state_name(self, state: int | Tensor) -> str:
        """Human-readable name of a state id, for messages.

        Parameters
        ----------
        state
            A state id (int or 0-d tensor).

        Returns
        -------
        str
            The id followed by the state's label (``state_labels``) or, failing
            that, its ``state_table`` row; the bare id if the world has neither.
        """
        state = int(state)
        if self.state_labels is not None:
            return f"{state} ({self.state_labels[state]!r})"
        if self.state_table is not None:
            return f"{state} ({self.state_table[state].tolist()})"
        return str(state)


def compute_height(
    successors: Int64[Tensor, "state joint k"],
    probabilities: Float[Tensor, "state joint k"],
) -> Int64[Tensor, " state"] | None:
    """Topological height of every state, or ``None`` if the world is cyclic.

    ``height[s]`` is 0 for states without positive-probability successors (terminal
    states) and ``1 + max`` over the successors otherwise. Computed by Kahn's
    algorithm on the reversed graph, one whole level per step.

    Parameters
    ----------
    successors, probabilities
        The ``[state, joint, k]`` tensors of a :class:`CompiledWorld`.

    Returns
    -------
    Tensor or None
        ``[state]`` heights, or ``None`` if some state lies on or above a cycle.
    """
    num_states = successors.shape[0]
    sources = torch.arange(num_states, device=successors.device)[:, None, None]
    positive = probabilities > 0
    edges = torch.unique(
        sources.expand_as(successors)[positive] * num_states + successors[positive]
    )
    return height_from_edges(
        torch.div(edges, num_states, rounding_mode="floor"),
        edges % num_states,
        num_states,
    )


def height_from_edges(
    src: Int64[Tensor, " edge"], dst: Int64[Tensor, " edge"], num_states: int
) -> Int64[Tensor, " state"] | None:
    """Topological height from the positive-probability edges ``src -> dst``.

    Same definition as :func:`compute_height`; an edge may be listed more than once.

    Parameters
    ----------
    src, dst
        Source and successor state id of each edge.
    num_states
        Number of states.

    Returns
    -------
    Tensor or None
        ``[state]`` heights, or ``None`` if some state lies on or above a cycle.
    """
    device = src.device
    remaining = torch.bincount(src, minlength=num_states)
    if device.type == "cpu":
        # a value sort of the distinct ``dst * n + index`` is a stable argsort of dst
        composite = (dst * len(dst) + torch.arange(len(dst))).numpy()
        order = torch.from_numpy(np.sort(composite) % max(len(dst), 1))
    else:
        order = torch.argsort(dst, stable=True)
    src_by_dst = src.index_select(0, order)
    starts = torch.zeros(num_states + 1, dtype=torch.int64, device=device)
    starts[1:] = torch.cumsum(torch.bincount(dst, minlength=num_states), dim=0)
    height = torch.full((num_states,), -1, dtype=torch.int64, device=device)
    frontier = torch.nonzero(remaining == 0).flatten()
    level = 0
    while frontier.numel() > 0:
        height.index_fill_(0, frontier, level)
        begin = starts.index_select(0, frontier)
        end = starts.index_select(0, frontier + 1)
        sizes = end - begin
        offsets = torch.repeat_interleave(begin - torch.cumsum(sizes, 0) + sizes, sizes)
        positions = offsets + torch.arange(int(sizes.sum()), device=device)
        parents = src_by_dst.index_select(0, positions)
        remaining.index_add_(0, parents, torch.ones_like(parents), alpha=-1)
        ready = parents[remaining.index_select(0, parents) == 0]
        frontier = torch.unique(ready)
        level += 1
    if bool((height < 0).any()):
        return None
    return height
