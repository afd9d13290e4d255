"""Graph message-passing encoder of transport states for the learned solvers.

:class:`TransportGraphEncoder` turns integer states of a :class:`TransportWorld` into
node, agent and graph embeddings. It is a plain :class:`torch.nn.Module` whose
``forward(state)`` returns a tuple, so it fits a ``TensorDictModule``::

    TensorDictModule(encoder, in_keys=["state"],
                     out_keys=["node_embedding", "agent_embedding", "graph_embedding"])

Node input features count what sits at each node (humans waiting, humans aboard,
vehicles, free seats, agents leaving along an out-edge) plus the time fraction
``t / horizon``. Each layer sends a message along every directed edge,
``relu(A h_source + B h_target + C edge_features)`` (edge features: length, drivable,
walkable; the linear maps are applied per node, so an edge costs only a gather and
an add), averages incoming and outgoing messages per node with ``index_add_`` and
updates the node embedding residually with a perceptron. Agent embeddings combine the embedding of the agent's
node (and, in transit, of the edge's target) with the agent's own features;
:meth:`TransportGraphEncoder.goal_embedding` pools node embeddings over each goal's
node cluster for goal-conditioned heads. No
feature depends on node or agent identity, so the encoder is equivariant to
relabelling nodes (node embeddings permute, agent and graph embeddings do not
change) and to permuting agents of the same kind.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int64
from torch import Tensor, nn

from empo.worlds.transport.dynamics import TransportWorld

NODE_FEATURES = 7
AGENT_FEATURES = 5
EDGE_FEATURES = 3


def _mlp(n_in: int, n_out: int) -> nn.Sequential:
    """Two-layer perceptron with a ReLU."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU(), nn.Linear(n_out, n_out))


class TransportGraphEncoder(nn.Module):
    """Message-passing encoder over the road network of ``world``.

    Parameters
    ----------
    world
        The transport world (its network, agents and horizon).
    hidden
        Embedding width.
    layers
        Number of message-passing rounds.
    """

    def __init__(
        self, world: TransportWorld, hidden: int = 64, layers: int = 3
    ) -> None:
        super().__init__()
        net = world.network
        self.world = world
        self.hidden = hidden
        scale = float(net.length.max()) if net.num_edges else 1.0
        edge_features = torch.stack(
            [net.length / scale, net.drivable.double(), net.walkable.double()], -1
        )
        self.register_buffer("source", net.source.clone(), persistent=False)
        self.register_buffer("target", net.target.clone(), persistent=False)
        self.register_buffer("edge_features", edge_features.float(), persistent=False)
        steps = torch.maximum(world.drive_steps, world.walk_steps).clamp(min=1)
        self.register_buffer("edge_steps", steps.float(), persistent=False)
        n = net.num_nodes
        in_degree = torch.bincount(net.target, minlength=n).clamp(min=1)
        out_degree = torch.bincount(net.source, minlength=n).clamp(min=1)
        self.register_buffer("in_degree", in_degree.float(), persistent=False)
        self.register_buffer("out_degree", out_degree.float(), persistent=False)
        clusters = world.goal_nodes.float()
        self.register_buffer(
            "goal_pooling", clusters / clusters.sum(1, keepdim=True), persistent=False
        )
        self.node_in = nn.Linear(NODE_FEATURES, hidden)
        self.from_source = nn.ModuleList(
            nn.Linear(hidden, hidden) for _ in range(layers)
        )
        self.from_target = nn.ModuleList(
            nn.Linear(hidden, hidden, bias=False) for _ in range(layers)
        )
        self.from_edge = nn.ModuleList(
            nn.Linear(EDGE_FEATURES, hidden, bias=False) for _ in range(layers)
        )
        self.updates = nn.ModuleList(_mlp(3 * hidden, hidden) for _ in range(layers))
        self.agent_out = _mlp(2 * hidden + AGENT_FEATURES, hidden)
        self.graph_out = _mlp(hidden, hidden)

    def _node_features(
        self, parts: dict[str, Tensor], batch: int
    ) -> Float[Tensor, "batch node feature"]:
        """Counts per node via ``index_add_`` on a flattened ``batch * node`` axis."""
        world = self.world
        n = world.network.num_nodes
        device = parts["t"].device
        features = torch.zeros(batch * n, NODE_FEATURES, device=device)
        offset = (torch.arange(batch, device=device) * n).unsqueeze(1)

        def add(node: Tensor, where: Tensor, column: int, value: Tensor) -> None:
            flat = (node + offset).flatten()
            features[:, column].index_add_(0, flat, (where * value).flatten().float())

        h_at = parts["human_edge"] < 0
        aboard = parts["human_vehicle"] >= 0
        v_at = parts["vehicle_edge"] < 0
        one = torch.ones_like(parts["human_node"])
        add(parts["human_node"], h_at & ~aboard, 0, one)
        add(parts["human_node"], h_at & aboard, 1, one)
        add(parts["vehicle_node"], v_at, 2, torch.ones_like(parts["vehicle_node"]))
        load = (
            parts["human_vehicle"].unsqueeze(-1)
            == torch.arange(world.n_vehicles, device=device)
        ).sum(1)
        free = world.capacity.to(device) - load
        add(parts["vehicle_node"], v_at, 3, free)
        add(parts["human_node"], ~h_at & ~aboard, 4, one)
        add(parts["vehicle_node"], ~v_at, 5, torch.ones_like(parts["vehicle_node"]))
        features = features.reshape(batch, n, NODE_FEATURES)
        features[..., 6] = (parts["t"].float() / world.horizon).unsqueeze(1)
        return features

    def _agent_features(
        self, parts: dict[str, Tensor]
    ) -> tuple[Float[Tensor, "batch agent feature"], Tensor, Tensor]:
        """Own features, node and in-transit edge of every agent (humans first)."""
        node = torch.cat([parts["human_node"], parts["vehicle_node"]], 1)
        edge = torch.cat([parts["human_edge"], parts["vehicle_edge"]], 1)
        remaining = torch.cat([parts["human_remaining"], parts["vehicle_remaining"]], 1)
        n_h = parts["human_node"].shape[1]
        is_human = torch.zeros_like(node, dtype=torch.float32)
        is_human[:, :n_h] = 1.0
        aboard = torch.zeros_like(is_human)
        aboard[:, :n_h] = (parts["human_vehicle"] >= 0).float()
        transit = (edge >= 0).float()
        progress = transit * remaining.float() / self.edge_steps[edge.clamp(min=0)]
        own = torch.stack([is_human, 1.0 - is_human, aboard, transit, progress], -1)
        return own, node, edge

    def forward(self, state: Int64[Tensor, "*batch dim"]) -> tuple[
        Float[Tensor, "*batch node hidden"],
        Float[Tensor, "*batch agent hidden"],
        Float[Tensor, "*batch hidden"],
    ]:
        """Encode states into node, agent and graph embeddings."""
        lead = state.shape[:-1]
        flat = state.reshape(-1, state.shape[-1])
        parts = self.world.split(flat)
        batch, n = flat.shape[0], self.world.network.num_nodes
        h = self.node_in(self._node_features(parts, batch))
        layers = zip(self.from_source, self.from_target, self.from_edge, self.updates)
        for from_source, from_target, from_edge, update in layers:
            m = torch.relu(
                from_source(h)[:, self.source]
                + from_target(h)[:, self.target]
                + from_edge(self.edge_features)
            )
            incoming = torch.zeros_like(h).index_add_(1, self.target, m)
            outgoing = torch.zeros_like(h).index_add_(1, self.source, m)
            h = h + update(
                torch.cat(
                    [
                        h,
                        incoming / self.in_degree.unsqueeze(-1),
                        outgoing / self.out_degree.unsqueeze(-1),
                    ],
                    -1,
                )
            )
        own, node, edge = self._agent_features(parts)
        index = torch.arange(batch, device=flat.device).unsqueeze(1)
        ahead = torch.where(edge >= 0, self.target[edge.clamp(min=0)], node)
        agents = self.agent_out(torch.cat([h[index, node], h[index, ahead], own], -1))
        graph = self.graph_out(h.mean(1))
        return (
            h.reshape(*lead, n, self.hidden),
            agents.reshape(*lead, agents.shape[1], self.hidden),
            graph.reshape(*lead, self.hidden),
        )

    def goal_embedding(
        self, node_embedding: Float[Tensor, "*batch node hidden"]
    ) -> Float[Tensor, "*batch goal hidden"]:
        """Goal encodings for goal-conditioned heads: the mean node embedding over
        each goal's node cluster."""
        return torch.einsum("gn,...nf->...gf", self.goal_pooling, node_embedding)
