"""Static tables of a MultiGrid world and the column layout of its integer states.

A state is one ``int64`` row, cells numbered ``y * width + x``::

    [t,
     (pos, dir, dead, carry) per agent,
     state per door (open 0, closed 1, locked 2),
     cell per key, per ball, per box (-1 carried, -2 a box opened and gone),
     cell per block, per rock (each kind sorted),
     trampled per bush, active per magic wall, enabled per kill button,
     (on, enabled) per pause switch,
     (enabled, controlled agent, programmed action, awaiting) per control button,
     paused per agent (only with pause switches),
     forced next action per agent (only with control buttons; -1 none)]

``carry`` is the index of the carried pickable (keys, then balls, then boxes) or -1;
the controlled agent and the programmed action are -1 until set. Sections of objects a
map lacks are empty, so maps without the newer objects keep their state rows. See
:mod:`empo.worlds.multigrid.dynamics` for the rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Int64
from torch import Tensor

from empo.worlds.multigrid.objects import (
    OVERLAPPABLE,
    TOGGLEABLE,
    ActionKind,
    Terrain,
)

if TYPE_CHECKING:
    from empo.worlds.multigrid.scalar import Tables


@dataclass
class Layout:
    """Static tables of a MultiGrid world and the column layout of its states.

    ``terrain``, ``neighbors``, ``door_of_cell`` and ``fixture_of_cell`` have two
    cells more than the grid: ``cells`` stands for everything outside the grid (a
    wall) and ``cells + 1`` for "carried" (used when scattering positions; it is
    never entered). ``fixture_of_cell`` is the index of a bush, magic wall or switch
    among those of its kind (-1 elsewhere).
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
    pick_color: Int64[Tensor, " pickable"]
    can_push_rocks: Bool[Tensor, " agent"]
    action_kinds: Int64[Tensor, " action"]
    has_unsteady: bool = False
    n_balls: int = 0
    n_boxes: int = 0
    n_bushes: int = 0
    n_magic: int = 0
    n_kill: int = 0
    n_pause: int = 0
    n_control: int = 0
    enter_bush_prob: float = 1.0
    magic_entry_prob: float = 0.5
    solidify_prob: float = 0.1
    fixture_of_cell: Int64[Tensor, " cell"] | None = None
    magic_side: Int64[Tensor, " magic"] | None = None
    disable_target: Int64[Tensor, " disabling"] | None = None
    yellow: Bool[Tensor, " agent"] | None = None
    grey: Bool[Tensor, " agent"] | None = None
    can_trample: Bool[Tensor, " agent"] | None = None
    can_enter_magic: Bool[Tensor, " agent"] | None = None
    walk_static: Bool[Tensor, " cell"] | None = None
    drop_static: Bool[Tensor, " cell"] | None = None
    python_tables: "Tables | None" = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n, cells = self.n_agents, self.terrain.shape[0]
        device = self.terrain.device

        def fill(value: Tensor | None, default: Tensor) -> Tensor:
            return default if value is None else value

        none = torch.zeros(n, dtype=torch.bool, device=device)
        self.fixture_of_cell = fill(
            self.fixture_of_cell, torch.full((cells,), -1, device=device)
        )
        self.magic_side = fill(
            self.magic_side, torch.zeros(0, dtype=torch.long, device=device)
        )
        self.disable_target = fill(
            self.disable_target, torch.zeros(0, dtype=torch.long, device=device)
        )
        self.yellow = fill(self.yellow, none)
        self.grey = fill(self.grey, none)
        self.can_trample = fill(self.can_trample, self.grey | self.can_push_rocks)
        self.can_enter_magic = fill(self.can_enter_magic, none)
        drop = torch.tensor([int(t) for t in OVERLAPPABLE], device=device)
        self.drop_static = fill(self.drop_static, torch.isin(self.terrain, drop))
        self.walk_static = fill(
            self.walk_static, self.drop_static | (self.terrain == Terrain.BUSH)
        )
        toggleable = torch.tensor([int(t) for t in TOGGLEABLE], device=device)
        self.toggle_static: Bool[Tensor, " cell"] = torch.isin(self.terrain, toggleable)
        self.wall_static: Bool[Tensor, " cell"] = self.terrain == Terrain.WALL
        self.others: Bool[Tensor, "agent agent"] = ~torch.eye(
            n, dtype=torch.bool, device=device
        )
        turns = [
            {ActionKind.LEFT: 3, ActionKind.RIGHT: 1}.get(k, 0) for k in ActionKind
        ]
        # quarter turns (right) of each action kind
        self.kind_turn: Int64[Tensor, " kind"] = torch.tensor(turns, device=device)
        agents = torch.arange(n, device=device)
        # earlier[i, j]: agent j comes before agent i
        self.earlier: Bool[Tensor, "agent agent"] = agents[None, :] < agents[:, None]

    @property
    def cells(self) -> int:
        """Number of grid cells."""
        return self.width * self.height

    @property
    def n_pick(self) -> int:
        """Number of pickable objects (keys, then balls, then boxes)."""
        return self.n_keys + self.n_balls + self.n_boxes

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
        """Column of pickable 0 (key 0; balls and boxes follow the keys)."""
        return self.door_col + self.n_doors

    @property
    def box_col(self) -> int:
        """Column of box 0."""
        return self.key_col + self.n_keys + self.n_balls

    @property
    def push_col(self) -> int:
        """Column of block 0 (rocks follow the blocks)."""
        return self.key_col + self.n_pick

    @property
    def push_end(self) -> int:
        """Column after the last rock."""
        return self.push_col + self.n_push

    @property
    def bush_col(self) -> int:
        """Column of bush 0 (1 once trampled)."""
        return self.push_end

    @property
    def magic_col(self) -> int:
        """Column of magic wall 0 (1 while it can be entered)."""
        return self.bush_col + self.n_bushes

    @property
    def kill_col(self) -> int:
        """Column of kill button 0 (1 while enabled)."""
        return self.magic_col + self.n_magic

    @property
    def pause_col(self) -> int:
        """Column of pause switch 0's ``on`` (its ``enabled`` follows)."""
        return self.kill_col + self.n_kill

    @property
    def control_col(self) -> int:
        """Column of control button 0's ``enabled`` (then controlled agent,
        programmed action, awaiting)."""
        return self.pause_col + 2 * self.n_pause

    @property
    def paused_col(self) -> int:
        """Column of agent 0's ``paused`` flag (present with pause switches)."""
        return self.control_col + 4 * self.n_control

    @property
    def forced_col(self) -> int:
        """Column of agent 0's forced next action (present with control buttons)."""
        return self.paused_col + (self.n_agents if self.n_pause else 0)

    @property
    def state_dim(self) -> int:
        """Width of a state row."""
        return self.forced_col + (self.n_agents if self.n_control else 0)

    @property
    def has_switches(self) -> bool:
        """Whether the map has kill buttons, pause, disabling or control switches."""
        return bool(
            self.n_kill or self.n_pause or self.n_control or self.disable_target.numel()
        )

    @property
    def has_magic(self) -> bool:
        """Whether some agent may try to enter a magic wall (a random outcome)."""
        return self.n_magic > 0 and bool(self.can_enter_magic.any())

    @property
    def has_random_bush(self) -> bool:
        """Whether some agent enters bushes only with a probability below 1."""
        return (
            self.n_bushes > 0
            and self.enter_bush_prob < 1.0
            and not bool(self.can_trample.all())
        )

    @property
    def stochastic_radix(self) -> int:
        """Most outcomes of one agent's own random move (stumble, magic wall, bush)."""
        if self.has_unsteady or self.has_magic:
            return 3
        return 2 if self.has_random_bush else 1

    @property
    def max_radix(self) -> int:
        """Largest number of outcomes one agent's digit can take."""
        return max(self.n_agents, self.stochastic_radix)

    def max_outcomes(self) -> int:
        """Upper bound on the number of outcomes of one (state, joint action)."""
        best = 1
        n, radix = self.n_agents, self.stochastic_radix
        for random in range(n + 1 if radix > 1 else 1):
            best = max(best, _max_partition_product(n - random) * radix**random)
        return best

    def to(self, device: torch.device | str) -> "Layout":
        """The same layout with its tables on ``device``."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "python_tables"
        }
        return Layout(
            **{
                k: v.to(device) if isinstance(v, Tensor) else v
                for k, v in values.items()
            }
        )


def get_column(states: Tensor, cols: Tensor | int) -> Tensor:
    """``states[b, cols[b]]`` per row (or the column ``cols`` of every row)."""
    if isinstance(cols, int):
        return states[:, cols]
    return states.gather(1, cols.unsqueeze(1)).squeeze(1)


def put_column(states: Tensor, cols: Tensor | int, values: Tensor) -> None:
    """``states[b, cols[b]] = values[b]`` per row, in place."""
    if isinstance(cols, int):
        states[:, cols] = values
    else:
        states.scatter_(1, cols.unsqueeze(1), values.unsqueeze(1))


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
