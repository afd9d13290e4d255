"""Enumerate every successor of MultiGrid (state, joint action) pairs with its exact
probability, computing each distinct (state, effective joint action) only once.

The rules are those of :mod:`empo.worlds.multigrid.dynamics`; outcome ``k`` of a row
is its mixed-radix outcome index there. The compiler sends all joint actions of each
state in consecutive rows, and most of them are equivalent: actions that provably act
like ``still`` (:func:`_no_op`) and turns (which compete for nothing and are read by
no other action) are factored out, so only a small fraction of the rows is executed.
Forced actions (control buttons) replace the agents' choices first.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.multigrid import fixtures
from empo.worlds.multigrid.dynamics import (
    Plan,
    _at,
    canonical,
    execute,
    occupancy,
    outcome_prob,
    plan,
)
from empo.worlds.multigrid.layout import Layout
from empo.worlds.multigrid.objects import ActionKind, DoorState, Terrain

CHUNK = 1 << 16


def enumerate_successors(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    actions: Int64[Tensor, "batch agent"],
) -> tuple[Int64[Tensor, "batch k dim"], Float[Tensor, "batch k"]]:
    """All successors with probabilities, padded to ``lay.max_outcomes()``.

    Terminal rows (``t >= max_steps``) get only padding: copies with probability 0.
    Padding entries of other rows (probability 0) are valid states (copies of the
    row, possibly with turned directions). Large batches are processed in chunks of :data:`CHUNK` rows (cache-friendly).
    """
    actions = fixtures.override(lay, states, actions)
    parts = [
        _enumerate_unique(lay, states[i : i + CHUNK], actions[i : i + CHUNK])
        for i in range(0, max(states.shape[0], 1), CHUNK)
    ]
    if len(parts) == 1:
        return parts[0]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


_KIND_FEATURE = {
    ActionKind.DONE: 1,
    ActionKind.PICKUP: 2,
    ActionKind.DROP: 3,
    ActionKind.TOGGLE: 4,
    ActionKind.FORWARD: 5,
}
"""Column of :func:`_no_op_features` that makes an action of each kind a no-op
(column 0: only an idle agent's, for the kinds not listed)."""


def _kind_feature(device: torch.device) -> Int64[Tensor, " kind"]:
    """:data:`_KIND_FEATURE` indexed by action kind."""
    table = [_KIND_FEATURE.get(kind, 0) for kind in ActionKind]
    return torch.tensor(table, dtype=torch.int64, device=device)


def _no_op_features(lay: Layout, states: Tensor) -> Bool[Tensor, "batch agent 6"]:
    """``[batch, agent, 6]``: per agent, whether an action of each no-op class acts
    like ``still`` (:func:`_no_op`): 0 none but an idle agent's, 1 every action
    (``done``), 2 ``pickup``, 3 ``drop``, 4 ``toggle``, 5 ``forward``."""
    n, p = lay.n_agents, lay.n_pick
    pos = states[:, 1 : 1 + 4 * n : 4]
    fwd = lay.neighbors[pos, states[:, 2 : 2 + 4 * n : 4]]
    carry = states[:, 4 : 4 + 4 * n : 4]
    front = _at(occupancy(lay, states), fwd)
    no_key = (front < n) | (front >= n + p)
    same = (fwd.unsqueeze(2) == fwd.unsqueeze(1)) & (carry >= 0).unsqueeze(1)
    no_key = no_key & ~(same & lay.others).any(dim=2)
    wall = lay.wall_static[fwd]
    empty_handed = ((carry < 0) & ((front < 0) | (front >= n))) | wall
    into_wall = wall
    if lay.has_unsteady:
        into_wall = into_wall & (lay.terrain[pos] != Terrain.UNSTEADY)
    toggleable = lay.toggle_static[fwd]
    if lay.n_boxes:
        first_box = lay.box_col - lay.key_col
        boxed = (front >= n + first_box) & (front < n + p)
        carried = ((carry >= first_box) & (carry < p)).any(dim=1, keepdim=True)
        toggleable = toggleable | boxed | carried
    idle = (states[:, 3 : 3 + 4 * n : 4] != 0) | fixtures.paused(lay, states)
    features = torch.stack(
        [idle, torch.ones_like(idle), no_key, empty_handed, ~toggleable, into_wall],
        dim=2,
    )
    return features | idle.unsqueeze(2)


def _no_op(lay: Layout, states: Tensor, kind: Tensor) -> Tensor:
    """Actions that change nothing, whatever the other agents do before them in the
    step, and whose conflicts (if any) change no other agent's order, so that the
    successor distribution is that of ``still``: any action of a terminated agent;
    ``done``; ``drop`` without a carried key, not facing an agent, or into a wall;
    ``toggle`` not facing a door; ``pickup`` without a key in front while no other
    agent carrying one faces the same cell (only such an agent's drop can put one
    there first: agents act once per step from their starting cells and
    directions); ``forward`` into a wall from steady ground (walls never change;
    agents competing for the same wall cell all stay put and the other agents keep
    their order, rule 3).

    ``kind`` holds action kinds ``[batch, agent]`` or ``[batch, agent, m]`` (``m``
    candidate actions per agent); the result has its shape.
    """
    features = _no_op_features(lay, states)
    column = _kind_feature(states.device)[kind]
    if kind.dim() == 2:
        return features.gather(2, column.unsqueeze(2)).squeeze(2)
    return features.gather(2, column)


def column_bounds(lay: Layout) -> Int64[Tensor, "2 dim"]:
    """Inclusive ``[low, high]`` of every state column, from the layout alone.

    ``t`` lies in ``0..max_steps``; an agent's cell in the grid, its direction in
    ``0..3``, its terminated flag in ``0..1`` and its carried object in
    ``-1..pickables-1``; a door's state in
    :class:`~empo.worlds.multigrid.objects.DoorState`; a key's or ball's cell in the
    grid or -1 (carried), a box's also -2 (opened); a block's or rock's cell in the
    grid; the flags of bushes, magic walls, kill buttons and pause switches in
    ``0..1``; a control button's controlled agent in ``-1..agents-1`` and its action
    in ``-1..actions-1``; the paused flags in ``0..1`` and the forced actions in
    ``-1..actions-1``.
    """
    last, n, actions = lay.cells - 1, lay.n_agents, lay.action_kinds.numel()
    low, high = [0], [lay.max_steps]
    for _ in range(n):
        low += [0, 0, 0, -1]
        high += [last, 3, 1, lay.n_pick - 1]
    low += [min(DoorState)] * lay.n_doors + [-1] * (lay.n_keys + lay.n_balls)
    high += [max(DoorState)] * lay.n_doors + [last] * (lay.n_keys + lay.n_balls)
    low += [-2] * lay.n_boxes + [0] * lay.n_push
    high += [last] * (lay.n_boxes + lay.n_push)
    flags = lay.n_bushes + lay.n_magic + lay.n_kill + 2 * lay.n_pause
    low += [0] * flags + [0, -1, -1, 0] * lay.n_control
    high += [1] * flags + [1, n - 1, actions - 1, 1] * lay.n_control
    if lay.n_pause:
        low, high = low + [0] * n, high + [1] * n
    if lay.n_control:
        low, high = low + [-1] * n, high + [actions - 1] * n
    if len(low) != lay.state_dim:
        raise ValueError(
            f"column_bounds covers {len(low)} columns but a state has "
            f"{lay.state_dim}: give the new state fields bounds"
        )
    return torch.tensor([low, high], dtype=torch.int64, device=lay.terrain.device)


def action_effects(
    lay: Layout, states: Int64[Tensor, "batch dim"]
) -> tuple[Tensor, Tensor, Tensor]:
    """Per state, agent and action: a *canonical* action and a *shift* of one column.

    A joint action's successors are those of its agents' canonical actions with
    each agent's shift added to its column: the actions :func:`_no_op` proves
    equivalent to ``still`` become ``still``; a turn becomes ``still`` plus the
    change of the agent's direction (a turn competes for nothing and no other
    action reads an agent's direction); every other action is its own canonical
    action with shift 0. An agent with a forced action (control button) has that
    action as the canonical one of all its actions, unshifted (``transitions``
    replaces any choice by it); agents whose actions are not
    factored in :func:`_keep_exact` (awaited by a control button; grey agents in a
    state where a yellow agent faces an enabled kill button or pause switch) keep
    every action as its own.

    Returns
    -------
    tuple of Tensor
        ``(canonical, column, delta)``: ``[batch, agent, action]`` canonical
        actions and shifts, ``[1, agent, 1]`` the column of each agent's
        direction.
    """
    kinds = lay.action_kinds.tolist()
    count, n = len(kinds), lay.n_agents
    device = states.device
    every = torch.arange(count, device=device)
    column = (2 + 4 * torch.arange(n, device=device))[None, :, None]
    if ActionKind.STILL not in kinds:
        every = every.expand(states.shape[0], n, count)
        return every, column, torch.zeros_like(every)
    still = kinds.index(ActionKind.STILL)
    turn = torch.zeros(count, dtype=torch.int64, device=device)
    turn = turn.masked_fill(lay.action_kinds == ActionKind.LEFT, 3)
    turn = turn.masked_fill(lay.action_kinds == ActionKind.RIGHT, 1)
    # per direction and action: the direction change of the action's turn
    directions = torch.arange(4, device=device).unsqueeze(1)
    change = ((directions + turn) & 3) - directions
    own = torch.where(turn > 0, still, every)
    features = _no_op_features(lay, states)
    no_op = features.index_select(2, _kind_feature(device)[lay.action_kinds])
    base = torch.where(no_op, still, own)
    delta = change[states[:, 2 : 2 + 4 * n : 4]].masked_fill_(no_op, 0)
    if lay.n_kill or lay.n_pause or lay.n_control:
        every = every.expand(states.shape[0], n, count)
        keep = _exact_agents(lay, states).unsqueeze(2)
        if lay.n_control:
            forced = states[:, lay.forced_col : lay.forced_col + n].unsqueeze(2)
            every = torch.where(forced >= 0, forced, every)
            keep = keep | (forced >= 0)
        base, delta = torch.where(keep, every, base), delta.masked_fill_(keep, 0)
    return base, column, delta


def _awaited(lay: Layout, states: Tensor) -> Tensor:
    """``[batch, agent]``: agents whose next executed action a control button
    records."""
    cols = lay.control_col + 4 * torch.arange(lay.n_control, device=states.device)
    waiting = torch.where(states[:, cols + 3] == 1, states[:, cols + 1], -1)
    agents = torch.arange(lay.n_agents, device=states.device)
    return (waiting.unsqueeze(1) == agents.view(1, -1, 1)).any(dim=2)


def _joined_rows(lay: Layout, states: Tensor, actions: Tensor) -> Tensor:
    """``[batch]``: rows in which a yellow agent toggles an enabled kill button or
    pause switch (grey agents' no-ops and turns then matter: rule 2)."""
    n = lay.n_agents
    kind = lay.action_kinds[actions]
    pos = states[:, 1 : 1 + 4 * n : 4]
    fwd = lay.neighbors[pos, states[:, 2 : 2 + 4 * n : 4]]
    live = (states[:, 3 : 3 + 4 * n : 4] == 0) & ~fixtures.paused(lay, states)
    toggle = live & lay.yellow & (kind == ActionKind.TOGGLE)
    return (toggle & fixtures.enabled_trigger(lay, states, fwd)).any(dim=1)


def _exact_agents(lay: Layout, states: Tensor) -> Tensor:
    """``[batch, agent]``: agents whose actions :func:`action_effects` must not
    factor in each state (whatever the others do; see :func:`_keep_exact`)."""
    n = lay.n_agents
    keep = torch.zeros(states.shape[0], n, dtype=torch.bool, device=states.device)
    if lay.n_kill or lay.n_pause:
        pos = states[:, 1 : 1 + 4 * n : 4]
        fwd = lay.neighbors[pos, states[:, 2 : 2 + 4 * n : 4]]
        live = (states[:, 3 : 3 + 4 * n : 4] == 0) & ~fixtures.paused(lay, states)
        trigger = live & lay.yellow & fixtures.enabled_trigger(lay, states, fwd)
        keep = trigger.any(dim=1, keepdim=True) & lay.grey
    if lay.n_control:
        keep = keep | _awaited(lay, states)
    return keep


def _effective(
    lay: Layout, states: Tensor, actions: Tensor, still: int
) -> tuple[Tensor, Tensor]:
    """``(base, turn)``: each action with no-ops and turns replaced by ``still``, and
    the quarter turns (0, 1 right, 3 left) of the agents that turn."""
    kind = lay.action_kinds[actions]
    no_op = _no_op(lay, states, kind)
    turn = torch.where(kind == ActionKind.LEFT, 3, 0)
    turn = torch.where(no_op, 0, torch.where(kind == ActionKind.RIGHT, 1, turn))
    base = torch.where(no_op | (turn > 0), still, actions)
    return base, turn


def _keep_exact(
    lay: Layout, states: Tensor, actions: Tensor, base: Tensor, turn: Tensor
) -> tuple[Tensor, Tensor]:
    """Undo the factoring of no-ops and turns where they matter: for agents whose
    next action a control button awaits (it records any executed action) and for
    grey agents in rows where a kill or pause toggle joins their blocks (their
    order relative to the toggle decides whether they act)."""
    keep = torch.zeros_like(actions, dtype=torch.bool)
    if lay.n_kill or lay.n_pause:
        keep = _joined_rows(lay, states, actions).unsqueeze(1) & lay.grey
    if lay.n_control:
        keep = keep | _awaited(lay, states)
    if not (lay.n_kill or lay.n_pause or lay.n_control):
        return base, turn
    return torch.where(keep, actions, base), torch.where(keep, 0, turn)


def _enumerate_unique(
    lay: Layout, states: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor]:
    """Enumerate each distinct (state, effective actions) pair once.

    No-op actions (:func:`_no_op`) act like ``still``. Consecutive equal states form
    a group; within a group, rows whose effective joint actions differ only by turns
    are computed once as if the turning agents stayed still, then each copy gets its
    turning agents' new directions: a turn competes for nothing, and no other action
    reads an agent's direction, so this is exact (same outcomes, same order). A row's
    result does not depend on the rest of the batch.
    """
    kinds = lay.action_kinds.tolist()
    if ActionKind.STILL not in kinds:
        return _enumerate_chunk(lay, states, actions)
    still = kinds.index(ActionKind.STILL)
    batch, n = actions.shape
    device = states.device
    kind = lay.action_kinds[actions]
    if not bool(((kind == ActionKind.LEFT) | (kind == ActionKind.RIGHT)).any()):
        # no turns to factor out (e.g. the canonical actions of action_effects)
        return _enumerate_chunk(lay, states, actions)
    if batch <= 1:
        base, turn = _effective(lay, states, actions, still)
        base, turn = _keep_exact(lay, states, actions, base, turn)
        return _enumerate_chunk(lay, states, torch.where(turn > 0, actions, base))
    new_group = torch.ones(batch, dtype=torch.bool, device=device)
    new_group[1:] = (states[1:] != states[:-1]).any(dim=1)
    group = torch.cumsum(new_group.long(), 0) - 1
    groups = int(group[-1]) + 1
    if groups * len(kinds) <= batch:
        every = torch.arange(len(kinds), device=device).expand(groups, n, -1)
        base, turn = _effective(lay, states[new_group], every, still)
        flat = (group.unsqueeze(1) * n + torch.arange(n, device=device)) * len(kinds)
        flat = flat + actions
        base, turn = base.flatten()[flat], turn.flatten()[flat]
    else:
        base, turn = _effective(lay, states, actions, still)
    base, turn = _keep_exact(lay, states, actions, base, turn)
    bits = batch.bit_length() + n * (len(kinds) - 1).bit_length()
    if bits <= 62:
        key = group
        for i in range(n):
            key = key * len(kinds) + base[:, i]
        unique, inverse = torch.unique(key, return_inverse=True)
    else:
        rows = torch.cat([group.unsqueeze(1), base], dim=1)
        unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    if unique.shape[0] == batch:
        return _enumerate_chunk(lay, states, torch.where(turn > 0, actions, base))
    first = torch.full((unique.shape[0],), batch, device=device)
    first = first.scatter_reduce(0, inverse, torch.arange(batch, device=device), "amin")
    succ, probs = _enumerate_chunk(lay, states[first], base[first])
    succ, probs = succ[inverse], probs[inverse]
    if bool((turn > 0).any()):
        dirs = states[:, 2 : 2 + 4 * n : 4]
        delta = (((dirs + turn) & 3) - dirs) * (states[:, :1] < lay.max_steps)
        succ[:, :, 2 : 2 + 4 * n : 4] += delta.unsqueeze(1)
    return succ, probs


def _enumerate_chunk(
    lay: Layout, states: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor]:
    """Every outcome of every row, executed in one pass over (row, outcome) pairs.

    A live row in which no agent is active (all still, terminated or paused) has
    one successor, the row one step later (forced actions cleared): rules 1-5 move
    nothing without an active agent, so such rows skip :func:`execute`.
    """
    batch = states.shape[0]
    device = states.device
    kk = lay.max_outcomes()
    p = plan(lay, states, actions)
    live = states[:, 0] < lay.max_steps
    busy = p.active.any(dim=1) & live
    out = states.unsqueeze(1).repeat(1, kk, 1)
    probs = torch.zeros(batch, kk, dtype=torch.float64, device=device)
    if bool(busy.all()) and (kk == 1 or not bool((p.total > 1).any())):
        k = torch.zeros(batch, dtype=torch.long, device=device)
        out[:, 0] = execute(lay, states, actions, p, k)
        probs[:, 0] = outcome_prob(p, k)
        return out, probs
    idle = torch.nonzero(live & ~busy).flatten()
    if len(idle):
        nxt = states.index_select(0, idle)
        if lay.n_control:
            nxt[:, lay.forced_col : lay.forced_col + lay.n_agents] = -1
        nxt[:, 0] += 1
        out[idle, 0] = canonical(lay, nxt)
        probs[idle, 0] = 1.0
    total = torch.where(busy, p.total, 0)
    row = torch.repeat_interleave(torch.arange(batch, device=device), total)
    if len(row):
        k = torch.arange(row.shape[0], device=device)
        k -= (torch.cumsum(total, 0) - total).index_select(0, row)
        sub = Plan(
            *(getattr(p, f).index_select(0, row) for f in Plan.__dataclass_fields__)
        )
        out[row, k] = execute(
            lay, states.index_select(0, row), actions.index_select(0, row), sub, k
        )
        probs[row, k] = outcome_prob(sub, k)
    return out, probs
