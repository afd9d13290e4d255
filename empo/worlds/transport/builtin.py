"""Registered built-in transport worlds (``Parameters(world="transport_small")``...).

* :func:`small`: four places on a one-way ring road that only the vehicle may
  drive, and a slow footpath between home and market. Alone, the human can reach
  only home and the market; the vehicle (robot) can ferry them round the ring.
  Small enough to solve exactly in well under a second.
* :func:`large`: by default a 4x4 grid of roads with a drive-only ring road around
  the centre (corners reachable only by vehicle), two vehicles and four humans;
  meant for the learned solver (far too many states to enumerate). Its options
  scale it down, e.g. to a size that the tabular learned solver can compile.
"""

from __future__ import annotations

from typing import Sequence

from empo.worlds.transport.dynamics import TransportWorld
from empo.worlds.transport.network import network_from_edges


def small(
    n_humans: int = 1,
    capacity: int = 1,
    horizon: int = 6,
    walk_speed: float = 0.5,
    vehicle_speed: float = 1.0,
    human_starts: Sequence[int] | None = None,
    loaded_vehicles_wait: bool = False,
) -> TransportWorld:
    """The small ferry world, solved exactly.

    A one-way ring road ``home -> market -> station -> beach -> home`` that only the
    vehicle may drive, and a footpath between home and market (both ways) where
    walking one way takes two steps. The vehicle starts at home with the humans.

    Parameters
    ----------
    n_humans
        Number of humans, all starting at home unless ``human_starts``.
    capacity
        Seats of the vehicle; 0 gives the baseline where nobody can be carried.
    horizon
        Number of steps.
    walk_speed, vehicle_speed
        Walking and driving speeds (roads have length 1).
    human_starts
        Start node per human (default: home).
    loaded_vehicles_wait
        Whether the vehicle may idle with a passenger aboard (default: no, so a
        passenger is sure to be carried round the ring).
    """
    names = ("home", "market", "station", "beach")
    positions = [(0.0, 0.0), (1.0, 0.0), (1.0, -1.0), (0.0, -1.0)]
    edges = [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0), (3, 0, 1.0), (1, 0, 1.0)]
    network = network_from_edges(
        edges,
        positions,
        node_names=names,
        drivable=[True, True, True, True, False],
        walkable=[True, False, False, False, True],
    )
    starts = [0] * n_humans if human_starts is None else list(human_starts)
    return TransportWorld(
        network,
        vehicle_starts=[0],
        human_starts=starts,
        capacity=capacity,
        horizon=horizon,
        walk_speed=walk_speed,
        vehicle_speed=vehicle_speed,
        loaded_vehicles_wait=loaded_vehicles_wait,
    )


def large(
    rows: int = 4,
    cols: int = 4,
    n_vehicles: int = 2,
    n_humans: int = 4,
    capacity: int = 2,
    horizon: int = 24,
    walk_speed: float = 0.5,
) -> TransportWorld:
    """A road grid for the learned solver (by default far too large to enumerate).

    Roads along the border form a drive-only ring road; all other roads are
    walkable, so the corners can be reached only by vehicle. Vehicles start at the
    corners (first, last, then the other two), humans at the inner nodes (in row
    order, cycling). Goals are the nodes.

    Parameters
    ----------
    rows, cols
        Grid size, each at least 3 (so that there are inner nodes).
    n_vehicles
        Number of vehicles, 1 to 4.
    n_humans
        Number of humans.
    capacity
        Seats per vehicle.
    horizon
        Number of steps.
    walk_speed
        Walking speed (driving covers one road per step).
    """
    if rows < 3 or cols < 3:
        raise ValueError(f"large needs rows, cols >= 3, got {rows}x{cols}")
    if not 1 <= n_vehicles <= 4:
        raise ValueError(f"n_vehicles must be 1..4, got {n_vehicles}")
    positions = [(float(c), float(-r)) for r in range(rows) for c in range(cols)]
    pairs = [
        (r * cols + c, r * cols + c + 1) for r in range(rows) for c in range(cols - 1)
    ]
    pairs += [
        (r * cols + c, (r + 1) * cols + c) for r in range(rows - 1) for c in range(cols)
    ]
    edges = [e for a, b in pairs for e in ((a, b, 1.0), (b, a, 1.0))]

    def on_ring(node: int) -> bool:
        r, c = divmod(node, cols)
        return r in (0, rows - 1) or c in (0, cols - 1)

    walkable = [not (on_ring(a) and on_ring(b)) for a, b, _ in edges]
    network = network_from_edges(edges, positions, walkable=walkable)
    corners = [0, rows * cols - 1, cols - 1, (rows - 1) * cols]
    inner = [n for n in range(rows * cols) if not on_ring(n)]
    return TransportWorld(
        network,
        vehicle_starts=corners[:n_vehicles],
        human_starts=[inner[h % len(inner)] for h in range(n_humans)],
        capacity=capacity,
        horizon=horizon,
        walk_speed=walk_speed,
    )
