"""The transport world as a batched explicit world model (:class:`TransportWorld`).

Vehicles (the robots, acting as one team) drive on a :class:`RoadNetwork` and carry
humans, who can also wait, walk along walkable edges, board a vehicle at their node
or alight from it. Time advances one unit per step and is part of the state, so the
world is acyclic with horizon ``horizon`` (states with ``t == horizon`` are terminal).

**Edge durations.** An edge of length ``L`` takes ``ceil(L / vehicle_speed)`` steps
to drive and ``ceil(L / walk_speed)`` steps to walk; an agent on an edge carries its
remaining steps in the state ("in transit") and can only continue (its only
allowed action, ``wait``, means "keep going"). Every step lasts one time unit, so the duration-based
discount ``exp(-rho D)`` of THEORY.md's continuous-time extension is exactly a
per-step discount ``gamma = exp(-rho)``; no separate ``durations`` tensor is needed.

**State encoding** (``int64``, width ``1 + 4 H + 3 V``)::

    [t,
     per human h:   node, edge, remaining, vehicle      (vehicle -1 when not aboard)
     per vehicle v: node, edge, remaining]

``node`` is the current node, or the edge's source while in transit; ``edge`` is -1
at a node; ``remaining`` is the number of steps left on the edge (0 at a node). A
human aboard a vehicle always has the vehicle's position fields.

**Actions** (fixed discrete sets with masks; ``D`` is the largest out-degree)::

    vehicle: wait, drive_0 .. drive_{D-1}                (drive along out-edge i)
    human:   wait, walk_0 .. walk_{D-1}, board_0 .. board_{V-1}, alight

Out-edges of a node are ordered by target node. Humans walk only walkable edges and
board only a vehicle with seats at their node; vehicles drive only drivable edges
and, with ``loaded_vehicles_wait=False``, may not wait with a passenger aboard. A
disallowed action is replaced by the agent's first allowed action (``wait`` unless
waiting is disallowed).

**One step** happens in this order: (1) humans who alight leave their vehicle (which
must be at a node); (2) humans who board vehicle ``j`` at their node get in; if more
try than there are free seats, a uniformly random subset of them of the size of the
free seats gets in (random boarding order), and this lottery is enumerated
explicitly, so one joint action can have several successors; (3) vehicles drive
(carrying their passengers) and humans walk; (4) ``t`` increases by 1.

**Rest action.** Humans have none (``rest_action`` is ``None`` for them, ``wait``
for vehicles): "wait" is not "stay in the goal" here, because a passenger who waits
is carried on, and a passenger already at their goal stays there by alighting. So
``pi_h(s, g)`` follows eq. (2) everywhere (THEORY.md, "rest action"), and a human
who can stay keeps ``X_h > 0``.

**Goals**: "human at a node of cluster ``g``" (at a node, aboard or not); the default
is one goal per node. Every human has the same goal set (THEORY.md, "Possible
goals").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from empo.worlds.transport.network import RoadNetwork

MAX_HUMANS = 12
POSITION_FIELDS = ("node", "edge", "remaining")
"""Where a vehicle or human is: state fields ``<who>_node``, ``<who>_edge``,
``<who>_remaining``."""


def _steps(
    length: Float[Tensor, " edge"], allowed: Bool[Tensor, " edge"], speed: float
) -> Int64[Tensor, " edge"]:
    """Steps needed per edge at ``speed`` (at least 1), 0 where not allowed."""
    steps = torch.ceil(length / speed - 1e-9).clamp(min=1).to(torch.int64)
    return torch.where(allowed, steps, torch.zeros_like(steps))


def _max_lottery_outcomes(n_humans: int, capacities: Sequence[int]) -> int:
    """Largest number of boarding outcomes of one joint action.

    With ``k`` humans trying to board a vehicle with ``f`` free seats there are
    ``C(k, min(k, f))`` outcomes, at most ``C(k, min(cap, k // 2))``; outcomes of
    different vehicles combine as a product over a split of the humans.
    """
    best = [1] * (n_humans + 1)
    for cap in capacities:
        best = [
            max(best[m - k] * math.comb(k, min(cap, k // 2)) for k in range(0, m + 1))
            for m in range(n_humans + 1)
        ]
    return max(best)


class TransportWorld:
    """Vehicles carrying humans on a road network (see the module docstring).

    Parameters
    ----------
    network
        The road network.
    vehicle_starts
        Start node of each vehicle (robot).
    human_starts
        Start node of each human.
    capacity
        Seats per vehicle (an int for all, or one per vehicle); 0 means the vehicle
        carries nobody.
    horizon
        Number of steps; states with ``t == horizon`` are terminal.
    vehicle_speed, walk_speed
        Length units covered per step when driving, respectively walking.
    goals
        Node clusters, one per goal (default: one goal per node).
    goal_names
        One name per goal (default: the node names, or ``"g0"``, ...).
    goal_weights
        One positive weight per goal (default 1).
    loaded_vehicles_wait
        If False, a vehicle at a node with a passenger aboard may not wait (unless
        it has no road to drive): a bus that does not idle with passengers, a
        commitment (smaller ``A_r(s)``, THEORY.md) that lets a cautious human
        (eq. 1) count on being carried on.

    Raises
    ------
    ValueError
        On bad start nodes, capacities, speeds, horizon or goals; the message names
        the field.
    """

    def __init__(
        self,
        network: RoadNetwork,
        vehicle_starts: Sequence[int],
        human_starts: Sequence[int],
        *,
        capacity: int | Sequence[int] = 1,
        horizon: int = 6,
        vehicle_speed: float = 1.0,
        walk_speed: float = 1.0,
        goals: Sequence[Sequence[int]] | None = None,
        goal_names: Sequence[str] | None = None,
        goal_weights: Sequence[float] | None = None,
        loaded_vehicles_wait: bool = True,
    ) -> None:
        n_nodes = network.num_nodes
        self.network = network
        n_v, n_h = len(vehicle_starts), len(human_starts)
        if n_v < 1 or n_h < 1:
            raise ValueError("need at least one vehicle and one human")
        if n_h > MAX_HUMANS:
            raise ValueError(f"human_starts: at most {MAX_HUMANS} humans, got {n_h}")
        for field_name, starts in (
            ("vehicle_starts", vehicle_starts),
            ("human_starts", human_starts),
        ):
            for node in starts:
                if not 0 <= int(node) < n_nodes:
                    raise ValueError(f"{field_name}: node {node} not in 0..{n_nodes-1}")
        caps = [capacity] * n_v if isinstance(capacity, int) else list(capacity)
        if len(caps) != n_v or any(int(c) < 0 for c in caps):
            raise ValueError(f"capacity must be >= 0 per vehicle, got {capacity}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if not (vehicle_speed > 0 and walk_speed > 0):
            raise ValueError("vehicle_speed and walk_speed must be positive")
        self.n_humans, self.n_vehicles, self.horizon = n_h, n_v, int(horizon)
        self.capacity = torch.tensor(caps, dtype=torch.int64)
        self.loaded_vehicles_wait = bool(loaded_vehicles_wait)
        self.drive_steps = _steps(network.length, network.drivable, vehicle_speed)
        self.walk_steps = _steps(network.length, network.walkable, walk_speed)
        self._start = (list(map(int, vehicle_starts)), list(map(int, human_starts)))

        degree = network.max_out_degree
        self.agents = tuple(f"human_{h}" for h in range(n_h)) + tuple(
            f"vehicle_{v}" for v in range(n_v)
        )
        self.humans = tuple(range(n_h))
        self.robots = tuple(range(n_h, n_h + n_v))
        drive = tuple(f"drive_{i}" for i in range(degree))
        human_actions = (
            ("wait",)
            + tuple(f"walk_{i}" for i in range(degree))
            + tuple(f"board_{v}" for v in range(n_v))
            + ("alight",)
        )
        self.action_names = (human_actions,) * n_h + (("wait",) + drive,) * n_v
        self.rest_action: tuple[int | None, ...] = (None,) * n_h + (0,) * n_v
        self.max_actions = len(human_actions)
        self.state_dim = 1 + 4 * n_h + 3 * n_v
        self.max_outcomes = _max_lottery_outcomes(n_h, caps)

        clusters = [[n] for n in range(n_nodes)] if goals is None else goals
        member = torch.zeros(len(clusters), n_nodes, dtype=torch.bool)
        for g, cluster in enumerate(clusters):
            if len(cluster) == 0 or not all(0 <= int(n) < n_nodes for n in cluster):
                raise ValueError(
                    f"goals[{g}] = {cluster!r}: need nodes in 0..{n_nodes-1}"
                )
            member[g, list(map(int, cluster))] = True
        self.goal_nodes = member
        if goal_names is None:
            goal_names = (
                network.node_names
                if goals is None
                else tuple(f"g{g}" for g in range(len(clusters)))
            )
        weights = [1.0] * len(clusters) if goal_weights is None else goal_weights
        if len(goal_names) != len(clusters) or len(weights) != len(clusters):
            raise ValueError("goal_names and goal_weights need one entry per goal")
        if any(not (w > 0) for w in weights):
            raise ValueError(f"goal_weights must be positive, got {list(weights)}")
        self.goal_names = (tuple(goal_names),) * n_h
        self.goal_weights = torch.tensor([list(weights)] * n_h, dtype=torch.float64)

        subsets = torch.arange(2**n_h).unsqueeze(1)
        self._subsets = (subsets >> torch.arange(n_h)) & 1 == 1
        self._comb = torch.tensor(
            [[math.comb(k, s) for s in range(n_h + 1)] for k in range(n_h + 1)],
            dtype=torch.float64,
        )

    # ----------------------------------------------------------------- encoding
    def split(self, states: Int64[Tensor, "batch dim"]) -> dict[str, Tensor]:
        """Named views of a batch of states: ``t`` ``[B]``; ``human_node``,
        ``human_edge``, ``human_remaining``, ``human_vehicle`` ``[B, H]``;
        ``vehicle_node``, ``vehicle_edge``, ``vehicle_remaining`` ``[B, V]``."""
        n_h = self.n_humans
        humans = states[:, 1 : 1 + 4 * n_h].reshape(-1, n_h, 4)
        vehicles = states[:, 1 + 4 * n_h :].reshape(-1, self.n_vehicles, 3)
        return {
            "t": states[:, 0],
            "human_node": humans[..., 0],
            "human_edge": humans[..., 1],
            "human_remaining": humans[..., 2],
            "human_vehicle": humans[..., 3],
            "vehicle_node": vehicles[..., 0],
            "vehicle_edge": vehicles[..., 1],
            "vehicle_remaining": vehicles[..., 2],
        }

    def join(self, parts: dict[str, Tensor]) -> Int64[Tensor, "... dim"]:
        """Inverse of :meth:`split` (works with extra leading dimensions)."""
        humans = torch.stack(
            [parts[f"human_{k}"] for k in ("node", "edge", "remaining", "vehicle")], -1
        )
        vehicles = torch.stack(
            [parts[f"vehicle_{k}"] for k in ("node", "edge", "remaining")], -1
        )
        return torch.cat(
            [
                parts["t"].unsqueeze(-1),
                humans.flatten(-2),
                vehicles.flatten(-2),
            ],
            -1,
        )

    def initial_states(self) -> Int64[Tensor, "1 dim"]:
        """The single initial state: everyone at their start node, ``t = 0``."""
        vehicle_starts, human_starts = self._start
        none_h = torch.full((1, self.n_humans), -1, dtype=torch.int64)
        none_v = torch.full((1, self.n_vehicles), -1, dtype=torch.int64)
        return self.join(
            {
                "t": torch.zeros(1, dtype=torch.int64),
                "human_node": torch.tensor([human_starts]),
                "human_edge": none_h,
                "human_remaining": torch.zeros_like(none_h),
                "human_vehicle": none_h,
                "vehicle_node": torch.tensor([vehicle_starts]),
                "vehicle_edge": none_v,
                "vehicle_remaining": torch.zeros_like(none_v),
            }
        )

    layer_column = 0
    """The time step (column 0) grows by one per step: the states' layers."""

    def state_bounds(self) -> Int64[Tensor, "2 dim"]:
        """Inclusive bounds of every state column (exact key packing)."""
        n_h, n_v = self.n_humans, self.n_vehicles
        last_node, last_edge = self.network.num_nodes - 1, self.network.num_edges - 1
        longest = max([0, *self.drive_steps.tolist(), *self.walk_steps.tolist()])
        human = ([0, -1, 0, -1], [last_node, last_edge, longest, n_v - 1])
        vehicle = ([0, -1, 0], [last_node, last_edge, longest])
        low = [0] + human[0] * n_h + vehicle[0] * n_v
        high = [self.horizon] + human[1] * n_h + vehicle[1] * n_v
        return torch.tensor([low, high], dtype=torch.int64)

    def is_terminal(self, states: Int64[Tensor, "batch dim"]) -> Bool[Tensor, " batch"]:
        """States at the horizon."""
        return states[:, 0] >= self.horizon

    def describe(self, state: Int64[Tensor, " dim"]) -> str:
        """A short human-readable description of one state."""
        p = self.split(state.reshape(1, -1).cpu())
        names = self.network.node_names

        def where(node: int, edge: int, remaining: int) -> str:
            if edge < 0:
                return names[node]
            return f"{self.network.edge_label(edge)}({remaining} left)"

        parts = [f"t={int(p['t'][0])}"]
        for v in range(self.n_vehicles):
            at = where(
                *(int(p[f"vehicle_{k}"][0, v]) for k in ("node", "edge", "remaining"))
            )
            parts.append(f"V{v}@{at}")
        for h in range(self.n_humans):
            at = where(
                *(int(p[f"human_{k}"][0, h]) for k in ("node", "edge", "remaining"))
            )
            aboard = int(p["human_vehicle"][0, h])
            parts.append(f"H{h}@{at}" + (f"[in V{aboard}]" if aboard >= 0 else ""))
        return " ".join(parts)

    def draw_text(self, state: Int64[Tensor, " dim"]) -> list[str]:
        """One line per vehicle and human of one state (see :mod:`.text`)."""
        from empo.worlds.transport.text import draw_text

        return draw_text(self, state)

    def render_state(self, state: Int64[Tensor, " dim"]) -> np.ndarray:
        """Draw one state as a ``uint8`` RGB image (see :mod:`.render`)."""
        from empo.worlds.transport.render import render_state

        return render_state(self, state)

    def save_gif(
        self,
        states: Sequence[Int64[Tensor, " dim"]],
        path: str | Path,
        fps: float = 2.0,
        titles: Sequence[str] | None = None,
    ) -> Path:
        """Write a GIF of a sequence of states (see :mod:`.render`)."""
        from empo.worlds.transport.render import save_gif

        return save_gif(self, states, path, fps=fps, titles=titles)

    # ------------------------------------------------------------------ actions
    def _edge_of(
        self, node: Int64[Tensor, "..."], slot: Int64[Tensor, "..."]
    ) -> Int64[Tensor, "..."]:
        """Out-edge ``slot`` of ``node`` (-1 where it does not exist)."""
        table = self.network.out_edges.to(node.device)
        return table[node.clamp(min=0), slot.clamp(0, table.shape[1] - 1)]

    def action_mask(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch agent max_action"]:
        """Allowed actions per agent; agents in transit may only ``wait``."""
        p = self.split(states)
        device = states.device
        out = self.network.out_edges.to(device)
        drivable = self.network.drivable.to(device)
        walkable = self.network.walkable.to(device)
        batch, n_h, n_v, degree = (
            states.shape[0],
            self.n_humans,
            self.n_vehicles,
            out.shape[1],
        )
        live = ~self.is_terminal(states)
        mask = torch.zeros(
            batch, n_h + n_v, self.max_actions, dtype=torch.bool, device=device
        )
        mask[:, :, 0] = True

        v_free = (p["vehicle_edge"] < 0) & live.unsqueeze(1)
        v_out = out[p["vehicle_node"]]
        can_drive = v_free.unsqueeze(-1) & (v_out >= 0) & drivable[v_out.clamp(min=0)]
        mask[:, n_h:, 1 : 1 + degree] = can_drive
        if not self.loaded_vehicles_wait:
            loaded = (
                p["human_vehicle"].unsqueeze(-1) == torch.arange(n_v, device=device)
            ).any(1)
            mask[:, n_h:, 0] = ~(loaded & can_drive.any(-1))

        h_at_node = (p["human_edge"] < 0) & live.unsqueeze(1)
        h_free = h_at_node & (p["human_vehicle"] < 0)
        h_out = out[p["human_node"]]
        mask[:, :n_h, 1 : 1 + degree] = (
            h_free.unsqueeze(-1) & (h_out >= 0) & walkable[h_out.clamp(min=0)]
        )
        same_node = p["human_node"].unsqueeze(-1) == p["vehicle_node"].unsqueeze(1)
        can_carry = (p["vehicle_edge"] < 0) & (self.capacity.to(device) > 0)
        mask[:, :n_h, 1 + degree : 1 + degree + n_v] = (
            h_free.unsqueeze(-1) & same_node & can_carry.unsqueeze(1)
        )
        aboard = p["human_vehicle"]
        vehicle_stopped = torch.gather(p["vehicle_edge"] < 0, 1, aboard.clamp(min=0))
        mask[:, :n_h, 1 + degree + n_v] = (
            (aboard >= 0) & vehicle_stopped & live.unsqueeze(1)
        )
        return mask

    # -------------------------------------------------------------- transitions
    def _move(
        self,
        parts: dict[str, Int64[Tensor, "..."]],
        who: str,
        slot: Int64[Tensor, "..."],
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step of movement of the vehicles or the walking humans (``who``:
        ``"vehicle"`` or ``"human"``, with their drive or walk steps) of split states
        ``parts``: continue in transit, or start out-edge ``slot`` (``slot < 0``:
        stay). Returns new ``(node, edge, remaining)``."""
        node, edge, remaining = (parts[f"{who}_{f}"] for f in POSITION_FIELDS)
        steps = (self.drive_steps if who == "vehicle" else self.walk_steps).to(
            node.device
        )
        target = self.network.target.to(node.device)
        start = (edge < 0) & (slot >= 0)
        new_edge = torch.where(start, self._edge_of(node, slot), edge)
        new_remaining = (
            torch.where(start, steps[new_edge.clamp(min=0)], remaining)
            - (new_edge >= 0).long()
        )
        arrived = (new_edge >= 0) & (new_remaining <= 0)
        node = torch.where(arrived, target[new_edge.clamp(min=0)], node)
        new_edge = torch.where(arrived, torch.full_like(new_edge, -1), new_edge)
        return node, new_edge, new_remaining.clamp(min=0)

    def transitions(
        self,
        states: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
    ) -> tuple[Int64[Tensor, "batch k dim"], Float[Tensor, "batch k"]]:
        """All successors with probabilities (boarding lottery enumerated).

        Terminal states map to themselves with probability 1.

        Raises
        ------
        ValueError
            If an action index is outside its agent's action set.
        """
        device = states.device
        n_h, n_v = self.n_humans, self.n_vehicles
        sizes = torch.tensor([len(a) for a in self.action_names], device=device)
        bad = (actions < 0) | (actions >= sizes)
        if bad.any():
            b, i = map(int, bad.nonzero()[0])
            raise ValueError(
                f"action {int(actions[b, i])} of agent {self.agents[i]} (batch row {b}) "
                f"is outside 0..{int(sizes[i]) - 1}"
            )
        mask = self.action_mask(states)
        allowed = mask.gather(2, actions.unsqueeze(-1)).squeeze(-1)
        actions = torch.where(allowed, actions, mask.int().argmax(-1))
        degree = self.network.max_out_degree
        p = self.split(states)
        a_h, a_v = actions[:, :n_h], actions[:, n_h:]

        aboard = torch.where(a_h == 1 + degree + n_v, -1, p["human_vehicle"])
        wants = torch.where(
            (a_h > degree) & (a_h <= degree + n_v), a_h - 1 - degree, -1
        )
        one_hot = wants.unsqueeze(-1) == torch.arange(n_v, device=device)
        load = (aboard.unsqueeze(-1) == torch.arange(n_v, device=device)).sum(1)
        tries = one_hot.sum(1)
        seats = torch.minimum(tries, (self.capacity.to(device) - load).clamp(min=0))
        comb = self._comb.to(device)
        prob = (1.0 / comb[tries, seats]).prod(1)

        subsets = self._subsets.to(device)
        chosen = subsets.unsqueeze(0) & (wants >= 0).unsqueeze(1)
        per_vehicle = (chosen.unsqueeze(-1) & one_hot.unsqueeze(1)).sum(2)
        valid = (chosen == subsets.unsqueeze(0)).all(-1) & (
            per_vehicle == seats.unsqueeze(1)
        ).all(-1)
        k = self.max_outcomes
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)[:, :k]
        valid = valid.gather(1, order)
        picked = subsets[order]
        outcome_vehicle = torch.where(picked, wants.unsqueeze(1), aboard.unsqueeze(1))

        v_slot = torch.where(a_v > 0, a_v - 1, -1)
        vehicle = self._move(p, "vehicle", v_slot)
        walk_slot = torch.where((a_h > 0) & (a_h <= degree), a_h - 1, -1)
        walker = self._move(p, "human", walk_slot)
        carried = outcome_vehicle >= 0
        index = outcome_vehicle.clamp(min=0)
        human_fields = [
            torch.where(
                carried,
                torch.gather(v_field.unsqueeze(1).expand(-1, k, -1), 2, index),
                w_field.unsqueeze(1).expand(-1, k, -1),
            )
            for v_field, w_field in zip(vehicle, walker)
        ]
        nxt = self.join(
            {
                "t": (p["t"] + 1).unsqueeze(1).expand(-1, k),
                "human_node": human_fields[0],
                "human_edge": human_fields[1],
                "human_remaining": human_fields[2],
                "human_vehicle": outcome_vehicle,
                "vehicle_node": vehicle[0].unsqueeze(1).expand(-1, k, -1),
                "vehicle_edge": vehicle[1].unsqueeze(1).expand(-1, k, -1),
                "vehicle_remaining": vehicle[2].unsqueeze(1).expand(-1, k, -1),
            }
        )
        keep = valid & ~self.is_terminal(states).unsqueeze(1)
        nxt = torch.where(keep.unsqueeze(-1), nxt, states.unsqueeze(1))
        probs = torch.where(
            keep, prob.unsqueeze(1), torch.zeros_like(prob).unsqueeze(1)
        )
        terminal = self.is_terminal(states)
        probs[:, 0] = torch.where(terminal, torch.ones_like(prob), probs[:, 0])
        return nxt, probs.to(torch.float64)

    # -------------------------------------------------------------------- goals
    def goal_membership(
        self, states: Int64[Tensor, "batch dim"]
    ) -> Bool[Tensor, "batch human goal"]:
        """Human ``h`` is in goal ``g`` when it is at a node of cluster ``g``."""
        p = self.split(states)
        nodes = self.goal_nodes.to(states.device)
        return nodes[:, p["human_node"]].permute(1, 2, 0) & (
            p["human_edge"] < 0
        ).unsqueeze(-1)
