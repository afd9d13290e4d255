"""Batched TorchRL environment over a :class:`TransportWorld` (the sampling face).

The environment samples exactly the explicit distribution of
:meth:`TransportWorld.transitions`: at every step it enumerates the successors of
each (state, joint action) and draws one with :func:`torch.multinomial` from the
environment's own seedable generator. Keys:

* ``"state"``: ``[*batch, state_dim]`` integer state (see :mod:`.dynamics`);
* ``"action_mask"``: ``[*batch, agent, max_action]`` allowed actions;
* ``"goal_membership"``: ``[*batch, human, goal]`` goals the humans are in;
* ``"action"``: ``[*batch, agent]`` per-agent action indices (a disallowed action
  is replaced by the agent's first allowed one, normally ``wait``);
* ``"reward"``: always 0 (the theory's robot gets no reward from the world);
* ``"done"`` / ``"terminated"``: the horizon is reached.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Bounded, Categorical, Composite, MultiCategorical
from torchrl.data import Unbounded
from torchrl.envs import EnvBase

from empo.worlds.transport.dynamics import TransportWorld


class TransportEnv(EnvBase):
    """Batched, device-aware sampler of a transport world.

    Parameters
    ----------
    world
        The explicit world model.
    batch_size
        Batch shape of the environment (default: unbatched).
    device
        Device of all tensors.
    seed
        Seed of the outcome sampler.
    """

    def __init__(
        self,
        world: TransportWorld,
        batch_size: tuple[int, ...] | torch.Size = (),
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=torch.Size(batch_size), device=device)
        self.world = world
        shape = self.batch_size
        n_agents = len(world.agents)
        n_goals = world.goal_weights.shape[1]
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        nodes = world.network.num_nodes
        steps = torch.cat([world.drive_steps, world.walk_steps])
        high = max(
            world.horizon,
            nodes,
            world.network.num_edges,
            world.n_vehicles,
            int(steps.max()),
        )
        self.observation_spec = Composite(
            state=Bounded(
                low=-1,
                high=high,
                shape=(*shape, world.state_dim),
                dtype=torch.int64,
                device=self.device,
            ),
            action_mask=Binary(
                shape=(*shape, n_agents, world.max_actions),
                dtype=torch.bool,
                device=self.device,
            ),
            goal_membership=Binary(
                shape=(*shape, world.n_humans, n_goals),
                dtype=torch.bool,
                device=self.device,
            ),
            shape=shape,
            device=self.device,
        )
        sizes = torch.tensor([len(a) for a in world.action_names])
        self.action_spec = MultiCategorical(
            nvec=sizes.expand(*shape, n_agents),
            shape=(*shape, n_agents),
            device=self.device,
            remove_singleton=False,
        )
        self.reward_spec = Unbounded(shape=(*shape, 1), device=self.device)
        self.done_spec = Composite(
            done=Categorical(
                2, shape=(*shape, 1), dtype=torch.bool, device=self.device
            ),
            terminated=Categorical(
                2, shape=(*shape, 1), dtype=torch.bool, device=self.device
            ),
            shape=shape,
            device=self.device,
        )

    def _observe(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """Observation and done entries of a batch of states ``[*batch, dim]``."""
        flat = states.reshape(-1, self.world.state_dim)
        shape = states.shape[:-1]
        done = self.world.is_terminal(flat).reshape(*shape, 1)
        return {
            "state": states,
            "action_mask": self.world.action_mask(flat).reshape(
                *shape, *self.observation_spec["action_mask"].shape[-2:]
            ),
            "goal_membership": self.world.goal_membership(flat).reshape(
                *shape, *self.observation_spec["goal_membership"].shape[-2:]
            ),
            "done": done,
            "terminated": done.clone(),
        }

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDict:
        """Reset (all, or the rows flagged by ``"_reset"``) to the initial state."""
        initial = self.world.initial_states()[0].to(self.device)
        states = initial.expand(*self.batch_size, -1).clone()
        previous = None if tensordict is None else tensordict.get("state", None)
        if previous is not None and "_reset" in tensordict.keys():
            keep = ~tensordict["_reset"].reshape(*self.batch_size, 1)
            states = torch.where(keep, previous, states)
        return TensorDict(
            self._observe(states), batch_size=self.batch_size, device=self.device
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        """Sample one successor per batch row from the explicit distribution."""
        dim = self.world.state_dim
        states = tensordict["state"].reshape(-1, dim)
        actions = tensordict["action"].reshape(states.shape[0], -1)
        successors, probs = self.world.transitions(states, actions)
        index = torch.multinomial(probs, 1, generator=self._generator)
        chosen = successors.gather(1, index.unsqueeze(-1).expand(-1, 1, dim))
        out = self._observe(chosen.reshape(*self.batch_size, dim))
        out["reward"] = torch.zeros(*self.batch_size, 1, device=self.device)
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    def _set_seed(self, seed: int | None) -> None:
        """Reseed the outcome sampler."""
        self._generator.manual_seed(0 if seed is None else int(seed))
