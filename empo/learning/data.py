"""Data sources of the learned solver: how it reaches the world's states.

The learned solver is one pipeline (:mod:`empo.learning.trainer`); what differs between
a world that can be enumerated and one that cannot is only *where its states and
successors come from*, which a data source answers:

* :class:`CompiledData` reads an enumerated world (a
  :class:`~empo.worlds.compiled.CompiledWorld`). States carry their row (key
  ``"state"``) and their compiled id (``"state_id"``); successors are gathered from
  the compiled tensors; the action profiles that a target averages over are
  *enumerated* with their probabilities, so targets take the exact expectation over
  actions; batches may mix in states drawn uniformly from the enumeration.
* :class:`RowData` reads a :class:`~empo.worlds.base.WorldModel` that is never
  enumerated. States are rows only; successors come from ``world.transitions``; the
  action profiles are *sampled* (``samples_per_state`` per state) with weight ``1/M``.

Either way, a target is ``Σ_m w_m f(profile_m)`` over profiles with weights
(:mod:`empo.learning.targets`), so the losses are written once. States travel as
TensorDicts of batch ``[*B]``: rows ``"state"`` Int64 ``[*B, dim]`` and, for compiled
worlds, ids ``"state_id"`` Int64 ``[*B]`` (CONTRACTS.md: one meaning per key).

Joint robot actions are a mixed radix over ``world.robots`` (the first robot the most
significant digit), human actions are padded to the largest human action count.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from jaxtyping import Bool, Float, Int64
from tensordict import TensorDict
from torch import Tensor

from empo.worlds.base import WorldModel
from empo.worlds.compiled import CompiledWorld
from empo.worlds.hashing import hash_rows
from empo.worlds.rows import StateIndex, compiled_rows

__all__ = [
    "STATE",
    "STATE_ID",
    "CompiledData",
    "Profiles",
    "RowData",
    "WorldData",
    "mixed_radix",
]

STATE = "state"
"""Key of state rows, Int64 ``[*B, dim]``."""
STATE_ID = "state_id"
"""Key of compiled state ids, Int64 ``[*B]`` (compiled worlds only)."""

Profiles = tuple[Int64[Tensor, "*#lead m human"], Float[Tensor, "*#lead m"]]
"""Human action profiles and their weights (see :meth:`WorldData.human_profiles`)."""
Actions = Int64[Tensor, "batch n agent"]
"""Per-agent action profiles, ``n`` per state."""
Outcomes = tuple[TensorDict, Float[Tensor, "batch n k"]]
"""Successor states ``[batch, n, k]`` (what identifies them) and probabilities."""
Index = Int64[Tensor, "*lead"]
Probs = Float[Tensor, "*lead"]
Draw = torch.Generator | None


def mixed_radix(counts: tuple[int, ...]) -> Int64[Tensor, "n digit"]:
    """Every digit vector of a mixed radix with bases ``counts`` (first digit most
    significant), in index order."""
    index = torch.arange(math.prod(counts))
    digits = []
    for base in reversed(counts):
        digits.append(index % base)
        index = index // base
    if not digits:
        return torch.zeros(1, 0, dtype=torch.long)
    return torch.stack(digits[::-1], dim=-1)


class WorldData(ABC):
    """What every data source offers (module docstring).

    A source reads its world in :meth:`states`, :meth:`action_mask`,
    :meth:`terminal`, :meth:`in_goal`, :meth:`outcomes`, :meth:`complete` and
    :meth:`distinct`; the rest is shared.

    Parameters
    ----------
    world
        The world (compiled or a world model): agents, actions, goals.
    initial_row
        ``[dim]`` row of the initial state.
    device
        Device of every tensor handed out.

    Attributes
    ----------
    enumerated
        Whether states have compiled ids and action profiles are enumerated.
    counts
        Action count per agent.
    num_humans, num_goals, max_human_actions, robot_actions
        ``H``, padded goal count ``G``, the largest human action count, ``A_r``.
    robot_parts
        ``[A_r, robot]`` per-robot action of each joint robot action.
    goal_weights
        ``[H, G]`` float32 goal weights (0 on padding).
    enumerate_profiles
        Whether targets average over every action profile with its probability
        (enumerated worlds; set by the layered schedule on worlds reached by rows
        with few joint actions) instead of ``samples`` drawn ones.
    """

    enumerated: bool = False
    num_layers: int | None = None
    """Number of layers (:meth:`layer`), or ``None`` for a world without them."""
    timed: bool = False
    """Whether the layers are a time step in the state (not only heights)."""

    def __init__(self, world: Any, initial_row: Int64[Tensor, " dim"], device: Any):
        if not world.robots:
            raise ValueError("the learned solver needs at least one robot agent")
        if not world.humans:
            raise ValueError("the learned solver needs at least one human agent")
        self.device = dev = torch.device(device)
        self.agents = tuple(world.agents)
        self.counts = tuple(len(names) for names in world.action_names)
        self.humans = tuple(world.humans)
        self.robots = tuple(world.robots)
        self.num_agents = len(self.counts)
        self.num_humans = len(self.humans)
        self.max_human_actions = max(self.counts[i] for i in self.humans)
        self.robot_actions = math.prod(self.counts[i] for i in self.robots)
        self.goal_weights = world.goal_weights.to(dev, torch.float32)
        self.num_goals = int(self.goal_weights.shape[1])
        self.goal_mask = self.goal_weights > 0
        rest = [world.rest_action[i] for i in self.humans]
        self.rest_action = torch.tensor([-1 if r is None else r for r in rest]).to(dev)
        self.initial_row = initial_row.to(dev, torch.long)
        self.state_dim = int(self.initial_row.shape[0])
        robot_counts = tuple(self.counts[r] for r in self.robots)
        self.robot_parts = mixed_radix(robot_counts).to(dev)
        self._human_index = torch.tensor(self.humans, device=dev)
        self._robot_index = torch.tensor(self.robots, device=dev)
        humans = mixed_radix(tuple(self.counts[h] for h in self.humans)).to(dev)
        self._all_humans = humans
        self._others = [humans[humans[:, h] == 0] for h in range(self.num_humans)]
        self.enumerate_profiles = self.enumerated

    # -- what each source reads from its world ------------------------------------

    @abstractmethod
    def states(self, rows: Int64[Tensor, "*batch dim"]) -> TensorDict:
        """States of the given rows (with their compiled ids where the source has
        them)."""

    @abstractmethod
    def action_mask(self, states: TensorDict) -> Bool[Tensor, "*batch agent action"]:
        """Allowed actions of each agent, padded to the largest action count."""

    @abstractmethod
    def terminal(self, states: TensorDict) -> Bool[Tensor, "*batch"]:
        """Whether each state is terminal."""

    @abstractmethod
    def in_goal(self, states: TensorDict) -> Bool[Tensor, "*batch human goal"]:
        """Goal membership ``s ∈ g`` of every human and real goal."""

    @abstractmethod
    def outcomes(self, states: TensorDict, actions: Actions) -> Outcomes:
        """Every successor of ``n`` per-agent action profiles of each state with its
        probability (0 for padding and for a profile with a disallowed action). The
        successor TensorDict ``[batch, n, k]`` holds what identifies a state (its id
        or its row); :meth:`complete` and :meth:`distinct` complete it."""

    @abstractmethod
    def complete(self, succ: TensorDict) -> TensorDict:
        """Successor states of :meth:`outcomes` with every key of a state."""

    @abstractmethod
    def distinct(self, succ: TensorDict, prob: Probs) -> tuple[TensorDict, Index]:
        """The distinct successors (complete states ``[n]``) and, per entry, its
        index among them (entries of probability 0 may point anywhere)."""

    def uniform(self, n: int, generator: torch.Generator) -> TensorDict | None:
        """``n`` non-terminal states drawn uniformly, or ``None`` where the source
        cannot enumerate them."""
        return None

    def all_states(self) -> TensorDict | None:
        """Every state (enumerated worlds), or ``None``."""
        return None

    def layer(self, states: TensorDict) -> Int64[Tensor, "*batch"]:
        """Layer of each state, in ``[0, num_layers)``: every successor of a state
        lies in a later layer (worlds with ``num_layers`` only)."""
        raise ValueError("this world has no layers (it is cyclic or has no time step)")

    # -- shared -------------------------------------------------------------------

    def initial(self) -> TensorDict:
        """The initial state, batch ``[1]``."""
        return self.states(self.initial_row[None])

    def successors(
        self,
        states: TensorDict,
        actions: Actions,
        sampled: bool = False,
        generator: Draw = None,
    ) -> Outcomes:
        """:meth:`outcomes`, or (``sampled``) one successor drawn per profile with
        probability 1 (0 for a profile with a disallowed action)."""
        succ, prob = self.outcomes(states, actions)
        if not sampled:
            return succ, prob
        b, n, k = prob.shape
        flat = prob.reshape(b * n, k)
        live = flat.sum(-1) > 0
        weights = torch.where(live[:, None], flat, torch.ones_like(flat))
        pick = torch.multinomial(weights, 1, generator=generator)[:, 0]
        rows = torch.arange(b * n, device=self.device)
        drawn = succ.reshape(b * n, k)[rows, pick].reshape(b, n, 1)
        return drawn, live.reshape(b, n, 1).to(prob.dtype)

    def step(
        self, states: TensorDict, actions: Int64[Tensor, "batch agent"], generator: Draw
    ) -> TensorDict:
        """One successor drawn for each (state, action profile)."""
        succ, _ = self.successors(states, actions[:, None], True, generator)
        return self.complete(succ[:, 0, 0])

    def human_mask(self, states: TensorDict) -> Bool[Tensor, "*batch human action"]:
        """Allowed actions of each human, padded to the largest human action count."""
        mask = self.action_mask(states)[..., self._human_index, :]
        width = mask.shape[-1]
        if width >= self.max_human_actions:
            return mask[..., : self.max_human_actions]
        return torch.nn.functional.pad(mask, (0, self.max_human_actions - width))

    def robot_mask(self, states: TensorDict) -> Bool[Tensor, "*batch a_r"]:
        """Allowed joint robot actions (every robot's part allowed), none if
        terminal."""
        mask = self.action_mask(states)[..., self._robot_index, :]
        parts = self.robot_parts.T.expand(*mask.shape[:-1], -1)
        allowed = torch.gather(mask, -1, parts).all(-2)
        return allowed & ~self.terminal(states)[..., None]

    def profiles(
        self,
        human_actions: Int64[Tensor, "*#batch human"],
        robot_action: Int64[Tensor, "*#batch"],
    ) -> Int64[Tensor, "... agent"]:
        """Per-agent action vectors from human actions and a joint robot action."""
        lead = torch.broadcast_shapes(human_actions.shape[:-1], robot_action.shape)
        out = torch.zeros(*lead, self.num_agents, dtype=torch.long, device=self.device)
        out[..., self._human_index] = human_actions.expand(*lead, self.num_humans)
        out[..., self._robot_index] = self.robot_parts[robot_action].expand(
            *lead, len(self.robots)
        )
        return out

    def others_profiles(
        self, states: TensorDict, samples: int, generator: Draw
    ) -> Profiles:
        """Profiles of the *other* humans for eq. (1), per human ``h``.

        Returns actions ``[*B | 1, H, M, H]`` (entry ``[.., h, m, :]`` a profile of
        all humans whose own entry ``h`` is ignored) and weights ``[*B, H, M]``:
        ``Σ_m w[h, m] f(a^m_{-h})`` is ``E_{μ_-h}[f]`` for the default belief
        ``μ_-h`` (others independent, uniform over their allowed actions,
        THEORY.md). Enumerated worlds list every joint action of the others (padded
        with weight 0), as do worlds reached by rows with ``enumerate_profiles``
        set; others draw ``samples`` profiles of all humans, shared by every ``h``,
        with weight ``1/M``.
        """
        mask = self.human_mask(states).to(torch.float32)
        mu = mask / mask.sum(-1, keepdim=True).clamp_min(1.0)
        h = self.num_humans
        if not self.enumerate_profiles:
            actions, weights = self._drawn(mu, samples, generator)
            return actions[:, None].expand(-1, h, -1, -1), weights[:, None].expand(
                -1, h, -1
            )
        m = max(len(table) for table in self._others)
        actions = torch.zeros(h, m, h, dtype=torch.long, device=self.device)
        weights = torch.zeros(*mu.shape[:-2], h, m, device=self.device)
        for own, table in enumerate(self._others):
            actions[own, : len(table)] = table
            weight = torch.ones(*mu.shape[:-2], len(table), device=self.device)
            for other in range(h):
                if other != own:
                    weight = weight * mu[..., other, table[:, other]]
            weights[..., own, : len(table)] = weight
        return actions[None], weights

    def human_profiles(
        self, pi_bar: Float[Tensor, "batch human action"], samples: int, generator: Draw
    ) -> Profiles:
        """Profiles of all humans for eqs. (4) and (6): actions ``[B | 1, M, H]``
        and weights ``[B, M]`` with ``Σ_m w_m f(a^m) = E_{Π_h π̄_h}[f]``: every
        joint human action weighted by ``Π_h π̄_h`` on enumerated worlds (and where
        ``enumerate_profiles`` is set), else ``samples`` draws with weight
        ``1/M``."""
        if not self.enumerate_profiles:
            return self._drawn(pi_bar, samples, generator)
        actions = self._all_humans
        weight = torch.ones(pi_bar.shape[0], actions.shape[0], device=self.device)
        for h in range(self.num_humans):
            weight = weight * pi_bar[:, h, actions[:, h]]
        return actions[None], weight

    def _drawn(
        self, probs: Float[Tensor, "batch human action"], samples: int, generator: Draw
    ) -> Profiles:
        """``samples`` independent draws of every human's action, weight ``1/M``."""
        b, h, a = probs.shape
        safe = torch.where(
            probs.sum(-1, keepdim=True) > 0, probs, torch.ones_like(probs)
        )
        draw = torch.multinomial(
            safe.reshape(b * h, a), samples, replacement=True, generator=generator
        )
        actions = draw.reshape(b, h, samples).transpose(1, 2)
        weights = torch.full((b, samples), 1.0 / samples, device=self.device)
        return actions, weights


class CompiledData(WorldData):
    """An enumerated world as a data source (module docstring).

    Parameters
    ----------
    world
        The compiled world.
    device
        Device of its tensors.
    """

    enumerated = True

    def __init__(self, world: CompiledWorld, device: Any = "cpu"):
        robots = tuple(world.robots)
        if list(robots) != sorted(robots):
            raise ValueError(
                f"world.robots must be listed in agent order, got {world.robots}"
            )
        self.world = world
        self.rows = compiled_rows(world).to(device)
        super().__init__(world, self.rows[int(world.initial_state)], device)
        dev = self.device
        self.num_states = int(world.num_states)
        self.successor_ids = world.successors.to(dev)
        self.probabilities = world.probabilities.to(dev, torch.float32)
        self.terminal_ids = world.terminal.to(dev)
        self.mask_ids = world.action_mask.to(dev)
        membership = world.goal_membership.to(dev).permute(2, 0, 1)
        self.membership = membership & self.goal_mask
        self.alive = torch.nonzero(~self.terminal_ids)[:, 0]
        self._index = StateIndex(world)
        self._layers: Tensor | None = None
        column = world.metadata.get("layer_column")
        if column is not None:
            self.timed = True
            self._layers = self.rows[:, int(column)]
        elif world.height is not None:
            height = world.height.to(dev)
            self._layers = int(height.max()) - height
        if self._layers is not None:
            self.num_layers = int(self._layers.max()) + 1
        self._radix = torch.tensor(
            [math.prod(self.counts[i + 1 :]) for i in range(self.num_agents)],
            device=dev,
        )

    def of_ids(self, ids: Int64[Tensor, "*batch"]) -> TensorDict:
        """States ``{"state": rows, "state_id": ids}`` of the given ids."""
        return TensorDict(
            {STATE: self.rows[ids], STATE_ID: ids},
            batch_size=ids.shape,
            device=self.device,
        )

    def states(self, rows: Int64[Tensor, "*batch dim"]) -> TensorDict:
        """States of rows of this world (``KeyError`` for a row it does not have)."""
        flat = rows.reshape(-1, rows.shape[-1])
        ids = self._index.ids(flat.cpu()).to(self.device)
        return self.of_ids(ids.reshape(rows.shape[:-1]))

    def action_mask(self, states: TensorDict) -> Bool[Tensor, "*batch agent action"]:
        """Allowed actions per agent."""
        return self.mask_ids[states.get(STATE_ID)]

    def terminal(self, states: TensorDict) -> Bool[Tensor, "*batch"]:
        """Terminal flags."""
        return self.terminal_ids[states.get(STATE_ID)]

    def in_goal(self, states: TensorDict) -> Bool[Tensor, "*batch human goal"]:
        """Goal membership of every human and real goal."""
        return self.membership[states.get(STATE_ID)]

    def joint_index(
        self, actions: Int64[Tensor, "*batch agent"]
    ) -> Int64[Tensor, "*batch"]:
        """Mixed-radix joint action index (agent 0 most significant)."""
        return (actions * self._radix).sum(-1)

    def outcomes(self, states: TensorDict, actions: Actions) -> Outcomes:
        """Successor ids and probabilities gathered from the compiled tensors."""
        ids = states.get(STATE_ID)[:, None]
        joint = self.joint_index(actions)
        succ = self.successor_ids[ids, joint]
        td = TensorDict({STATE_ID: succ}, batch_size=succ.shape, device=self.device)
        return td, self.probabilities[ids, joint]

    def complete(self, succ: TensorDict) -> TensorDict:
        """Successors (ids) completed with their rows."""
        return self.of_ids(succ.get(STATE_ID))

    def distinct(self, succ: TensorDict, prob: Probs) -> tuple[TensorDict, Index]:
        """Distinct successor ids (a sort), completed with their rows."""
        unique, inverse = torch.unique(succ.get(STATE_ID), return_inverse=True)
        return self.of_ids(unique), inverse

    def uniform(self, n: int, generator: torch.Generator) -> TensorDict:
        """``n`` non-terminal states drawn uniformly."""
        pick = torch.randint(
            self.alive.shape[0], (n,), generator=generator, device=self.device
        )
        return self.of_ids(self.alive[pick])

    def all_states(self) -> TensorDict:
        """Every state of the compiled world, in id order."""
        return self.of_ids(torch.arange(self.num_states, device=self.device))

    def layer(self, states: TensorDict) -> Int64[Tensor, "*batch"]:
        """The time step where the world was compiled from a model with a layer
        column, else ``max height − height`` (acyclic worlds)."""
        if self._layers is None:
            return super().layer(states)
        return self._layers[states.get(STATE_ID)]


class RowData(WorldData):
    """A world model reached by state rows only (module docstring).

    Parameters
    ----------
    world
        The world model.
    device
        Device of the rows and of every returned tensor.
    """

    def __init__(self, world: WorldModel, device: Any = "cpu"):
        self.world = world
        super().__init__(world, world.initial_states()[0], device)
        self.layer_column: int | None = None
        if hasattr(world, "layer_column") and hasattr(world, "state_bounds"):
            self.layer_column = int(world.layer_column)
            self.timed = True
            self.num_layers = int(world.state_bounds()[1, self.layer_column]) + 1

    def states(self, rows: Int64[Tensor, "*batch dim"]) -> TensorDict:
        """States of the given rows."""
        rows = rows.to(self.device, torch.long)
        return TensorDict({STATE: rows}, batch_size=rows.shape[:-1], device=self.device)

    def _ask(self, query: Any, states: TensorDict) -> Tensor:
        """``query(rows)`` on the flattened rows of ``states``, reshaped back."""
        rows = states.get(STATE)
        out = query(rows.reshape(-1, rows.shape[-1])).to(self.device)
        return out.reshape(*states.batch_size, *out.shape[1:])

    def action_mask(self, states: TensorDict) -> Bool[Tensor, "*batch agent action"]:
        """Allowed actions per agent."""
        return self._ask(self.world.action_mask, states)

    def terminal(self, states: TensorDict) -> Bool[Tensor, "*batch"]:
        """Terminal flags."""
        return self._ask(self.world.is_terminal, states)

    def in_goal(self, states: TensorDict) -> Bool[Tensor, "*batch human goal"]:
        """Goal membership of every human and real goal."""
        return self._ask(self.world.goal_membership, states) & self.goal_mask

    def outcomes(self, states: TensorDict, actions: Actions) -> Outcomes:
        """One batched ``world.transitions`` call on ``batch * n`` pairs. A
        disallowed action is never handed to the world: it is replaced by the
        agent's first allowed action and the profile gets probability 0."""
        rows = states.get(STATE)
        b, n = actions.shape[:2]
        mask = self.action_mask(states)[:, None].expand(b, n, -1, -1)
        allowed = torch.gather(mask, 3, actions[..., None])[..., 0]
        first = mask.to(torch.int8).argmax(-1)
        safe = torch.where(allowed, actions, first).reshape(b * n, -1)
        flat_rows = rows[:, None].expand(b, n, rows.shape[-1]).reshape(b * n, -1)
        succ, prob = self.world.transitions(flat_rows, safe)
        succ = succ.to(self.device).reshape(b, n, *succ.shape[1:])
        prob = prob.to(self.device, torch.float32).reshape(b, n, -1)
        td = TensorDict({STATE: succ}, batch_size=succ.shape[:3], device=self.device)
        return td, prob * allowed.all(-1)[..., None]

    def complete(self, succ: TensorDict) -> TensorDict:
        """Successor rows are complete states."""
        return succ

    def layer(self, states: TensorDict) -> Int64[Tensor, "*batch"]:
        """The layer column of the rows (the time step), clamped to the bounds."""
        if self.layer_column is None:
            return super().layer(states)
        layer = states.get(STATE)[..., self.layer_column]
        return layer.clamp(0, self.num_layers - 1)

    def distinct(self, succ: TensorDict, prob: Probs) -> tuple[TensorDict, Index]:
        """Distinct successor rows of positive probability, identified by their
        64-bit hash (:func:`empo.worlds.hashing.hash_rows`; two distinct rows of one
        batch collide with probability about ``n² / 2^65``). Zero-probability
        entries point at row 0."""
        rows = succ.get(STATE)
        flat = rows.reshape(-1, rows.shape[-1])
        valid = prob.reshape(-1) > 0
        valid[0] = True
        kept = flat[valid]
        keys, inverse_valid = torch.unique(hash_rows(kept), return_inverse=True)
        first = torch.zeros(keys.shape[0], dtype=torch.long, device=self.device)
        first.scatter_(
            0, inverse_valid, torch.arange(kept.shape[0], device=self.device)
        )
        inverse = torch.zeros(flat.shape[0], dtype=torch.long, device=self.device)
        inverse[valid] = inverse_valid
        return self.states(kept[first]), inverse.reshape(prob.shape)
