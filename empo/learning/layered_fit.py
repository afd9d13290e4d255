"""One phase's layer fits in the layered schedule (:mod:`empo.learning.layered`):
fixed targets once per layer, the output shifted to their mean, then regression."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn

from empo.learning.data import STATE, STATE_ID, WorldData

__all__ = ["LayeredFit", "TARGET_CHUNK"]

TARGET_CHUNK = 256
"""States whose targets are computed at once."""


def _expand(alive: Tensor, dim: int) -> Tensor:
    """``alive [B]`` broadcastable to ``dim`` dimensions."""
    return alive.reshape(-1, *([1] * (dim - 1)))


def _log_neg(value: Tensor) -> Tensor:
    return torch.log((-value).clamp_min(1e-30))


_REGRESSED: dict[str, tuple[str, str, Callable, Callable]] = {
    "q_network": (
        "q_m",
        "q_m_target",
        lambda x: x,
        lambda data, s: data.human_mask(s)[:, :, None, :]
        & data.goal_mask[None, :, :, None],
    ),
    "ve_network": (
        "v_e",
        "v_e_target",
        lambda x: x,
        lambda data, s: data.goal_mask[None],
    ),
    "qr_network": ("log_neg_q_r", "q_r_target", _log_neg, WorldData.robot_mask),
    "vr_network": (
        "log_neg_v_r",
        "v_r_target",
        _log_neg,
        lambda data, s: torch.ones(s.shape[0], dtype=torch.bool, device=data.device),
    ),
}
"""Per network regressed on a fixed target by :class:`LayeredFit`: its output key
(name in the loss's ``tensor_keys``), the target key, the map of the target into
the output's space and the mask of the entries regressed (the actor's logits are
shift-invariant and have none)."""


def _output_bias(network: nn.Module, params: TensorDictBase) -> Tensor:
    """The functional parameter holding the bias of ``network``'s last linear
    layer (its output layer)."""
    names = [
        name
        for name, module in network.named_modules()
        if isinstance(module, nn.Linear)
    ]
    return params.get(tuple(f"{names[-1]}.bias".split(".")))


class LayeredFit:
    """Fit one phase's :class:`LayeredNetwork`\\ s layer by layer, last layer first
    (module docstring, step 3), with a complete ``state_dict``.

    Parameters
    ----------
    name
        ``"phase1"`` or ``"phase2"``.
    loss
        The phase's loss; its networks are :class:`LayeredNetwork`\\ s.
    networks
        Names of the loss's functional networks (``"q_network"``, ...).
    targets
        ``states -> {target key: tensor}`` at states of one layer.
    knobs
        The phase's parameter block (``layer_updates``, ``batch_size``,
        ``learning_rate``, ``learning_rate_decay``).
    data
        The data source.
    generator
        Generator of the batches.
    """

    def __init__(
        self,
        name: str,
        loss: Any,
        networks: list[str],
        targets: Callable[[TensorDict], dict[str, Tensor]],
        knobs: Any,
        data: WorldData,
        generator: torch.Generator,
    ):
        self.name = name
        self.loss = loss
        self.networks = networks
        self.targets = targets
        self.knobs = knobs
        self.data = data
        self.generator = generator
        self.keys = [STATE, STATE_ID] if data.enumerated else [STATE]
        self.next_layer = data.num_layers - 1
        self.passes = 0
        self.fitted: set[int] = set()
        self.grad_steps = 0
        self.backups = 0
        self.target_seconds = 0.0
        self.update_seconds = 0.0

    def _parameters(self, layer: int) -> list[TensorDict]:
        """The functional parameters of each network's sub-network ``layer``."""
        return [
            getattr(self.loss, f"{net}_params").get(("layers", str(layer)))
            for net in self.networks
        ]

    @torch.no_grad()
    def _warm_start(self, layer: int) -> None:
        """Copy the sub-networks of ``layer + 1`` into ``layer`` (once per layer)."""
        if layer in self.fitted or layer + 1 not in self.fitted:
            return
        for mine, later in zip(self._parameters(layer), self._parameters(layer + 1)):
            for key, value in mine.items(True, True):
                value.copy_(later.get(key))

    @torch.no_grad()
    def _dataset(self, states: TensorDict) -> TensorDict:
        """``states`` with their fixed targets."""
        parts = []
        for chunk in states.split(TARGET_CHUNK):
            chunk = chunk.select(*self.keys)
            parts.append(chunk.update(self.targets(chunk)))
        return torch.cat(parts)

    @torch.no_grad()
    def _calibrate(self, layer: int, dataset: TensorDict) -> None:
        """Shift each regressed output of ``layer``'s sub-networks by the mean
        error of its prediction on ``dataset`` (the bias of the output layer): a
        constant the regression would otherwise take many steps to learn (e.g.
        ``log(−Q_r)`` about −23 one step before the horizon, where ``V_r`` is
        ``terminal_v_r``, against about 0 one step earlier)."""
        loss, data = self.loss, self.data
        states = dataset.select(*self.keys)
        alive = ~data.terminal(states)
        for net in self.networks:
            spec = _REGRESSED.get(net)
            if spec is None:
                continue
            output, target_key, transform, mask_of = spec
            target = transform(dataset.get(target_key))
            network = getattr(loss, net)
            pred = loss.evaluate(
                network,
                getattr(loss, f"{net}_params"),
                states,
                getattr(loss.tensor_keys, output),
            )
            mask = mask_of(data, states) & _expand(alive, pred.dim())
            mask = mask & target.isfinite() & pred.isfinite()
            if not bool(mask.any()):
                continue
            shift = float((target - pred)[mask].mean())
            params = self._parameters(layer)[self.networks.index(net)]
            bias = _output_bias(network.layers[layer], params)
            bias.add_(shift)

    def fit_layer(self, layer: int, states: TensorDict) -> dict[str, float]:
        """Targets of ``states`` (non-terminal states of ``layer``), then
        ``layer_updates`` steps on them. Returns the mean loss terms of the last
        tenth of the steps."""
        knobs = self.knobs
        start = time.perf_counter()
        self._warm_start(layer)
        dataset = self._dataset(states)
        self._calibrate(layer, dataset)
        fitted = time.perf_counter()
        leaves = [
            value
            for params in self._parameters(layer)
            for value in params.values(True, True)
        ]
        optimizer = torch.optim.Adam(leaves, lr=knobs.learning_rate, foreach=True)
        steps = knobs.layer_updates
        decay = knobs.learning_rate_decay ** (1.0 / steps)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)
        totals: dict[str, float] = {}
        tail = max(1, steps // 10)
        n = dataset.shape[0]
        for step in range(steps):
            pick = torch.randint(
                n, (min(knobs.batch_size, n),), generator=self.generator
            ).to(self.data.device)
            losses = self.loss(dataset[pick])
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            schedule.step()
            if step >= steps - tail:
                for key, value in losses.items():
                    totals[key] = totals.get(key, 0.0) + float(value.detach()) / tail
        self.fitted.add(layer)
        self.grad_steps += steps
        self.backups += n
        self.target_seconds += fitted - start
        self.update_seconds += time.perf_counter() - fitted
        return {f"{self.name}/{key}": value for key, value in totals.items()}

    def stats(self) -> dict[str, int | float]:
        """States fitted, gradient steps and seconds, keyed ``"<name>/<what>"``."""
        return {
            f"{self.name}/grad_steps": self.grad_steps,
            f"{self.name}/backups": self.backups,
            f"{self.name}/target_seconds": self.target_seconds,
            f"{self.name}/update_seconds": self.update_seconds,
        }

    def state_dict(self) -> dict[str, Any]:
        """Networks, progress, counters and the batch generator."""
        return {
            "loss": self.loss.state_dict(),
            "generator": self.generator.get_state(),
            "next_layer": self.next_layer,
            "passes": self.passes,
            "fitted": sorted(self.fitted),
            "grad_steps": self.grad_steps,
            "backups": self.backups,
            "target_seconds": self.target_seconds,
            "update_seconds": self.update_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.loss.load_state_dict(state["loss"])
        self.generator.set_state(state["generator"])
        self.next_layer = state["next_layer"]
        self.passes = state["passes"]
        self.fitted = set(state["fitted"])
        self.grad_steps = state["grad_steps"]
        self.backups = state["backups"]
        self.target_seconds = state["target_seconds"]
        self.update_seconds = state["update_seconds"]
