"""One MultiGrid step on plain Python integers (the fast path for a batch of one row).

Tensor code pays a fixed cost per operation, which dominates when a single state is
stepped (interactive use, one environment). :func:`sample_one` applies exactly the
rules of :mod:`empo.worlds.multigrid.dynamics` (``plan`` and ``execute``) to one
state row held as a list, given the uniform numbers that
:func:`~empo.worlds.multigrid.dynamics.sample_successors` draws for it, so both paths
return the same successor for the same generator state (tested row by row).
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
    key_color: list[int]
    can_push_rocks: list[bool]
    action_kinds: list[int]


def tables(lay: Layout) -> Tables:
    """Python-list copies of ``lay``'s tables (cached on the layout)."""
    if lay.python_tables is None:
        lay.python_tables = Tables(
            terrain=lay.terrain.tolist(),
            neighbors=lay.neighbors.tolist(),
            door_of_cell=lay.door_of_cell.tolist(),
            door_color=lay.door_color.tolist(),
            key_color=lay.key_color.tolist(),
            can_push_rocks=lay.can_push_rocks.tolist(),
            action_kinds=lay.action_kinds.tolist(),
        )
    return lay.python_tables


class _Step:
    """One row's step: the state list, its occupancy and the start-of-step agents."""

    def __init__(self, lay: Layout, tab: Tables, state: list[int]) -> None:
        self.lay, self.tab, self.s = lay, tab, state
        n = lay.n_agents
        self.start = {state[1 + 4 * i] for i in range(n) if state[3 + 4 * i] == 0}
        self.refresh()

    def refresh(self) -> None:
        """Recompute the cell -> lowest object id map (agents, keys, pushables)."""
        lay, s = self.lay, self.s
        cells = [s[1 + 4 * i] for i in range(lay.n_agents)] + s[lay.key_col :]
        occ: dict[int, int] = {}
        for obj in range(len(cells) - 1, -1, -1):
            occ[cells[obj]] = obj
        self.occ = occ

    def at(self, cell: int) -> int:
        """Lowest object id at ``cell``, -1 if none."""
        return self.occ.get(cell, -1)

    def enterable(self, cell: int) -> bool:
        """Whether the terrain of ``cell`` can be entered (open doors included)."""
        terrain = self.tab.terrain[cell]
        if terrain != Terrain.WALL and terrain != Terrain.DOOR:
            return True
        door = self.tab.door_of_cell[cell]
        return door >= 0 and self.s[self.lay.door_col + door] == DoorState.OPEN

    def push_line(
        self, agent: int, start: int, direction: int
    ) -> tuple[bool, list[int]]:
        """Whether ``agent`` can push the line at ``start``; the line's cells, end
        cell last."""
        lay, nb = self.lay, self.tab.neighbors
        first_push = lay.n_agents + lay.n_keys
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
            and self.enterable(cell)
            and cell not in self.start
        )
        return ok, line + [cell]

    def act(self, agent: int, kind: int) -> None:
        """Execute one action in place (``_act`` of the tensor code)."""
        lay, tab, s = self.lay, self.tab, self.s
        n, p = lay.n_agents, lay.n_keys
        base = 1 + 4 * agent
        pos, d, _, carry = s[base : base + 4]
        fwd = tab.neighbors[pos][d]
        front = self.at(fwd)
        if kind == ActionKind.LEFT or kind == ActionKind.RIGHT:
            s[base + 1] = (d + (3 if kind == ActionKind.LEFT else 1)) & 3
            return
        if kind == ActionKind.FORWARD:
            if fwd in self.start:
                return
            moved = front == -1 and self.enterable(fwd)
            if not moved and lay.n_push and front >= n + p:
                ok, line = self.push_line(agent, fwd, d)
                if ok:
                    moved = True
                    pushed = set(line[:-1])
                    for col in range(lay.push_col, lay.state_dim):
                        if s[col] in pushed:
                            s[col] = tab.neighbors[s[col]][d]
            if not moved:
                return
            s[base] = fwd
            if tab.terrain[fwd] == Terrain.LAVA:
                s[base + 2] = 1
        elif kind == ActionKind.PICKUP:
            if p and n <= front < n + p and carry < 0:
                s[lay.key_col + front - n] = -1
                s[base + 3] = front - n
        elif kind == ActionKind.DROP:
            if p and carry >= 0 and front == -1 and self.enterable(fwd):
                s[lay.key_col + carry] = fwd
                s[base + 3] = -1
        elif kind == ActionKind.TOGGLE:
            door = tab.door_of_cell[fwd] if lay.n_doors else -1
            if door >= 0 and front == -1:
                col = lay.door_col + door
                if s[col] == DoorState.LOCKED:
                    if carry >= 0 and tab.key_color[carry] == tab.door_color[door]:
                        s[col] = DoorState.OPEN
                elif s[col] == DoorState.CLOSED:
                    s[col] = DoorState.OPEN
                else:
                    s[col] = DoorState.CLOSED
        self.refresh()


def _digit(u: float, probs: list[float]) -> int:
    """Inverse CDF as in ``sample_successors`` (cumulative sums in order)."""
    total, digit = 0.0, 0
    for prob in probs:
        total += prob
        if u >= total:
            digit += 1
    return min(digit, len(probs) - 1)


def sample_one(
    lay: Layout, state: list[int], actions: list[int], uniforms: list[float] | None
) -> list[int]:
    """The successor of one state under one joint action (rules 1-4 of
    :mod:`~empo.worlds.multigrid.dynamics`), the outcome drawn from ``uniforms`` (one
    per agent, ``None`` when the world has a single outcome per step)."""
    if state[0] >= lay.max_steps:
        return list(state)
    tab = tables(lay)
    n = lay.n_agents
    step = _Step(lay, tab, list(state))
    s = step.s
    kinds = [tab.action_kinds[a] for a in actions]
    span = lay.cells + 2
    first_push = n + lay.n_keys
    normal, unsteady, resource = [False] * n, [False] * n, [0] * n
    for i in range(n):
        pos, d, dead = s[1 + 4 * i], s[2 + 4 * i], s[3 + 4 * i]
        if dead or kinds[i] == ActionKind.STILL:
            continue
        if kinds[i] == ActionKind.FORWARD and tab.terrain[pos] == Terrain.UNSTEADY:
            unsteady[i] = True
            continue
        normal[i] = True
        fwd = tab.neighbors[pos][d]
        front = step.at(fwd)
        res = 3 * span + i
        if kinds[i] == ActionKind.FORWARD:
            if lay.n_push and front >= first_push:
                ok, line = step.push_line(i, fwd, d)
                res = line[-1] if ok else res
            else:
                res = fwd
        elif kinds[i] == ActionKind.PICKUP and n <= front < first_push:
            res = span + fwd
        elif kinds[i] == ActionKind.DROP and 0 <= front < n:
            res = 2 * span + fwd
        resource[i] = res
    order_key = [2 * n + i for i in range(n)]
    stumble = lay.stumble_probability
    turns = [0] * n
    for i in range(n):
        if unsteady[i]:
            probs = [1.0 - stumble, stumble / 2, stumble / 2]
            turns[i] = (0, 3, 1)[_digit(uniforms[i], probs)] if uniforms else 0
        if not normal[i]:
            continue
        block = [j for j in range(n) if normal[j] and resource[j] == resource[i]]
        if block[0] != i:
            continue
        winner = block[0]
        if len(block) > 1:
            size = len(block)
            winner = block[_digit(uniforms[i], [1.0 / size] * size)]
        for j in block:
            order_key[j] = i if j == winner else n + j
    for agent in sorted(range(n), key=order_key.__getitem__):
        if not normal[agent]:
            break
        step.act(agent, kinds[agent])
    if any(unsteady):
        _unsteady_moves(step, unsteady, turns)
    s[0] += 1
    lo, mid = lay.push_col, lay.push_col + lay.n_blocks
    s[lo:mid] = sorted(s[lo:mid])
    s[mid:] = sorted(s[mid:])
    return s


def _unsteady_moves(step: _Step, unsteady: list[bool], turns: list[int]) -> None:
    """Rule 4: turn, then move the unsteady agents whose target is uncontested."""
    lay, tab, s = step.lay, step.tab, step.s
    n = lay.n_agents
    contested: dict[int, int] = {}
    for i in range(n):
        if not unsteady[i]:
            continue
        s[2 + 4 * i] = (s[2 + 4 * i] + turns[i]) & 3
        fwd = tab.neighbors[s[1 + 4 * i]][s[2 + 4 * i]]
        target = fwd
        if lay.n_push and step.at(fwd) >= n + lay.n_keys:
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
