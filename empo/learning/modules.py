"""Networks of the learned solver as TensorDict modules (DESIGN.md conventions).

All networks read the state id (``"state"``) through a :class:`StateEncoder`:

* ``"embedding"``: a learned vector per state id, i.e. the one-hot encoding of a
  compiled world's state written as an embedding lookup (the same linear map at a
  fraction of the cost). Exact for tabular worlds; no generalisation across states.
* ``"features"``: the world's integer state encoding (``state_table``, e.g. a MultiGrid
  world's time, agent cells, directions, carried objects, door states and object
  cells), one learned vector per (column, value), concatenated over columns. States
  that share features share parameters, so the network generalises across states.
* ``"table"``: no network at all but a lookup table with one entry per state id and
  output (:class:`StateTable`, :class:`GoalConditionedTable`), i.e. a linear map of
  the one-hot state without hidden layers, as in the paper's tabular reference run
  (THEORY.md, learning-based approximation). It represents every solution exactly;
  its gradients are sparse (only the rows of the batch's states), and the trainer
  updates it by the tabular rule ``y ← y + α (target − y)``
  (:mod:`empo.learning.trainer`).

Goal-conditioned networks also read ``"human"`` and ``"goal"`` and embed the pair, so
one network serves every human.

* :func:`joint_backup_module` — phase 1. For a (state, human, goal) it outputs
  ``z(s, g, j) = Σ_{s'} P(s'|s,j) [U_h(s',g) + γ_h 1[s'∉g] V^m_h(s',g)]`` for every
  joint action ``j`` (key ``"z"``). ``Q^m_h(s, g, ·)`` follows from ``z`` through
  eq. (1) with the minimum over robot actions and the expectation over ``μ_-h`` taken
  explicitly (:meth:`empo.learning.model.TransitionModel.cautious_q`), which is why
  the head is over joint actions rather than over ``a_h`` only: a head over ``a_h``
  fitted to targets of robot actions chosen ε-greedily to minimise approaches the
  minimum only as ε → 0 and only for the robot action the current estimate thinks is
  worst, whereas the joint head makes eq. (1) exact up to the fit of ``z``. Its cost,
  an output of size ``|A_joint|``, is small for the worlds of this project.
* :func:`goal_value_module` — phase 2 ``V^e_h(s, g)`` (key ``"v_e"``).
* :func:`robot_q_module` — phase 2 ``Q_r(s, ·)`` over joint robot actions, output as
  ``log(-Q_r)`` (key ``"log_neg_q_r"``). ``Q_r < 0`` always (THEORY.md, eq. 5) and
  spans orders of magnitude (``U_r / (1 - γ_r)``); the power-law policy (5) depends
  only on ``log(-Q_r)``, so regressing that quantity fits exactly what the policy
  reads, with relative rather than absolute errors.
* :func:`robot_value_module` and :func:`robot_policy_module` — the actor-critic
  variant of phase 2: ``V_r(s)`` output as ``log(-V_r)`` (key ``"log_neg_v_r"``,
  ``V_r < 0`` like ``Q_r``) and the logits of ``π_r(s)`` over joint robot actions
  (key ``"logits_r"``; disallowed actions are masked by the loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int64
from tensordict.nn import TensorDictModule
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "StateEncoder",
    "GoalConditionedNet",
    "GoalConditionedTable",
    "StateNet",
    "StateTable",
    "Tabular",
    "goal_value_module",
    "joint_backup_module",
    "mlp",
    "robot_policy_module",
    "robot_q_module",
    "robot_value_module",
]


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Perceptron ``in_dim -> hidden... -> out_dim`` with SiLU activations."""
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.SiLU()]
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class StateEncoder(nn.Module):
    """State id -> feature vector (see the module docstring).

    Parameters
    ----------
    num_states
        Number of states.
    embed_dim
        Width of each learned vector.
    state_table
        ``[state, dim]`` integer state encoding for ``"features"``, or ``None`` for a
        per-state embedding.
    device
        Device of the code table. The table is derived from the world, not learned,
        so it is a plain attribute rather than a buffer: target-network updates and
        checkpoints see only the embedding.
    """

    def __init__(
        self,
        num_states: int,
        embed_dim: int,
        state_table: Int64[Tensor, "state dim"] | None = None,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        if state_table is None:
            codes = torch.arange(num_states)[:, None]
            size = num_states
        else:
            if state_table.shape[0] != num_states:
                raise ValueError(
                    f"state_table has {state_table.shape[0]} rows for {num_states} states"
                )
            table = state_table.to(torch.long).cpu()
            low = table.amin(0)
            span = table.amax(0) - low + 1
            offsets = torch.cumsum(span, 0) - span
            codes = table - low + offsets
            size = int(span.sum())
        self.codes = codes.to(device)
        self.embedding = nn.Embedding(size, embed_dim)
        self.out_dim = embed_dim * self.codes.shape[1]

    def forward(
        self, state: Int64[Tensor, "*batch"]
    ) -> Float[Tensor, "*batch feature"]:
        """Concatenated learned vectors of each state's codes."""
        return self.embedding(self.codes[state]).flatten(-2)


class GoalConditionedNet(nn.Module):
    """MLP over a state embedding and a (human, goal) embedding.

    The first layer acts on the concatenation ``[state features, goal embedding]``;
    it is evaluated as the sum of its state part (once per state) and its goal part
    (once per human and goal), broadcast together, which is the same function at a
    fraction of the cost when every state is paired with every goal.

    Parameters
    ----------
    encoder
        The state encoder.
    num_humans, num_goals
        Table sizes (goals padded to the largest goal set).
    out_dim
        Output width (1 for a scalar value).
    embed_dim, hidden
        Goal embedding width and hidden layer widths.
    """

    def __init__(
        self,
        encoder: StateEncoder,
        num_humans: int,
        num_goals: int,
        out_dim: int,
        embed_dim: int,
        hidden: tuple[int, ...],
    ):
        super().__init__()
        self.num_goals = num_goals
        self.out_dim = out_dim
        self.encoder = encoder
        self.goal_embedding = nn.Embedding(num_humans * num_goals, embed_dim)
        self.body = mlp(encoder.out_dim + embed_dim, hidden, out_dim)

    def forward(
        self,
        state: Int64[Tensor, "*batch"],
        human: Int64[Tensor, "*batch"],
        goal: Int64[Tensor, "*batch"],
    ) -> Float[Tensor, "*batch out"]:
        """Output for each (state, human, goal) triple (broadcast together)."""
        first = self.body[0]
        width = self.encoder.out_dim
        from_state = F.linear(self.encoder(state), first.weight[:, :width])
        from_goal = F.linear(
            self.goal_embedding(human * self.num_goals + goal),
            first.weight[:, width:],
            first.bias,
        )
        out = self.body[1:](from_state + from_goal)
        return out.squeeze(-1) if self.out_dim == 1 else out


class StateNet(nn.Module):
    """MLP over a state embedding (robot networks).

    Parameters
    ----------
    encoder
        The state encoder.
    out_dim
        Output width.
    hidden
        Hidden layer widths.
    """

    def __init__(self, encoder: StateEncoder, out_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.body = mlp(encoder.out_dim, hidden, out_dim)

    def forward(self, state: Int64[Tensor, "*batch"]) -> Float[Tensor, "*batch out"]:
        """Output for each state."""
        return self.body(self.encoder(state))


class StateTable(nn.Module):
    """Lookup table ``state -> out`` (``state_encoding = "table"``).

    Parameters
    ----------
    num_states
        Number of state ids.
    out_dim
        Output width.
    """

    def __init__(self, num_states: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_states, out_dim))

    def forward(self, state: Int64[Tensor, "*batch"]) -> Float[Tensor, "*batch out"]:
        """Rows of ``state``; the gradient is sparse (the rows read)."""
        return F.embedding(state, self.weight, sparse=True)


class GoalConditionedTable(nn.Module):
    """Lookup table ``(state, human, goal) -> out`` (``state_encoding = "table"``).

    Parameters
    ----------
    num_states, num_humans, num_goals
        Table sizes (goals padded to the largest goal set).
    out_dim
        Output width (1 for a scalar value, then squeezed).
    init
        Initial value of every entry.
    """

    def __init__(
        self,
        num_states: int,
        num_humans: int,
        num_goals: int,
        out_dim: int,
        init: float = 0.0,
    ):
        super().__init__()
        self.num_goals = num_goals
        self.out_dim = out_dim
        pairs = num_humans * num_goals
        self.weight = nn.Parameter(torch.full((num_states, pairs * out_dim), init))

    def forward(
        self,
        state: Int64[Tensor, "*batch"],
        human: Int64[Tensor, "*batch"],
        goal: Int64[Tensor, "*batch"],
    ) -> Float[Tensor, "*batch out"]:
        """Entry of each (state, human, goal) triple (broadcast together).

        The common query of every human and goal of each state (``state`` of shape
        ``[..., 1, 1]``, ``human`` and ``goal`` the aranges ``[H, 1]`` and ``[G]``) is
        a reshape of the state's row; any other query gathers from it.
        """
        rows = F.embedding(state, self.weight, sparse=True)
        pair = human * self.num_goals + goal
        pairs = self.weight.shape[1] // self.out_dim
        if (
            state.shape[-2:] == (1, 1)
            and pair.shape[-2:] == (pairs // self.num_goals, self.num_goals)
            and pair.numel() == pairs
            and torch.equal(pair.flatten(), torch.arange(pairs, device=pair.device))
        ):
            out = rows.reshape(*state.shape[:-2], *pair.shape[-2:], self.out_dim)
        else:
            rows = rows.unflatten(-1, (pairs, self.out_dim))
            shape = torch.broadcast_shapes(state.shape, human.shape, goal.shape)
            rows = rows.expand(*shape, *rows.shape[-2:])
            index = pair.expand(shape)[..., None, None].expand(*shape, 1, self.out_dim)
            out = torch.gather(rows, -2, index).squeeze(-2)
        return out.squeeze(-1) if self.out_dim == 1 else out


@dataclass(frozen=True)
class Tabular:
    """Stands for the state encoder of ``state_encoding = "table"``: the module
    constructors below then build lookup tables over ``num_states`` state ids."""

    num_states: int


Encoding = StateEncoder | Tabular


def _goal_conditioned(
    encoder: Encoding,
    num_humans: int,
    num_goals: int,
    out_dim: int,
    embed_dim: int,
    hidden: tuple[int, ...],
    table_init: float = 0.0,
) -> nn.Module:
    if isinstance(encoder, Tabular):
        return GoalConditionedTable(
            encoder.num_states, num_humans, num_goals, out_dim, table_init
        )
    return GoalConditionedNet(
        encoder, num_humans, num_goals, out_dim, embed_dim, hidden
    )


def _state_conditioned(
    encoder: Encoding, out_dim: int, hidden: tuple[int, ...]
) -> nn.Module:
    if isinstance(encoder, Tabular):
        return StateTable(encoder.num_states, out_dim)
    return StateNet(encoder, out_dim, hidden)


def joint_backup_module(
    encoder: Encoding,
    num_humans: int,
    num_goals: int,
    num_joint: int,
    embed_dim: int,
    hidden: tuple[int, ...],
) -> TensorDictModule:
    """Phase-1 network: ``("state", "human", "goal") -> "z"`` over joint actions."""
    net = _goal_conditioned(
        encoder, num_humans, num_goals, num_joint, embed_dim, hidden
    )
    return TensorDictModule(net, in_keys=["state", "human", "goal"], out_keys=["z"])


def goal_value_module(
    encoder: Encoding,
    num_humans: int,
    num_goals: int,
    embed_dim: int,
    hidden: tuple[int, ...],
) -> TensorDictModule:
    """Phase-2 network: ``("state", "human", "goal") -> "v_e"`` (eq. 6).

    A table starts optimistic, at ``V^e_h = 1`` (every goal reached for sure): a
    state whose entries have not been updated yet then counts with the largest
    ``X_h`` instead of ``X_h = 0``, whose ``U_r`` (eq. 8) would be ``-∞`` up to the
    training floor and would spread through the ``Q_r`` targets of its predecessors
    until it is visited.
    """
    net = _goal_conditioned(encoder, num_humans, num_goals, 1, embed_dim, hidden, 1.0)
    return TensorDictModule(net, in_keys=["state", "human", "goal"], out_keys=["v_e"])


def robot_q_module(
    encoder: Encoding, robot_actions: int, hidden: tuple[int, ...]
) -> TensorDictModule:
    """Phase-2 network: ``"state" -> "log_neg_q_r"`` with ``Q_r = -exp(·)`` (eq. 4)."""
    net = _state_conditioned(encoder, robot_actions, hidden)
    return TensorDictModule(net, in_keys=["state"], out_keys=["log_neg_q_r"])


def robot_value_module(encoder: Encoding, hidden: tuple[int, ...]) -> TensorDictModule:
    """Critic: ``"state" -> "log_neg_v_r"`` with ``V_r = -exp(·)`` (eq. 9)."""
    net = _state_conditioned(encoder, 1, hidden)
    return TensorDictModule(net, in_keys=["state"], out_keys=["log_neg_v_r"])


def robot_policy_module(
    encoder: Encoding, robot_actions: int, hidden: tuple[int, ...]
) -> TensorDictModule:
    """Actor: ``"state" -> "logits_r"`` over joint robot actions (eq. 5)."""
    net = _state_conditioned(encoder, robot_actions, hidden)
    return TensorDictModule(net, in_keys=["state"], out_keys=["logits_r"])
