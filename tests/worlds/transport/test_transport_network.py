"""Road networks: generators, out-edge tables, file loading and its errors."""

from pathlib import Path

import pytest
import torch

from empo.worlds.transport.network import (
    grid_network,
    load_network,
    network_from_edges,
    random_geometric_network,
    ring_network,
)


def test_transport_grid_counts_and_out_edges() -> None:
    net = grid_network(2, 3, length=2.0)
    assert net.num_nodes == 6
    assert net.num_edges == 2 * (2 * 2 + 3)
    assert net.max_out_degree == 3
    # node 1 (top middle) has out-edges to 0, 2 and 4, sorted by target
    targets = net.target[net.out_edges[1]].tolist()
    assert targets == [0, 2, 4]
    # node 0 has two out-edges; the third slot is padding
    assert (net.out_edges[0] >= 0).sum() == 2 and int(net.out_edges[0, 2]) == -1
    assert torch.all(net.length == 2.0)


def test_transport_ring_one_way_and_two_way() -> None:
    assert ring_network(5).num_edges == 10
    one_way = ring_network(4, two_way=False)
    assert one_way.num_edges == 4 and one_way.max_out_degree == 1
    assert one_way.target[one_way.out_edges[3, 0]].item() == 0
    with pytest.raises(ValueError, match="n >= 3"):
        ring_network(2)


def test_transport_random_geometric_is_connected_and_seeded() -> None:
    a = random_geometric_network(12, 0.45, seed=3)
    b = random_geometric_network(12, 0.45, seed=3)
    assert torch.equal(a.source, b.source) and torch.equal(a.length, b.length)
    distance = (a.positions[a.source] - a.positions[a.target]).norm(dim=1)
    assert torch.allclose(distance, a.length)
    assert torch.all(a.length < 0.45)
    with pytest.raises(ValueError, match="increase radius"):
        random_geometric_network(20, 0.01, seed=0, max_tries=3)


def test_transport_load_network(tmp_path: Path) -> None:
    path = tmp_path / "city.net"
    path.write_text(
        "# a small city\n"
        "node A 0 0\nnode B 1 0\nnode C 1 1\n"
        "road A B 1.5\n"
        "edge B C 2 drive  # one-way highway\n"
        "road A C 3 walk\n"
    )
    net = load_network(path)
    assert net.node_names == ("A", "B", "C")
    assert net.num_edges == 5
    assert net.length.tolist() == [1.5, 1.5, 2.0, 3.0, 3.0]
    assert net.drivable.tolist() == [True, True, True, False, False]
    assert net.walkable.tolist() == [True, True, False, True, True]
    assert net.edge_label(2) == "B->C"


@pytest.mark.parametrize(
    "text, message",
    [
        ("node A 0 0\nedge A B 1\n", r"city.net:2: unknown node 'B'"),
        ("node A 0 0\nnode A 1 1\n", r"city.net:2: node 'A' declared twice"),
        ("node A 0 0\nnode B 0 1\nroad A B 1 fly\n", r"city.net:3: mode 'fly'"),
        ("node A 0 0\nnode B 0 1\nroad A B -1\n", r"length -1.0 must be positive"),
        ("node A 0 0\nnode B 0 1\nroad A B 1\nedge A B 1\n", r"duplicate edge"),
        ("node A x 0\n", r"city.net:1: could not convert"),
        ("street A B\n", r"city.net:1: expected 'node NAME X Y'"),
    ],
)
def test_transport_load_network_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "city.net"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_network(path)


def test_transport_network_rejects_self_loop() -> None:
    with pytest.raises(ValueError, match=r"edge 0 \(1 -> 1\): self-loops"):
        network_from_edges([(1, 1, 1.0)], [(0, 0), (1, 0)])
