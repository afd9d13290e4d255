"""One TorchRL environment over any world model (the "sample what happens" face).

:class:`WorldEnv` runs copies of a :class:`~empo.worlds.base.WorldModel` (or of a
tabular or compiled world, whose state rows are its compiled state ids, see
:mod:`empo.worlds.rows`). It is stateless in the TorchRL sense (the state row travels
in the tensordict) and draws every successor from exactly the distribution that
``world.transitions`` enumerates, with the environment's own seedable generator (a
world that samples one successor directly, :class:`~empo.worlds.capabilities.
SamplesSuccessors`, is asked for that instead: the same distribution, faster).

Keys (:mod:`empo.envs.keys`, ``B`` the batch shape, possibly empty):

* ``"state"`` ``[*B, dim]``: the state row;
* ``("humans", ...)`` (batch ``[*B, H]``) and ``("robots", ...)`` (``[*B, R]``):
  ``"action"`` ``[*B, n]`` per-agent action index; ``"action_mask"`` ``[*B, n,
  A_max]``; ``"reward"`` ``[*B, n, 1]``; ``"done"``, ``"terminated"`` ``[*B, n, 1]``;
  the humans' ``"goal"`` ``[*B, H]``, drawn at reset with probabilities proportional
  to the goal weights unless given in the reset tensordict, and fixed for the episode;
* ``"done"``, ``"terminated"`` ``[*B, 1]``: the successor is terminal.

Rewards: a human's is ``U_h(s', g_h) = 1[s' ∈ g_h]`` (THEORY.md); the robots get 0
from the world (their objective is added by :class:`~empo.envs.power_reward.
PowerReward`).

Actions are never silently changed. The masks are observations in the form TorchRL's
``ActionMask`` transform reads, and the environment also keeps its action specs'
masks up to date, so ``env.rand_action()`` and rollouts without a policy draw allowed
actions only. A disallowed action is rejected with a ``ValueError`` naming the agent,
the action and the state. A terminal state has no action in the world model; the
environment lets every action there (it does nothing: a terminal row stays where it
is, with reward 0 and ``done``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Bool, Int64
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from empo.envs import keys
from empo.goals import sample_goal_profiles
from empo.worlds.capabilities import SamplesSuccessors
from empo.worlds.rows import world_model

__all__ = ["WorldEnv"]


class WorldEnv(EnvBase):
    """TorchRL environment: a batch of independent copies of one world.

    Parameters
    ----------
    world
        A world model, or a tabular or compiled world (rows ``[state_id]``).
    batch_size
        Batch shape (an int, a shape, or ``()`` for an unbatched environment).
    device
        Device of states, specs and the sampling generator.
    seed
        Seed of the sampling generator (``None``: nondeterministic).
    """

    def __init__(
        self,
        world: Any,
        batch_size: int | tuple[int, ...] | torch.Size = (),
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        size = (batch_size,) if isinstance(batch_size, int) else tuple(batch_size)
        super().__init__(device=device, batch_size=torch.Size(size))
        self.world = world_model(world)
        model = self.world
        self.counts = tuple(len(names) for names in model.action_names)
        self.groups = {
            group: torch.tensor(agents, device=self.device)
            for group, agents in (
                (keys.HUMANS, model.humans),
                (keys.ROBOTS, model.robots),
            )
            if agents
        }
        self.max_actions = {
            group: max(self.counts[int(a)] for a in index)
            for group, index in self.groups.items()
        }
        self.goal_weights = model.goal_weights.to(self.device, torch.float64)
        self.initial_state = model.initial_states()[0].to(self.device, torch.int64)
        self.state_dim = int(self.initial_state.shape[0])
        allowed = torch.zeros(len(self.counts), max(self.counts), dtype=torch.bool)
        for agent, count in enumerate(self.counts):
            allowed[agent, :count] = True
        self.any_action = allowed.to(self.device)
        self.rng = torch.Generator(device=self.device)
        self._set_seed(seed)
        self._make_specs()

    @property
    def num_humans(self) -> int:
        """Number of humans ``H``."""
        return len(self.world.humans)

    @property
    def num_robots(self) -> int:
        """Number of robots ``R``."""
        return len(self.world.robots)

    @property
    def num_rows(self) -> int:
        """Number of environments (product of the batch shape)."""
        return math.prod(self.batch_size)

    def _group_spec(self, group: str, n: int, extra: dict[str, Any]) -> Composite:
        b = self.batch_size
        a = self.max_actions[group]
        return Composite(
            action_mask=Categorical(2, (*b, n, a), dtype=torch.bool),
            **extra,
            shape=(*b, n),
            device=self.device,
        )

    def _make_specs(self) -> None:
        b = self.batch_size
        sizes = {group: len(index) for group, index in self.groups.items()}
        extra = self._observation_specs()
        if keys.HUMANS in sizes:
            goals = self.goal_weights.shape[1]
            goal = Bounded(0, goals - 1, (*b, sizes[keys.HUMANS]), dtype=torch.int64)
            extra[keys.HUMANS] = {keys.GOAL: goal, **extra.get(keys.HUMANS, {})}
        groups = {
            group: self._group_spec(group, n, extra.pop(group, {}))
            for group, n in sizes.items()
        }
        self.observation_spec = Composite(
            state=Unbounded((*b, self.state_dim), dtype=torch.int64),
            **groups,
            **extra,
            shape=b,
            device=self.device,
        )

        def per_group(make: Any) -> Composite:
            return Composite(
                {
                    group: Composite(**make(group, n), shape=(*b, n))
                    for group, n in sizes.items()
                },
                shape=b,
                device=self.device,
            )

        def flags(*shape: int) -> dict[str, Categorical]:
            return {
                keys.DONE: Categorical(2, shape, dtype=torch.bool),
                keys.TERMINATED: Categorical(2, shape, dtype=torch.bool),
            }

        self.action_spec = per_group(
            lambda group, n: {
                keys.ACTION: Categorical(
                    self.max_actions[group], (*b, n), dtype=torch.int64
                )
            }
        )
        self.reward_spec = per_group(
            lambda group, n: {keys.REWARD: Unbounded((*b, n, 1), dtype=torch.float32)}
        )
        done = per_group(lambda group, n: flags(*b, n, 1))
        done.update(flags(*b, 1))
        self.done_spec = done

    def _observation_specs(self) -> dict[str, Any]:
        """Specs of a subclass's further observations: root entries by name, entries
        of a group under ``{"humans": {...}}`` / ``{"robots": {...}}``."""
        return {}

    def _observations(
        self, states: Int64[Tensor, "n dim"]
    ) -> dict[str, Tensor | dict[str, Tensor]]:
        """A subclass's further observations of flat rows (layout as in
        :meth:`_observation_specs`, leading axis ``n``)."""
        return {}

    def _set_seed(self, seed: int | None) -> None:
        if seed is None:
            self.rng.seed()
        else:
            self.rng.manual_seed(int(seed))

    def _masks(
        self, states: Int64[Tensor, "n dim"]
    ) -> Bool[Tensor, "n agent max_action"]:
        """Allowed actions per agent; every action at terminal rows."""
        mask = self.world.action_mask(states).to(self.device)
        width = self.any_action.shape[1]
        if mask.shape[-1] < width:
            mask = torch.nn.functional.pad(mask, (0, width - mask.shape[-1]))
        mask = mask[..., :width] & self.any_action
        terminal = self.world.is_terminal(states).to(self.device)
        return torch.where(terminal[:, None, None], self.any_action, mask)

    def _observe(
        self,
        states: Int64[Tensor, "n dim"],
        goal: Int64[Tensor, "n human"],
        done: Bool[Tensor, " n"],
        rows: Bool[Tensor, " n"] | None = None,
    ) -> TensorDict:
        """Observation and done entries of flat rows, reshaped to the batch; the
        action specs' masks are updated at ``rows`` (all when ``None``)."""
        n = states.shape[0]
        mask = self._masks(states)
        extra = self._observations(states)
        groups = {}
        for group, index in self.groups.items():
            count = len(index)
            flag = done[:, None, None].expand(n, count, 1)
            groups[group] = TensorDict(
                {
                    keys.ACTION_MASK: mask[:, index, : self.max_actions[group]],
                    keys.DONE: flag,
                    keys.TERMINATED: flag.clone(),
                    **extra.pop(group, {}),
                },
                batch_size=(n, count),
                device=self.device,
            )
        if keys.HUMANS in groups:
            groups[keys.HUMANS].set(keys.GOAL, goal)
        out = TensorDict(
            {
                keys.STATE: states,
                keys.DONE: done[:, None],
                keys.TERMINATED: done[:, None].clone(),
                **groups,
                **extra,
            },
            batch_size=(n,),
            device=self.device,
        )
        for group in self.groups:
            spec = self.full_action_spec[group, keys.ACTION]
            mask = out.get((group, keys.ACTION_MASK))
            if rows is not None and spec.mask is not None:
                old = spec.mask.reshape(mask.shape)
                mask = torch.where(rows[:, None, None], mask, old)
            spec.update_mask(mask.reshape(*self.batch_size, *mask.shape[1:]))
        return out.reshape(self.batch_size)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDict:
        n = self.num_rows
        states = self.initial_state.expand(n, -1).clone()
        goal = sample_goal_profiles(self.goal_weights, n, self.rng)
        reset = None
        if tensordict is not None:
            given = tensordict.get(keys.HUMAN_GOAL, None)
            if given is not None:
                goal = given.reshape(n, -1).to(self.device, torch.int64)
                self._check_goals(goal)
            reset = self._reset_rows(tensordict)
            old = tensordict.get(keys.STATE, None)
            if reset is not None and old is not None:
                states = torch.where(reset[:, None], states, old.reshape(n, -1))
        done = self.world.is_terminal(states).to(self.device)
        return self._observe(states, goal, done, reset)

    def _reset_rows(self, tensordict: TensorDictBase) -> Bool[Tensor, " n"] | None:
        """Rows flagged by any ``"_reset"`` entry (root or group), or ``None``."""
        n = self.num_rows
        found = None
        for key in ("_reset", *((group, "_reset") for group in self.groups)):
            flag = tensordict.get(key, None)
            if flag is not None:
                rows = flag.reshape(n, -1).any(-1).to(self.device)
                found = rows if found is None else found | rows
        return found

    def _check_goals(self, goal: Int64[Tensor, "n human"]) -> None:
        if goal.shape[1] != self.num_humans:
            raise ValueError(
                f"('humans', 'goal') has {goal.shape[1]} entries per environment; "
                f"the world has {self.num_humans} humans"
            )
        weights = self.goal_weights.T[None].expand(goal.shape[0], -1, -1)
        valid = (goal >= 0) & (goal < self.goal_weights.shape[1])
        safe = goal.clamp(0, self.goal_weights.shape[1] - 1)
        valid &= weights.gather(1, safe[:, None]).squeeze(1) > 0
        if not bool(valid.all()):
            row, human = (~valid).nonzero()[0].tolist()
            raise ValueError(
                f"('humans', 'goal') = {int(goal[row, human])} is not a goal of human "
                f"{self.world.agents[self.world.humans[human]]!r} (environment {row})"
            )

    def _profile(self, tensordict: TensorDictBase) -> Int64[Tensor, "n agent"]:
        """Per-agent actions in agent order from the two groups' actions."""
        n = self.num_rows
        actions = torch.zeros(
            n, len(self.counts), dtype=torch.int64, device=self.device
        )
        for group, index in self.groups.items():
            action = tensordict.get((group, keys.ACTION))
            actions[:, index] = action.reshape(n, -1).to(self.device)
        return actions

    def _check_actions(
        self, states: Int64[Tensor, "n dim"], actions: Int64[Tensor, "n agent"]
    ) -> None:
        """Raise on the first disallowed action (the message names it)."""
        mask = self._masks(states)
        width = mask.shape[-1]
        inside = (actions >= 0) & (actions < width)
        safe = actions.clamp(0, width - 1)
        ok = inside & mask.gather(2, safe[..., None]).squeeze(-1)
        if bool(ok.all()):
            return
        row, agent = (~ok).nonzero()[0].tolist()
        action = int(actions[row, agent])
        names = self.world.action_names[agent]
        allowed = [names[a] for a in mask[row, agent].nonzero().flatten().tolist()]
        name = names[action] if 0 <= action < len(names) else "no such action"
        raise ValueError(
            f"agent {self.world.agents[agent]!r} may not take action {action} "
            f"({name}) in state {states[row].tolist()}; allowed: {allowed}. Mask "
            "the policy with the group's 'action_mask' (e.g. torchrl's ActionMask)"
        )

    def _successors(
        self, states: Int64[Tensor, "n dim"], actions: Int64[Tensor, "n agent"]
    ) -> Int64[Tensor, "n dim"]:
        """One successor per row, drawn from ``world.transitions``."""
        if isinstance(self.world, SamplesSuccessors):
            return self.world.sample(states, actions, self.rng).to(self.device)
        succ, prob = self.world.transitions(states, actions)
        pick = torch.multinomial(prob.to(self.device), 1, generator=self.rng)
        succ = succ.to(self.device)
        return succ.gather(1, pick[..., None].expand(-1, 1, succ.shape[-1]))[:, 0]

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        n = self.num_rows
        states = tensordict.get(keys.STATE).reshape(n, -1).to(self.device)
        goal = tensordict.get(keys.HUMAN_GOAL, None)
        if goal is None:
            goal = torch.zeros(n, 0, dtype=torch.int64, device=self.device)
        goal = goal.reshape(n, -1).to(self.device)
        actions = self._profile(tensordict)
        self._check_actions(states, actions)
        live = ~self.world.is_terminal(states).to(self.device)
        following = states.clone()
        if bool(live.any()):
            following[live] = self._successors(states[live], actions[live])
        done = self.world.is_terminal(following).to(self.device)
        out = self._observe(following, goal, done)
        member = self.world.goal_membership(following).to(self.device)
        reached = member.gather(2, goal[..., None]).squeeze(-1) & live[:, None]
        rewards = {
            keys.HUMANS: reached.float(),
            keys.ROBOTS: torch.zeros(n, self.num_robots, device=self.device),
        }
        for group in self.groups:
            value = rewards[group].reshape(*self.batch_size, -1, 1)
            out.set((group, keys.REWARD), value)
        return out
