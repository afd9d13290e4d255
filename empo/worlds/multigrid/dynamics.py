"""Explicit, batched MultiGrid transitions: every successor with its exact probability.

The rules are those of the research code's ``transition_probabilities``
(``docs/MULTIGRID_COMPAT.md``), re-implemented on integer state tensors:

1. *Active* agents are the non-terminated ones whose action is not ``still``. An active
   agent moving ``forward`` from unsteady ground is an *unsteady* agent; the others
   are *normal* agents.
2. Each normal agent targets a *resource*: ``forward`` the cell in front (or, when it
   pushes a pushable line of blocks/rocks, the cell where the line ends); ``pickup`` the
   key in front; ``drop`` an agent in front. Agents with the same resource form a
   *conflict block*; one member, chosen uniformly, wins. Everything else is
   independent.
3. Normal agents act one after another: the winners (and the independent agents), in
   the order of the smallest index of their block, then the losers in index order. A
   ``forward`` into a cell that held another agent at the start of the step fails, and
   so does a push whose line would end there (no chains of moves within a step).
4. Then the unsteady agents: each stumbles with the world's ``stumble_probability``
   (turning left or right with equal chance before moving) or moves straight on. All
   turn first; a move fails if its target (or push end) holds an agent, held another
   agent at the start of the step, or is targeted by another unsteady agent; the rest
   move in index order.

An outcome is one winner per conflict block and one of (straight, left, right) per
unsteady agent; its probability is the product of ``1/|block|`` and the stumble
probabilities. Outcomes are indexed in mixed radix over agents (agent 0 most
significant), so the same code enumerates all outcomes
(:func:`~empo.worlds.multigrid.enumeration.enumerate_successors`) and samples one
(:func:`sample_successors`).

State layout (one ``int64`` row, see :class:`Layout`): ``[t, (pos, dir, dead, carry)
per agent, state per door, cell per key (-1 when carried), cell per block, cell per
rock]`` with cells numbered ``y * width + x``. Blocks and rocks are interchangeable, so
their cells are kept sorted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.multigrid.layout import Layout, row_product
from empo.worlds.multigrid.objects import ActionKind, DoorState, Terrain
from empo.worlds.multigrid.scalar import sample_one

SCALAR_BATCH = 16


@dataclass
class Plan:
    """Per (state, joint action): which agents act how, and the outcome radices."""

    active: Bool[Tensor, "batch agent"]
    normal: Bool[Tensor, "batch agent"]
    unsteady: Bool[Tensor, "batch agent"]
    leader: Int64[Tensor, "batch agent"]
    rank: Int64[Tensor, "batch agent"]
    radix: Int64[Tensor, "batch agent"]
    digit_probs: Float[Tensor, "batch agent radix"]

    @property
    def total(self) -> Int64[Tensor, " batch"]:
        """Number of outcomes of each row."""
        return row_product(self.radix)


def occupancy(lay: Layout, states: Int64[Tensor, "batch dim"]) -> Tensor:
    """``[batch, objects]`` cell of every object: agents ``0..n-1``, keys ``n..``,
    pushables after them (-1 for a carried key)."""
    return torch.cat(
        [states[:, 1 : 1 + 4 * lay.n_agents : 4], states[:, lay.key_col :]], 1
    )


def _at(occ: Tensor, cells: Tensor) -> Tensor:
    """Object id in each of ``cells`` (``[batch]`` or ``[batch, m]``), -1 if none."""
    found = torch.full_like(cells, -1)
    shape = (occ.shape[0],) + (1,) * (cells.dim() - 1)
    for o in range(occ.shape[1] - 1, -1, -1):
        found = torch.where(occ[:, o].view(shape) == cells, o, found)
    return found


def _in(start: Tensor, cells: Tensor) -> Tensor:
    """Whether each of ``cells`` held a live agent at the start of the step."""
    shape = (start.shape[0],) + (1,) * (cells.dim() - 1)
    hit = torch.zeros_like(cells, dtype=torch.bool)
    for i in range(start.shape[1]):
        hit = hit | (start[:, i].view(shape) == cells)
    return hit


def _get(states: Tensor, cols: Tensor | int) -> Tensor:
    if isinstance(cols, int):
        return states[:, cols]
    return states.gather(1, cols.unsqueeze(1)).squeeze(1)


def _put(states: Tensor, cols: Tensor | int, values: Tensor) -> None:
    if isinstance(cols, int):
        states[:, cols] = values
    else:
        states.scatter_(1, cols.unsqueeze(1), values.unsqueeze(1))


def _enterable(lay: Layout, states: Tensor, cells: Tensor) -> Tensor:
    """Whether the terrain of ``cells`` can be entered (open doors included)."""
    terrain = lay.terrain[cells]
    ok = (terrain != Terrain.WALL) & (terrain != Terrain.DOOR)
    if lay.n_doors:
        door = lay.door_of_cell[cells]
        state = states.gather(1, (lay.door_col + door.clamp(min=0)).unsqueeze(1))
        ok = ok | ((door >= 0) & (state.squeeze(1) == DoorState.OPEN))
    return ok


def _push_line(
    lay: Layout,
    states: Tensor,
    occ: Tensor,
    start_agents: Tensor,
    agent: Tensor | int,
    start: Tensor,
    direction: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Whether ``agent`` can push the line of pushables starting at ``start``.

    Returns ``(ok, cells, line)``: ``cells[:, k]`` is the ``k``-th cell from ``start``
    and ``line[:, k]`` whether it holds a pushed object.
    """
    cells = [start]
    for _ in range(lay.n_push):
        cells.append(lay.neighbors[cells[-1], direction])
    cells_t = torch.stack(cells, dim=1)
    objs = _at(occ, cells_t)
    first_push = lay.n_agents + lay.n_keys
    line = torch.cumprod((objs >= first_push).long(), dim=1).bool()
    count = line.sum(dim=1)
    end = cells_t.gather(1, count.unsqueeze(1)).squeeze(1)
    has_rock = (line & (objs >= first_push + lay.n_blocks)).any(dim=1)
    ok = (
        (count > 0)
        & (~has_rock | lay.can_push_rocks[agent])
        & (_at(occ, end) == -1)
        & _enterable(lay, states, end)
        & ~_in(start_agents, end)
    )
    return ok, cells_t, line


def _act(
    lay: Layout,
    states: Tensor,
    occ: Tensor,
    start_agents: Tensor,
    agent: Tensor | int,
    kind: Tensor,
    acting: Tensor,
) -> None:
    """Execute one action per row (agent ``agent[b]`` doing ``kind[b]`` where
    ``acting[b]``) on ``states`` in place, given the current occupancy."""
    n, p = lay.n_agents, lay.n_keys
    base = 1 + 4 * agent
    pos, dirs = _get(states, base), _get(states, base + 1)
    dead, carry = _get(states, base + 2), _get(states, base + 3)
    fwd = lay.neighbors[pos, dirs]
    front = _at(occ, fwd)

    new_dir = torch.where(acting & (kind == ActionKind.LEFT), (dirs + 3) & 3, dirs)
    new_dir = torch.where(acting & (kind == ActionKind.RIGHT), (dirs + 1) & 3, new_dir)

    forward = acting & (kind == ActionKind.FORWARD)
    forward = forward & ~_in(start_agents, fwd)
    enterable = _enterable(lay, states, fwd)
    moved = forward & (front == -1) & enterable
    if lay.n_push:
        ok, cells, line = _push_line(lay, states, occ, start_agents, agent, fwd, dirs)
        push = forward & (front >= n + p) & ok
        pushed = states[:, lay.push_col :]
        in_line = (pushed.unsqueeze(2) == cells.unsqueeze(1)) & line.unsqueeze(1)
        in_line = in_line.any(dim=2) & push.unsqueeze(1)
        shifted = lay.neighbors[pushed, dirs.unsqueeze(1).expand_as(pushed)]
        states[:, lay.push_col :] = torch.where(in_line, shifted, pushed)
        moved = moved | push
    new_pos = torch.where(moved, fwd, pos)
    new_dead = dead | (moved & (lay.terrain[fwd] == Terrain.LAVA)).long()

    new_carry = carry
    if p:
        is_key = (front >= n) & (front < n + p)
        pick = acting & (kind == ActionKind.PICKUP) & is_key & (carry < 0)
        drop = acting & (kind == ActionKind.DROP) & (carry >= 0) & (front == -1)
        drop = drop & enterable
        key = torch.where(pick, front - n, carry).clamp(min=0)
        key_cell = _get(states, lay.key_col + key)
        key_cell = torch.where(pick, -1, torch.where(drop, fwd, key_cell))
        _put(states, lay.key_col + key, key_cell)
        new_carry = torch.where(pick, front - n, torch.where(drop, -1, carry))
    if lay.n_doors:
        door = lay.door_of_cell[fwd]
        toggle = acting & (kind == ActionKind.TOGGLE) & (door >= 0) & (front == -1)
        door_c = lay.door_col + door.clamp(min=0)
        state = _get(states, door_c)
        match = carry >= 0
        if p:
            match = match & (
                lay.key_color[carry.clamp(min=0)] == lay.door_color[door.clamp(min=0)]
            )
        opened = torch.where(match, DoorState.OPEN, DoorState.LOCKED)
        flipped = torch.where(
            state == DoorState.CLOSED, DoorState.OPEN, DoorState.CLOSED
        )
        new_state = torch.where(state == DoorState.LOCKED, opened, flipped)
        _put(states, door_c, torch.where(toggle, new_state, state))
    _put(states, base, new_pos)
    _put(states, base + 1, new_dir)
    _put(states, base + 2, new_dead)
    _put(states, base + 3, new_carry)


def plan(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    actions: Int64[Tensor, "batch agent"],
) -> Plan:
    """Classify agents, find conflict blocks and the outcome radices (rules 1-2)."""
    batch, n = actions.shape
    device = states.device
    kinds = lay.action_kinds[actions]
    occ = occupancy(lay, states)
    start_agents = _start_agents(lay, states, occ)
    pos = states[:, 1 : 1 + 4 * n : 4]
    dirs = states[:, 2 : 2 + 4 * n : 4]
    dead = states[:, 3 : 3 + 4 * n : 4].bool()
    active = ~dead & (kinds != ActionKind.STILL)
    unsteady = (
        active & (kinds == ActionKind.FORWARD) & (lay.terrain[pos] == Terrain.UNSTEADY)
    )
    normal = active & ~unsteady
    fwd = lay.neighbors[pos, dirs]
    front = _at(occ, fwd)
    span = lay.cells + 2
    first_push = n + lay.n_keys
    resource = torch.empty_like(actions)
    for i in range(n):
        cell = fwd[:, i]
        target = cell
        if lay.n_push:
            ok, cells, line = _push_line(
                lay, states, occ, start_agents, i, cell, dirs[:, i]
            )
            end = cells.gather(1, line.sum(dim=1, keepdim=True)).squeeze(1)
            target = torch.where(front[:, i] >= first_push, end, cell)
            blocked = (front[:, i] >= first_push) & ~ok
        else:
            blocked = torch.zeros(batch, dtype=torch.bool, device=device)
        independent = 3 * span + i
        res = torch.full((batch,), independent, dtype=torch.long, device=device)
        k = kinds[:, i]
        res = torch.where((k == ActionKind.FORWARD) & ~blocked, target, res)
        is_key = (front[:, i] >= n) & (front[:, i] < first_push)
        res = torch.where((k == ActionKind.PICKUP) & is_key, span + cell, res)
        is_agent = (front[:, i] >= 0) & (front[:, i] < n)
        res = torch.where((k == ActionKind.DROP) & is_agent, 2 * span + cell, res)
        resource[:, i] = res
    same = (resource.unsqueeze(2) == resource.unsqueeze(1)) & (
        normal.unsqueeze(2) & normal.unsqueeze(1)
    )
    idx = torch.arange(n, device=device)
    same = same | (torch.eye(n, dtype=torch.bool, device=device) & normal.unsqueeze(2))
    size = same.sum(dim=2)
    rank = (same & (idx.view(1, 1, n) < idx.view(1, n, 1))).sum(dim=2)
    leader = torch.where(normal, same.long().argmax(dim=2), idx.expand(batch, n))
    conflict = normal & (rank == 0) & (size > 1)
    radix = torch.where(conflict, size, torch.ones_like(size))
    width = lay.max_radix
    digits = torch.arange(width, device=device)
    digit_probs = torch.zeros(batch, n, width, dtype=torch.float64, device=device)
    digit_probs[:, :, 0] = 1.0
    uniform = (digits.view(1, 1, -1) < size.unsqueeze(2)).double() / size.clamp(
        min=1
    ).unsqueeze(2)
    digit_probs = torch.where(conflict.unsqueeze(2), uniform, digit_probs)
    if lay.has_unsteady:
        stumble = lay.stumble_probability
        table = torch.zeros(width, dtype=digit_probs.dtype, device=device)
        table[:3] = torch.tensor(
            [1.0 - stumble, stumble / 2, stumble / 2],
            dtype=digit_probs.dtype,
            device=device,
        )
        digit_probs = torch.where(unsteady.unsqueeze(2), table, digit_probs)
        radix = torch.where(unsteady, 3, radix)
    return Plan(active, normal, unsteady, leader, rank, radix, digit_probs)


def _start_agents(lay: Layout, states: Tensor, occ: Tensor) -> Tensor:
    """``[batch, agent]``: cells held by non-terminated agents at step start (-2 for
    terminated agents)."""
    n = lay.n_agents
    alive = states[:, 3 : 3 + 4 * n : 4] == 0
    return torch.where(alive, occ[:, :n], -2)


def _digits(plan_: Plan, k: Tensor) -> Tensor:
    """Mixed-radix digits (agent 0 most significant) of outcome indices ``k``."""
    radix = plan_.radix
    columns = [torch.ones_like(radix[:, 0])]
    for i in range(radix.shape[1] - 1, 0, -1):
        columns.append(columns[-1] * radix[:, i])
    strides = torch.stack(columns[::-1], dim=1)
    quotient = k.unsqueeze(1) // strides
    return quotient - (quotient // radix) * radix


def outcome_prob(plan_: Plan, k: Int64[Tensor, " batch"]) -> Float[Tensor, " batch"]:
    """Probability of outcome ``k[b]`` of row ``b`` (0 beyond its outcomes)."""
    digits = _digits(plan_, k)
    probs = row_product(plan_.digit_probs.gather(2, digits.unsqueeze(2)).squeeze(2))
    return torch.where(k < plan_.total, probs, 0.0)


def execute(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    actions: Int64[Tensor, "batch agent"],
    plan_: Plan,
    k: Int64[Tensor, " batch"],
) -> Int64[Tensor, "batch dim"]:
    """The successor of each row under its outcome ``k`` (rules 3-4)."""
    batch, n = actions.shape
    device = states.device
    nxt = states.clone()
    kinds = lay.action_kinds[actions]
    digits = _digits(plan_, k)
    idx = torch.arange(n, device=device).expand(batch, n)
    winner = plan_.normal & (plan_.rank == digits.gather(1, plan_.leader))
    key = torch.where(winner, plan_.leader, n + idx)
    key = torch.where(plan_.normal, key, 2 * n + idx)
    slot_of = (key.unsqueeze(1) < key.unsqueeze(2)).sum(dim=2)
    order = torch.empty_like(key).scatter_(1, slot_of, idx)
    occ = occupancy(lay, nxt)
    start_agents = _start_agents(lay, nxt, occ)
    in_order = bool((order == idx).all())
    for slot in range(n):
        if in_order:
            agent: Tensor | int = slot
            acting, kind = plan_.normal[:, slot], kinds[:, slot]
        else:
            agent = order[:, slot]
            acting = plan_.normal.gather(1, agent.unsqueeze(1)).squeeze(1)
            kind = kinds.gather(1, agent.unsqueeze(1)).squeeze(1)
        if not bool(acting.any()):
            break
        _act(lay, nxt, occ, start_agents, agent, kind, acting)
        occ = occupancy(lay, nxt)
    if lay.has_unsteady and bool(plan_.unsteady.any()):
        _unsteady_moves(lay, nxt, occ, start_agents, plan_, digits)
    nxt[:, 0] += 1
    return canonical(lay, nxt)


def _unsteady_moves(
    lay: Layout,
    states: Tensor,
    occ: Tensor,
    start_agents: Tensor,
    plan_: Plan,
    digits: Tensor,
) -> None:
    batch, n = plan_.unsteady.shape
    device = states.device
    unsteady = plan_.unsteady
    dir_cols = 2 + 4 * torch.arange(n, device=device)
    dirs = states[:, dir_cols]
    turn = torch.where(digits == 1, 3, torch.where(digits == 2, 1, 0))
    dirs = torch.where(unsteady, (dirs + turn) & 3, dirs)
    states[:, dir_cols] = dirs
    pos = states[:, 1 : 1 + 4 * n : 4]
    fwd = lay.neighbors[pos, dirs]
    front = _at(occ, fwd)
    contested = fwd.clone()
    for i in range(n):
        if lay.n_push:
            ok, cells, line = _push_line(
                lay, states, occ, start_agents, i, fwd[:, i], dirs[:, i]
            )
            end = cells.gather(1, line.sum(dim=1, keepdim=True)).squeeze(1)
            pushing = (front[:, i] >= lay.n_agents + lay.n_keys) & ok
            contested[:, i] = torch.where(pushing, end, fwd[:, i])
    holder = _at(occ, contested)
    shared = (contested.unsqueeze(2) == contested.unsqueeze(1)) & (
        unsteady.unsqueeze(2) & unsteady.unsqueeze(1)
    )
    blocked = (
        (shared.sum(dim=2) > 1)
        | ((holder >= 0) & (holder < n))
        | (_in(start_agents, contested) & (contested != pos))
    )
    forward = torch.full((batch,), int(ActionKind.FORWARD), device=device)
    for i in range(n):
        acting = unsteady[:, i] & ~blocked[:, i]
        if bool(acting.any()):
            _act(lay, states, occ, start_agents, i, forward, acting)
            occ = occupancy(lay, states)


def canonical(lay: Layout, states: Int64[Tensor, "batch dim"]) -> Tensor:
    """Sort the cells of the (interchangeable) blocks and of the rocks."""
    lo = lay.push_col
    if lay.n_blocks > 1:
        states[:, lo : lo + lay.n_blocks] = (
            states[:, lo : lo + lay.n_blocks].sort(dim=1).values
        )
    if lay.n_rocks > 1:
        mid = lo + lay.n_blocks
        states[:, mid:] = states[:, mid:].sort(dim=1).values
    return states


def sample_successors(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    actions: Int64[Tensor, "batch agent"],
    generator: torch.Generator | None = None,
) -> Int64[Tensor, "batch dim"]:
    """One successor per row, drawn with exactly the probabilities of
    :func:`enumerate_successors` (terminal rows are returned unchanged).

    An outcome's probability is a product over agents of its digits' probabilities,
    so each agent's digit is drawn independently (inverse CDF on one uniform number
    per agent) and the digits are combined into the outcome index. Up to
    :data:`SCALAR_BATCH` rows on the CPU take the equivalent Python path
    :func:`~empo.worlds.multigrid.scalar.sample_one` row by row (same uniform
    numbers, same successors), which avoids the per-operation cost of tensor code.
    """
    batch = states.shape[0]
    if batch <= SCALAR_BATCH and states.device.type == "cpu":
        uniforms: list = [None] * batch
        if lay.max_outcomes() > 1:
            shape = (batch, lay.n_agents)
            draws = torch.rand(shape, generator=generator, dtype=torch.float64)
            uniforms = draws.tolist()
        rows = [
            sample_one(lay, row, joint, u)
            for row, joint, u in zip(states.tolist(), actions.tolist(), uniforms)
        ]
        return torch.tensor(rows, dtype=states.dtype).view(batch, states.shape[1])
    p = plan(lay, states, actions)
    k = torch.zeros(states.shape[0], dtype=torch.long, device=states.device)
    if lay.max_outcomes() > 1:
        u = torch.rand(
            p.radix.shape,
            generator=generator,
            dtype=p.digit_probs.dtype,
            device=states.device,
        )
        cdf = torch.cumsum(p.digit_probs, dim=2)
        digits = (u.unsqueeze(2) >= cdf).sum(dim=2)
        digits = torch.minimum(digits, p.radix - 1)
        for i in range(p.radix.shape[1]):
            k = k * p.radix[:, i] + digits[:, i]
    nxt = execute(lay, states, actions, p, k)
    terminal = states[:, 0] >= lay.max_steps
    return torch.where(terminal.unsqueeze(1), states, nxt)
