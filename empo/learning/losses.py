"""What the loss modules of both phases share (TorchRL ``LossModule`` subclasses).

The losses (:mod:`empo.learning.phase1`, :mod:`empo.learning.phase2`,
:mod:`empo.learning.actor_critic`) read a batch of states from a TensorDict (keys configurable with
:meth:`~torchrl.objectives.LossModule.set_keys`, as in TorchRL), call their networks
through their keys, and compute their targets with :mod:`empo.learning.targets` from
the data source (:mod:`empo.learning.data`), whatever it is:

* ``expected`` targets average over *all* successors with their probabilities, so
  the only noise is which states are in the batch (and, on worlds reached by rows,
  which action profiles were drawn);
* ``sampled`` targets draw one successor per (state, action profile), as a
  model-free learner would see it, and rely on averaging over updates.

The bootstrapped values at successors come from target networks
(``target_<name>_params``, updated by :class:`torchrl.objectives.SoftUpdate`), or,
for lookup tables, from the tables themselves. All equations go through
:mod:`empo.theory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from jaxtyping import Bool, Float, Int64
from tensordict import NestedKey, TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import Tensor
from torchrl.objectives import LossModule

from empo import theory
from empo.learning.data import STATE, STATE_ID, WorldData
from empo.learning.layered_network import LayeredNetwork
from empo.parameters.theory import TheoryParameters

__all__ = [
    "EmpoLoss",
    "HumanPolicy",
    "TargetOptions",
    "X_FLOOR",
    "human_policy_and_value",
    "log_q_loss",
    "masked_mse",
]

X_FLOOR = 1e-8
"""Floor on ``X_h`` inside eq. (8) of training targets, so that a network still near
its random initialisation cannot produce ``U_r = -inf``; it is far below any ``X_h``
of a human who can reach a goal."""

HumanPolicy = Callable[[TensorDict], Float[Tensor, "batch human goal action"]]


@dataclass(frozen=True)
class TargetOptions:
    """How a loss computes its targets and its error (a phase's knobs).

    Attributes
    ----------
    samples
        ``M``, action profiles drawn per state where the data source samples them.
    sampled
        Sampled instead of expected successors.
    generator
        Random generator of the profiles and successor draws.
    tabular
        The networks are lookup tables: targets bootstrap from the tables
        themselves (no target copy, as in tabular TD learning) and losses are half
        the summed squared error (:func:`masked_mse`).
    """

    samples: int = 1
    sampled: bool = False
    generator: torch.Generator | None = None
    tabular: bool = False


def masked_mse(
    pred: Float[Tensor, "*shape"],
    target: Float[Tensor, "*shape"],
    mask: Bool[Tensor, "*shape"],
    tabular: bool = False,
) -> Tensor:
    """Squared error over the entries where ``mask`` holds (0 if none).

    The three tensors must have one shape: broadcasting (e.g. ``[3, 1]`` against
    ``[1, 5]``) would compare the wrong entries, so it raises ``ValueError``.

    The mean for networks; for lookup tables (``tabular``) half the sum, whose
    gradient on each entry is that entry's error, so that an SGD step of rate ``α``
    is the tabular update ``y ← y + α (target − y)`` (see :mod:`empo.learning.trainer`).
    """
    if not pred.shape == target.shape == mask.shape:
        raise ValueError(
            f"masked_mse needs one shape, got pred {tuple(pred.shape)}, target "
            f"{tuple(target.shape)}, mask {tuple(mask.shape)} (no broadcasting)"
        )
    weight = mask.to(pred.dtype)
    squared = ((pred - target).pow(2) * weight).sum()
    if tabular:
        return 0.5 * squared
    return squared / weight.sum().clamp_min(1.0)


def human_policy_and_value(
    q_m: Float[Tensor, "batch human goal action"],
    mask: Bool[Tensor, "batch human action"],
    reached: Bool[Tensor, "batch human goal"],
    alive: Bool[Tensor, " batch"],
    rest_action: Int64[Tensor, " human"],
    theory_params: TheoryParameters,
) -> dict[str, Tensor]:
    """``q_m`` (0 at disallowed actions), ``pi_h`` (eq. 2) and ``v_m`` (eq. 3, 0 at
    terminal states) from the cautious action values of eq. (1)."""
    q_m = q_m * mask[:, :, None, :]
    pi_h = theory.human_policy(
        q_m,
        theory_params.beta_h,
        mask[:, :, None, :],
        nu_h=theory_params.nu_h,
        reached=reached,
        rest_action=rest_action[None, :, None],
    )
    v_m = theory.human_value(pi_h, q_m) * alive[:, None, None]
    return {"q_m": q_m, "pi_h": pi_h, "v_m": v_m}


def log_q_loss(
    log_pred: Float[Tensor, "batch a_r"],
    q_target: Float[Tensor, "batch a_r"],
    mask: Bool[Tensor, "batch a_r"],
    advantage_weight: float,
    tabular: bool = False,
) -> Tensor:
    """Error of a ``log(-Q_r)`` prediction against a ``Q_r`` target (eq. 12).

    Per state, the squared mean error over the allowed robot actions plus
    ``advantage_weight`` times the mean squared deviation from that mean (the part
    eq. (5) reads); averaged over states with an allowed action. For lookup tables
    (``tabular``) half the sum over states of that count times, so that the gradient
    on each entry is its mean error plus ``advantage_weight`` times its deviation
    (the tabular update, as in :func:`masked_mse`).
    """
    weight = mask.to(log_pred.dtype)
    log_target = torch.log((-q_target).clamp_min(1e-30))
    log_target = torch.where(mask, log_target, log_pred.detach())
    error = (log_pred - log_target) * weight
    count = weight.sum(-1, keepdim=True).clamp_min(1.0)
    mean = error.sum(-1, keepdim=True) / count
    deviation = (error - mean) * weight
    live = (weight.sum(-1) > 0).to(log_pred.dtype)
    if tabular:
        squared = count.squeeze(-1) * mean.squeeze(-1).pow(2) * live
        return 0.5 * (squared + advantage_weight * deviation.pow(2).sum(-1)).sum()
    loss = (mean.squeeze(-1).pow(2) * live).sum() + advantage_weight * (
        deviation.pow(2).sum(-1) / count.squeeze(-1)
    ).sum()
    return loss / live.sum().clamp_min(1.0)


class EmpoLoss(LossModule):
    """What the losses of both phases share: the data source, the batch keys and
    calling a network with given parameters through its keys.

    Parameters
    ----------
    data
        The data source.
    theory_params
        Normative and behavioural parameters.
    options
        How targets are computed.
    """

    @dataclass
    class _AcceptedKeys:
        """Keys of the batch: ``state`` (rows) and ``state_id`` (compiled ids)."""

        state: NestedKey = STATE
        state_id: NestedKey = STATE_ID

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys

    def __init__(
        self,
        data: WorldData,
        theory_params: TheoryParameters,
        options: TargetOptions,
    ):
        super().__init__()
        self.data = data
        self.theory_params = theory_params
        self.samples = options.samples
        self.sampled = options.sampled
        self.generator = options.generator
        self.tabular = options.tabular
        self.in_keys = [STATE, STATE_ID] if data.enumerated else [STATE]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each loss's default keys are its own ``_AcceptedKeys``."""
        super().__init_subclass__(**kwargs)
        cls.default_keys = cls._AcceptedKeys

    def _forward_value_estimator_keys(self, **kwargs: NestedKey) -> None:
        """No value estimator: the keys are read directly."""

    def batch_states(self, tensordict: TensorDictBase) -> TensorDict:
        """The states of a batch under the data source's keys."""
        keys = self.tensor_keys
        values = {STATE: tensordict.get(keys.state)}
        if self.data.enumerated:
            values[STATE_ID] = tensordict.get(keys.state_id)
        return TensorDict(values, batch_size=tensordict.batch_size[:1])

    @staticmethod
    def evaluate(
        network: TensorDictModuleBase,
        params: TensorDictBase | None,
        states: TensorDict,
        key: NestedKey,
    ) -> Tensor:
        """``network``'s output ``key`` on ``states`` with ``params`` (its own
        parameters when ``None``), on a shallow copy of ``states``."""
        if isinstance(network, LayeredNetwork):
            return network.evaluate(params, states)
        if params is None:
            return network(states.copy()).get(key)
        with params.to_module(network):
            return network(states.copy()).get(key)
