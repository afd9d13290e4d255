"""Graph encoder: shapes, TensorDictModule use, and equivariance under relabelling
nodes (node embeddings permute, agent and graph embeddings stay) and agents."""

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from empo.worlds.transport.dynamics import TransportWorld
from empo.worlds.transport.encoder import TransportGraphEncoder
from empo.worlds.transport.env import TransportEnv
from empo.worlds.transport.network import grid_network, network_from_edges


def _world() -> TransportWorld:
    net = grid_network(2, 3)
    walkable = (net.source != 1) | (net.target != 2)
    net = network_from_edges(
        list(zip(net.source.tolist(), net.target.tolist(), [1.0, 2.0] * 7)),
        net.positions.tolist(),
        walkable=walkable.tolist(),
    )
    return TransportWorld(net, [0, 5], [0, 1, 4], capacity=2, horizon=6, walk_speed=0.5)


def _states(world: TransportWorld) -> torch.Tensor:
    env = TransportEnv(world, batch_size=(6,), seed=2)
    torch.manual_seed(0)
    return env.rollout(4)["next", "state"].reshape(-1, world.state_dim)


def test_transport_encoder_shapes_in_tensordict_module() -> None:
    world = _world()
    encoder = TransportGraphEncoder(world, hidden=16, layers=2)
    module = TensorDictModule(
        encoder,
        in_keys=["state"],
        out_keys=["node_embedding", "agent_embedding", "graph_embedding"],
    )
    states = _states(world).reshape(6, 4, -1)
    out = module(TensorDict({"state": states}, batch_size=(6, 4)))
    assert out["node_embedding"].shape == (6, 4, 6, 16)
    assert out["agent_embedding"].shape == (6, 4, 5, 16)
    assert out["graph_embedding"].shape == (6, 4, 16)
    goals = encoder.goal_embedding(out["node_embedding"])
    assert goals.shape == (6, 4, 6, 16)  # one goal per node by default
    assert torch.allclose(goals, out["node_embedding"])
    loss = sum(
        out[k].square().mean()
        for k in ("node_embedding", "agent_embedding", "graph_embedding")
    )
    loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_transport_encoder_node_permutation_equivariance() -> None:
    world = _world()
    net = world.network
    perm = torch.tensor([4, 2, 5, 0, 3, 1])  # old node i -> new node perm[i]
    edge_order = torch.randperm(
        net.num_edges, generator=torch.Generator().manual_seed(1)
    )
    new_positions = torch.empty_like(net.positions)
    new_positions[perm] = net.positions
    permuted_net = network_from_edges(
        [
            (int(perm[net.source[e]]), int(perm[net.target[e]]), float(net.length[e]))
            for e in edge_order
        ],
        new_positions.tolist(),
        walkable=net.walkable[edge_order].tolist(),
    )
    new_edge_id = torch.empty_like(edge_order)
    new_edge_id[edge_order] = torch.arange(net.num_edges)
    permuted = TransportWorld(
        permuted_net,
        [int(perm[0]), int(perm[5])],
        [int(perm[0]), int(perm[1]), int(perm[4])],
        capacity=2,
        horizon=6,
        walk_speed=0.5,
    )

    states = _states(world)
    parts = world.split(states)
    mapped = {k: v.clone() for k, v in parts.items()}
    for kind in ("human", "vehicle"):
        mapped[f"{kind}_node"] = perm[parts[f"{kind}_node"]]
        edge = parts[f"{kind}_edge"]
        mapped[f"{kind}_edge"] = torch.where(
            edge >= 0, new_edge_id[edge.clamp(min=0)], -1
        )
    permuted_states = permuted.join(mapped)

    torch.manual_seed(0)
    encoder = TransportGraphEncoder(world, hidden=8, layers=3)
    other = TransportGraphEncoder(permuted, hidden=8, layers=3)
    other.load_state_dict(encoder.state_dict())
    nodes, agents, graph = encoder(states)
    p_nodes, p_agents, p_graph = other(permuted_states)
    assert torch.allclose(p_nodes[:, perm], nodes, atol=1e-5)
    assert torch.allclose(p_agents, agents, atol=1e-5)
    assert torch.allclose(p_graph, graph, atol=1e-5)
    # the embedding does depend on the state
    assert not torch.allclose(graph[0], graph[-1])


def test_transport_encoder_human_permutation_equivariance() -> None:
    world = _world()
    states = _states(world)
    parts = world.split(states)
    order = torch.tensor([2, 0, 1])
    swapped = {
        k: (v[:, order] if k.startswith("human") else v) for k, v in parts.items()
    }
    torch.manual_seed(0)
    encoder = TransportGraphEncoder(world, hidden=8)
    nodes, agents, graph = encoder(states)
    s_nodes, s_agents, s_graph = encoder(world.join(swapped))
    assert torch.allclose(s_nodes, nodes, atol=1e-5)
    assert torch.allclose(s_agents[:, :3], agents[:, order], atol=1e-5)
    assert torch.allclose(s_graph, graph, atol=1e-5)


def test_transport_encoder_goal_embedding_pools_clusters() -> None:
    world = TransportWorld(
        grid_network(2, 3), [0], [0], goals=[[0, 1], [2, 3, 5], [4]], horizon=3
    )
    encoder = TransportGraphEncoder(world, hidden=4)
    nodes = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)
    goals = encoder.goal_embedding(nodes)
    assert goals.shape == (2, 3, 4)
    assert torch.allclose(goals[:, 0], nodes[:, :2].mean(1))
    assert torch.allclose(goals[:, 1], nodes[:, [2, 3, 5]].mean(1))
    assert torch.allclose(goals[:, 2], nodes[:, 4])
