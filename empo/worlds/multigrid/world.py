"""The MultiGrid world model: explicit batched transitions over integer states.

:class:`MultiGridWorld` implements the :class:`~empo.worlds.base.WorldModel` protocol
for maps and YAML files of the public research code (mensch72/empo; formats in
:mod:`empo.worlds.multigrid.maps`, rules in :mod:`empo.worlds.multigrid.dynamics`). The
time step is part of the state and a state is terminal when ``t >= max_steps``, so
every world is acyclic and :func:`empo.worlds.compiler.compile_world` enumerates it.

Deliberate deviations from the research code (everything else follows it):

* **Objects on the floor are state.** Keys, balls and boxes lying on the floor are
  part of the state (their cell, -1 while carried, -2 for an opened box), as are
  door states and block and rock cells. The research code's compact state omits
  floor objects, so its enumeration of a world with one depends on the exploration
  order.
* **Terrain is static.** Goal cells, lava, unsteady ground and switch cells (``Sw``)
  stay under blocks, rocks, floor objects and agents; in the research code a block
  pushed (or an object dropped) onto such a cell, or an agent pushing from it, can
  erase it. An agent entering lava by pushing a block is terminated like any other
  agent entering lava.
* **Open doors stay doors.** An object dropped (or a block pushed) into an open door
  lies in the doorway, which cannot be toggled while occupied; the research code
  replaces the door by the object.
* **Roles.** Yellow agents are humans; every other agent is a robot (the research
  code leaves agents of other colours without a role). Switches and buttons go by
  colour, as there: yellow agents use kill buttons, pause switches and programmed
  control buttons, grey agents disabling switches and control buttons, and grey
  agents are the ones terminated, paused and controlled.
* **Kill and pause toggles race every grey agent.** A yellow agent toggling an
  enabled kill button or pause switch is ordered uniformly at random with every
  normal grey agent acting in the same step (the research code's rule), also when
  those agents only turn (the research code's shortcut then uses index order).
* **Paused at the start of a step, paused for the step.** An agent unpaused during a
  step does not act in it (the research code lets it act when the step has no
  conflict and no random move and it comes after the unpausing agent in index
  order).
* **Magic walls.** Who may enter them is the YAML key ``can_enter_magic_walls``
  (colour letters; none by default: the research code's agents read from maps never
  can). An all-sides wall (``Ma``) can be entered from every side in every step (the
  research code's shortcuts ignore a lone attempt on it), and an agent cannot enter
  a wall that another agent entered earlier in the same step (the research code
  moves both into the cell).
* **Boxes are empty** (the research code's map format cannot fill them); toggling a
  box in front opens it, and it disappears.
* **Goal weights** default to 1 (THEORY.md) instead of the research code's ``1/|G|``
  (a common factor multiplies every ``X_h``); give weights in ``possible_goals``
  entries (``{goal: "x,y", weight: w}``) to use others.
* **Terminal states** have no successors (:meth:`transitions` returns padding only).

``scripts/diff_multigrid.py`` compares the explicit model with the research code's
pair by pair and counts the pairs these deviations touch separately.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.multigrid.dynamics import sample_successors
from empo.worlds.multigrid.enumeration import (
    action_effects,
    column_bounds,
    enumerate_successors,
)
from empo.worlds.multigrid.layout import Layout
from empo.worlds.multigrid.goals import check_goals, default_goals, goal_cell_mask
from empo.worlds.multigrid.maps import WorldSpec
from empo.worlds.multigrid.objects import (
    ACTION_KINDS,
    ACTION_SETS,
    COLOR_NAMES,
    DIRECTION_VECTORS,
    FIXTURES,
    MAGIC_ENTRY_PROBABILITY,
    DoorState,
    Terrain,
)


def build_layout(spec: WorldSpec) -> Layout:
    """Static tables of ``spec`` (see :class:`~empo.worlds.multigrid.layout.Layout`)."""
    w, h = spec.width, spec.height
    cells = w * h
    terrain = torch.full((cells + 2,), int(Terrain.WALL), dtype=torch.long)
    terrain[:cells] = torch.tensor([int(t) for row in spec.terrain for t in row])
    neighbors = torch.full((cells + 2, 4), cells, dtype=torch.long)
    for y in range(h):
        for x in range(w):
            for d, (dx, dy) in enumerate(DIRECTION_VECTORS):
                if 0 <= x + dx < w and 0 <= y + dy < h:
                    neighbors[y * w + x, d] = (y + dy) * w + x + dx
    door_of_cell = torch.full((cells + 2,), -1, dtype=torch.long)
    for d, (x, y, _, _) in enumerate(spec.doors):
        door_of_cell[y * w + x] = d
    fixture_of_cell = torch.full((cells + 2,), -1, dtype=torch.long)
    for placed in spec.fixtures.values():
        for j, (x, y) in enumerate(placed):
            fixture_of_cell[y * w + x] = j
    actions = ACTION_SETS[spec.action_set]
    pickables = spec.keys + spec.balls + spec.boxes
    agents = spec.agents

    def flags(values: list[bool]) -> Tensor:
        return torch.tensor(values, dtype=torch.bool).reshape(len(values))

    grey = flags([a.color == "grey" for a in agents])
    pushers = flags([a.can_push_rocks for a in agents])
    enterers = flags([a.can_enter_magic_walls for a in agents])
    count = {kind: len(spec.fixtures.get(kind, [])) for kind in FIXTURES}
    return Layout(
        width=w,
        height=h,
        n_agents=len(agents),
        n_doors=len(spec.doors),
        n_keys=len(spec.keys),
        n_blocks=len(spec.blocks),
        n_rocks=len(spec.rocks),
        max_steps=spec.max_steps,
        stumble_probability=spec.stumble_probability,
        terrain=terrain,
        neighbors=neighbors,
        door_of_cell=door_of_cell,
        door_color=torch.tensor(
            [COLOR_NAMES.index(c) for _, _, c, _ in spec.doors], dtype=torch.long
        ),
        pick_color=torch.tensor(
            [COLOR_NAMES.index(c) for _, _, c in pickables], dtype=torch.long
        ),
        can_push_rocks=pushers,
        action_kinds=torch.tensor(
            [int(ACTION_KINDS[a]) for a in actions], dtype=torch.long
        ),
        has_unsteady=bool((terrain == Terrain.UNSTEADY).any()),
        n_balls=len(spec.balls),
        n_boxes=len(spec.boxes),
        n_bushes=count[Terrain.BUSH],
        n_magic=count[Terrain.MAGIC_WALL],
        n_kill=count[Terrain.KILL_BUTTON],
        n_pause=count[Terrain.PAUSE_SWITCH],
        n_control=count[Terrain.CONTROL_BUTTON],
        enter_bush_prob=spec.enter_bush_success_prob,
        magic_entry_prob=MAGIC_ENTRY_PROBABILITY,
        solidify_prob=spec.solidify_probability,
        fixture_of_cell=fixture_of_cell,
        magic_side=torch.tensor(spec.magic_sides, dtype=torch.long),
        disable_target=torch.tensor(
            [int(t) for t in spec.disabling_targets], dtype=torch.long
        ),
        yellow=flags([a.color == "yellow" for a in agents]),
        grey=grey,
        can_trample=grey | pushers | enterers,
        can_enter_magic=enterers,
    )


def initial_row(spec: WorldSpec) -> list[int]:
    """The map's initial state row (layout in :mod:`empo.worlds.multigrid.layout`)."""
    w = spec.width
    row = [0]
    for a in spec.agents:
        row += [a.y * w + a.x, a.direction, 0, -1]
    row += [int(state) for _, _, _, state in spec.doors]
    row += [y * w + x for x, y, _ in spec.keys + spec.balls + spec.boxes]
    row += sorted(y * w + x for x, y in spec.blocks)
    row += sorted(y * w + x for x, y in spec.rocks)
    fixtures = spec.fixtures
    row += [0] * len(fixtures.get(Terrain.BUSH, []))
    row += [1] * len(fixtures.get(Terrain.MAGIC_WALL, []))
    row += [1] * len(fixtures.get(Terrain.KILL_BUTTON, []))
    row += [0, 1] * len(fixtures.get(Terrain.PAUSE_SWITCH, []))
    row += [1, -1, -1, 0] * len(fixtures.get(Terrain.CONTROL_BUTTON, []))
    if fixtures.get(Terrain.PAUSE_SWITCH):
        row += [0] * len(spec.agents)
    if fixtures.get(Terrain.CONTROL_BUTTON):
        row += [-1] * len(spec.agents)
    return row


class MultiGridWorld:
    """A MultiGrid world: explicit batched model, goals and rendering hooks.

    Parameters
    ----------
    spec
        The parsed map and options (:func:`~empo.worlds.multigrid.maps.parse_config`).
    name
        A name for logs and pictures.
    device
        Where states and tables live.

    Attributes
    ----------
    agents, humans, robots, action_names, rest_action, state_dim, max_outcomes,
    goal_names, goal_weights
        As in :class:`~empo.worlds.base.WorldModel`; agents are named ``human0``,
        ``robot0``, ... in row-major map order.
    layout
        The static tables and state layout.
    """

    def __init__(
        self, spec: WorldSpec, *, name: str = "multigrid", device: str = "cpu"
    ) -> None:
        if not spec.agents:
            raise ValueError(f"{spec.source}: the map has no agent")
        self.spec = spec
        self.name = name
        self.device = torch.device(device)
        self.layout = build_layout(spec).to(self.device)
        roles = ["human" if a.color == "yellow" else "robot" for a in spec.agents]
        counts = {"human": 0, "robot": 0}
        names = []
        for role in roles:
            names.append(f"{role}{counts[role]}")
            counts[role] += 1
        self.agents: tuple[str, ...] = tuple(names)
        self.humans = tuple(i for i, r in enumerate(roles) if r == "human")
        self.robots = tuple(i for i, r in enumerate(roles) if r == "robot")
        actions = ACTION_SETS[spec.action_set]
        self.action_names = tuple(actions for _ in spec.agents)
        still = actions.index("still") if "still" in actions else None
        self.rest_action = tuple(still for _ in spec.agents)
        self.state_dim = self.layout.state_dim
        self.max_outcomes = self.layout.max_outcomes()
        goals = spec.possible_goals
        if goals is None:
            goals = default_goals(spec)
        else:
            check_goals(spec, goals)
        self.goals = goals
        self.goal_names = tuple(tuple(g.name for g in goals) for _ in self.humans)
        self.goal_weights = torch.tensor(
            [[g.weight for g in goals] for _ in self.humans], dtype=torch.float64
        ).reshape(len(self.humans), len(goals))
        self.goal_cells = goal_cell_mask(spec, goals).to(self.device)

    @property
    def max_steps(self) -> int:
        """The horizon: states with ``t >= max_steps`` are terminal."""
        return self.spec.max_steps

    layer_column = 0
    """The time step (column 0) grows by one per step: the states' layers."""

    layer_invariant = True
    """The rules never read the time step except to stop at ``max_steps``: shifting
    a non-terminal state's time step shifts its successors' alike
    (:mod:`empo.worlds.layer_repeats`)."""

    def state_bounds(self) -> Int64[Tensor, "2 dim"]:
        """Inclusive bounds of every state column (exact key packing)."""
        return column_bounds(self.layout)

    def action_effects(
        self, states: Int64[Tensor, "batch dim"]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Canonical actions and column shifts: no-ops act as ``still``, turns as
        ``still`` followed by a new direction (see
        :func:`~empo.worlds.multigrid.enumeration.action_effects`)."""
        return action_effects(self.layout, states)

    def initial_states(self) -> Int64[Tensor, "n dim"]:
        """The map's initial state, ``[1, state_dim]``."""
        row = initial_row(self.spec)
        return torch.tensor([row], dtype=torch.long, device=self.device)

    def is_terminal(self, states: Int64[Tensor, "batch dim"]) -> Bool[Tensor, " batch"]:
        """``t >= max_steps``."""
        return states[:, 0] >= self.spec.max_steps

    def action_mask(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch agent max_action"]:
        """Every action is allowed in every state (as in the research code)."""
        n_actions = len(self.action_names[0])
        return torch.ones(
            states.shape[0],
            len(self.agents),
            n_actions,
            dtype=torch.bool,
            device=states.device,
        )

    def transitions(
        self,
        states: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
    ) -> tuple[Int64[Tensor, "batch k dim"], Float[Tensor, "batch k"]]:
        """All successors and their exact probabilities (padded to ``max_outcomes``)."""
        return enumerate_successors(self.layout, states, actions)

    def sample(
        self,
        states: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
        generator: torch.Generator | None = None,
    ) -> Int64[Tensor, "batch dim"]:
        """One successor per row, drawn with the probabilities of :meth:`transitions`."""
        return sample_successors(self.layout, states, actions, generator)

    def human_cells(self, states: Int64[Tensor, "batch dim"]) -> Tensor:
        """``[batch, human]`` cell of each human."""
        cols = torch.tensor(
            [1 + 4 * h for h in self.humans], dtype=torch.long, device=states.device
        )
        return states[:, cols]

    def goal_membership(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Whether each human stands in each of its goal rectangles."""
        cells = self.human_cells(states)
        return self.goal_cells.to(states.device)[:, cells].permute(1, 2, 0)

    def decode(self, state: Int64[Tensor, " dim"]) -> dict[str, Any]:
        """A readable description of one state (for tests, logs and pictures)."""
        lay, w = self.layout, self.spec.width
        s = [int(v) for v in state.tolist()]

        def xy(cell: int) -> tuple[int, int] | None:
            return None if cell < 0 else (cell % w, cell // w)

        agents = []
        for i, name in enumerate(self.agents):
            pos, d, dead, carry = s[1 + 4 * i : 5 + 4 * i]
            agents.append(
                {
                    "name": name,
                    "pos": xy(pos),
                    "dir": d,
                    "terminated": bool(dead),
                    "carrying": carry,
                    "paused": bool(lay.n_pause and s[lay.paused_col + i]),
                    "forced": s[lay.forced_col + i] if lay.n_control else -1,
                }
            )
        doors = [DoorState(v).name.lower() for v in s[lay.door_col : lay.key_col]]
        balls = lay.key_col + lay.n_keys
        controls = [
            dict(zip(("enabled", "controlled", "action", "awaiting"), s[c : c + 4]))
            for c in range(lay.control_col, lay.paused_col, 4)
        ]
        return {
            "t": s[0],
            "agents": agents,
            "doors": doors,
            "keys": [xy(c) for c in s[lay.key_col : balls]],
            "balls": [xy(c) for c in s[balls : lay.box_col]],
            "boxes": [
                None if c == -2 else xy(c) for c in s[lay.box_col : lay.push_col]
            ],
            "boxes_opened": [c == -2 for c in s[lay.box_col : lay.push_col]],
            "blocks": [xy(c) for c in s[lay.push_col : lay.push_col + lay.n_blocks]],
            "rocks": [xy(c) for c in s[lay.push_col + lay.n_blocks : lay.push_end]],
            "bushes_trampled": [bool(v) for v in s[lay.bush_col : lay.magic_col]],
            "magic_active": [bool(v) for v in s[lay.magic_col : lay.kill_col]],
            "kill_enabled": [bool(v) for v in s[lay.kill_col : lay.pause_col]],
            "pause": [
                {"on": bool(s[c]), "enabled": bool(s[c + 1])}
                for c in range(lay.pause_col, lay.control_col, 2)
            ],
            "control": controls,
        }

    def render_state(self, state: Int64[Tensor, " dim"]) -> np.ndarray:
        """An RGB picture (``uint8``, height × width × 3) of one state."""
        from empo.worlds.multigrid.render import render_state

        return render_state(self, state)

    def draw_text(self, state: Int64[Tensor, " dim"]) -> list[str]:
        """Lines of a small text map of one state
        (:func:`empo.worlds.multigrid.text.draw_text`)."""
        from empo.worlds.multigrid.text import draw_text

        return draw_text(self, state)

    def power_heatmap(
        self,
        compiled: Any,
        w_h: Float[Tensor, "state human"],
        human: int,
        reference_state: int,
    ) -> np.ndarray:
        """``W_h`` of human ``human`` over its cells, all else as in a reference state.

        Parameters
        ----------
        compiled
            The :class:`~empo.worlds.compiled.CompiledWorld` of this world (its
            ``state_table`` is used).
        w_h
            ``[state, human]`` power values (e.g. ``log2 X_h``, eq. 10).
        human
            Index into ``humans``.
        reference_state
            Id of the state whose other components are kept.

        Returns
        -------
        numpy.ndarray
            ``[rows, cols]`` float: for each cell, ``w_h`` at the earliest time step
            (not before the reference's) at which an enumerated state equals the
            reference except for the time step and that human's cell and direction
            (the maximum over its directions there); NaN where no such state exists.
            Keeping only the reference's time step would leave a single cell, since
            at a given step the human can stand only where it can have walked to.
        """
        return power_heatmap(self, compiled.state_table, w_h, human, reference_state)

    def likely_rollout(
        self, compiled: Any, joint_policy: Float[Tensor, "state joint"]
    ) -> list[int]:
        """State ids of the rollout that always takes the most likely joint action
        (e.g. ``Solution.joint_policy()``) and its most likely successor, from the
        initial state to a terminal state."""
        state, path = int(compiled.initial_state), [int(compiled.initial_state)]
        while not bool(compiled.terminal[state]):
            joint = int(joint_policy[state].argmax())
            k = int(compiled.probabilities[state, joint].argmax())
            state = int(compiled.successors[state, joint, k])
            path.append(state)
        return path

    def write_gif(self, states: Any, path: str, fps: float = 2.0) -> None:
        """Write an animated GIF of a sequence of states."""
        from empo.worlds.multigrid.render import write_gif

        write_gif(self, states, path, fps=fps)


def power_heatmap(
    world: MultiGridWorld,
    table: Int64[Tensor, "state dim"],
    w_h: Float[Tensor, "state human"],
    human: int,
    reference_state: int,
) -> np.ndarray:
    """See :meth:`MultiGridWorld.power_heatmap`."""
    agent = world.humans[human]
    pos_col = 1 + 4 * agent
    keep = torch.ones(table.shape[1], dtype=torch.bool, device=table.device)
    keep[0] = False
    keep[pos_col : pos_col + 2] = False
    ref = table[reference_state]
    match = (table[:, keep] == ref[keep]).all(dim=1) & (table[:, 0] >= ref[0])
    cell, step = table[match, pos_col], table[match, 0]
    values = w_h[match, human].to(table.device, torch.float64)
    cells = world.spec.width * world.spec.height
    earliest = torch.full((cells,), torch.iinfo(torch.int64).max, device=table.device)
    earliest = earliest.scatter_reduce(0, cell, step, reduce="amin")
    first = step == earliest[cell]
    out = torch.full((cells,), float("-inf"), dtype=torch.float64, device=table.device)
    out = out.scatter_reduce(0, cell[first], values[first], reduce="amax")
    out = torch.where(torch.isinf(out), float("nan"), out)
    return out.view(world.spec.height, world.spec.width).cpu().numpy()
