"""The learned solution: trained networks that answer on state rows.

:class:`LearnedSolution` implements the :class:`empo.solution.Solution` protocol for
every data source: it evaluates the learned quantities of THEORY.md on any batch of
state rows (``π_h``, ``V^m_h`` of phase 1; ``V^e_h``, ``X_h``, ``U_r``, ``Q_r``,
``π_r``, ``V_r`` of phase 2) by running the networks, and lays them out on every
state of a compiled world (:meth:`LearnedSolution.tabulate`, a
:class:`LearnedTables`) for :func:`empo.analysis.compare` and the exact-expectation
evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDict
from torch import Tensor

from empo.learning.data import WorldData
from empo.solution import TabulatedSolution
from empo.worlds.compiled import CompiledWorld
from empo.worlds.rows import compiled_rows

__all__ = ["LearnedSolution", "LearnedTables"]

Rows = Int64[Tensor, "batch dim"]
EVAL_CHUNK = 1024
"""States evaluated at once when tabulating."""


@dataclass
class LearnedTables(TabulatedSolution):
    """A learned solution on every state of a compiled world, laid out like the exact
    one (DESIGN.md, "Solutions").

    Attributes
    ----------
    world
        The compiled world.
    phase1
        ``q_m``, ``pi_h`` ``[state, human, goal, action]`` and ``v_m``
        ``[state, human, goal]``.
    phase2
        ``q_r``, ``pi_r`` ``[state, robot_action]``, ``v_e`` ``[state, human, goal]``,
        ``x_h`` ``[state, human]``, ``u_r`` and ``v_r`` ``[state]``.
    stats
        The training statistics of the solution tabulated.
    """

    world: CompiledWorld
    phase1: TensorDict
    phase2: TensorDict
    stats: dict[str, int | float] = field(default_factory=dict)


@dataclass
class LearnedSolution:
    """Result of :func:`empo.learning.train`, for any data source.

    Attributes
    ----------
    data
        The data source trained on (:mod:`empo.learning.data`).
    networks
        ``{"phase1": Phase1Loss, "phase2": Phase2Loss | ActorCriticLoss}``, holding
        the trained networks and their target copies.
    beta_r
        ``β_r`` at which ``π_r`` is evaluated (``theory.beta_r``).
    stats
        Frames, gradient steps, states backed up and seconds, per phase.
    """

    data: WorldData
    networks: dict[str, Any] = field(repr=False)
    beta_r: float
    stats: dict[str, int | float] = field(default_factory=dict)
    _own_tables: LearnedTables | None = field(default=None, init=False, repr=False)

    def states(self, rows: Rows) -> TensorDict:
        """The states of ``rows`` as the networks read them."""
        return self.data.states(rows.to(self.data.device))

    @torch.no_grad()
    def phase1_values(self, rows: Rows) -> dict[str, Tensor]:
        """``q_m``, ``pi_h`` and ``v_m`` of the frozen phase 1 at ``rows``."""
        loss = self.networks["phase1"]
        return loss.phase1_values(loss.q_network_params, self.states(rows))

    @torch.no_grad()
    def phase2_values(self, rows: Rows) -> dict[str, Tensor]:
        """``v_e, q_r, pi_r, x_h, u_r, v_r`` at ``rows`` (eqs. 5, 7-9)."""
        return self.networks["phase2"].online_values(self.states(rows), self.beta_r)

    def robot_probs(self, states: Rows) -> Float[Tensor, "batch robot_action"]:
        """``π_r(s)`` over joint robot actions (eq. 5); 0 at terminal states."""
        return self.phase2_values(states)["pi_r"]

    @torch.no_grad()
    def human_probs(
        self, states: Rows, goals: Int64[Tensor, "batch human"]
    ) -> Float[Tensor, "batch human action"]:
        """``π_h(s, g_h)`` of each human for its goal index (eq. 2)."""
        pi_h = self.phase1_values(states)["pi_h"]
        index = goals.to(pi_h.device)[:, :, None, None]
        return pi_h.gather(2, index.expand(-1, -1, 1, pi_h.shape[-1])).squeeze(2)

    def human_power(self, states: Rows) -> Float[Tensor, "batch human"]:
        """``X_h(s)`` (eq. 7)."""
        return self.phase2_values(states)["x_h"]

    def robot_values(self, states: Rows) -> Float[Tensor, " batch"]:
        """``V_r(s)`` (eq. 9); ``terminal_v_r`` at terminal states."""
        return self.phase2_values(states)["v_r"]

    def tabulate(self, world: CompiledWorld | None = None) -> LearnedTables | None:
        """The learned quantities on every state of ``world``, or of the compiled
        world trained on when ``None`` (``None`` if the solution was learned
        without enumerating).

        Raises
        ------
        KeyError
            If a state of ``world`` is not a state of the world trained on.
        """
        own = self.data.world if self.data.enumerated else None
        if world is None:
            if own is None:
                return None
            world = own
        if world is not own:
            return self._tabulate(world)
        if self._own_tables is None:
            self._own_tables = self._tabulate(world)
        return self._own_tables

    def _tabulate(self, world: CompiledWorld) -> LearnedTables:
        rows = compiled_rows(world)
        parts1, parts2 = [], []
        for chunk in torch.split(rows, EVAL_CHUNK):
            parts1.append(self.phase1_values(chunk))
            parts2.append(self.phase2_values(chunk))

        def stack(parts: list[dict[str, Tensor]]) -> TensorDict:
            out = {key: torch.cat([p[key] for p in parts]).cpu() for key in parts[0]}
            return TensorDict(out, batch_size=[world.num_states])

        return LearnedTables(world, stack(parts1), stack(parts2), dict(self.stats))
