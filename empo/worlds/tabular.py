"""Hand-written tabular worlds: states and joint actions given by dictionaries.

A :class:`TabularWorld` is the easiest way to write a small game (the paradigm worlds
of :mod:`empo.worlds.paradigms` are built this way)::

    TabularWorld(
        transitions={"start": {("left", "wait"): [(1.0, "L")],
                               ("right", "wait"): [(0.5, "R"), (0.5, "L")]}},
        initial_state="start",
        agents=("human", "robot"),
        humans=("human",),
        robots=("robot",),
        goals={"human": {"left": ["L"], "right": (["R"], 2.0)}},
    )

States are any hashable labels; a joint action is a tuple with one action label per
agent in ``agents`` order. A state without a table (or with an empty one), and a
state that only appears as a successor, is terminal. Each state's table must be the
full product of its per-agent action sets, which may differ between states (a robot
commitment is a smaller action set later on, THEORY.md "The world model"). Goal
membership simply marks the member states; THEORY.md defines reaching a goal as
entering it.
"""

from __future__ import annotations

import math
from collections import deque
from numbers import Real
from typing import Any, Hashable, Mapping, Sequence

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.goals import parse_goal
from empo.worlds.compiled import CompiledWorld, compute_height

Transitions = Mapping[Hashable, Mapping[tuple, Sequence[tuple[float, Hashable]]]]

_TOLERANCE = 1e-9


def _unique_in_order(items: Sequence[Hashable]) -> list[Hashable]:
    """Distinct items in first-seen order."""
    return list(dict.fromkeys(items))


class TabularWorld:
    """A finite world given by explicit transition tables.

    Parameters
    ----------
    transitions
        ``{state: {joint_action: [(probability, next_state), ...]}}``. Repeated
        successors of one joint action are merged (probabilities summed).
    initial_state
        Label of the initial state; it must have an entry in ``transitions``.
    agents
        Agent names in joint-action order.
    humans, robots
        Names of the humans and the robots (the robots act as one team); every agent
        is exactly one of the two.
    goals
        ``{human: {goal_name: states}}`` or ``{human: {goal_name: (states,
        weight)}}`` with ``states`` a list, tuple, set or frozenset of state labels
        and ``weight > 0`` (default 1). Every human needs at least one goal.
    rest_action
        An action label used as every agent's rest action where the agent has it, or
        a dict ``{agent: action}``.

    Raises
    ------
    ValueError
        On malformed input; the message names the state, joint action, agent or goal.
    """

    def __init__(
        self,
        transitions: Transitions,
        initial_state: Hashable,
        agents: Sequence[str],
        humans: Sequence[str],
        robots: Sequence[str],
        goals: Mapping[str, Mapping[str, Any]],
        rest_action: Hashable | Mapping[str, Hashable] | None = None,
    ) -> None:
        self.agents = tuple(agents)
        self.humans = tuple(humans)
        self.robots = tuple(robots)
        self._check_agents()
        self.transitions = {
            state: self._check_table(state, table)
            for state, table in transitions.items()
        }
        self.states = _unique_in_order(
            list(self.transitions)
            + [
                successor
                for table in self.transitions.values()
                for outcomes in table.values()
                for successor in outcomes
            ]
        )
        if initial_state not in self.transitions:
            raise ValueError(
                f"initial_state {initial_state!r} has no entry in transitions"
            )
        self.initial_state = initial_state
        self.goals = self._check_goals(goals)
        self.action_labels = tuple(
            _unique_in_order(
                [joint[agent] for table in self.transitions.values() for joint in table]
            )
            for agent in range(len(self.agents))
        )
        for agent, labels in zip(self.agents, self.action_labels):
            if not labels:
                raise ValueError(
                    f"agent {agent!r} has no action in any state (the initial state "
                    "needs a non-empty table)"
                )
        self.rest_action = self._rest_indices(rest_action)

    def _check_agents(self) -> None:
        """Validate the agent, human and robot names."""
        if len(set(self.agents)) != len(self.agents):
            raise ValueError(f"agent names must be distinct, got {self.agents}")
        for role, names in (("humans", self.humans), ("robots", self.robots)):
            for name in names:
                if name not in self.agents:
                    raise ValueError(f"{role} names unknown agent {name!r}")
        for name in self.agents:
            if (name in self.humans) == (name in self.robots):
                raise ValueError(
                    f"agent {name!r} must be either a human or a robot, not "
                    f"{'both' if name in self.humans else 'neither'}"
                )
        if not self.humans:
            raise ValueError("a world needs at least one human")

    def _check_table(
        self, state: Hashable, table: Mapping[tuple, Sequence[tuple[float, Hashable]]]
    ) -> dict[tuple, dict[Hashable, float]]:
        """Validate one state's table and merge repeated successors."""
        checked: dict[tuple, dict[Hashable, float]] = {}
        for joint, outcomes in (table or {}).items():
            if not isinstance(joint, tuple) or len(joint) != len(self.agents):
                raise ValueError(
                    f"state {state!r}: joint action {joint!r} must be a tuple of "
                    f"{len(self.agents)} actions, one per agent {self.agents}"
                )
            merged: dict[Hashable, float] = {}
            for outcome in outcomes:
                if not isinstance(outcome, (tuple, list)) or len(outcome) != 2:
                    raise ValueError(
                        f"state {state!r}, joint action {joint!r}: outcome "
                        f"{outcome!r} is not a (probability, next_state) pair"
                    )
                probability, successor = outcome
                if (
                    isinstance(probability, bool)
                    or not isinstance(probability, Real)
                    or not 0 <= probability <= 1
                ):
                    raise ValueError(
                        f"state {state!r}, joint action {joint!r}: probability "
                        f"{probability!r} of {successor!r} is not in [0, 1]"
                    )
                merged[successor] = merged.get(successor, 0.0) + float(probability)
            total = sum(merged.values())
            if abs(total - 1.0) > _TOLERANCE:
                raise ValueError(
                    f"state {state!r}, joint action {joint!r}: probabilities sum "
                    f"to {total!r}, not 1"
                )
            checked[joint] = {s: p for s, p in merged.items() if p > 0}
        sets = [
            _unique_in_order([joint[i] for joint in checked])
            for i in range(len(self.agents))
        ]
        size = math.prod(len(actions) for actions in sets) if checked else 0
        if len(checked) != size:
            missing = next(combo for combo in _product(sets) if combo not in checked)
            raise ValueError(
                f"state {state!r}: the table is not the full product of the per-agent "
                f"action sets {sets}; joint action {missing!r} is missing"
            )
        return checked

    def _check_goals(
        self, goals: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, dict[str, tuple[frozenset, float]]]:
        """Validate goals; normalise to ``{human: {name: (states, weight)}}``."""
        known = set(self.states)
        checked: dict[str, dict[str, tuple[frozenset, float]]] = {}
        for human in goals:
            if human not in self.humans:
                raise ValueError(f"goals are given for {human!r}, who is not a human")
        for human in self.humans:
            if not goals.get(human):
                raise ValueError(f"human {human!r} has no goals")
            checked[human] = {}
            for name, spec in goals[human].items():
                states, weight = parse_goal(spec, human, name)
                unknown = [s for s in states if s not in known]
                if unknown:
                    raise ValueError(
                        f"goal {name!r} of human {human!r} names unknown states "
                        f"{unknown!r}"
                    )
                checked[human][str(name)] = (states, weight)
        return checked

    def _rest_indices(
        self, rest_action: Hashable | Mapping[str, Hashable] | None
    ) -> tuple[int | None, ...]:
        """Per agent, the index of its rest action among its action labels."""
        if isinstance(rest_action, Mapping):
            for agent in rest_action:
                if agent not in self.agents:
                    raise ValueError(f"rest_action names unknown agent {agent!r}")
            per_agent = [rest_action.get(agent) for agent in self.agents]
        else:
            per_agent = [rest_action] * len(self.agents)
        return tuple(
            labels.index(action) if action is not None and action in labels else None
            for labels, action in zip(self.action_labels, per_agent)
        )

    @property
    def action_names(self) -> tuple[tuple[str, ...], ...]:
        """Per agent, its action labels (first-seen order) as strings."""
        names = tuple(tuple(str(a) for a in labels) for labels in self.action_labels)
        for agent, agent_names in zip(self.agents, names):
            if len(set(agent_names)) != len(agent_names):
                raise ValueError(
                    f"agent {agent!r} has distinct actions with the same name: "
                    f"{agent_names}"
                )
        return names

    def dense_tables(
        self, dtype: torch.dtype = torch.float64
    ) -> dict[str, Tensor | tuple[tuple[str, ...], ...]]:
        """Dense tensors over all known states in ``self.states`` order.

        Returns
        -------
        dict
            ``action_mask [N, agent, max_action]``, ``successors`` and
            ``probabilities [N, joint, K]`` (padding points to the state itself),
            ``terminal [N]``, ``goal_membership [human, goal, N]``,
            ``goal_weights [human, goal]`` and ``goal_names``.
        """
        index = {state: i for i, state in enumerate(self.states)}
        counts = [len(labels) for labels in self.action_labels]
        action_index = [
            {label: a for a, label in enumerate(labels)}
            for labels in self.action_labels
        ]
        num_states, num_joint = len(self.states), math.prod(counts)
        max_outcomes = max(
            (len(o) for table in self.transitions.values() for o in table.values()),
            default=1,
        )
        rows, joints, slots, targets, values, masks = [], [], [], [], [], []
        for state, table in self.transitions.items():
            s = index[state]
            for joint, outcomes in table.items():
                per_agent = [action_index[i][a] for i, a in enumerate(joint)]
                masks.extend((s, i, a) for i, a in enumerate(per_agent))
                j = 0
                for a, count in zip(per_agent, counts):
                    j = j * count + a
                for k, (successor, probability) in enumerate(outcomes.items()):
                    rows.append(s)
                    joints.append(j)
                    slots.append(k)
                    targets.append(index[successor])
                    values.append(probability)
        successors = torch.arange(num_states)[:, None, None].repeat(
            1, num_joint, max_outcomes
        )
        probabilities = torch.zeros(num_states, num_joint, max_outcomes, dtype=dtype)
        at = (torch.tensor(rows), torch.tensor(joints), torch.tensor(slots))
        successors[at] = torch.tensor(targets, dtype=torch.int64)
        probabilities[at] = torch.tensor(values, dtype=dtype)
        action_mask = torch.zeros(
            num_states, len(counts), max(counts), dtype=torch.bool
        )
        if masks:
            action_mask[tuple(torch.tensor(masks).T)] = True
        terminal = torch.tensor(
            [not self.transitions.get(state) for state in self.states],
            dtype=torch.bool,
        )
        goal_names = tuple(tuple(self.goals[h]) for h in self.humans)
        max_goals = max(len(names) for names in goal_names)
        membership = torch.zeros(
            len(self.humans), max_goals, num_states, dtype=torch.bool
        )
        weights = torch.zeros(len(self.humans), max_goals, dtype=dtype)
        for h, human in enumerate(self.humans):
            for g, (members, weight) in enumerate(self.goals[human].values()):
                weights[h, g] = weight
                membership[h, g, [index[s] for s in members]] = True
        return {
            "action_mask": action_mask,
            "successors": successors,
            "probabilities": probabilities,
            "terminal": terminal,
            "goal_membership": membership,
            "goal_weights": weights,
            "goal_names": goal_names,
        }

    def reachable_states(self) -> list[Hashable]:
        """States reachable from the initial state, in breadth-first order."""
        order, seen = [self.initial_state], {self.initial_state}
        queue = deque(order)
        while queue:
            for outcomes in self.transitions.get(queue.popleft(), {}).values():
                for successor in outcomes:
                    if successor not in seen:
                        seen.add(successor)
                        order.append(successor)
                        queue.append(successor)
        return order

    def compile(
        self,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> CompiledWorld:
        """Enumerate the reachable states into a :class:`CompiledWorld`.

        States are numbered in breadth-first order from the initial state (id 0);
        ``state_labels`` holds their labels and ``height`` is computed (``None`` for
        a cyclic world).

        Parameters
        ----------
        device
            Device of the compiled tensors.
        dtype
            Float dtype of probabilities and goal weights.
        """
        tables = self.dense_tables(dtype)
        position = {state: i for i, state in enumerate(self.states)}
        reachable = self.reachable_states()
        keep = torch.tensor([position[s] for s in reachable], dtype=torch.int64)
        new_id = torch.full((len(self.states),), -1, dtype=torch.int64)
        new_id[keep] = torch.arange(len(keep))
        probabilities = tables["probabilities"][keep]
        used = int((probabilities > 0).sum(dim=2).max()) if len(keep) else 1
        probabilities = probabilities[:, :, : max(used, 1)]
        successors = new_id[tables["successors"][keep][:, :, : max(used, 1)]]
        padding = probabilities == 0
        successors = torch.where(
            padding, torch.arange(len(keep))[:, None, None], successors
        )
        height = compute_height(successors, probabilities)
        world = CompiledWorld(
            agents=self.agents,
            humans=tuple(self.agents.index(h) for h in self.humans),
            robots=tuple(self.agents.index(r) for r in self.robots),
            action_names=self.action_names,
            action_mask=tables["action_mask"][keep],
            successors=successors,
            probabilities=probabilities,
            terminal=tables["terminal"][keep],
            goal_membership=tables["goal_membership"][:, :, keep],
            goal_weights=tables["goal_weights"],
            goal_names=tables["goal_names"],
            height=height,
            initial_state=0,
            rest_action=self.rest_action,
            state_labels=tuple(reachable),
        )
        return world.to(device=device)

    def as_world_model(self) -> TabularWorldModel:
        """This world as a batched :class:`~empo.worlds.base.WorldModel`.

        States are encoded as one integer, their position in ``self.states``.
        """
        return TabularWorldModel(self)


def _product(sets: Sequence[Sequence[Hashable]]) -> list[tuple]:
    """All tuples of the Cartesian product of ``sets``."""
    combos: list[tuple] = [()]
    for actions in sets:
        combos = [combo + (a,) for combo in combos for a in actions]
    return combos


class TabularWorldModel:
    """A :class:`TabularWorld` as a batched world model over integer-coded states.

    Parameters
    ----------
    world
        The tabular world; state ``i`` is ``world.states[i]`` and is encoded as the
        one-column row ``[i]``.
    """

    state_dim = 1

    def __init__(self, world: TabularWorld) -> None:
        tables = world.dense_tables()
        self.world = world
        self.agents = world.agents
        self.humans = tuple(world.agents.index(h) for h in world.humans)
        self.robots = tuple(world.agents.index(r) for r in world.robots)
        self.action_names = world.action_names
        self.rest_action = world.rest_action
        self.goal_names = tables["goal_names"]
        self.goal_weights = tables["goal_weights"]
        self.max_outcomes = int(tables["successors"].shape[2])
        self._counts = [len(names) for names in self.action_names]
        self._tables = tables

    def initial_states(self) -> Int64[Tensor, "n dim"]:
        """The initial state's code."""
        return torch.tensor([[self.world.states.index(self.world.initial_state)]])

    def is_terminal(self, states: Int64[Tensor, "batch dim"]) -> Bool[Tensor, " batch"]:
        """Which states are terminal."""
        return self._tables["terminal"][states[:, 0]]

    def action_mask(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch agent max_action"]:
        """Allowed actions per agent."""
        return self._tables["action_mask"][states[:, 0]]

    def transitions(
        self,
        states: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
    ) -> tuple[Int64[Tensor, "batch k dim"], Float[Tensor, "batch k"]]:
        """Successor codes and probabilities of each state and joint action."""
        joint = torch.zeros_like(actions[:, 0])
        for agent, count in enumerate(self._counts):
            joint = joint * count + actions[:, agent]
        rows = states[:, 0]
        return (
            self._tables["successors"][rows, joint][:, :, None],
            self._tables["probabilities"][rows, joint],
        )

    def goal_membership(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Goal membership of each state."""
        return self._tables["goal_membership"][:, :, states[:, 0]].permute(2, 0, 1)
