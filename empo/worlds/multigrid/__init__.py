"""MultiGrid gridworlds: vectorised TorchRL environment with an explicit model.

* :class:`~empo.worlds.multigrid.world.MultiGridWorld`: the world model (explicit
  batched transitions, goals, pictures), built from a map string or a YAML world file
  of the research code's format (:mod:`~empo.worlds.multigrid.maps`);
* :class:`~empo.worlds.multigrid.env.MultiGridEnv`: the batched TorchRL environment;
* :mod:`~empo.worlds.multigrid.builtin`: the registered built-in worlds.
"""

from empo.worlds.multigrid.builtin import from_file
from empo.worlds.multigrid.world import MultiGridWorld

__all__ = ["MultiGridWorld", "from_file"]
