"""The TorchRL environment of a :class:`TransportWorld`: :class:`~empo.envs.world_env.
WorldEnv` plus the humans' goal membership.

Keys as in :class:`~empo.envs.world_env.WorldEnv` (state row, ``"humans"``/``"robots"``
groups with per-agent actions, masks, rewards and done flags, the humans' ``"goal"``),
and ``("humans", "goal_membership")`` ``[*B, H, G]``: which goals each human is in.
Agents in transit may only ``wait``: the masks say so, and a disallowed action is
rejected with an error (never replaced).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Int64
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.data import Categorical

from empo.envs import keys
from empo.envs.world_env import WorldEnv
from empo.worlds.transport.dynamics import TransportWorld


class TransportEnv(WorldEnv):
    """Batched, device-aware sampler of a transport world.

    Parameters
    ----------
    world
        The explicit world model.
    batch_size
        Batch shape (default: unbatched).
    device
        Device of all tensors.
    seed
        Seed of the outcome sampler.
    """

    def __init__(
        self,
        world: TransportWorld,
        batch_size: int | tuple[int, ...] | torch.Size = (),
        device: torch.device | str = "cpu",
        seed: int | None = 0,
    ) -> None:
        super().__init__(world, batch_size, device, seed)

    def _observation_specs(self) -> dict[str, Any]:
        b, goals = self.batch_size, self.goal_weights.shape[1]
        membership = Categorical(2, (*b, self.num_humans, goals), dtype=torch.bool)
        return {keys.HUMANS: {"goal_membership": membership}}

    def _observations(
        self, states: Int64[Tensor, "n dim"]
    ) -> dict[str, Tensor | dict[str, Tensor]]:
        member = self.world.goal_membership(states).to(self.device)
        return {keys.HUMANS: {"goal_membership": member}}

    def render(self, tensordict: TensorDictBase) -> np.ndarray:
        """RGB frames ``[*B, height, width, 3]`` of the states in ``tensordict``."""
        states = tensordict.get(keys.STATE)
        flat = states.reshape(-1, states.shape[-1]).cpu()
        frames = np.stack([self.world.render_state(s) for s in flat])
        return frames.reshape(*states.shape[:-1], *frames.shape[1:])
