"""Explicit, batched MultiGrid transitions: every successor with its exact probability.

The rules are those of the research code's ``transition_probabilities``
(``docs/MULTIGRID_COMPAT.md``), re-implemented on integer state tensors:

0. An agent with a forced next action (set by a control button at the previous
   step) takes it instead of its own choice; the forced action is then cleared.
1. *Active* agents are the non-terminated, non-paused ones whose action is not
   ``still``. An active agent moving ``forward`` is a *magic* agent when it may enter
   the active magic wall in front from its side, else a *bush* agent when it enters
   the intact bush in front only with a probability below 1, else an *unsteady*
   agent when it stands on unsteady ground; the others are *normal* agents.
2. Each normal agent targets a *resource*: ``forward`` the cell in front (or, when it
   pushes a pushable line of blocks/rocks, the cell where the line ends); ``pickup``
   the pickable object (key, ball, box) in front; ``drop`` an agent in front. Agents
   with the same resource form a *conflict block*. A yellow agent toggling an enabled
   kill button or pause switch joins the blocks of all normal grey agents (the order
   decides whether they act before being terminated or paused). One member of each
   block, chosen uniformly, wins. Everything else is independent.
3. Normal agents act one after another: the winners (and the independent agents), in
   the order of the smallest index of their block, then the losers in index order;
   an agent terminated or paused by an earlier one does nothing. A ``forward`` into
   a cell that held another agent at the start of the step fails, and so does a push
   whose line would end there (no chains of moves within a step). Switches and
   buttons act as in :mod:`empo.worlds.multigrid.fixtures`.
4. Then the unsteady agents (not terminated or paused meanwhile): each stumbles with
   the world's ``stumble_probability`` (turning left or right with equal chance
   before moving) or moves straight on. All turn first; a move fails if its target
   (or push end) holds an agent, held another agent at the start of the step, or is
   targeted by another unsteady agent; the rest move in index order.
5. Then the magic agents, then the bush agents, in index order
   (:func:`~empo.worlds.multigrid.fixtures.magic_moves`, ``bush_moves``).

An outcome is one winner per conflict block and one outcome per random agent (an
unsteady agent's straight/left/right, a magic agent's enter/fail/solidify, a bush
agent's enter/fail); its probability is the product of ``1/|block|`` and those
probabilities. Outcomes are indexed in mixed radix over agents (agent 0 most
significant), so the same code enumerates all outcomes
(:func:`~empo.worlds.multigrid.enumeration.enumerate_successors`) and samples one
(:func:`sample_successors`).

State layout: see :mod:`empo.worlds.multigrid.layout`. Blocks and rocks are
interchangeable, so their cells are kept sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.multigrid import fixtures
from empo.worlds.multigrid.layout import Layout
from empo.worlds.multigrid.layout import get_column as _get
from empo.worlds.multigrid.layout import put_column as _put
from empo.worlds.multigrid.layout import row_product
from empo.worlds.multigrid.objects import ActionKind, DoorState, Terrain
from empo.worlds.multigrid.scalar import sample_one

SCALAR_BATCH = 16


@dataclass
class Plan:
    """Per (state, joint action): which agents act how, and the outcome radices."""

    active: Bool[Tensor, "batch agent"]
    normal: Bool[Tensor, "batch agent"]
    unsteady: Bool[Tensor, "batch agent"]
    magic: Bool[Tensor, "batch agent"]
    bush: Bool[Tensor, "batch agent"]
    leader: Int64[Tensor, "batch agent"]
    rank: Int64[Tensor, "batch agent"]
    radix: Int64[Tensor, "batch agent"]
    digit_probs: Float[Tensor, "batch agent radix"]

    @property
    def total(self) -> Int64[Tensor, " batch"]:
        """Number of outcomes of each row."""
        return row_product(self.radix)


def occupancy(lay: Layout, states: Int64[Tensor, "batch dim"]) -> Tensor:
    """``[batch, objects]`` cell of every object: agents ``0..n-1``, pickables
    ``n..``, pushables after them (negative for a carried or opened one)."""
    return torch.cat(
        [
            states[:, 1 : 1 + 4 * lay.n_agents : 4],
            states[:, lay.key_col : lay.push_end],
        ],
        1,
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


def _open_door(lay: Layout, states: Tensor, cells: Tensor) -> Tensor:
    door = lay.door_of_cell[cells]
    state = _get(states, lay.door_col + door.clamp(min=0))
    return (door >= 0) & (state == DoorState.OPEN)


def _enterable(
    lay: Layout, states: Tensor, cells: Tensor, open_door: Tensor | None = None
) -> Tensor:
    """Whether an agent can walk into ``cells`` (open doors and bushes included;
    occupants aside); ``open_door``: :func:`_open_door` of ``cells`` if known."""
    ok = lay.walk_static[cells]
    if lay.n_doors:
        if open_door is None:
            open_door = _open_door(lay, states, cells)
        ok = ok | open_door
    return ok


def _overlappable(
    lay: Layout, states: Tensor, cells: Tensor, open_door: Tensor | None = None
) -> Tensor:
    """Whether an object can be pushed or dropped into ``cells`` (open doors and
    trampled bushes included; occupants aside); ``open_door``: :func:`_open_door`
    of ``cells`` if known."""
    ok = lay.drop_static[cells]
    if lay.n_doors:
        if open_door is None:
            open_door = _open_door(lay, states, cells)
        ok = ok | open_door
    if lay.n_bushes:
        bush = lay.fixture_of_cell[cells].clamp(min=0, max=lay.n_bushes - 1)
        trampled = _get(states, lay.bush_col + bush) == 1
        ok = ok | ((lay.terrain[cells] == Terrain.BUSH) & trampled)
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
    first_push = lay.n_agents + lay.n_pick
    line = torch.cumprod((objs >= first_push).long(), dim=1).bool()
    count = line.sum(dim=1)
    end = cells_t.gather(1, count.unsqueeze(1)).squeeze(1)
    has_rock = (line & (objs >= first_push + lay.n_blocks)).any(dim=1)
    ok = (
        (count > 0)
        & (~has_rock | lay.can_push_rocks[agent])
        & (_at(occ, end) == -1)
        & _overlappable(lay, states, end)
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
    action: Tensor | None = None,
) -> None:
    """Execute one action per row (agent ``agent[b]`` doing ``kind[b]`` where
    ``acting[b]``) on ``states`` in place, given the current occupancy. With
    ``action`` (the action indices) the action is recorded by control buttons
    awaiting it (normal agents; stumbling agents pass none)."""
    n, p = lay.n_agents, lay.n_pick
    base = 1 + 4 * agent
    pos, dirs = _get(states, base), _get(states, base + 1)
    dead, carry = _get(states, base + 2), _get(states, base + 3)
    acting = acting & (dead == 0)
    if lay.n_pause:
        acting = acting & (_get(states, lay.paused_col + agent) == 0)
    fwd = lay.neighbors[pos, dirs]
    front = _at(occ, fwd)
    open_door = None
    if lay.n_doors:
        # doors change only at the end of this action
        door = lay.door_of_cell[fwd]
        door_c = lay.door_col + door.clamp(min=0)
        state = _get(states, door_c)
        open_door = (door >= 0) & (state == DoorState.OPEN)

    new_dir = (dirs + lay.kind_turn[kind] * acting) & 3

    forward = acting & (kind == ActionKind.FORWARD)
    forward = forward & ~_in(start_agents, fwd)
    moved = forward & (front == -1) & _enterable(lay, states, fwd, open_door)
    if lay.n_push:
        ok, cells, line = _push_line(lay, states, occ, start_agents, agent, fwd, dirs)
        push = forward & (front >= n + p) & ok
        pushed = states[:, lay.push_col : lay.push_end]
        in_line = (pushed.unsqueeze(2) == cells.unsqueeze(1)) & line.unsqueeze(1)
        in_line = in_line.any(dim=2) & push.unsqueeze(1)
        shifted = lay.neighbors[pushed, dirs.unsqueeze(1).expand_as(pushed)]
        states[:, lay.push_col : lay.push_end] = torch.where(in_line, shifted, pushed)
        moved = moved | push
    if lay.n_bushes:
        col = lay.bush_col + lay.fixture_of_cell[fwd].clamp(0, lay.n_bushes - 1)
        trample = moved & (lay.terrain[fwd] == Terrain.BUSH) & lay.can_trample[agent]
        _put(states, col, torch.where(trample, 1, _get(states, col)))
    new_pos = torch.where(moved, fwd, pos)
    new_dead = dead | (moved & (lay.terrain[fwd] == Terrain.LAVA)).long()

    new_carry = carry
    toggle = acting & (kind == ActionKind.TOGGLE)
    if p:
        is_pick = (front >= n) & (front < n + p)
        pick = acting & (kind == ActionKind.PICKUP) & is_pick & (carry < 0)
        drop = acting & (kind == ActionKind.DROP) & (carry >= 0) & (front == -1)
        drop = drop & _overlappable(lay, states, fwd, open_door)
        obj = torch.where(pick, front - n, carry).clamp(min=0)
        obj_cell = _get(states, lay.key_col + obj)
        obj_cell = torch.where(pick, -1, torch.where(drop, fwd, obj_cell))
        _put(states, lay.key_col + obj, obj_cell)
        new_carry = torch.where(pick, front - n, torch.where(drop, -1, carry))
        if lay.n_boxes:
            box = front - n - (lay.box_col - lay.key_col)
            opened = toggle & (box >= 0) & (box < lay.n_boxes)
            col = lay.box_col + box.clamp(0, lay.n_boxes - 1)
            _put(states, col, torch.where(opened, -2, _get(states, col)))
    if lay.n_doors:
        door_toggle = toggle & (door >= 0) & (front == -1)
        match = (carry >= 0) & (carry < lay.n_keys)
        if lay.n_keys:
            match = match & (
                lay.pick_color[carry.clamp(min=0)] == lay.door_color[door.clamp(min=0)]
            )
        opened = torch.where(match, DoorState.OPEN, DoorState.LOCKED)
        flipped = torch.where(
            state == DoorState.CLOSED, DoorState.OPEN, DoorState.CLOSED
        )
        new_state = torch.where(state == DoorState.LOCKED, opened, flipped)
        _put(states, door_c, torch.where(door_toggle, new_state, state))
    _put(states, base, new_pos)
    _put(states, base + 1, new_dir)
    _put(states, base + 2, new_dead)
    _put(states, base + 3, new_carry)
    if lay.has_switches:
        started = fixtures.toggle(lay, states, agent, fwd, toggle & (front == -1))
        if action is not None:
            fixtures.record(lay, states, agent, action, acting, started)


def plan(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    actions: Int64[Tensor, "batch agent"],
) -> Plan:
    """Classify agents, find conflict blocks and the outcome radices (rules 1-2);
    ``actions`` are the effective ones (:func:`fixtures.override` applied)."""
    batch, n = actions.shape
    device = states.device
    kinds = lay.action_kinds[actions]
    occ = occupancy(lay, states)
    start_agents = _start_agents(lay, states, occ)
    pos = states[:, 1 : 1 + 4 * n : 4]
    dirs = states[:, 2 : 2 + 4 * n : 4]
    dead = states[:, 3 : 3 + 4 * n : 4].bool()
    active = ~dead & (kinds != ActionKind.STILL)
    if lay.n_pause:
        active = active & ~fixtures.paused(lay, states)
    fwd = lay.neighbors[pos, dirs]
    front = _at(occ, fwd)
    forward = active & (kinds == ActionKind.FORWARD)
    magic = _magic_attempts(lay, states, forward, dirs, fwd, front)
    bush = torch.zeros_like(magic)
    if lay.has_random_bush:
        col = lay.bush_col + lay.fixture_of_cell[fwd].clamp(0, lay.n_bushes - 1)
        intact = (lay.terrain[fwd] == Terrain.BUSH) & (states.gather(1, col) == 0)
        bush = forward & ~magic & intact & (front == -1) & ~lay.can_trample
    unsteady = forward & ~magic & ~bush & (lay.terrain[pos] == Terrain.UNSTEADY)
    normal = active & ~unsteady & ~magic & ~bush
    span = lay.cells + 2
    first_push = n + lay.n_pick
    target = fwd
    blocked = torch.zeros_like(normal)
    if lay.n_push:
        ends, stuck = [], []
        for i in range(n):
            ok, cells, line = _push_line(
                lay, states, occ, start_agents, i, fwd[:, i], dirs[:, i]
            )
            ends.append(cells.gather(1, line.sum(dim=1, keepdim=True)).squeeze(1))
            stuck.append(~ok)
        pushing = front >= first_push
        target = torch.where(pushing, torch.stack(ends, dim=1), fwd)
        blocked = pushing & torch.stack(stuck, dim=1)
    idx = torch.arange(n, device=device)
    resource = (3 * span + idx).expand(batch, n)
    resource = torch.where((kinds == ActionKind.FORWARD) & ~blocked, target, resource)
    is_pick = (front >= n) & (front < first_push)
    resource = torch.where((kinds == ActionKind.PICKUP) & is_pick, span + fwd, resource)
    is_agent = (front >= 0) & (front < n)
    resource = torch.where(
        (kinds == ActionKind.DROP) & is_agent, 2 * span + fwd, resource
    )
    # the diagonal holds each normal agent (its resource equals itself)
    same = (resource.unsqueeze(2) == resource.unsqueeze(1)) & (
        normal.unsqueeze(2) & normal.unsqueeze(1)
    )
    if lay.n_kill or lay.n_pause:
        same = _join_triggers(lay, states, same, normal, kinds, fwd, front)
    size = same.sum(dim=2)
    rank = (same & lay.earlier).sum(dim=2)
    leader = torch.where(normal, same.to(torch.int8).argmax(dim=2), idx)
    conflict = normal & (rank == 0) & (size > 1)
    radix = torch.where(conflict, size, 1)
    width = lay.max_radix
    digits = torch.arange(width, device=device)
    # 1/|block| for each winner of a conflict block, a single certain digit else
    digit_probs = (digits < radix.unsqueeze(2)).double() / radix.unsqueeze(2)
    stumble, enter = lay.stumble_probability, lay.magic_entry_prob
    fail = 1.0 - enter
    for where, probs in (
        (unsteady, [1.0 - stumble, stumble / 2, stumble / 2]),
        (magic, [enter, fail * (1.0 - lay.solidify_prob), fail * lay.solidify_prob]),
        (bush, [lay.enter_bush_prob, 1.0 - lay.enter_bush_prob]),
    ):
        if not bool(where.any()):
            continue
        table = torch.zeros(width, dtype=digit_probs.dtype, device=device)
        table[: len(probs)] = torch.tensor(probs, dtype=table.dtype, device=device)
        digit_probs = torch.where(where.unsqueeze(2), table, digit_probs)
        radix = torch.where(where, len(probs), radix)
    return Plan(active, normal, unsteady, magic, bush, leader, rank, radix, digit_probs)


def _magic_attempts(
    lay: Layout,
    states: Tensor,
    forward: Tensor,
    dirs: Tensor,
    fwd: Tensor,
    front: Tensor,
) -> Tensor:
    """``[batch, agent]``: forward moves that attempt to enter a magic wall."""
    if not lay.has_magic:
        return torch.zeros_like(forward)
    idx = lay.fixture_of_cell[fwd].clamp(0, lay.n_magic - 1)
    active = states.gather(1, lay.magic_col + idx) == 1
    side = lay.magic_side[idx]
    from_side = (side == 4) | (side == ((dirs + 2) & 3))
    wall = (lay.terrain[fwd] == Terrain.MAGIC_WALL) & (front == -1) & active
    return forward & lay.can_enter_magic & wall & from_side


def _join_triggers(
    lay: Layout,
    states: Tensor,
    same: Tensor,
    normal: Tensor,
    kinds: Tensor,
    fwd: Tensor,
    front: Tensor,
) -> Tensor:
    """Merge the block of a yellow agent toggling an enabled kill button or pause
    switch with the blocks of all normal grey agents (transitive closure)."""
    trigger = normal & (kinds == ActionKind.TOGGLE) & lay.yellow & (front == -1)
    trigger = trigger & fixtures.enabled_trigger(lay, states, fwd)
    if not bool(trigger.any()):
        return same
    edge = trigger.unsqueeze(2) & (normal & lay.grey).unsqueeze(1)
    joined = (same | edge | edge.transpose(1, 2)).double()
    for _ in range(max(1, (lay.n_agents - 1).bit_length())):
        joined = (torch.bmm(joined, joined) > 0).double()
    return joined > 0


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
    """The successor of each row under its outcome ``k`` (rules 3-5); ``actions``
    are the effective ones (:func:`fixtures.override` applied)."""
    batch, n = actions.shape
    device = states.device
    nxt = states.clone()
    if lay.n_control:
        nxt[:, lay.forced_col : lay.forced_col + n] = -1
    kinds = lay.action_kinds[actions]
    digits = _digits(plan_, k)
    idx = torch.arange(n, device=device).expand(batch, n)
    winner = plan_.normal & (plan_.rank == digits.gather(1, plan_.leader))
    key = torch.where(winner, plan_.leader, n + idx)
    # agents that are not normal do not act: their place in the order is free,
    # and their own index keeps more batches in index order
    key = torch.where(plan_.normal, key, idx)
    slot_of = (key.unsqueeze(1) < key.unsqueeze(2)).sum(dim=2)
    order = torch.empty_like(key).scatter_(1, slot_of, idx)
    occ = occupancy(lay, nxt)
    start_agents = _start_agents(lay, nxt, occ)
    in_order = bool((order == idx).all())
    _normal_moves(
        lay,
        nxt,
        occ,
        start_agents,
        plan_.normal,
        kinds,
        actions,
        None if in_order else order,
    )
    occ = occupancy(lay, nxt)
    if lay.has_unsteady and bool(plan_.unsteady.any()):
        _unsteady_moves(lay, nxt, occ, start_agents, plan_, digits)
    if lay.has_magic:
        fixtures.magic_moves(lay, nxt, plan_.magic, digits, partial(_free, lay))
    if lay.has_random_bush:
        fixtures.bush_moves(lay, nxt, plan_.bush, digits, partial(_free, lay))
    nxt[:, 0] += 1
    return canonical(lay, nxt)


def _normal_moves(
    lay: Layout,
    states: Tensor,
    occ: Tensor,
    start_agents: Tensor,
    normal: Tensor,
    kinds: Tensor,
    actions: Tensor,
    order: Tensor | None = None,
) -> None:
    """Rule 3 on ``states`` in place: the normal agents act one after another, in
    index order or, per row, in ``order``."""
    for slot in range(normal.shape[1]):
        if order is None:
            agent: Tensor | int = slot
            acting, kind, action = normal[:, slot], kinds[:, slot], actions[:, slot]
        else:
            agent = order[:, slot]
            acting = normal.gather(1, agent.unsqueeze(1)).squeeze(1)
            kind = kinds.gather(1, agent.unsqueeze(1)).squeeze(1)
            action = actions.gather(1, agent.unsqueeze(1)).squeeze(1)
        if not bool(acting.any()):
            continue
        _act(lay, states, occ, start_agents, agent, kind, acting, action)
        occ = occupancy(lay, states)


def _free(lay: Layout, states: Tensor, cells: Tensor) -> Tensor:
    """Whether no agent or object is in ``cells``."""
    return _at(occupancy(lay, states), cells) == -1


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
    unsteady = plan_.unsteady & (states[:, 3 : 3 + 4 * n : 4] == 0)
    unsteady = unsteady & ~fixtures.paused(lay, states)
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
            pushing = (front[:, i] >= lay.n_agents + lay.n_pick) & ok
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
    lo, mid = lay.push_col, lay.push_col + lay.n_blocks
    if lay.n_blocks > 1:
        states[:, lo:mid] = states[:, lo:mid].sort(dim=1).values
    if lay.n_rocks > 1:
        states[:, mid : lay.push_end] = states[:, mid : lay.push_end].sort(dim=1).values
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
    actions = fixtures.override(lay, states, actions)
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
