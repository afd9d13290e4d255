"""The result of the sampled learned solver: networks that evaluate on state rows.

:class:`SampledSolution` evaluates every learned quantity of THEORY.md on any batch
of state rows (``π_h``, ``V^m_h`` of phase 1; ``V^e_h``, ``X_h``, ``U_r``, ``Q_r``,
``π_r``, ``V_r`` of phase 2), rolls out the most likely trajectory from the initial
state, and, on a world small enough to compile, lays the quantities out on every
state id like the exact solution (:meth:`SampledSolution.on_compiled`), which is
what :func:`empo.analysis.compare` reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int64
from tensordict import TensorDict
from torch import Tensor, nn

from empo import theory
from empo.learning.sampled.row_model import CompiledRows, RowModel
from empo.learning.trainer import LearnedSolution
from empo.worlds.compiled import CompiledWorld

__all__ = ["SampledSolution"]

Rows = Int64[Tensor, "batch dim"]
_EVAL_CHUNK = 1024


@dataclass
class SampledSolution:
    """Result of :func:`train_sampled`: networks that evaluate on any state rows.

    Attributes
    ----------
    world
        The world trained on.
    model
        Its :class:`~empo.learning.sampled.row_model.RowModel`.
    networks
        ``{"phase1": SampledPhase1Loss, "phase2": SampledPhase2Loss}``.
    beta_r
        ``β_r`` at which ``π_r`` is evaluated (``theory.beta_r``).
    stats
        Frames, gradient steps and seconds per phase.
    v_r_s0
        ``V_r`` at the initial state.
    w_h_s0
        ``W_h`` (bits, eq. 10) of every human at the initial state.
    """

    world: Any
    model: RowModel
    networks: dict[str, nn.Module] = field(repr=False)
    beta_r: float
    stats: dict[str, float] = field(default_factory=dict)
    v_r_s0: float = math.nan
    w_h_s0: list[float] = field(default_factory=list)

    @torch.no_grad()
    def phase1_values(self, rows: Rows) -> dict[str, Tensor]:
        """``q_m``, ``pi_h`` and ``v_m`` of the frozen phase 1 at ``rows``."""
        loss = self.networks["phase1"]
        return loss.phase1_values(loss.q_network_params, rows.to(self.model.device))

    @torch.no_grad()
    def phase2_values(self, rows: Rows) -> dict[str, Tensor]:
        """``v_e, x_h, u_r, q_r, pi_r, v_r`` at ``rows`` (eqs. 5, 7-9)."""
        return self.networks["phase2"].online_values(
            rows.to(self.model.device), self.beta_r
        )

    def robot_probs(self, rows: Rows) -> Float[Tensor, "batch a_r"]:
        """Robot policy ``π_r(s)`` over joint robot actions (eq. 5)."""
        return self.pi_r(rows)

    @torch.no_grad()
    def human_probs(
        self, rows: Rows, goals: Int64[Tensor, "batch human"]
    ) -> Float[Tensor, "batch human action"]:
        """``π_h(s, g_h)`` of each human for its goal index (eq. 2)."""
        pi_h = self.phase1_values(rows)["pi_h"]
        index = goals.to(pi_h.device)[:, :, None, None]
        return pi_h.gather(2, index.expand(-1, -1, 1, pi_h.shape[-1])).squeeze(2)

    def human_power(self, rows: Rows) -> Float[Tensor, "batch human"]:
        """``X_h(s)`` (eq. 7)."""
        return self.x_h(rows)

    def robot_values(self, rows: Rows) -> Float[Tensor, " batch"]:
        """``V_r(s)`` (eq. 9)."""
        return self.v_r(rows)

    def tabulate(self, world: CompiledWorld | None = None) -> LearnedSolution | None:
        """:meth:`on_compiled` of ``world``, or of the compiled world trained on
        (``None`` when the world was not compiled)."""
        if world is None and isinstance(self.model.world, CompiledRows):
            world = self.model.world.compiled
        return None if world is None else self.on_compiled(world)

    def pi_r(self, rows: Rows) -> Float[Tensor, "batch a_r"]:
        """Robot policy ``π_r(s)`` over joint robot actions (eq. 5)."""
        return self.phase2_values(rows)["pi_r"]

    def v_e(self, rows: Rows) -> Float[Tensor, "batch human goal"]:
        """``V^e_h(s, g)`` (eq. 6)."""
        return self.phase2_values(rows)["v_e"]

    def x_h(self, rows: Rows) -> Float[Tensor, "batch human"]:
        """``X_h(s)`` (eq. 7)."""
        return self.phase2_values(rows)["x_h"]

    def v_r(self, rows: Rows) -> Float[Tensor, " batch"]:
        """``V_r(s)`` (eq. 9)."""
        return self.phase2_values(rows)["v_r"]

    def rows_of(self, compiled: CompiledWorld) -> Rows:
        """The rows of every state of ``compiled`` in this solution's encoding."""
        if isinstance(self.model.world, CompiledRows):
            return torch.arange(compiled.num_states)[:, None]
        table = compiled.state_table
        if table is None or table.shape[1] != self.model.state_dim:
            raise ValueError(
                "the compiled world has no state_table of width "
                f"{self.model.state_dim}; compile the world model that was trained on"
            )
        return table.to(torch.long)

    def on_compiled(self, compiled: CompiledWorld) -> LearnedSolution:
        """All quantities on every state of ``compiled``, laid out like the exact
        solution (for :func:`empo.analysis.compare` and ``joint_policy()``)."""
        rows = self.rows_of(compiled)
        parts1, parts2 = [], []
        for chunk in torch.split(rows, _EVAL_CHUNK):
            parts1.append(self.phase1_values(chunk))
            parts2.append(self.phase2_values(chunk))
        n = compiled.num_states

        def stack(parts: list[dict[str, Tensor]]) -> TensorDict:
            out = {key: torch.cat([p[key] for p in parts]).cpu() for key in parts[0]}
            return TensorDict(out, batch_size=[n])

        return LearnedSolution(
            world=compiled,
            phase1=stack(parts1),
            phase2=stack(parts2),
            networks=self.networks,
            stats=self.stats,
        )

    @torch.no_grad()
    def greedy_rollout(
        self, max_steps: int = 1000
    ) -> tuple[Rows, Int64[Tensor, "t agent"]]:
        """The most likely rollout from the initial state: every human plays the
        most likely action of its goal-marginal ``π̄_h``, the robots the most likely
        joint action of ``π_r``, and the most likely successor is taken.

        Returns
        -------
        tuple
            ``[T + 1, dim]`` rows (ending at a terminal row or after ``max_steps``)
            and ``[T, agent]`` the per-agent actions taken.
        """
        model = self.model
        row = model.initial_state[None]
        rows, actions = [row], []
        for _ in range(max_steps):
            if bool(model.terminal(row)[0]):
                break
            pi_h = self.phase1_values(row)["pi_h"]
            pi_bar = theory.goal_marginal_policy(pi_h, model.goal_weights)
            robot = self.pi_r(row).argmax(-1)
            profile = model.profiles(pi_bar.argmax(-1), robot)
            succ, prob = model.successors(row, profile[:, None])
            row = succ[:, 0, prob[0, 0].argmax()]
            rows.append(row)
            actions.append(profile)
        if not actions:
            return torch.cat(rows), torch.zeros(0, model.num_agents, dtype=torch.long)
        return torch.cat(rows), torch.cat(actions)
