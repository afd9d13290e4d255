"""Networks of the sampled learned solver: they read state *rows*, not state ids.

Encoders turn a batch of integer rows into ``(state, human, goal)`` features:

* :class:`RowFeatureEncoder` (any world model): one learned vector per (column,
  value) of the row, summed over columns. The value is reduced **modulo a fixed
  number of buckets per column** (``torch.remainder``, so ``-1`` lands in the last
  bucket), so the table never grows with the states seen; two values of one column
  share a vector only when they are congruent modulo ``buckets`` (none do when every
  column spans fewer than ``buckets`` values, e.g. time steps, node and edge indices
  of the built-in worlds with the default 256). It has no per-human or per-goal
  features.
* :class:`GraphRowEncoder` (transport worlds): the message-passing
  :class:`~empo.worlds.transport.encoder.TransportGraphEncoder` next to a
  :class:`RowFeatureEncoder` of the same row; state features are the graph
  embedding, every agent's embedding and the row features, the human features are
  the humans' agent embeddings and the goal features are
  :meth:`~empo.worlds.transport.encoder.TransportGraphEncoder.goal_embedding` (the
  mean node embedding over each goal's nodes). The graph encoder deliberately has
  no node identities (it is equivariant to relabelling), so after ``layers`` rounds
  it cannot tell how far a human is from a goal more than ``layers`` hops away; the
  row features add the absolute positions. On the 3x3 ``transport_large`` with two
  humans (10,000 frames per phase) this cut the phase-1 error ``v_m`` from 0.20
  (graph alone) and 0.14 (row features alone) to 0.06.

Heads (wrapped as ``TensorDictModule`` with ``in_keys=["state"]``):

* :class:`GoalHead` — ``[row, human, goal, out]`` for every human and goal at once: the
  first layer is the sum of linear maps of the state, human and goal features and a
  learned (human, goal) vector, so the encoder runs once per row and only the later
  layers run per (human, goal) pair. Phase 1 uses it for ``Q^m_h(s, g, ·)`` over the
  human's own actions (eq. 1), phase 2 for ``V^e_h(s, g)`` (eq. 6). Both lie in
  ``[0, 1]``: the losses regress the raw output and clamp it to ``[0, 1]`` wherever a
  value is read (as :mod:`empo.learning.losses` does), which avoids a sigmoid's flat
  gradient at the many exact 0s and 1s.
* :class:`RobotHead` — ``log(-Q_r(s, ·))`` over the joint robot actions (eqs. 4-5),
  the parametrisation of :mod:`empo.learning.modules`.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int64
from tensordict.nn import TensorDictModule
from torch import Tensor, nn

from empo.learning.modules import mlp

__all__ = [
    "GoalHead",
    "GraphRowEncoder",
    "RobotHead",
    "RowFeatureEncoder",
    "goal_head_module",
    "make_encoder",
    "robot_head_module",
]

Features = tuple[Tensor, Tensor | None, Tensor | None]


class RowFeatureEncoder(nn.Module):
    """Summed learned vectors of each (column, value mod ``buckets``) of a row.

    Parameters
    ----------
    state_dim
        Row width.
    embed_dim
        Width of the vectors.
    buckets
        Table rows per column (see the module docstring for collisions).
    """

    def __init__(self, state_dim: int, embed_dim: int, buckets: int = 256):
        super().__init__()
        self.buckets = buckets
        self.embedding = nn.Embedding(state_dim * buckets, embed_dim)
        self.state_dim = embed_dim
        self.human_dim = 0
        self.goal_dim = 0
        self.offsets: Tensor
        self.register_buffer(
            "offsets", torch.arange(state_dim) * buckets, persistent=False
        )

    def forward(self, rows: Int64[Tensor, "batch dim"]) -> Features:
        """``(state features [batch, embed_dim], None, None)``."""
        codes = torch.remainder(rows, self.buckets) + self.offsets
        return self.embedding(codes).sum(-2), None, None


class GraphRowEncoder(nn.Module):
    """Transport rows through :class:`TransportGraphEncoder` and
    :class:`RowFeatureEncoder` (module docstring).

    Parameters
    ----------
    world
        The transport world.
    hidden
        Embedding width.
    layers
        Message-passing rounds.
    """

    def __init__(self, world: Any, hidden: int, layers: int = 3):
        from empo.worlds.transport.encoder import TransportGraphEncoder

        super().__init__()
        self.graph = TransportGraphEncoder(world, hidden, layers)
        self.rows = RowFeatureEncoder(world.state_dim, hidden)
        self.humans = list(world.humans)
        self.state_dim = hidden * (2 + len(world.agents))
        self.human_dim = hidden
        self.goal_dim = hidden

    def forward(self, rows: Int64[Tensor, "batch dim"]) -> Features:
        """State ``[batch, F_s]``, human ``[batch, H, F]`` and goal ``[batch, G, F]``."""
        node, agent, graph = self.graph(rows)
        state = torch.cat([graph, agent.flatten(1), self.rows(rows)[0]], -1)
        return state, agent[:, self.humans], self.graph.goal_embedding(node)


def make_encoder(world: Any, embed_dim: int) -> nn.Module:
    """The encoder for ``world``: graph encoder for transport worlds, else features."""
    from empo.worlds.transport.dynamics import TransportWorld

    if isinstance(world, TransportWorld):
        return GraphRowEncoder(world, embed_dim)
    return RowFeatureEncoder(world.state_dim, embed_dim)


class GoalHead(nn.Module):
    """Goal-conditioned output for every (human, goal) of each row.

    Parameters
    ----------
    encoder
        A row encoder (:func:`make_encoder`).
    num_humans, num_goals
        ``H`` and the padded goal count ``G``.
    out_dim
        Output width per (human, goal) (1: a scalar, squeezed).
    hidden
        Hidden widths (at least one).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_humans: int,
        num_goals: int,
        out_dim: int,
        hidden: tuple[int, ...],
    ):
        super().__init__()
        width = hidden[0]
        self.encoder = encoder
        self.num_humans = num_humans
        self.num_goals = num_goals
        self.out_dim = out_dim
        self.from_state = nn.Linear(encoder.state_dim, width)
        self.from_human = (
            nn.Linear(encoder.human_dim, width, bias=False)
            if encoder.human_dim
            else None
        )
        self.from_goal = (
            nn.Linear(encoder.goal_dim, width, bias=False) if encoder.goal_dim else None
        )
        self.pair = nn.Embedding(num_humans * num_goals, width)
        self.body = nn.Sequential(nn.SiLU(), mlp(width, tuple(hidden[1:]), out_dim))

    def forward(
        self, rows: Int64[Tensor, "batch dim"]
    ) -> Float[Tensor, "batch human goal *out"]:
        """Output ``[batch, H, G, out]`` (``[batch, H, G]`` when ``out_dim == 1``)."""
        state, human, goal = self.encoder(rows)
        pre = self.from_state(state)[:, None, None] + self.pair.weight.reshape(
            self.num_humans, self.num_goals, -1
        )
        if self.from_human is not None and human is not None:
            pre = pre + self.from_human(human)[:, :, None]
        if self.from_goal is not None and goal is not None:
            pre = pre + self.from_goal(goal)[:, None]
        out = self.body(pre)
        return out.squeeze(-1) if self.out_dim == 1 else out


class RobotHead(nn.Module):
    """``log(-Q_r(s, ·))`` over the joint robot actions.

    Parameters
    ----------
    encoder
        A row encoder.
    robot_actions
        ``A_r``.
    hidden
        Hidden widths.
    """

    def __init__(self, encoder: nn.Module, robot_actions: int, hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.body = mlp(encoder.state_dim, hidden, robot_actions)

    def forward(self, rows: Int64[Tensor, "batch dim"]) -> Float[Tensor, "batch a_r"]:
        """Output per row and joint robot action."""
        return self.body(self.encoder(rows)[0])


def goal_head_module(
    world: Any,
    num_humans: int,
    num_goals: int,
    out_dim: int,
    embed_dim: int,
    hidden: tuple[int, ...],
    out_key: str,
) -> TensorDictModule:
    """A :class:`GoalHead` with its own encoder, ``"state" -> out_key``."""
    net = GoalHead(
        make_encoder(world, embed_dim), num_humans, num_goals, out_dim, hidden
    )
    return TensorDictModule(net, in_keys=["state"], out_keys=[out_key])


def robot_head_module(
    world: Any, robot_actions: int, embed_dim: int, hidden: tuple[int, ...]
) -> TensorDictModule:
    """A :class:`RobotHead` with its own encoder, ``"state" -> "log_neg_q_r"``."""
    net = RobotHead(make_encoder(world, embed_dim), robot_actions, hidden)
    return TensorDictModule(net, in_keys=["state"], out_keys=["log_neg_q_r"])
