"""The TorchRL environment of a :class:`MultiGridWorld`: :class:`~empo.envs.world_env.
WorldEnv` plus grid and per-agent observations.

Besides the keys of :class:`~empo.envs.world_env.WorldEnv` (``"state"``, the
``"humans"``/``"robots"`` groups with actions, masks, rewards, done flags and the
humans' ``"goal"``), each step observes:

* ``"grid"`` ``[*B, rows, cols, 3]``: per cell, the terrain code, the occupant (0 none,
  then one code per kind of movable object in state-column order, then ``k + i`` for
  agent ``i``, see :meth:`MultiGridEnv.occupant_codes`) and the state of the door or
  fixture there (a door's open/closed/locked; a bush's trampled, a magic wall's
  enterable, a kill button's enabled, a pause switch's on, a control button's enabled
  flag; 3 where there is none);
* ``"time"`` ``[*B, 1]``;
* in each group, per agent: ``"position"`` ``[.., 2]`` (x, y), ``"direction"``,
  ``"carrying"`` (index of the carried object or -1) and ``"dead"`` (1 once
  terminated, e.g. by lava).

Successors are drawn by :meth:`MultiGridWorld.sample`, exactly the distribution of
:meth:`MultiGridWorld.transitions`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch
from jaxtyping import Int64
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.data import Bounded

from empo.envs import keys
from empo.envs.world_env import WorldEnv
from empo.worlds.multigrid.layout import Layout
from empo.worlds.multigrid.objects import Terrain
from empo.worlds.multigrid.world import MultiGridWorld


class MultiGridEnv(WorldEnv):
    """TorchRL environment: a batch of independent copies of one MultiGrid world.

    Constructed as :class:`~empo.envs.world_env.WorldEnv` (``world``, ``batch_size``,
    ``device``, ``seed``), with a :class:`~empo.worlds.multigrid.world.MultiGridWorld`.
    """

    world: MultiGridWorld

    @cached_property
    def layout(self) -> Layout:
        """The world's state layout on the environment's device."""
        return self.world.layout.to(self.device)

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
        ball, push = lay.key_col + lay.n_keys, lay.push_col
        return [
            ("key", slice(lay.key_col, ball)),
            ("ball", slice(ball, lay.box_col)),
            ("box", slice(lay.box_col, push)),
            ("block", slice(push, push + lay.n_blocks)),
            ("rock", slice(push + lay.n_blocks, lay.push_end)),
        ]

    def _fixture_columns(self) -> list[tuple[Terrain, int, int]]:
        """``(terrain, state column of the first such fixture's state, columns per
        fixture)`` of the fixtures whose state the grid shows."""
        lay = self.layout
        return [
            (Terrain.BUSH, lay.bush_col, 1),
            (Terrain.MAGIC_WALL, lay.magic_col, 1),
            (Terrain.KILL_BUTTON, lay.kill_col, 1),
            (Terrain.PAUSE_SWITCH, lay.pause_col, 2),
            (Terrain.CONTROL_BUTTON, lay.control_col, 4),
        ]

    def _observation_specs(self) -> dict[str, Any]:
        b, lay = self.batch_size, self.layout
        span = max(lay.width, lay.height) - 1
        top = max(self.occupant_codes()["agent"] + lay.n_agents, max(Terrain), 3)
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
        terrain = lay.terrain[:cells].expand(batch, cells)
        door = lay.door_of_cell[:cells].expand(batch, cells)
        fixture_state = torch.full_like(door, 3)
        if lay.n_doors:
            column = lay.door_col + door.clamp(min=0)
            fixture_state = torch.where(door >= 0, states.gather(1, column), 3)
        index = lay.fixture_of_cell[:cells].expand(batch, cells)
        for kind, first, stride in self._fixture_columns():
            here = (terrain == kind) & (index >= 0)
            if bool(here.any()):
                column = (first + stride * index.clamp(min=0)).clamp(
                    max=lay.state_dim - 1
                )
                fixture_state = torch.where(
                    here, states.gather(1, column), fixture_state
                )
        grid = torch.stack([terrain, occupant[:, :cells], fixture_state], dim=-1).view(
            batch, lay.height, w, 3
        )
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
