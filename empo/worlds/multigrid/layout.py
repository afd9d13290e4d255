"""Static tables of a MultiGrid world and the column layout of its integer states.

A state is one ``int64`` row ``[t, (pos, dir, dead, carry) per agent, state per door,
cell per key (-1 when carried), cell per block, cell per rock]`` with cells numbered
``y * width + x`` (see :mod:`empo.worlds.multigrid.dynamics` for the rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Int64
from torch import Tensor

if TYPE_CHECKING:
    from empo.worlds.multigrid.scalar import Tables


@dataclass
class Layout:
    """Static tables of a MultiGrid world and the column layout of its states.

    ``terrain`` and ``neighbors`` have two cells more than the grid: ``cells`` stands
    for everything outside the grid (a wall) and ``cells + 1`` for "carried" (used
    when scattering positions; it is never entered).
    """

    width: int
    height: int
    n_agents: int
    n_doors: int
    n_keys: int
    n_blocks: int
    n_rocks: int
    max_steps: int
    stumble_probability: float
    terrain: Int64[Tensor, " cell"]
    neighbors: Int64[Tensor, "cell 4"]
    door_of_cell: Int64[Tensor, " cell"]
    door_color: Int64[Tensor, " door"]
    key_color: Int64[Tensor, " key"]
    can_push_rocks: Bool[Tensor, " agent"]
    action_kinds: Int64[Tensor, " action"]
    has_unsteady: bool = False
    python_tables: "Tables | None" = field(default=None, repr=False, compare=False)

    @property
    def cells(self) -> int:
        """Number of grid cells."""
        return self.width * self.height

    @property
    def n_push(self) -> int:
        """Number of pushable objects (blocks, then rocks)."""
        return self.n_blocks + self.n_rocks

    @property
    def door_col(self) -> int:
        """Column of door 0."""
        return 1 + 4 * self.n_agents

    @property
    def key_col(self) -> int:
        """Column of key 0."""
        return self.door_col + self.n_doors

    @property
    def push_col(self) -> int:
        """Column of block 0 (rocks follow the blocks)."""
        return self.key_col + self.n_keys

    @property
    def state_dim(self) -> int:
        """Width of a state row."""
        return self.push_col + self.n_push

    @property
    def max_radix(self) -> int:
        """Largest number of outcomes one agent's digit can take."""
        return max(self.n_agents, 3 if self.has_unsteady else 1)

    def max_outcomes(self) -> int:
        """Upper bound on the number of outcomes of one (state, joint action)."""
        best = 1
        n = self.n_agents
        for unsteady in range(n + 1 if self.has_unsteady else 1):
            best = max(best, _max_partition_product(n - unsteady) * 3**unsteady)
        return best

    def to(self, device: torch.device | str) -> "Layout":
        """The same layout with its tables on ``device``."""
        tables = {
            name: getattr(self, name).to(device)
            for name in (
                "terrain",
                "neighbors",
                "door_of_cell",
                "door_color",
                "key_color",
                "can_push_rocks",
                "action_kinds",
            )
        }
        scalars = {
            name: getattr(self, name)
            for name in (
                "width",
                "height",
                "n_agents",
                "n_doors",
                "n_keys",
                "n_blocks",
                "n_rocks",
                "max_steps",
                "stumble_probability",
                "has_unsteady",
            )
        }
        return Layout(**scalars, **tables)


def row_product(values: Tensor) -> Tensor:
    """Product over the last axis (a loop over the few agents beats ``prod``)."""
    out = values[..., 0]
    for i in range(1, values.shape[-1]):
        out = out * values[..., i]
    return out


def _max_partition_product(n: int) -> int:
    best = [1] * (n + 1)
    for m in range(2, n + 1):
        best[m] = max([m] + [best[m - j] * best[j] for j in range(1, m)])
    return best[n]
