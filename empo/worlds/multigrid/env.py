"""A batched TorchRL environment over a :class:`MultiGridWorld`.

The environment is stateless in the TorchRL sense: the integer state row (``"state"``)
travels in the tensordict, and :meth:`MultiGridEnv._step` samples the successor from
exactly the distribution that :meth:`MultiGridWorld.transitions` enumerates (same
code path, one outcome drawn per row with the env's seedable generator).

Keys (``B`` the batch size, ``n`` agents, ``H`` humans):

* ``("agents", "action")``: ``[B, n]`` action index per agent (one categorical per
  agent, the ``"agents"`` sub-tensordict having shape ``[B, n]``);
* observations: ``"state"`` ``[B, dim]``; ``"grid"`` ``[B, rows, cols, 3]`` with
  channels (terrain code, occupant: 0 none, 1 key, 2 block, 3 rock, 4 + i agent ``i``,
  door state or 3 where no door); ``("agents", "position")`` ``[B, n, 2]`` (x, y),
  ``("agents", "direction")``, ``("agents", "carrying")`` (key index or -1),
  ``("agents", "terminated")``; ``"time"`` ``[B, 1]``; ``"goal"`` ``[B, H]``, the goal
  index of each human (drawn at reset with probabilities proportional to the goal
  weights unless given in the reset tensordict);
* ``"reward"`` ``[B, H]``: 1 where a human stands in its goal after the step
  (``U_h``, THEORY.md); ``"done"``/``"terminated"`` ``[B, 1]``: ``t >= max_steps``.
"""

from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from empo.worlds.multigrid.dynamics import sample_successors
from empo.worlds.multigrid.world import MultiGridWorld


class MultiGridEnv(EnvBase):
    """TorchRL environment: a batch of independent copies of one MultiGrid world.

    Parameters
    ----------
    world
        The world model.
    batch_size
        Number of environments (an int or a one-element sequence).
    device
        Device of states and specs.
    seed
        Optional initial seed of the sampling generator.
    """

    def __init__(
        self,
        world: MultiGridWorld,
        batch_size: int | tuple[int, ...] | torch.Size = 1,
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        size = (batch_size,) if isinstance(batch_size, int) else tuple(batch_size)
        if len(size) != 1:
            raise ValueError(f"batch_size must be one-dimensional, got {size}")
        super().__init__(device=device, batch_size=torch.Size(size))
        self.world = world
        self.layout = world.layout.to(self.device)
        self.goal_cells = world.goal_cells.to(self.device)
        self.goal_weights = world.goal_weights.to(self.device)
        self.rng = torch.Generator(device=self.device)
        self._set_seed(seed)
        self._make_specs()

    def _make_specs(self) -> None:
        b, lay = self.batch_size, self.layout
        n, n_humans = lay.n_agents, len(self.world.humans)
        dev = self.device
        n_actions = len(self.world.action_names[0])
        span = max(lay.width, lay.height, lay.cells + 2, self.world.max_steps + 1)
        agents_obs = Composite(
            position=Bounded(
                0, max(lay.width, lay.height) - 1, (*b, n, 2), dtype=torch.long
            ),
            direction=Bounded(0, 3, (*b, n), dtype=torch.long),
            carrying=Bounded(-1, max(lay.n_keys - 1, 0), (*b, n), dtype=torch.long),
            terminated=Bounded(0, 1, (*b, n), dtype=torch.long),
            shape=(*b, n),
            device=dev,
        )
        self.observation_spec = Composite(
            state=Bounded(-1, span, (*b, lay.state_dim), dtype=torch.long),
            grid=Bounded(0, 4 + n, (*b, lay.height, lay.width, 3), dtype=torch.long),
            time=Bounded(0, self.world.max_steps, (*b, 1), dtype=torch.long),
            goal=Bounded(
                0,
                max(self.goal_cells.shape[0] - 1, 0),
                (*b, n_humans),
                dtype=torch.long,
            ),
            agents=agents_obs,
            shape=b,
            device=dev,
        )
        self.action_spec = Composite(
            agents=Composite(
                action=Categorical(n_actions, (*b, n), dtype=torch.long),
                shape=(*b, n),
            ),
            shape=b,
            device=dev,
        )
        self.reward_spec = Unbounded((*b, n_humans), dtype=torch.float32, device=dev)
        self.done_spec = Composite(
            done=Categorical(2, (*b, 1), dtype=torch.bool),
            terminated=Categorical(2, (*b, 1), dtype=torch.bool),
            shape=b,
            device=dev,
        )

    def _set_seed(self, seed: int | None) -> None:
        if seed is None:
            self.rng.seed()
        else:
            self.rng.manual_seed(int(seed))

    def _observe(self, states: torch.Tensor, goal: torch.Tensor) -> TensorDict:
        lay = self.layout
        n, w = lay.n_agents, lay.width
        batch = states.shape[0]
        pos = states[:, 1 : 1 + 4 * n : 4]
        cells = lay.cells
        occupant = torch.zeros(batch, cells + 2, dtype=torch.long, device=self.device)
        rows = torch.arange(batch, device=self.device).unsqueeze(1)
        keys = states[:, lay.key_col : lay.push_col]
        occupant[rows, torch.where(keys < 0, cells + 1, keys)] = 1
        blocks = states[:, lay.push_col : lay.push_col + lay.n_blocks]
        occupant[rows, blocks] = 2
        occupant[rows, states[:, lay.push_col + lay.n_blocks :]] = 3
        occupant[rows, pos] = 4 + torch.arange(n, device=self.device)
        door = lay.door_of_cell[:cells].expand(batch, cells)
        door_state = torch.full_like(door, 3)
        if lay.n_doors:
            door_state = torch.where(
                door >= 0, states.gather(1, lay.door_col + door.clamp(min=0)), 3
            )
        grid = torch.stack(
            [
                lay.terrain[:cells].expand(batch, cells),
                occupant[:, :cells],
                door_state,
            ],
            dim=-1,
        ).view(batch, lay.height, w, 3)
        agents = TensorDict(
            position=torch.stack([pos % w, pos // w], dim=-1),
            direction=states[:, 2 : 2 + 4 * n : 4],
            carrying=states[:, 4 : 4 + 4 * n : 4],
            terminated=states[:, 3 : 3 + 4 * n : 4],
            batch_size=(batch, n),
            device=self.device,
        )
        return TensorDict(
            state=states,
            grid=grid,
            time=states[:, :1],
            goal=goal,
            agents=agents,
            batch_size=(batch,),
            device=self.device,
        )

    def _sample_goals(self, batch: int) -> torch.Tensor:
        n_humans = self.goal_weights.shape[0]
        if n_humans == 0:
            return torch.zeros(batch, 0, dtype=torch.long, device=self.device)
        draws = torch.multinomial(
            self.goal_weights.float(), batch, replacement=True, generator=self.rng
        )
        return draws.T.contiguous()

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDict:
        batch = self.batch_size[0]
        states = self.world.initial_states().to(self.device).expand(batch, -1).clone()
        goal = self._sample_goals(batch)
        if tensordict is not None and "goal" in tensordict.keys():
            goal = tensordict.get("goal").to(self.device)
        if tensordict is not None and "_reset" in tensordict.keys():
            keep = ~tensordict.get("_reset").reshape(batch).to(self.device)
            if "state" in tensordict.keys():
                old = tensordict.get("state")
                states = torch.where(keep.unsqueeze(1), old, states)
        out = self._observe(states, goal)
        done = torch.zeros(batch, 1, dtype=torch.bool, device=self.device)
        out.set("done", done)
        out.set("terminated", done.clone())
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        states = tensordict.get("state")
        actions = tensordict.get(("agents", "action"))
        goal = tensordict.get("goal")
        nxt = sample_successors(self.layout, states, actions, self.rng)
        out = self._observe(nxt, goal)
        cells = self.world.human_cells(nxt)
        reached = self.goal_cells[goal, cells] if goal.numel() else goal.bool()
        out.set("reward", reached.float())
        done = (nxt[:, 0] >= self.world.max_steps).unsqueeze(1)
        out.set("done", done)
        out.set("terminated", done.clone())
        return out

    def render(self, tensordict: TensorDictBase) -> np.ndarray:
        """RGB frames ``[B, height, width, 3]`` of the states in ``tensordict``."""
        states = tensordict.get("state")
        return np.stack([self.world.render_state(s) for s in states.cpu()])
