"""Fitted backward induction: the learned solver's schedule for worlds with layers.

In a world whose states carry their layer (the time step of every MultiGrid and
transport world with a horizon, or the topological height of any acyclic compiled
world, :meth:`empo.learning.data.WorldData.layer`), every successor of a state lies in
a later layer. The exact solver exploits this by backward induction; this schedule
does the same with networks (``phase1.schedule = "layered"``, the default there):

1. **States.** :class:`LayerSampler` draws up to ``layer_states`` distinct states per
   layer by *branching rollouts*: starting from ``s_0``, every state of layer ``t``
   takes joint actions drawn uniformly from the allowed ones and one successor is
   drawn from the world model per action; the distinct successors (identified by id
   or row hash) form layer ``t + 1``, cut down to ``layer_states`` by a uniform draw
   among the distinct ones. Every state is thus reached by a trajectory of the
   world model from ``s_0`` (no enumeration), but the cut spreads each layer's
   sample over its reachable states instead of piling it up near the start as
   independent rollouts do (on key_door a uniformly random rollout reaches some
   states of layer 10 with probability 1e-13). With ``layer_passes > 1``, each
   further pass adds the states of rollouts of the solution so far (humans follow
   ``π_h`` for goal profiles redrawn every ``goal_resample_steps``, the robot eq. (5)
   mixed with ``epsilon_end`` uniform exploration, half of the episodes with the
   robot's most likely action instead and the humans resting), so the states the
   learned robot actually visits are fitted too, and fits every layer again from
   the previous pass's networks.
2. **Networks.** Each network is a :class:`LayeredNetwork`: one sub-network per
   layer (same encoding and head as the online scheme's), the state's layer picking
   which one answers.
3. **Backward pass.** Phase 1 and then phase 2 walk the layers from the last to the
   first. At layer ``t`` the targets of every sampled state are computed *once*
   with the losses' own target functions (:meth:`~empo.learning.phase1.Phase1Loss.
   target`, :meth:`~empo.learning.phase2.Phase2Loss.layer_targets`,
   :meth:`~empo.learning.actor_critic.ActorCriticLoss.layer_targets`): exact
   expectations over the successors and every action profile (enumerated from the
   world model also on worlds reached by rows), with the successors' values from
   the sub-networks of later layers, which are final. The targets are therefore
   the exact backups of eqs. (1)-(9) at the sampled states given the later layers,
   and ``π_r(s)`` in the ``V^e_h`` target is eq. (5) of the ``Q_r`` target itself.
   The sub-network of layer ``t`` (initialised from layer ``t + 1``'s) is then
   regressed on these fixed targets for ``layer_updates`` Adam steps on batches of
   ``batch_size`` drawn from the layer's sample, with the learning rate decaying
   by ``learning_rate_decay`` over the layer, using the losses' own error
   functions (the batch carries the targets under the losses' target keys). The
   default fit (hidden 128×128, batches of 128, 3,000 steps per layer) is the one
   key_door needs at ``β_r = 100``
   (:class:`~empo.parameters.learning.Phase1Parameters`, ``layer_updates``).

Why this scheme rather than the online one (:mod:`empo.learning.trainer`) where it
applies: the online scheme regresses every network on targets that move with the
networks themselves (bootstrapping through soft-updated target copies), at states
from all layers at once, so its accuracy is limited by how far the targets have
settled; on key_door its errors stayed near 0.5-2 % of ``log(-Q_r)`` after 15,000
steps per phase, which is the size of the exact robot's preferences. Here each
regression has fixed targets (a supervised problem that converges), each layer's
network only has to represent one layer, and the error of a layer enters the
earlier layers once, through their targets, instead of being fed back. On worlds
without layers (cyclic ones) the online scheme remains the only one.

Worlds reached by rows (:class:`~empo.learning.data.RowData`, never enumerated) run
the same schedule unchanged: the branching and solution rollouts step the world model
on rows, distinct states are told apart by row hashes, and where humans and robots
have at most :data:`~empo.parameters.learning.SAMPLED_JOINT_THRESHOLD` joint actions
(:func:`profiles_enumerable`) every target still averages over every action profile,
so it is the exact backup at the sampled state. ``auto`` picks this schedule there
too. Measured on ``key_door_hall`` at a horizon of 6 steps (58,913 states, 343 joint
actions; ``scripts/past_enumeration.py compare``, ``docs/learned.md``, "Past
enumeration"), trained from rows only and compared with the exact solution of the
same map: the layered schedule with the default knobs of empo 0.3.0 (hidden 64×64,
batches of 64, 1,500 steps per layer) reached π_r TV 0.0046 and
V^e MAE 0.0040 in 1.6 CPU minutes (two passes: 0.0021 and 0.0031 in 3.2), and its
robot unlocks the door at step 3 as the exact one does; the online schedule with
those knobs reached π_r TV 0.29 and V^e MAE 0.055 in 1.0 CPU minute and its robot
never unlocks (with 5,000 steps per phase it had used over 4 CPU minutes and was
stopped).
Where the joint actions are more (``transport_large``), the targets would average
over drawn profiles, which has not been measured, and ``auto`` keeps the online
schedule.

Every equation goes through :mod:`empo.theory` (via the losses and
:mod:`empo.learning.targets`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModuleBase
from torch import Tensor

from empo.learning.data import STATE, WorldData
from empo.learning.layered_fit import LayeredFit
from empo.learning.layered_network import LayeredNetwork
from empo.learning.layered_states import LayerSampler, missing_states, policy_states

__all__ = ["LayeredSchedule", "profiles_enumerable", "train_layered", "uses_layers"]

log = logging.getLogger(__name__)


def profiles_enumerable(data: WorldData) -> bool:
    """Whether the layered targets on ``data`` can average over every action
    profile (at most :data:`~empo.parameters.learning.SAMPLED_JOINT_THRESHOLD`
    joint actions of the humans and robots; always on enumerated worlds)."""
    from empo.parameters.learning import SAMPLED_JOINT_THRESHOLD

    humans = math.prod(data.counts[h] for h in data.humans)
    return data.enumerated or humans * data.robot_actions <= SAMPLED_JOINT_THRESHOLD


def uses_layers(data: WorldData, params: Any) -> bool:
    """Whether ``params.phase1.schedule`` picks fitted backward induction on
    ``data`` (``"auto"``: where the world has a time step in its states, neither
    phase uses lookup tables and the targets can average over every action profile,
    whether the world is enumerated or reached by rows; see the module docstring
    for why and what was measured).

    Raises
    ------
    ValueError
        For ``"layered"`` on a world without layers or with lookup tables.
    """
    from empo.learning.modules import resolve_encoding
    from empo.parameters.learning import Schedule

    schedule = Schedule(params.phase1.schedule)
    if schedule is Schedule.ONLINE:
        return False
    tables = [
        k.prefix
        for k in (params.phase1, params.phase2)
        if resolve_encoding(data, k) == "table"
    ]
    if schedule is Schedule.AUTO:
        return data.timed and not tables and profiles_enumerable(data)
    if data.num_layers is None:
        raise ValueError(
            "phase1.schedule = 'layered' needs a world with layers (a time step in "
            "the state, or an acyclic compiled world); use 'online' or 'auto'"
        )
    if tables:
        raise ValueError(
            f"phase1.schedule = 'layered' fits networks, but {tables[0]}."
            "state_encoding is 'table'; use schedule 'online' for lookup tables"
        )
    return True


class LayeredSchedule:
    """The passes of fitted backward induction over both phases (module
    docstring), resumable from a checkpoint at every layer.

    Parameters
    ----------
    data
        The data source (with layers).
    params
        :class:`empo.Parameters`.
    losses
        ``(phase-1 loss, phase-2 loss)`` with :class:`LayeredNetwork`\\ s.
    networks
        Names of each loss's functional networks.
    generators
        ``(states, phase 1, phase 2)``: generators of the branching and solution
        rollouts and of each phase's batches.
    frozen
        ``phase-1 loss -> π_h`` of the frozen phase 1 (a table on enumerated
        worlds).
    """

    def __init__(
        self,
        data: WorldData,
        params: Any,
        losses: tuple[Any, Any],
        networks: tuple[list[str], list[str]],
        generators: tuple[torch.Generator, torch.Generator, torch.Generator],
        frozen: Callable[[Any], Callable[[TensorDict], Tensor]],
    ):
        self.data = data
        self.params = params
        self.loss1, self.loss2 = losses
        self.state_generator = generators[0]
        self.frozen = frozen
        loss1, loss2 = losses
        self.fits = (
            LayeredFit(
                "phase1",
                loss1,
                networks[0],
                lambda s: {"q_m_target": loss1.target(s, loss1.online_v_m)},
                params.phase1,
                data,
                generators[1],
            ),
            LayeredFit(
                "phase2",
                loss2,
                networks[1],
                loss2.layer_targets,
                params.phase2,
                data,
                generators[2],
            ),
        )
        self.layers: list[TensorDict] | None = None
        self.sample_seconds = 0.0

    @property
    def total(self) -> int:
        """Layer fits of the whole schedule."""
        return 2 * self.params.phase1.layer_passes * self.data.num_layers

    @property
    def done(self) -> int:
        """Layer fits done so far."""
        per_pass = self.data.num_layers
        return sum(
            fit.passes * per_pass + (per_pass - 1 - fit.next_layer) for fit in self.fits
        )

    def _states(self, layer: int, knobs: Any) -> TensorDict:
        """The non-terminal states of ``layer`` a phase fits on: the first
        ``layer_states`` of the branching sample and every state added by the
        solution's rollouts."""
        assert self.layers is not None
        states = self.layers[layer]
        states = states[~self.data.terminal(states)]
        branching = self.branching_counts[layer]
        cut = min(branching, knobs.layer_states)
        return torch.cat([states[:cut], states[branching:]])

    def _sample(self) -> None:
        start = time.perf_counter()
        per_layer = max(
            self.params.phase1.layer_states, self.params.phase2.layer_states
        )
        sampler = LayerSampler(self.data, per_layer, self.state_generator)
        layers = sampler.sample()
        self.layers = [s[~self.data.terminal(s)] for s in layers]
        self.branching_counts = [s.shape[0] for s in self.layers]
        self.sample_seconds += time.perf_counter() - start

    def _add_solution_states(self) -> None:
        """Add the distinct states of rollouts of the solution so far."""
        assert self.layers is not None
        start = time.perf_counter()
        k2 = self.params.phase2
        loss2 = self.loss2
        visited = policy_states(
            self.data,
            self.frozen(self.loss1),
            lambda s: loss2.online_values(s, loss2.beta_r)["pi_r"],
            self.params.phase1.num_envs,
            k2.epsilon_end,
            k2.goal_resample_steps,
            self.state_generator,
        )
        for layer, extra in enumerate(visited):
            extra = extra[~self.data.terminal(extra)]
            known = self.layers[layer]
            self.layers[layer] = torch.cat(
                [known, missing_states(self.data, extra, known)]
            )
        self.sample_seconds += time.perf_counter() - start

    def run(
        self,
        progress: Callable[[int], None],
        logger: Callable[[dict[str, float], int], None] | None,
        checkpoint: Callable[[], None],
    ) -> None:
        """Every pass: phase 1 over all layers (last first), then phase 2 with
        the new frozen phase 1; between passes, the solution's rollouts."""
        fit1, fit2 = self.fits
        passes = self.params.phase1.layer_passes
        if self.layers is None:
            self._sample()
            checkpoint()
        while fit2.passes < passes:
            for fit in self.fits:
                if fit is fit1 and fit1.passes > fit2.passes:
                    continue
                if fit is fit2:
                    self.loss2.human_policy = self.frozen(self.loss1)
                while fit.next_layer >= 0:
                    layer = fit.next_layer
                    states = self._states(layer, fit.knobs)
                    metrics = {}
                    if states.shape[0] > 0:
                        metrics = fit.fit_layer(layer, states)
                    fit.next_layer -= 1
                    progress(1)
                    checkpoint()
                    if logger is not None and metrics:
                        metrics[f"{fit.name}/layer"] = float(layer)
                        logger(metrics, fit1.grad_steps + fit2.grad_steps)
                fit.passes += 1
                fit.next_layer = self.data.num_layers - 1
                if fit is fit2 and fit.passes < passes:
                    self._add_solution_states()
                checkpoint()
        self.loss2.human_policy = self.frozen(self.loss1)

    def stats(self) -> dict[str, int | float]:
        """Both fits' statistics, the states fitted per pass and the seconds spent
        drawing states."""
        out: dict[str, int | float] = {}
        for fit in self.fits:
            out.update(fit.stats())
        out["layered/sample_seconds"] = self.sample_seconds
        out["layered/states"] = sum(s.shape[0] for s in self.layers or [])
        return out

    def state_dict(self) -> dict[str, Any]:
        """Both fits, the state samples and the state generator."""
        return {
            "phase1": self.fits[0].state_dict(),
            "phase2": self.fits[1].state_dict(),
            "layers": (
                None if self.layers is None else [s.to_dict() for s in self.layers]
            ),
            "branching_counts": getattr(self, "branching_counts", None),
            "generator": self.state_generator.get_state(),
            "sample_seconds": self.sample_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.fits[0].load_state_dict(state["phase1"])
        self.fits[1].load_state_dict(state["phase2"])
        if state["layers"] is not None:
            self.layers = [
                TensorDict(s, batch_size=[s[STATE].shape[0]]).to(self.data.device)
                for s in state["layers"]
            ]
            self.branching_counts = list(state["branching_counts"])
        self.state_generator.set_state(state["generator"])
        self.sample_seconds = state["sample_seconds"]


def _per_layer_encoding(knobs: Any) -> Any:
    """``state_encoding = "auto"`` means ``"features"`` per layer: an embedding per
    state id in every layer's sub-network would hold ``layers × states`` vectors."""
    from empo.parameters.learning import StateEncoding

    if StateEncoding(knobs.state_encoding) is StateEncoding.AUTO:
        return dataclasses.replace(knobs, state_encoding=StateEncoding.FEATURES)
    return knobs


def train_layered(
    data: WorldData,
    params: Any,
    *,
    progress: bool = True,
    logger: Callable[[dict[str, float], int], None] | None = None,
    run_dir: Any = None,
) -> Any:
    """Fitted backward induction on ``data`` (module docstring); the layered
    counterpart of the online schedule inside :func:`empo.learning.train`, with the
    same networks, losses and solution.

    Returns
    -------
    LearnedSolution
        The networks of both phases (:class:`LayeredNetwork`\\ s).
    """
    from tqdm.auto import tqdm

    from empo.learning.checkpoint import RunCheckpoint
    from empo.learning.losses import TargetOptions
    from empo.learning.modules import goal_network, state_network
    from empo.learning.phase1 import Phase1Loss
    from empo.learning.solution import LearnedSolution
    from empo.learning.trainer import (
        frozen_policy,
        phase2_loss,
        seeded_generator,
        stream_seeds,
    )
    from empo.parameters.learning import Phase2Variant

    tp, k1, k2 = params.theory, params.phase1, params.phase2
    dev = data.device
    k1, k2 = (_per_layer_encoding(k) for k in (k1, k2))
    data.enumerate_profiles = profiles_enumerable(data)
    count = data.num_layers
    seeds = stream_seeds(int(params.seed), 7)

    def layered(build: Callable[[], TensorDictModuleBase]) -> LayeredNetwork:
        return LayeredNetwork([build().to(dev) for _ in range(count)], data.layer)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[0])
        q_net = layered(
            lambda: goal_network(data, k1, data.max_human_actions, "q_m_raw")
        )
        ve_net = layered(lambda: goal_network(data, k2, 1, "v_e_raw"))
        if k2.variant == Phase2Variant.DQN:
            robot_nets = [
                layered(
                    lambda: state_network(data, k2, data.robot_actions, "log_neg_q_r")
                )
            ]
            names2 = ["ve_network", "qr_network"]
        else:
            robot_nets = [
                layered(lambda: state_network(data, k2, 1, "log_neg_v_r")),
                layered(
                    lambda: state_network(data, k2, data.robot_actions, "logits_r")
                ),
            ]
            names2 = ["ve_network", "vr_network", "policy_network"]
    gen_states, gen1, gen2 = (seeded_generator(s, dev) for s in seeds[1:4])
    options1 = TargetOptions(samples=k1.samples_per_state, generator=gen1)
    options2 = TargetOptions(samples=k2.samples_per_state, generator=gen2)
    loss1 = Phase1Loss(q_net, data, tp, options1)

    def untrained(states: TensorDict) -> Tensor:
        raise RuntimeError("phase 2 ran before phase 1 was fitted")

    loss2 = phase2_loss(k2, ve_net, robot_nets, data, tp, untrained, options2)
    loss2.beta_r = float(tp.beta_r)
    schedule = LayeredSchedule(
        data,
        params,
        (loss1, loss2),
        (["q_network"], names2),
        (gen_states, gen1, gen2),
        lambda loss: frozen_policy(loss, data),
    )
    store = RunCheckpoint(run_dir, params.to_dict())
    if store.register(layered=schedule):
        log.info("resuming the layered schedule from %s", run_dir)
    bar = tqdm(
        total=schedule.total,
        initial=schedule.done,
        desc="layers",
        disable=not progress,
    )
    with bar:
        schedule.run(bar.update, logger, store.save)
    stats = schedule.stats()
    log.info(
        "layered schedule done: %d layers, %d passes, %d states",
        count,
        k1.layer_passes,
        stats["layered/states"],
    )
    return LearnedSolution(
        data=data,
        networks={"phase1": loss1, "phase2": loss2},
        beta_r=float(tp.beta_r),
        stats=stats,
    )
