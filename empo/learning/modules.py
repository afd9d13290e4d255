"""Networks of the learned solver as TensorDict modules (DESIGN.md conventions).

Every network is a :class:`~tensordict.nn.TensorDictSequential` of a **state-encoding
module**, which maps what identifies a state to features, and a **head**; it reads
its keys from a TensorDict, so one network runs on the environment's TensorDicts
(root ``"state"`` row) and on the solver's batches alike. Encodings
(``state_encoding``):

* ``"features"``: one learned vector per (column, value) of the state row
  (:class:`ColumnFeatures`). On an enumerated world the value range of each column is
  known, the vectors are concatenated over columns and never collide (e.g. a
  MultiGrid world's time, agent cells, directions, carried objects, door states);
  on a world reached by rows, each value is reduced modulo ``buckets`` per column
  and the vectors are summed, so the table never grows with the states seen. For
  transport worlds reached by rows the graph encoder
  (:class:`GraphRowEncoder`) adds node, agent and goal embeddings.
* ``"embedding"``: one learned vector per compiled state id (key ``"state_id"``),
  i.e. the one-hot state written as an embedding lookup; enumerated worlds only.
* ``"table"``: no network but a lookup table with one entry per state id and output
  (:class:`StateTable`, :class:`GoalTable`), the paper's tabular reference
  (THEORY.md). Its gradients are sparse and the trainer updates it by the tabular
  rule ``y ← y + α (target − y)`` (:mod:`empo.learning.trainer`).
* ``"auto"``: ``"embedding"`` on enumerated worlds, ``"features"`` otherwise.

Heads, each for every human and goal at once where goal-conditioned:

* phase 1, :func:`goal_network` with ``A_h`` outputs: ``Q^m_h(s, g, ·)`` over the
  human's own actions (key ``"q_m_raw"``; the losses clamp it to ``[0, 1]`` where
  they read it and add back a shaping potential, so the raw output is regressed);
* phase 2, :func:`goal_network` with one output: ``V^e_h(s, g)`` (``"v_e_raw"``,
  clamped likewise), and :func:`state_network` for ``log(-Q_r(s, ·))`` over joint
  robot actions (``"log_neg_q_r"``; ``Q_r < 0`` spans orders of magnitude and eq. (5)
  reads only ``log(-Q_r)``, so regressing it fits what the policy reads, with relative
  errors; the online trainer gives it a :class:`MeanDeviationHead`), the critic
  ``log(-V_r)`` (``"log_neg_v_r"``) and the actor's logits ``"logits_r"`` of the
  actor-critic variant.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int64
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import Tensor, nn
from torch.nn import functional as F

from empo.learning.data import STATE, STATE_ID, WorldData

__all__ = [
    "ColumnFeatures",
    "GoalHead",
    "GoalTable",
    "GraphRowEncoder",
    "IdEmbedding",
    "MeanDeviationHead",
    "StateHead",
    "StateTable",
    "goal_network",
    "mlp",
    "resolve_encoding",
    "state_network",
]

STATE_FEATURES = "state_features"
HUMAN_FEATURES = "human_features"
GOAL_FEATURES = "goal_features"


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Perceptron ``in_dim -> hidden... -> out_dim`` with SiLU activations."""
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.SiLU()]
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class IdEmbedding(nn.Module):
    """One learned vector per compiled state id."""

    def __init__(self, num_states: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_states, embed_dim)
        self.state_dim = embed_dim

    def forward(self, state_id: Int64[Tensor, "*batch"]) -> Float[Tensor, "*batch f"]:
        """The vector of each id."""
        return self.embedding(state_id)


class ColumnFeatures(nn.Module):
    """One learned vector per (column, value) of a state row (module docstring).

    Parameters
    ----------
    low, span
        Per column, the smallest value and the number of values (or ``buckets``
        with ``low`` 0: values are reduced modulo ``span``, so ``-1`` lands in the
        last bucket).
    embed_dim
        Width of each vector.
    concat
        Concatenate the column vectors (``embed_dim × columns`` features) or sum
        them (``embed_dim``).
    """

    def __init__(
        self,
        low: Int64[Tensor, " dim"],
        span: Int64[Tensor, " dim"],
        embed_dim: int,
        concat: bool,
    ):
        super().__init__()
        self.concat = concat
        self.low: Tensor
        self.span: Tensor
        self.offsets: Tensor
        self.register_buffer("low", low.clone(), persistent=False)
        self.register_buffer("span", span.clone(), persistent=False)
        self.register_buffer("offsets", torch.cumsum(span, 0) - span, persistent=False)
        self.embedding = nn.Embedding(int(span.sum()), embed_dim)
        self.state_dim = embed_dim * (len(span) if concat else 1)

    def forward(self, state: Int64[Tensor, "*batch dim"]) -> Float[Tensor, "*batch f"]:
        """Concatenated or summed vectors of the row's columns."""
        codes = torch.remainder(state - self.low, self.span) + self.offsets
        vectors = self.embedding(codes)
        return vectors.flatten(-2) if self.concat else vectors.sum(-2)


class GraphRowEncoder(nn.Module):
    """Transport rows through the message-passing
    :class:`~empo.worlds.transport.encoder.TransportGraphEncoder` and hashed
    :class:`ColumnFeatures` of the same row.

    State features are the graph embedding, every agent's embedding and the row
    features; human features are the humans' agent embeddings and goal features the
    mean node embedding over each goal's nodes. The graph encoder has no node
    identities (it is equivariant to relabelling), so after ``layers`` rounds it
    cannot tell how far a human is from a goal more than ``layers`` hops away; the
    row features add the absolute positions (on the 3×3 ``transport_large`` with
    two humans this cut the phase-1 error from 0.20, graph alone, and 0.14, row
    features alone, to 0.06).

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
        self.rows = hashed_features(world.state_dim, hidden)
        self.humans = list(world.humans)
        self.state_dim = hidden * (2 + len(world.agents))
        self.human_dim = hidden
        self.goal_dim = hidden

    def forward(
        self, state: Int64[Tensor, "*batch dim"]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """State ``[batch, F_s]``, human ``[batch, H, F]``, goal ``[batch, G, F]``."""
        node, agent, graph = self.graph(state)
        features = torch.cat([graph, agent.flatten(-2), self.rows(state)], -1)
        return features, agent[..., self.humans, :], self.graph.goal_embedding(node)


def hashed_features(
    state_dim: int, embed_dim: int, buckets: int = 256
) -> ColumnFeatures:
    """:class:`ColumnFeatures` of rows of unknown value ranges: ``buckets`` vectors
    per column, summed (two values share a vector only when congruent modulo
    ``buckets``; none do for the built-in worlds' time steps, nodes and edges)."""
    zeros = torch.zeros(state_dim, dtype=torch.long)
    return ColumnFeatures(zeros, torch.full_like(zeros, buckets), embed_dim, False)


class GoalHead(nn.Module):
    """Goal-conditioned output for every (human, goal) of each state.

    The first layer is one linear layer over the concatenation of the state, human
    and goal features and a learned (human, goal) vector of ``pair_dim`` entries,
    evaluated as the sum of its parts, so the encoder runs once per state and only
    the later layers per (human, goal) pair. It is initialised as that unfactored
    layer (:class:`torch.nn.Linear`: uniform in ``±1/√fan_in`` with the whole
    ``fan_in``) and the pair vectors as an embedding (standard normal), so every
    input starts at the scale of the state's: a pair vector added directly to the
    ``hidden[0]`` pre-activations at unit scale outweighed the state, and on
    ``transport_small`` raised the robot policy's error from 0.060 to 0.076 (π_r
    TV, mean of 4 seeds; docs/learned.md).

    Parameters
    ----------
    state_dim, human_dim, goal_dim
        Feature widths (0: the encoder has no such features).
    num_humans, num_goals
        ``H`` and the padded goal count ``G``.
    out_dim
        Output width per pair (1: a scalar, squeezed).
    hidden
        Hidden widths (at least one).
    pair_dim
        Width of the learned (human, goal) vector.
    """

    def __init__(
        self,
        state_dim: int,
        human_dim: int,
        goal_dim: int,
        num_humans: int,
        num_goals: int,
        out_dim: int,
        hidden: tuple[int, ...],
        pair_dim: int,
    ):
        super().__init__()
        width = hidden[0]
        self.num_humans = num_humans
        self.num_goals = num_goals
        self.out_dim = out_dim
        self.from_state = nn.Linear(state_dim, width)
        self.from_human = nn.Linear(human_dim, width, bias=False) if human_dim else None
        self.from_goal = nn.Linear(goal_dim, width, bias=False) if goal_dim else None
        self.pair = nn.Embedding(num_humans * num_goals, pair_dim)
        self.from_pair = nn.Linear(pair_dim, width, bias=False)
        bound = (state_dim + human_dim + goal_dim + pair_dim) ** -0.5
        for part in (self.from_state, self.from_human, self.from_goal, self.from_pair):
            for tensor in part.parameters() if part is not None else ():
                nn.init.uniform_(tensor, -bound, bound)
        self.body = nn.Sequential(nn.SiLU(), mlp(width, tuple(hidden[1:]), out_dim))

    def forward(
        self,
        state: Float[Tensor, "*batch f"],
        human: Float[Tensor, "*batch human e"] | None = None,
        goal: Float[Tensor, "*batch goal e"] | None = None,
    ) -> Float[Tensor, "*batch human goal *out"]:
        """Output ``[*batch, H, G, out]`` (``[*batch, H, G]`` for one output)."""
        pair = self.from_pair(self.pair.weight)
        pre = self.from_state(state)[..., None, None, :] + pair.reshape(
            self.num_humans, self.num_goals, -1
        )
        if self.from_human is not None and human is not None:
            pre = pre + self.from_human(human)[..., :, None, :]
        if self.from_goal is not None and goal is not None:
            pre = pre + self.from_goal(goal)[..., None, :, :]
        out = self.body(pre)
        return out.squeeze(-1) if self.out_dim == 1 else out


class StateHead(nn.Module):
    """Perceptron over state features (robot networks; one output is squeezed)."""

    def __init__(self, state_dim: int, out_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.out_dim = out_dim
        self.body = mlp(state_dim, hidden, out_dim)

    def forward(self, state: Float[Tensor, "*batch f"]) -> Float[Tensor, "*batch *out"]:
        """Output per state."""
        out = self.body(state)
        return out.squeeze(-1) if self.out_dim == 1 else out


class MeanDeviationHead(nn.Module):
    """Two perceptrons over state features: a state's mean output and each output's
    deviation from it (a dueling head, robot action values ``log(-Q_r)``).

    ``out(s, a) = m(s) + d(s, a) - mean_a d(s, a)`` represents every function of
    ``(s, a)`` (take ``m`` the mean, ``d`` the function). Where a state's mean lies
    far from the others' (``log(-Q_r) ≈ log(-terminal_v_r) ≈ -23`` where every
    successor is terminal, against ``|log(-Q_r)| ≲ 1`` elsewhere), a single
    perceptron needs hidden activations at that scale, and every action's output
    reads them, so small errors of its action-specific last layer become deviations
    of that scale; here the deviations have their own hidden layers, which need not
    carry that scale (the deviations are 0 where the actions are equivalent). On
    ``transport_small`` it lowered the robot policy's error on each of 4 seeds
    (docs/learned.md, accuracy table).

    Parameters
    ----------
    state_dim, out_dim
        Feature and output widths.
    hidden
        Hidden widths of each perceptron.
    """

    def __init__(self, state_dim: int, out_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.mean = mlp(state_dim, hidden, 1)
        self.deviation = mlp(state_dim, hidden, out_dim)

    def forward(self, state: Float[Tensor, "*batch f"]) -> Float[Tensor, "*batch out"]:
        """``m(s) + d(s, ·) - mean d(s, ·)`` per state."""
        deviation = self.deviation(state)
        return self.mean(state) + deviation - deviation.mean(-1, keepdim=True)


class StateTable(nn.Module):
    """Lookup table ``state id -> out`` (one output is squeezed).

    Parameters
    ----------
    num_states, out_dim
        Table size.
    """

    def __init__(self, num_states: int, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        self.weight = nn.Parameter(torch.zeros(num_states, out_dim))

    def forward(
        self, state_id: Int64[Tensor, "*batch"]
    ) -> Float[Tensor, "*batch *out"]:
        """Rows of the ids; the gradient is sparse (the rows read)."""
        out = F.embedding(state_id, self.weight, sparse=True)
        return out.squeeze(-1) if self.out_dim == 1 else out


class GoalTable(nn.Module):
    """Lookup table ``state id -> [H, G, out]`` (one output is squeezed).

    Parameters
    ----------
    num_states, num_humans, num_goals, out_dim
        Table sizes (goals padded to the largest goal set).
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
        self.shape = (num_humans, num_goals, out_dim)
        self.out_dim = out_dim
        size = num_humans * num_goals * out_dim
        self.weight = nn.Parameter(torch.full((num_states, size), init))

    def forward(
        self, state_id: Int64[Tensor, "*batch"]
    ) -> Float[Tensor, "*batch human goal *out"]:
        """Entries of each id for every (human, goal); sparse gradient."""
        rows = F.embedding(state_id, self.weight, sparse=True)
        out = rows.reshape(*state_id.shape, *self.shape)
        return out.squeeze(-1) if self.out_dim == 1 else out


def resolve_encoding(data: WorldData, knobs: Any) -> str:
    """The state encoding ``knobs.state_encoding`` stands for on ``data``.

    Raises
    ------
    ValueError
        For ``"table"`` or ``"embedding"`` on a world reached by rows (no state
        ids), naming the field.
    """
    from empo.parameters.learning import StateEncoding

    encoding = StateEncoding(knobs.state_encoding)
    if encoding is StateEncoding.AUTO:
        encoding = (
            StateEncoding.EMBEDDING if data.enumerated else StateEncoding.FEATURES
        )
    if (
        encoding in (StateEncoding.TABLE, StateEncoding.EMBEDDING)
        and not data.enumerated
    ):
        raise ValueError(
            f"{knobs.prefix}.state_encoding = {encoding.value!r} needs an enumerated "
            "world (one entry per state id); use 'features' or 'auto' with "
            "world_access 'sampled'"
        )
    return encoding.value


def _encoder(
    data: WorldData, knobs: Any, encoding: str
) -> tuple[TensorDictModule, Any]:
    """The state-encoding module and its encoder (for the feature widths)."""
    from empo.worlds.transport.dynamics import TransportWorld

    if encoding == "embedding":
        net: nn.Module = IdEmbedding(data.num_states, knobs.embed_dim)
        return TensorDictModule(net, [STATE_ID], [STATE_FEATURES]), net
    if data.enumerated:
        rows = data.rows
        low = rows.amin(0).cpu()
        net = ColumnFeatures(low, rows.amax(0).cpu() - low + 1, knobs.embed_dim, True)
        return TensorDictModule(net, [STATE], [STATE_FEATURES]), net
    if isinstance(data.world, TransportWorld):
        net = GraphRowEncoder(data.world, knobs.embed_dim)
        keys = [STATE_FEATURES, HUMAN_FEATURES, GOAL_FEATURES]
        return TensorDictModule(net, [STATE], keys), net
    net = hashed_features(data.state_dim, knobs.embed_dim)
    return TensorDictModule(net, [STATE], [STATE_FEATURES]), net


def goal_network(
    data: WorldData, knobs: Any, out_dim: int, out_key: str, table_init: float = 0.0
) -> TensorDictModule | TensorDictSequential:
    """A goal-conditioned network ``state -> out_key [*B, H, G(, out)]``.

    Parameters
    ----------
    data
        The data source (sizes, encodings it supports).
    knobs
        The phase's parameter block (``state_encoding``, ``embed_dim``,
        ``hidden_sizes``).
    out_dim
        Outputs per (human, goal).
    out_key
        Key of the output.
    table_init
        Initial entry of a lookup table.
    """
    shape = (data.num_humans, data.num_goals, out_dim)
    encoding = resolve_encoding(data, knobs)
    if encoding == "table":
        table = GoalTable(data.num_states, *shape, table_init)
        return TensorDictModule(table, [STATE_ID], [out_key])
    encoder, net = _encoder(data, knobs, encoding)
    head = GoalHead(
        net.state_dim,
        getattr(net, "human_dim", 0),
        getattr(net, "goal_dim", 0),
        *shape,
        tuple(knobs.hidden_sizes),
        knobs.embed_dim,
    )
    head_module = TensorDictModule(head, list(encoder.out_keys), [out_key])
    return TensorDictSequential(encoder, head_module, selected_out_keys=[out_key])


def state_network(
    data: WorldData, knobs: Any, out_dim: int, out_key: str, dueling: bool = False
) -> TensorDictModule | TensorDictSequential:
    """A network ``state -> out_key [*B(, out)]`` (robot networks; see
    :func:`goal_network` for the arguments; ``dueling``: a
    :class:`MeanDeviationHead` instead of one perceptron, for ``log(-Q_r)``; lookup
    tables ignore it)."""
    encoding = resolve_encoding(data, knobs)
    if encoding == "table":
        return TensorDictModule(
            StateTable(data.num_states, out_dim), [STATE_ID], [out_key]
        )
    encoder, net = _encoder(data, knobs, encoding)
    hidden = tuple(knobs.hidden_sizes)
    head: nn.Module = (
        MeanDeviationHead(net.state_dim, out_dim, hidden)
        if dueling
        else StateHead(net.state_dim, out_dim, hidden)
    )
    head_module = TensorDictModule(head, [STATE_FEATURES], [out_key])
    return TensorDictSequential(encoder, head_module, selected_out_keys=[out_key])
