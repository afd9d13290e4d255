"""Road networks for the transport world: nodes, directed edges, generators, files.

A :class:`RoadNetwork` is a directed graph whose edges carry a length and two flags,
``drivable`` (vehicles may use it) and ``walkable`` (humans may walk it). Nodes carry
names and 2-d positions (used for drawing and by the random geometric generator).

Generators: :func:`grid_network`, :func:`ring_network`, :func:`random_geometric_network`.
Files: :func:`load_network` reads a plain-text format, one declaration per line::

    # comment
    node NAME X Y
    edge FROM TO LENGTH [drive|walk|both]   # one directed edge, default both
    road A B LENGTH [drive|walk|both]       # two directed edges, A->B and B->A

Nodes must be declared before edges that use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

_MODES = {"both": (True, True), "drive": (True, False), "walk": (False, True)}


@dataclass(frozen=True)
class RoadNetwork:
    """A directed road network.

    Parameters
    ----------
    node_names
        One name per node.
    positions
        ``[node, 2]`` coordinates (for drawing).
    source, target
        ``[edge]`` endpoint node indices of each directed edge.
    length
        ``[edge]`` positive lengths.
    drivable, walkable
        ``[edge]`` whether vehicles, respectively humans, may use the edge.

    Raises
    ------
    ValueError
        On self-loops, duplicate edges, bad indices, non-positive lengths or edges
        that nobody may use; the message names the edge.
    """

    node_names: tuple[str, ...]
    positions: Float[Tensor, "node 2"]
    source: Int64[Tensor, " edge"]
    target: Int64[Tensor, " edge"]
    length: Float[Tensor, " edge"]
    drivable: Bool[Tensor, " edge"]
    walkable: Bool[Tensor, " edge"]
    out_edges: Int64[Tensor, "node degree"] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.node_names)
        if n == 0:
            raise ValueError("a road network needs at least one node")
        if len(set(self.node_names)) != n:
            raise ValueError(f"duplicate node names in {self.node_names}")
        if tuple(self.positions.shape) != (n, 2):
            raise ValueError(
                f"positions must have shape ({n}, 2), got {tuple(self.positions.shape)}"
            )
        e = self.source.shape[0]
        for name in ("target", "length", "drivable", "walkable"):
            if getattr(self, name).shape != (e,):
                raise ValueError(f"{name} must have shape ({e},) like source")
        seen: set[tuple[int, int]] = set()
        for i, (u, v, length) in enumerate(
            zip(self.source.tolist(), self.target.tolist(), self.length.tolist())
        ):
            label = f"edge {i} ({u} -> {v})"
            if not (0 <= u < n and 0 <= v < n):
                raise ValueError(f"{label}: node index out of range 0..{n - 1}")
            if u == v:
                raise ValueError(f"{label}: self-loops are not allowed")
            if (u, v) in seen:
                raise ValueError(f"{label}: duplicate edge")
            if not (length > 0 and math.isfinite(length)):
                raise ValueError(f"{label}: length {length} must be positive")
            if not (self.drivable[i] or self.walkable[i]):
                raise ValueError(f"{label}: neither drivable nor walkable")
            seen.add((u, v))
        object.__setattr__(self, "out_edges", self._out_edge_table())

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_names)

    @property
    def num_edges(self) -> int:
        """Number of directed edges."""
        return int(self.source.shape[0])

    @property
    def max_out_degree(self) -> int:
        """Largest number of out-edges of a node."""
        return int(self.out_edges.shape[1])

    def _out_edge_table(self) -> Int64[Tensor, "node degree"]:
        """``[node, max_out_degree]`` out-edge ids, sorted by target, padded -1."""
        degree = torch.bincount(self.source, minlength=self.num_nodes)
        width = max(int(degree.max()) if self.num_edges else 0, 1)
        table = torch.full((self.num_nodes, width), -1, dtype=torch.int64)
        order = torch.argsort(self.source * self.num_nodes + self.target)
        sorted_source = self.source[order]
        start = torch.cumsum(degree, 0) - degree
        slot = torch.arange(self.num_edges) - start[sorted_source]
        table[sorted_source, slot] = order
        return table

    def edge_label(self, edge: int) -> str:
        """Human-readable ``"A->B"`` label of an edge."""
        u, v = int(self.source[edge]), int(self.target[edge])
        return f"{self.node_names[u]}->{self.node_names[v]}"


def network_from_edges(
    edges: Sequence[tuple[int, int, float]],
    positions: Sequence[tuple[float, float]],
    *,
    node_names: Sequence[str] | None = None,
    drivable: Sequence[bool] | None = None,
    walkable: Sequence[bool] | None = None,
) -> RoadNetwork:
    """Build a :class:`RoadNetwork` from ``(source, target, length)`` triples.

    Parameters
    ----------
    edges
        Directed edges as ``(source, target, length)``.
    positions
        One ``(x, y)`` per node.
    node_names
        Node names (default ``"0"``, ``"1"``, ...).
    drivable, walkable
        Per-edge flags (default all True).
    """
    n_edges = len(edges)
    names = tuple(node_names) if node_names else tuple(map(str, range(len(positions))))
    source = torch.tensor([int(u) for u, _, _ in edges], dtype=torch.int64)
    target = torch.tensor([int(v) for _, v, _ in edges], dtype=torch.int64)
    return RoadNetwork(
        node_names=names,
        positions=torch.tensor(positions, dtype=torch.float64).reshape(-1, 2),
        source=source.reshape(n_edges),
        target=target.reshape(n_edges),
        length=torch.tensor([float(w) for _, _, w in edges], dtype=torch.float64),
        drivable=torch.tensor(
            [True] * n_edges if drivable is None else list(drivable), dtype=torch.bool
        ),
        walkable=torch.tensor(
            [True] * n_edges if walkable is None else list(walkable), dtype=torch.bool
        ),
    )


def _both_ways(pairs: Sequence[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Each undirected ``(a, b, length)`` as the two directed edges."""
    return [e for a, b, w in pairs for e in ((a, b, w), (b, a, w))]


def grid_network(rows: int, cols: int, length: float = 1.0) -> RoadNetwork:
    """A ``rows x cols`` grid of two-way roads, node ``r * cols + c`` at ``(c, -r)``.

    Parameters
    ----------
    rows, cols
        Grid size, each at least 1 (and at least 2 nodes in all).
    length
        Length of every road.
    """
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ValueError(f"grid_network needs at least 2 nodes, got {rows}x{cols}")
    pairs = [
        (r * cols + c, r * cols + c + 1, length)
        for r in range(rows)
        for c in range(cols - 1)
    ] + [
        ((r * cols + c), (r + 1) * cols + c, length)
        for r in range(rows - 1)
        for c in range(cols)
    ]
    positions = [(float(c), float(-r)) for r in range(rows) for c in range(cols)]
    return network_from_edges(_both_ways(pairs), positions)


def ring_network(n: int, length: float = 1.0, two_way: bool = True) -> RoadNetwork:
    """``n`` nodes on a circle, road ``i -> i+1 (mod n)`` (and back if ``two_way``).

    Parameters
    ----------
    n
        Number of nodes, at least 3 (at least 2 for a one-way ring).
    length
        Length of every road.
    two_way
        Whether every road is two-way.
    """
    if n < (3 if two_way else 2):
        raise ValueError(f"ring_network needs n >= 3 (two-way) or 2, got n={n}")
    pairs = [(i, (i + 1) % n, length) for i in range(n)]
    angles = [2 * math.pi * i / n for i in range(n)]
    positions = [(math.cos(a), math.sin(a)) for a in angles]
    return network_from_edges(_both_ways(pairs) if two_way else pairs, positions)


def random_geometric_network(
    n: int, radius: float, seed: int, max_tries: int = 100
) -> RoadNetwork:
    """Random geometric graph: ``n`` uniform points in the unit square, two-way roads
    between points closer than ``radius``, lengths the Euclidean distances.

    Samples are redrawn (deterministically from ``seed``) until the graph is
    connected.

    Parameters
    ----------
    n
        Number of nodes, at least 2.
    radius
        Connection radius.
    seed
        Seed of the point positions.
    max_tries
        How many samples to try before giving up.

    Raises
    ------
    ValueError
        If no connected sample is found in ``max_tries`` draws.
    """
    if n < 2 or radius <= 0:
        raise ValueError(f"need n >= 2 and radius > 0, got n={n}, radius={radius}")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        points = rng.random((n, 2))
        dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
        adjacent = (dist < radius) & ~np.eye(n, dtype=bool)
        if _connected(adjacent):
            a, b = np.nonzero(np.triu(adjacent))
            pairs = [(int(i), int(j), float(dist[i, j])) for i, j in zip(a, b)]
            return network_from_edges(_both_ways(pairs), points.tolist())
    raise ValueError(
        f"no connected random geometric graph with n={n}, radius={radius} "
        f"in {max_tries} draws (seed {seed}); increase radius"
    )


def _connected(adjacent: np.ndarray) -> bool:
    """Whether an undirected adjacency matrix is connected."""
    reached = np.zeros(adjacent.shape[0], dtype=bool)
    reached[0] = True
    for _ in range(adjacent.shape[0]):
        grown = reached | adjacent[reached].any(axis=0)
        if (grown == reached).all():
            break
        reached = grown
    return bool(reached.all())


def load_network(path: str | Path) -> RoadNetwork:
    """Read a network from the plain-text format of the module docstring.

    Parameters
    ----------
    path
        The file to read.

    Raises
    ------
    ValueError
        On any malformed line; the message names the file and line number.
    """
    path = Path(path)
    names: list[str] = []
    positions: list[tuple[float, float]] = []
    edges: list[tuple[int, int, float]] = []
    flags: list[tuple[bool, bool]] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{path}:{number}"
        try:
            if words[0] == "node" and len(words) == 4:
                if words[1] in names:
                    raise ValueError(f"node {words[1]!r} declared twice")
                names.append(words[1])
                positions.append((float(words[2]), float(words[3])))
            elif words[0] in ("edge", "road") and len(words) in (4, 5):
                mode = words[4] if len(words) == 5 else "both"
                if mode not in _MODES:
                    raise ValueError(f"mode {mode!r} is not one of {sorted(_MODES)}")
                for endpoint in words[1:3]:
                    if endpoint not in names:
                        raise ValueError(f"unknown node {endpoint!r}")
                u, v = names.index(words[1]), names.index(words[2])
                new = [(u, v, float(words[3]))]
                if words[0] == "road":
                    new.append((v, u, float(words[3])))
                edges += new
                flags += [_MODES[mode]] * len(new)
            else:
                raise ValueError(
                    "expected 'node NAME X Y', 'edge A B LENGTH [mode]' or "
                    "'road A B LENGTH [mode]'"
                )
        except ValueError as error:
            raise ValueError(f"{where}: {error} (line: {raw.strip()!r})") from None
    try:
        return network_from_edges(
            edges,
            positions,
            node_names=names,
            drivable=[d for d, _ in flags],
            walkable=[w for _, w in flags],
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
