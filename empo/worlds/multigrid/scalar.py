"""One MultiGrid step on plain Python integers (the fast path for a batch of one row).

Tensor code pays a fixed cost per operation, which dominates when a single state is
stepped (interactive use, one environment). :func:`sample_one` applies exactly the
rules of :mod:`empo.worlds.multigrid.dynamics` (``plan`` and ``execute``, with the
switches of :mod:`empo.worlds.multigrid.fixtures`) to one state row held as a list,
given the uniform numbers that
:func:`~empo.worlds.multigrid.dynamics.sample_successors` draws for it, so both paths
return the same successor for the same generator state (tested row by row). Being
written step by step, it is also the readable reference of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from empo.worlds.multigrid.layout import Layout
from empo.worlds.multigrid.objects import ActionKind, DoorState, Terrain


@dataclass
class Tables:
    """The static tables of a :class:`Layout` as Python lists."""

    terrain: list[int]
    neighbors: list[list[int]]
    door_of_cell: list[int]
    door_color: list[int]
    pick_color: list[int]
    can_push_rocks: list[bool]
    action_kinds: list[int]
    fixture_of_cell: list[int]
    magic_side: list[int]
    disable_target: list[int]
    yellow: list[bool]
    grey: list[bool]
    can_trample: list[bool]
    can_enter_magic: list[bool]
    walk_static: list[bool]
    drop_static: list[bool]


def tables(lay: Layout) -> Tables:
    """Python-list copies of ``lay``'s tables (cached on the layout)."""
    if lay.python_tables is None:
        names = Tables.__dataclass_fields__
        lay.python_tables = Tables(**{k: getattr(lay, k).tolist() for k in names})
    return lay.python_tables


class _Step:
    """One row's step: the state list, its occupancy and the start-of-step agents."""

    def __init__(self, lay: Layout, tab: Tables, state: list[int]) -> None:
        self.lay, self.tab, self.s = lay, tab, state
        n = lay.n_agents
        self.start = {state[1 + 4 * i] for i in range(n) if state[3 + 4 * i] == 0}
        self.refresh()

    def refresh(self) -> None:
        """Recompute the cell -> lowest object id map (agents, pickables,
        pushables)."""
        lay, s = self.lay, self.s
        cells = [s[1 + 4 * i] for i in range(lay.n_agents)]
        cells += s[lay.key_col : lay.push_end]
        occ: dict[int, int] = {}
        for obj in range(len(cells) - 1, -1, -1):
            occ[cells[obj]] = obj
        self.occ = occ

    def at(self, cell: int) -> int:
        """Lowest object id at ``cell``, -1 if none."""
        return self.occ.get(cell, -1)

    def idle(self, agent: int) -> bool:
        """Whether ``agent`` is terminated or paused."""
        lay, s = self.lay, self.s
        paused = lay.n_pause and s[lay.paused_col + agent]
        return bool(s[3 + 4 * agent] or paused)

    def open_door(self, cell: int) -> bool:
        """Whether ``cell`` holds an open door."""
        door = self.tab.door_of_cell[cell]
        return door >= 0 and self.s[self.lay.door_col + door] == DoorState.OPEN

    def enterable(self, cell: int) -> bool:
        """Whether an agent can walk into ``cell`` (occupants aside)."""
        return self.tab.walk_static[cell] or self.open_door(cell)

    def overlappable(self, cell: int) -> bool:
        """Whether an object can be pushed or dropped into ``cell``."""
        tab = self.tab
        if tab.drop_static[cell] or self.open_door(cell):
            return True
        col = self.lay.bush_col + tab.fixture_of_cell[cell]
        return tab.terrain[cell] == Terrain.BUSH and self.s[col] == 1

    def push_line(
        self, agent: int, start: int, direction: int
    ) -> tuple[bool, list[int]]:
        """Whether ``agent`` can push the line at ``start``; the line's cells, end
        cell last."""
        lay, nb = self.lay, self.tab.neighbors
        first_push = lay.n_agents + lay.n_pick
        line: list[int] = []
        cell, rock = start, False
        for _ in range(lay.n_push):
            obj = self.at(cell)
            if obj < first_push:
                break
            rock = rock or obj >= first_push + lay.n_blocks
            line.append(cell)
            cell = nb[cell][direction]
        ok = (
            bool(line)
            and (not rock or self.tab.can_push_rocks[agent])
            and self.at(cell) == -1
            and self.overlappable(cell)
            and cell not in self.start
        )
        return ok, line + [cell]

    def act(self, agent: int, kind: int, action: int | None = None) -> None:
        """Execute one action in place (``_act`` of the tensor code); with
        ``action``, control buttons awaiting it record it."""
        lay, tab, s = self.lay, self.tab, self.s
        if self.idle(agent):
            return
        n, p = lay.n_agents, lay.n_pick
        base = 1 + 4 * agent
        pos, d, _, carry = s[base : base + 4]
        fwd = tab.neighbors[pos][d]
        front = self.at(fwd)
        started: set[int] = set()
        if kind == ActionKind.LEFT or kind == ActionKind.RIGHT:
            s[base + 1] = (d + (3 if kind == ActionKind.LEFT else 1)) & 3
        elif kind == ActionKind.FORWARD:
            self.forward(agent, fwd, front)
        elif kind == ActionKind.PICKUP:
            if n <= front < n + p and carry < 0:
                s[lay.key_col + front - n] = -1
                s[base + 3] = front - n
        elif kind == ActionKind.DROP:
            if carry >= 0 and front == -1 and self.overlappable(fwd):
                s[lay.key_col + carry] = fwd
                s[base + 3] = -1
        elif kind == ActionKind.TOGGLE:
            box = front - n - (lay.box_col - lay.key_col)
            if 0 <= box < lay.n_boxes:
                s[lay.box_col + box] = -2
            elif front == -1:
                self.toggle_door(fwd, carry)
                started = self.toggle_fixture(agent, fwd)
        if action is not None:
            self.record(agent, action, started)
        self.refresh()

    def forward(self, agent: int, fwd: int, front: int) -> None:
        """Move (pushing, trampling) into ``fwd`` if possible."""
        lay, tab, s = self.lay, self.tab, self.s
        if fwd in self.start:
            return
        moved = front == -1 and self.enterable(fwd)
        if not moved and lay.n_push and front >= lay.n_agents + lay.n_pick:
            d = s[2 + 4 * agent]
            ok, line = self.push_line(agent, fwd, d)
            if ok:
                moved = True
                pushed = set(line[:-1])
                for col in range(lay.push_col, lay.push_end):
                    if s[col] in pushed:
                        s[col] = tab.neighbors[s[col]][d]
        if not moved:
            return
        if tab.terrain[fwd] == Terrain.BUSH and tab.can_trample[agent]:
            s[lay.bush_col + tab.fixture_of_cell[fwd]] = 1
        s[1 + 4 * agent] = fwd
        if tab.terrain[fwd] == Terrain.LAVA:
            s[3 + 4 * agent] = 1

    def toggle_door(self, cell: int, carry: int) -> None:
        """Toggle the door in ``cell`` (a key of its colour unlocks it)."""
        lay, tab, s = self.lay, self.tab, self.s
        door = tab.door_of_cell[cell]
        if door < 0:
            return
        col = lay.door_col + door
        if s[col] == DoorState.LOCKED:
            key = 0 <= carry < lay.n_keys
            if key and tab.pick_color[carry] == tab.door_color[door]:
                s[col] = DoorState.OPEN
        elif s[col] == DoorState.CLOSED:
            s[col] = DoorState.OPEN
        else:
            s[col] = DoorState.CLOSED

    def set_grey(self, first: int, stride: int, value: int) -> None:
        """Set column ``first + stride * i`` of every grey agent ``i``."""
        for i, grey in enumerate(self.tab.grey):
            if grey:
                self.s[first + stride * i] = value

    def toggle_fixture(self, agent: int, cell: int) -> set[int]:
        """Toggle the switch or button in ``cell``; the control buttons this toggle
        started programming."""
        lay, tab, s = self.lay, self.tab, self.s
        kind, j = tab.terrain[cell], tab.fixture_of_cell[cell]
        yellow, grey = tab.yellow[agent], tab.grey[agent]
        if kind == Terrain.KILL_BUTTON and yellow and s[lay.kill_col + j]:
            self.set_grey(3, 4, 1)
        elif kind == Terrain.PAUSE_SWITCH and yellow and s[lay.pause_col + 2 * j + 1]:
            on = 1 - s[lay.pause_col + 2 * j]
            s[lay.pause_col + 2 * j] = on
            self.set_grey(lay.paused_col, 1, on)
        elif kind == Terrain.DISABLING_SWITCH and grey:
            self.disable(tab.disable_target[j])
        elif kind == Terrain.CONTROL_BUTTON and s[lay.control_col + 4 * j]:
            col = lay.control_col + 4 * j
            ctrl, action, awaiting = s[col + 1 : col + 4]
            if grey and not (awaiting and ctrl == agent):
                s[col + 1], s[col + 3] = agent, 1
                return {j}
            if yellow and ctrl >= 0 and action >= 0:
                s[lay.forced_col + ctrl] = action
        return set()

    def disable(self, target: int) -> None:
        """Flip ``enabled`` of every object of kind ``target``."""
        lay, s = self.lay, self.s
        if target == Terrain.KILL_BUTTON:
            for j in range(lay.n_kill):
                s[lay.kill_col + j] = 1 - s[lay.kill_col + j]
        elif target == Terrain.PAUSE_SWITCH:
            for j in range(lay.n_pause):
                col = lay.pause_col + 2 * j
                s[col + 1] = 1 - s[col + 1]
                if s[col] and not s[col + 1]:
                    self.set_grey(lay.paused_col, 1, 0)
        else:
            for j in range(lay.n_control):
                s[lay.control_col + 4 * j] = 1 - s[lay.control_col + 4 * j]

    def record(self, agent: int, action: int, started: set[int]) -> None:
        """Record ``action`` in the control buttons awaiting ``agent``."""
        lay, s = self.lay, self.s
        for j in range(lay.n_control):
            col = lay.control_col + 4 * j
            if s[col + 3] and s[col + 1] == agent and j not in started:
                s[col + 2], s[col + 3] = action, 0


def _digit(u: float, probs: list[float]) -> int:
    """Inverse CDF as in ``sample_successors`` (cumulative sums in order)."""
    total, digit = 0.0, 0
    for prob in probs:
        total += prob
        if u >= total:
            digit += 1
    return min(digit, len(probs) - 1)


def _category(step: _Step, i: int, kind: int) -> str:
    """``"idle"``, ``"magic"``, ``"bush"``, ``"unsteady"`` or ``"normal"`` (rule 1)."""
    lay, tab, s = step.lay, step.tab, step.s
    if step.idle(i) or kind == ActionKind.STILL:
        return "idle"
    if kind != ActionKind.FORWARD:
        return "normal"
    pos = s[1 + 4 * i]
    fwd = tab.neighbors[pos][s[2 + 4 * i]]
    free, terrain, j = step.at(fwd) == -1, tab.terrain[fwd], tab.fixture_of_cell[fwd]
    if lay.has_magic and tab.can_enter_magic[i] and free:
        if terrain == Terrain.MAGIC_WALL and s[lay.magic_col + j]:
            side = tab.magic_side[j]
            if side == 4 or side == (s[2 + 4 * i] + 2) & 3:
                return "magic"
    if lay.has_random_bush and free and not tab.can_trample[i]:
        if terrain == Terrain.BUSH and not s[lay.bush_col + j]:
            return "bush"
    return "unsteady" if tab.terrain[pos] == Terrain.UNSTEADY else "normal"


def _resource(step: _Step, i: int, kind: int) -> int:
    """The resource a normal agent targets (rule 2)."""
    lay, tab, s = step.lay, step.tab, step.s
    n, span = lay.n_agents, lay.cells + 2
    first_push = n + lay.n_pick
    fwd = tab.neighbors[s[1 + 4 * i]][s[2 + 4 * i]]
    front = step.at(fwd)
    if kind == ActionKind.FORWARD:
        if lay.n_push and front >= first_push:
            ok, line = step.push_line(i, fwd, s[2 + 4 * i])
            return line[-1] if ok else 3 * span + i
        return fwd
    if kind == ActionKind.PICKUP and n <= front < first_push:
        return span + fwd
    if kind == ActionKind.DROP and 0 <= front < n:
        return 2 * span + fwd
    return 3 * span + i


def _triggers(step: _Step, i: int, kind: int) -> bool:
    """Whether agent ``i`` toggles an enabled kill button or pause switch as a
    yellow agent."""
    lay, tab, s = step.lay, step.tab, step.s
    if kind != ActionKind.TOGGLE or not tab.yellow[i]:
        return False
    fwd = tab.neighbors[s[1 + 4 * i]][s[2 + 4 * i]]
    if step.at(fwd) != -1:
        return False
    terrain, j = tab.terrain[fwd], tab.fixture_of_cell[fwd]
    if terrain == Terrain.KILL_BUTTON:
        return bool(s[lay.kill_col + j])
    return terrain == Terrain.PAUSE_SWITCH and bool(s[lay.pause_col + 2 * j + 1])


def _blocks(step: _Step, normal: list[int], kinds: list[int]) -> list[list[int]]:
    """Conflict blocks of the normal agents, each sorted, in order of their first
    member (rule 2, triggers joined to grey agents)."""
    group = {i: _resource(step, i, kinds[i]) for i in normal}
    grey = [i for i in normal if step.tab.grey[i]]
    for i in normal:
        if grey and _triggers(step, i, kinds[i]):
            joined = {group[i]} | {group[j] for j in grey}
            for j in normal:
                if group[j] in joined:
                    group[j] = group[i]
    blocks: dict[int, list[int]] = {}
    for i in normal:
        blocks.setdefault(group[i], []).append(i)
    return list(blocks.values())


def sample_one(
    lay: Layout, state: list[int], actions: list[int], uniforms: list[float] | None
) -> list[int]:
    """The successor of one state under one joint action (rules 0-5 of
    :mod:`~empo.worlds.multigrid.dynamics`), the outcome drawn from ``uniforms`` (one
    per agent, ``None`` when the world has a single outcome per step)."""
    if state[0] >= lay.max_steps:
        return list(state)
    tab = tables(lay)
    n = lay.n_agents
    step = _Step(lay, tab, list(state))
    s = step.s
    actions = list(actions)
    if lay.n_control:
        for i in range(n):
            if s[lay.forced_col + i] >= 0:
                actions[i] = s[lay.forced_col + i]
            s[lay.forced_col + i] = -1
    kinds = [tab.action_kinds[a] for a in actions]
    category = [_category(step, i, kinds[i]) for i in range(n)]
    stumble, enter = lay.stumble_probability, lay.magic_entry_prob
    fail = 1.0 - enter
    table = {
        "unsteady": [1.0 - stumble, stumble / 2, stumble / 2],
        "magic": [enter, fail * (1.0 - lay.solidify_prob), fail * lay.solidify_prob],
        "bush": [lay.enter_bush_prob, 1.0 - lay.enter_bush_prob],
    }
    digit = [0] * n
    for i in range(n):
        if category[i] in table and uniforms:
            digit[i] = _digit(uniforms[i], table[category[i]])
    normal = [i for i in range(n) if category[i] == "normal"]
    winners, losers = [], []
    for block in _blocks(step, normal, kinds):
        size = len(block)
        won = _digit(uniforms[block[0]], [1.0 / size] * size) if size > 1 else 0
        winners.append(block[won])
        losers += block[:won] + block[won + 1 :]
    for agent in winners + sorted(losers):
        step.act(agent, kinds[agent], actions[agent])
    unsteady = [i for i in range(n) if category[i] == "unsteady" and not step.idle(i)]
    if unsteady:
        _unsteady_moves(step, unsteady, [(0, 3, 1)[digit[i]] for i in range(n)])
    for i in range(n):
        if category[i] == "magic":
            _magic_move(step, i, digit[i])
    for i in range(n):
        if category[i] == "bush" and digit[i] == 0:
            fwd = tab.neighbors[s[1 + 4 * i]][s[2 + 4 * i]]
            intact = not s[lay.bush_col + tab.fixture_of_cell[fwd]]
            if step.at(fwd) == -1 and intact:
                s[1 + 4 * i] = fwd
                step.refresh()
    s[0] += 1
    lo, mid = lay.push_col, lay.push_col + lay.n_blocks
    s[lo:mid] = sorted(s[lo:mid])
    s[mid : lay.push_end] = sorted(s[mid : lay.push_end])
    return s


def _magic_move(step: _Step, i: int, digit: int) -> None:
    """Rule 5: enter (digit 0), fail (1) or solidify the wall (2)."""
    lay, tab, s = step.lay, step.tab, step.s
    fwd = tab.neighbors[s[1 + 4 * i]][s[2 + 4 * i]]
    if step.at(fwd) != -1:
        return
    if digit == 0:
        s[1 + 4 * i] = fwd
        step.refresh()
    elif digit == 2:
        s[lay.magic_col + tab.fixture_of_cell[fwd]] = 0


def _unsteady_moves(step: _Step, unsteady: list[int], turns: list[int]) -> None:
    """Rule 4: turn, then move the unsteady agents whose target is uncontested."""
    lay, tab, s = step.lay, step.tab, step.s
    n = lay.n_agents
    contested: dict[int, int] = {}
    for i in unsteady:
        s[2 + 4 * i] = (s[2 + 4 * i] + turns[i]) & 3
        fwd = tab.neighbors[s[1 + 4 * i]][s[2 + 4 * i]]
        target = fwd
        if lay.n_push and step.at(fwd) >= n + lay.n_pick:
            ok, line = step.push_line(i, fwd, s[2 + 4 * i])
            target = line[-1] if ok else fwd
        contested[i] = target
    cells = list(contested.values())
    blocked = {
        i
        for i, cell in contested.items()
        if cells.count(cell) > 1
        or 0 <= step.at(cell) < n
        or (cell in step.start and cell != s[1 + 4 * i])
    }
    for i in contested:
        if i not in blocked:
            step.act(i, ActionKind.FORWARD)
