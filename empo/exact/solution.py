"""The result of the exact solver, with tensor and label-level access.

:class:`ExactSolution` keeps the two phases as TensorDicts with batch size ``[S]``
(DESIGN.md, "Solutions"): ``phase1`` holds ``q_m``, ``pi_h`` ``[S, H, G, A_h]`` and
``v_m`` ``[S, H, G]``; ``phase2`` holds ``q_r``, ``pi_r`` ``[S, A_r]``, ``v_e``
``[S, H, G]``, ``x_h`` ``[S, H]``, ``u_r`` and ``v_r`` ``[S]``. Robot joint actions are
mixed-radix indices over ``world.robots``; entries at disallowed actions, padded goals
and terminal states are 0 (``v_r`` is ``terminal_v_r`` at terminal states).

The label-level methods (``robot_policy(state)``, ``human_policy(state, human,
goal)``, ...) take states by label (``state_labels`` or a ``state_table`` row) or id,
humans and goals by name, and return plain Python numbers and dictionaries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Hashable

import torch
from tensordict import TensorDict
from torch import Tensor

from empo.parameters.theory import TheoryParameters
from empo.solution import TabulatedSolution
from empo.theory import joint_action_distribution, power_bits
from empo.worlds.compiled import CompiledWorld

_PHASE1 = ("q_m", "pi_h", "v_m")
_PHASE2 = ("q_r", "pi_r", "v_e", "x_h", "u_r", "v_r")


@dataclass
class ExactSolution(TabulatedSolution):
    """Exact solution of both phases on a compiled world.

    Implements the :class:`empo.solution.Solution` protocol through
    :class:`~empo.solution.TabulatedSolution` (rows looked up in ``world``).

    Parameters
    ----------
    world
        The compiled world that was solved.
    theory
        The theory parameters used.
    phase1, phase2
        TensorDicts of the quantities (see the module docstring).
    converged, iterations
        Per phase (``"phase1"``, ``"phase2"``): whether the value iteration met the
        tolerance and how many sweeps it took (1 for acyclic worlds).
    seconds
        Per phase, the wall-clock time it took.
    """

    world: CompiledWorld
    theory: TheoryParameters
    phase1: TensorDict
    phase2: TensorDict
    converged: dict[str, bool] = field(default_factory=dict)
    iterations: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def stats(self) -> dict[str, float]:
        """Per phase, iterations and seconds of the solve (``"phase1/iterations"``,
        ...)."""
        return {
            **{f"{p}/iterations": float(n) for p, n in self.iterations.items()},
            **{f"{p}/seconds": float(t) for p, t in self.seconds.items()},
        }

    def __getitem__(self, key: str) -> Tensor:
        """Any solution tensor by key (``"q_m"``, ``"pi_r"``, ...)."""
        if key in _PHASE1:
            return self.phase1[key]
        if key in _PHASE2:
            return self.phase2[key]
        raise KeyError(f"no quantity {key!r}; known: {_PHASE1 + _PHASE2}")

    @property
    def robot_action_names(self) -> tuple[Any, ...]:
        """Name of each robot joint action: a string for one robot, else a tuple."""
        names = [self.world.action_names[r] for r in self.world.robots]
        if len(names) == 1:
            return tuple(names[0])
        return tuple(itertools.product(*names))

    def state_id(self, state: Hashable | int | Tensor) -> int:
        """State id of a label, a ``state_table`` row or an id."""
        world = self.world
        if world.state_labels is not None or world.state_table is not None:
            try:
                return world.index_of(state)
            except KeyError:
                if not isinstance(state, int):
                    raise
        if isinstance(state, int) and 0 <= state < world.num_states:
            return state
        raise KeyError(f"no state {state!r}")

    def human_index(self, human: str | int) -> int:
        """Position of a human (by agent name or position) in ``world.humans``."""
        world = self.world
        if isinstance(human, str):
            names = [world.agents[h] for h in world.humans]
            if human not in names:
                raise KeyError(f"no human {human!r}; humans are {names}")
            return names.index(human)
        if not 0 <= human < len(world.humans):
            raise KeyError(f"human index {human} is outside 0..{len(world.humans) - 1}")
        return human

    def goal_index(self, human: int, goal: str | int) -> int:
        """Index of a goal (by name or index) of the ``human``-th human."""
        names = self.world.goal_names[human]
        if isinstance(goal, str):
            if goal not in names:
                raise KeyError(f"no goal {goal!r}; goals are {names}")
            return names.index(goal)
        if not 0 <= goal < len(names):
            raise KeyError(f"goal index {goal} is outside 0..{len(names) - 1}")
        return goal

    def _hg(
        self, state: Any, human: str | int, goal: str | int
    ) -> tuple[int, int, int]:
        s = self.state_id(state)
        h = self.human_index(human)
        return s, h, self.goal_index(h, goal)

    def _human_actions(self, s: int, h: int) -> list[tuple[int, str]]:
        agent = self.world.humans[h]
        mask = self.world.action_mask[s, agent]
        names = self.world.action_names[agent]
        return [(a, name) for a, name in enumerate(names) if bool(mask[a])]

    def _robot_actions(self, s: int) -> list[tuple[int, Any]]:
        names = self.robot_action_names
        world = self.world
        if not world.robots:
            return [(0, ())] if not bool(world.terminal[s]) else []
        allowed = [
            world.action_mask[s, r, : len(world.action_names[r])] for r in world.robots
        ]
        joint = joint_action_distribution([m.double() for m in allowed]) > 0
        return [(a, names[a]) for a in range(len(names)) if bool(joint[a])]

    def human_policy(
        self, state: Any, human: str | int, goal: str | int
    ) -> dict[str, float]:
        """``pi_h(s, g)`` over the allowed actions, eq. (2)."""
        s, h, g = self._hg(state, human, goal)
        row = self["pi_h"][s, h, g]
        return {name: float(row[a]) for a, name in self._human_actions(s, h)}

    def q_m(self, state: Any, human: str | int, goal: str | int) -> dict[str, float]:
        """``Q^m_h(s, g, .)`` over the allowed actions, eq. (1)."""
        s, h, g = self._hg(state, human, goal)
        row = self["q_m"][s, h, g]
        return {name: float(row[a]) for a, name in self._human_actions(s, h)}

    def v_m(self, state: Any, human: str | int, goal: str | int) -> float:
        """``V^m_h(s, g)``, eq. (3)."""
        s, h, g = self._hg(state, human, goal)
        return float(self["v_m"][s, h, g])

    def v_e(self, state: Any, human: str | int, goal: str | int) -> float:
        """``V^e_h(s, g)``, eq. (6)."""
        s, h, g = self._hg(state, human, goal)
        return float(self["v_e"][s, h, g])

    def x_h(self, state: Any, human: str | int) -> float:
        """``X_h(s)``, eq. (7)."""
        return float(self["x_h"][self.state_id(state), self.human_index(human)])

    def power_bits(self, state: Any, human: str | int) -> float:
        """``W_h(s) = log2 X_h(s)``, eq. (10)."""
        return float(
            power_bits(torch.tensor(self.x_h(state, human), dtype=torch.float64))
        )

    def u_r(self, state: Any) -> float:
        """``U_r(s)``, eq. (8)."""
        return float(self["u_r"][self.state_id(state)])

    def v_r(self, state: Any) -> float:
        """``V_r(s)``, eq. (9)."""
        return float(self["v_r"][self.state_id(state)])

    def robot_policy(self, state: Any) -> dict[Any, float]:
        """``pi_r(s)`` over the allowed robot joint actions, eq. (5)."""
        s = self.state_id(state)
        row = self["pi_r"][s]
        return {name: float(row[a]) for a, name in self._robot_actions(s)}

    def q_r(self, state: Any) -> dict[Any, float]:
        """``Q_r(s, .)`` over the allowed robot joint actions, eq. (4)."""
        s = self.state_id(state)
        row = self["q_r"][s]
        return {name: float(row[a]) for a, name in self._robot_actions(s)}


def make_tensordict(values: dict[str, Tensor], num_states: int) -> TensorDict:
    """Pack per-state tensors into a TensorDict of batch size ``[S]``."""
    device = next(iter(values.values())).device
    return TensorDict(values, batch_size=[num_states], device=device)


def infinite_utility_states(solution: ExactSolution) -> Tensor:
    """Ids of non-terminal states where ``U_r = -inf`` (some ``X_h + eps_X = 0``)."""
    bad = torch.isinf(solution["u_r"]) & ~solution.world.terminal
    return torch.nonzero(bad).flatten()
