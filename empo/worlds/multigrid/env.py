"""The TorchRL environment of a :class:`MultiGridWorld`: :class:`~empo.envs.world_env.
WorldEnv` plus grid and per-agent observations.

Besides the keys of :class:`~empo.envs.world_env.WorldEnv` (``"state"``, the
``"humans"``/``"robots"`` groups with actions, masks, rewards, done flags and the
humans' ``"goal"``), each step observes:

* ``"grid"`` ``[*B, rows, cols, 3]``: per cell, the terrain code, the occupant (0 none,
  then one code per kind of movable object in state-column order, then ``k + i`` for
  agent ``i``, see :meth:`MultiGridEnv.occupant_codes`) and the door state (3 where
  there is no door);
* ``"time"`` ``[*B, 1]``;
* in each group, per agent: ``"position"`` ``[.., 2]`` (x, y), ``"direction"``,
  ``"carrying"`` (index of the carried object or -1) and ``"dead"`` (1 once
  terminated, e.g. by lava).

Successors are drawn by :meth:`MultiGridWorld.sample`, exactly the distribution of
:meth:`MultiGridWorld.transitions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Int64
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.data import Bounded

from empo.envs import keys
from empo.envs.world_env import WorldEnv
from empo.worlds.multigrid.world import MultiGridWorld


class MultiGridEnv(WorldEnv):
    """TorchRL environment: a batch of independent copies of one MultiGrid world.

    Parameters
    ----------
    world
        The world model.
    batch_size
        Batch shape (an int, a shape, or ``()``).
    device
        Device of states and specs.
    seed
        Optional initial seed of the sampling generator.
    """

    def __init__(
        self,
        world: MultiGridWorld,
        batch_size: int | tuple[int, ...] | torch.Size = (),
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        self.layout = world.layout.to(torch.device(device))
        super().__init__(world, batch_size, device, seed)

    def occupant_codes(self) -> dict[str, int]:
        """Occupant code of each kind of movable object and of agent 0 (``"agent"``;
        agent ``i`` is ``code + i``), derived from the state layout."""
        codes, code = {}, 1
        for kind, _ in self._object_columns():
            codes[kind] = code
            code += 1
        codes["agent"] = code
        return codes

    def _object_columns(self) -> list[tuple[str, slice]]:
        """``(kind, state columns holding the cells of that kind's objects)``."""
        lay = self.layout
        push = lay.push_col
        return [
            ("key", slice(lay.key_col, push)),
            ("block", slice(push, push + lay.n_blocks)),
            ("rock", slice(push + lay.n_blocks, push + lay.n_push)),
        ]

    def _observation_specs(self) -> dict[str, Any]:
        b, lay = self.batch_size, self.layout
        span = max(lay.width, lay.height) - 1
        top = self.occupant_codes()["agent"] + lay.n_agents
        carried = max(lay.push_col - lay.key_col - 1, 0)

        def agent_specs(n: int) -> dict[str, Bounded]:
            return {
                "position": Bounded(0, span, (*b, n, 2), dtype=torch.int64),
                "direction": Bounded(0, 3, (*b, n), dtype=torch.int64),
                "carrying": Bounded(-1, carried, (*b, n), dtype=torch.int64),
                "dead": Bounded(0, 1, (*b, n), dtype=torch.int64),
            }

        return {
            "grid": Bounded(0, top, (*b, lay.height, lay.width, 3), dtype=torch.int64),
            "time": Bounded(0, self.world.max_steps, (*b, 1), dtype=torch.int64),
            **{group: agent_specs(len(index)) for group, index in self.groups.items()},
        }

    def _observations(
        self, states: Int64[Tensor, "n dim"]
    ) -> dict[str, Tensor | dict[str, Tensor]]:
        lay = self.layout
        n_agents, w, cells = lay.n_agents, lay.width, lay.cells
        batch = states.shape[0]
        rows = torch.arange(batch, device=self.device)[:, None]
        occupant = torch.zeros(batch, cells + 2, dtype=torch.long, device=self.device)
        codes = self.occupant_codes()
        for kind, columns in self._object_columns():
            where = states[:, columns]
            occupant[rows, torch.where(where < 0, cells + 1, where)] = codes[kind]
        pos = states[:, 1 : 1 + 4 * n_agents : 4]
        occupant[rows, pos] = codes["agent"] + torch.arange(
            n_agents, device=self.device
        )
        door = lay.door_of_cell[:cells].expand(batch, cells)
        door_state = torch.full_like(door, 3)
        if lay.n_doors:
            door_state = torch.where(
                door >= 0, states.gather(1, lay.door_col + door.clamp(min=0)), 3
            )
        grid = torch.stack(
            [lay.terrain[:cells].expand(batch, cells), occupant[:, :cells], door_state],
            dim=-1,
        ).view(batch, lay.height, w, 3)
        per_agent = {
            "position": torch.stack([pos % w, pos // w], dim=-1),
            "direction": states[:, 2 : 2 + 4 * n_agents : 4],
            "carrying": states[:, 4 : 4 + 4 * n_agents : 4],
            "dead": states[:, 3 : 3 + 4 * n_agents : 4],
        }
        groups = {
            group: {key: value[:, index] for key, value in per_agent.items()}
            for group, index in self.groups.items()
        }
        return {"grid": grid, "time": states[:, :1], **groups}

    def render(self, tensordict: TensorDictBase) -> np.ndarray:
        """RGB frames ``[*B, height, width, 3]`` of the states in ``tensordict``."""
        states = tensordict.get(keys.STATE)
        flat = states.reshape(-1, states.shape[-1]).cpu()
        frames = np.stack([self.world.render_state(s) for s in flat])
        return frames.reshape(*states.shape[:-1], *frames.shape[1:])
