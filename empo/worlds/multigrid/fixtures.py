"""Bushes, magic walls, switches and buttons on batches of MultiGrid state rows.

The rules follow the research code (``vendor/multigrid/gym_multigrid/multigrid.py``);
:mod:`empo.worlds.multigrid.dynamics` calls these functions at the points of a step
where the research code applies them. Colours decide who may use what (as there):

* **Kill button** (``Kb``/``Ki``): a yellow agent toggling it while it is enabled
  terminates every grey agent.
* **Pause switch** (``Ps``/``Pa``): a yellow agent toggling it while it is enabled
  flips it on or off and sets every grey agent's ``paused`` flag to the new value;
  paused agents do nothing (as if ``still``).
* **Disabling switch** (``Dk Dp DC``, or ``dK dP dC``): a grey agent toggling it
  flips ``enabled`` of every kill button, pause switch or control button; disabling a
  pause switch that is on unpauses the grey agents (enabling it again does not pause
  them).
* **Control button** (``CB``), while enabled: a grey agent toggling it starts
  programming it (it becomes the controlled agent and the button awaits), and the
  next action that agent executes as a normal agent (not a stumble, magic-wall or
  bush attempt) is recorded as the programmed action; toggling it again while it
  awaits records the toggle. A yellow agent toggling a programmed button forces the
  controlled agent's action at the next step (:func:`override`). Recording happens
  even while the button is disabled.
* **Magic wall** (``M<side>``): an agent allowed to (``can_enter_magic_walls``)
  moving forward into an active wall from its magic side (or any side for ``Ma``)
  enters it with probability 1/2; otherwise the wall solidifies (becomes inactive for
  good) with ``solidify_probability``. Attempts are resolved after all other moves.
* **Bush** (``Bu``): grey agents and agents that can push rocks or enter magic walls
  trample it (it becomes empty for good) when they move in; other agents enter it
  and stand in it, the bush staying, with ``enter_bush_success_prob`` (resolved
  after magic walls) or for sure when that is 1.

As in the research code, magic-wall and bush attempts are resolved even for an agent
terminated or paused earlier in the same step, and only the actions of normal agents
are recorded by control buttons. Deliberate deviations are listed in
:mod:`empo.worlds.multigrid.world`.
"""

from __future__ import annotations

from typing import Callable

import torch
from jaxtyping import Bool, Int64
from torch import Tensor

from empo.worlds.multigrid.layout import Layout
from empo.worlds.multigrid.layout import get_column as _get
from empo.worlds.multigrid.layout import put_column as _put
from empo.worlds.multigrid.objects import Terrain


def _index(lay: Layout, cells: Tensor, count: int) -> Tensor:
    """Index of the fixture in ``cells`` among its kind, clamped to ``0..count-1``."""
    return lay.fixture_of_cell[cells].clamp(min=0, max=max(count - 1, 0))


def override(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    actions: Int64[Tensor, "batch agent"],
) -> Int64[Tensor, "batch agent"]:
    """The joint actions with each forced next action (set by a control button at
    the previous step) in place of the agent's own choice."""
    if not lay.n_control:
        return actions
    forced = states[:, lay.forced_col : lay.forced_col + lay.n_agents]
    return torch.where(forced >= 0, forced, actions)


def paused(lay: Layout, states: Int64[Tensor, "batch dim"]) -> Bool[Tensor, "batch n"]:
    """``[batch, agent]`` paused flags (all False without pause switches)."""
    if not lay.n_pause:
        return torch.zeros(
            states.shape[0], lay.n_agents, dtype=torch.bool, device=states.device
        )
    return states[:, lay.paused_col : lay.paused_col + lay.n_agents] != 0


def enabled_trigger(
    lay: Layout, states: Int64[Tensor, "batch dim"], cells: Tensor
) -> Tensor:
    """Whether ``cells`` (any shape ``[batch, ...]``) hold an enabled kill button or
    pause switch."""
    terrain = lay.terrain[cells]
    hit = torch.zeros_like(cells, dtype=torch.bool)
    flat = cells.reshape(cells.shape[0], -1)
    for kind, col, stride, count in (
        (Terrain.KILL_BUTTON, lay.kill_col, 1, lay.n_kill),
        (Terrain.PAUSE_SWITCH, lay.pause_col + 1, 2, lay.n_pause),
    ):
        if count:
            on = states.gather(1, col + stride * _index(lay, flat, count))
            hit = hit | ((terrain == kind) & (on.view_as(cells) == 1))
    return hit


def toggle(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    agent: Tensor | int,
    cell: Int64[Tensor, " batch"],
    toggling: Bool[Tensor, " batch"],
) -> Bool[Tensor, "batch button"]:
    """Apply ``agent`` toggling the switch or button in ``cell`` where ``toggling``.

    Returns the ``[batch, control button]`` mask of buttons that this toggle started
    programming (their awaited action is the next one, not this toggle).
    """
    kind = lay.terrain[cell]
    yellow, grey = lay.yellow[agent], lay.grey[agent]
    n = lay.n_agents
    grey_dead = 3 + 4 * torch.nonzero(lay.grey).flatten()
    grey_paused = lay.paused_col + torch.nonzero(lay.grey).flatten()
    if lay.n_kill:
        col = lay.kill_col + _index(lay, cell, lay.n_kill)
        hit = (
            toggling & yellow & (kind == Terrain.KILL_BUTTON) & (_get(states, col) == 1)
        )
        states[:, grey_dead] = torch.where(hit.unsqueeze(1), 1, states[:, grey_dead])
    if lay.n_pause:
        col = lay.pause_col + 2 * _index(lay, cell, lay.n_pause)
        on = _get(states, col)
        hit = toggling & yellow & (kind == Terrain.PAUSE_SWITCH)
        hit = hit & (_get(states, col + 1) == 1)
        _put(states, col, torch.where(hit, 1 - on, on))
        flags = states[:, grey_paused]
        states[:, grey_paused] = torch.where(
            hit.unsqueeze(1), 1 - on.unsqueeze(1), flags
        )
    if lay.disable_target.numel():
        target = lay.disable_target[_index(lay, cell, lay.disable_target.numel())]
        hit = toggling & grey & (kind == Terrain.DISABLING_SWITCH)
        for kind_t, col, stride, count in (
            (Terrain.KILL_BUTTON, lay.kill_col, 1, lay.n_kill),
            (Terrain.PAUSE_SWITCH, lay.pause_col + 1, 2, lay.n_pause),
            (Terrain.CONTROL_BUTTON, lay.control_col, 4, lay.n_control),
        ):
            if not count:
                continue
            rows = (hit & (target == kind_t)).unsqueeze(1)
            cols = col + stride * torch.arange(count, device=states.device)
            flipped = 1 - states[:, cols]
            states[:, cols] = torch.where(rows, flipped, states[:, cols])
            if kind_t == Terrain.PAUSE_SWITCH:
                on = states[:, cols - 1] == 1
                unpause = rows.squeeze(1) & (on & (flipped == 0)).any(dim=1)
                flags = states[:, grey_paused]
                states[:, grey_paused] = torch.where(unpause.unsqueeze(1), 0, flags)
    started = torch.zeros(
        states.shape[0], lay.n_control, dtype=torch.bool, device=states.device
    )
    if lay.n_control:
        idx = _index(lay, cell, lay.n_control)
        col = lay.control_col + 4 * idx
        hit = toggling & (kind == Terrain.CONTROL_BUTTON) & (_get(states, col) == 1)
        ctrl, action = _get(states, col + 1), _get(states, col + 2)
        awaiting = _get(states, col + 3) == 1
        agent_t = torch.as_tensor(agent, device=states.device).expand_as(ctrl)
        start = hit & grey & ~(awaiting & (ctrl == agent_t))
        _put(states, col + 1, torch.where(start, agent_t, ctrl))
        _put(states, col + 3, torch.where(start, 1, awaiting.long()))
        started = start.unsqueeze(1) & (
            idx.unsqueeze(1) == torch.arange(lay.n_control, device=states.device)
        )
        fire = hit & yellow & (ctrl >= 0) & (action >= 0)
        forced = lay.forced_col + ctrl.clamp(min=0, max=n - 1)
        _put(states, forced, torch.where(fire, action, _get(states, forced)))
    return started


def record(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    agent: Tensor | int,
    action: Int64[Tensor, " batch"],
    executed: Bool[Tensor, " batch"],
    started: Bool[Tensor, "batch button"],
) -> None:
    """Record ``action`` in every control button awaiting ``agent``'s next action,
    except those this very action started programming."""
    if not lay.n_control:
        return
    cols = lay.control_col + 4 * torch.arange(lay.n_control, device=states.device)
    agent_t = torch.as_tensor(agent, device=states.device)
    agent_t = agent_t.unsqueeze(-1) if agent_t.dim() else agent_t
    take = executed.unsqueeze(1) & (states[:, cols + 3] == 1) & ~started
    take = take & (states[:, cols + 1] == agent_t)
    states[:, cols + 2] = torch.where(take, action.unsqueeze(1), states[:, cols + 2])
    states[:, cols + 3] = torch.where(take, 0, states[:, cols + 3])


def magic_moves(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    attempts: Bool[Tensor, "batch agent"],
    digits: Int64[Tensor, "batch agent"],
    free: Callable[[Tensor, Tensor], Tensor],
) -> None:
    """Resolve magic-wall attempts in agent order: digit 0 enters (when no agent
    entered the wall first), 2 solidifies the wall, 1 fails."""
    for i in range(lay.n_agents):
        if not bool(attempts[:, i].any()):
            continue
        pos = states[:, 1 + 4 * i]
        cell = lay.neighbors[pos, states[:, 2 + 4 * i]]
        ok = attempts[:, i] & free(states, cell)
        states[:, 1 + 4 * i] = torch.where(ok & (digits[:, i] == 0), cell, pos)
        col = lay.magic_col + _index(lay, cell, lay.n_magic)
        _put(states, col, torch.where(ok & (digits[:, i] == 2), 0, _get(states, col)))


def bush_moves(
    lay: Layout,
    states: Int64[Tensor, "batch dim"],
    attempts: Bool[Tensor, "batch agent"],
    digits: Int64[Tensor, "batch agent"],
    free: Callable[[Tensor, Tensor], Tensor],
) -> None:
    """Resolve random bush entries in agent order: digit 0 enters the bush if it is
    still intact and free."""
    for i in range(lay.n_agents):
        go = attempts[:, i] & (digits[:, i] == 0)
        if not bool(go.any()):
            continue
        pos = states[:, 1 + 4 * i]
        cell = lay.neighbors[pos, states[:, 2 + 4 * i]]
        col = lay.bush_col + _index(lay, cell, lay.n_bushes)
        ok = go & free(states, cell) & (_get(states, col) == 0)
        states[:, 1 + 4 * i] = torch.where(ok, cell, pos)
