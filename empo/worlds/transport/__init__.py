"""Transport world: vehicles carrying humans on a road network.

Modules: :mod:`.network` (road networks, generators, file loading), :mod:`.dynamics`
(:class:`TransportWorld`, the explicit batched world model), :mod:`.env`
(``TransportEnv``, the TorchRL sampler), :mod:`.encoder` (graph message-passing
encoder), :mod:`.render` (pictures and GIFs), :mod:`.builtin` (registered worlds).
"""

from empo.worlds.transport.dynamics import TransportWorld
from empo.worlds.transport.network import (
    RoadNetwork,
    grid_network,
    load_network,
    network_from_edges,
    random_geometric_network,
    ring_network,
)

__all__ = [
    "RoadNetwork",
    "TransportWorld",
    "grid_network",
    "load_network",
    "network_from_edges",
    "random_geometric_network",
    "ring_network",
]
