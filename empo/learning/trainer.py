"""Training loop of the learned two-phase solver and its entry point :func:`train`.

Each phase is a :class:`PhaseRunner`: collect ``frames_per_batch`` frames with the
phase's collector, store the visited states in a TorchRL replay buffer, then take
``updates_per_batch`` gradient steps on batches drawn from it (optionally mixed with
states drawn uniformly from the enumerated world, which guarantees coverage on small
worlds), each followed by a soft target-network update. Phase 1 runs to the end, is
evaluated on every state and frozen into a policy table ``π_h``; phase 2 then learns
``V^e_h`` and ``Q_r`` (DQN variant) or ``V_r`` and ``π_r`` (actor-critic variant,
:mod:`empo.learning.actor_critic`) against it.

Networks are trained with Adam and soft-updated target copies. Lookup tables
(``state_encoding = "table"``, :mod:`empo.learning.modules`) are trained as in
tabular TD learning instead: plain SGD on their sparse gradients, with losses whose
gradient on each entry is its error, so that each batch moves the entries of each
distinct state in it (duplicates are dropped) by ``learning_rate × (target −
entry)``, and targets that bootstrap from the table itself (no target copy to keep in
step with a table of every state). Checkpoints
(:mod:`empo.learning.checkpoint`) hold the complete state, so an interrupted run
resumes and ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from jaxtyping import Int64
from tensordict import TensorDict
from torch import Tensor, nn
from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.objectives import LossModule, SoftUpdate
from tqdm.auto import tqdm

from empo import theory
from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.checkpoint import RunCheckpoint
from empo.learning.collect import Phase1Collector, Phase2Collector
from empo.learning.losses import Phase1Loss, Phase2Loss
from empo.learning.model import TransitionModel
from empo.learning.modules import (
    StateEncoder,
    Tabular,
    goal_value_module,
    joint_backup_module,
    robot_policy_module,
    robot_q_module,
    robot_value_module,
)
from empo.learning.schedules import annealed_beta, linear_epsilon
from empo.learning.shaping import goal_distance_potential
from empo.solution import TabulatedSolution
from empo.worlds.compiled import CompiledWorld

if TYPE_CHECKING:
    from empo.learning.sampled.solution import SampledSolution

__all__ = [
    "LearnedSolution",
    "PhaseRunner",
    "run_phase",
    "seeded_generator",
    "stream_seeds",
    "train",
]

log = logging.getLogger(__name__)

Logger = Callable[[dict[str, float], int], None]
_EVAL_CHUNK = 1024


@dataclass
class LearnedSolution(TabulatedSolution):
    """The learned solution, laid out like the exact one (DESIGN.md, "Solutions").

    Implements the :class:`empo.solution.Solution` protocol through
    :class:`~empo.solution.TabulatedSolution`.

    Attributes
    ----------
    world
        The compiled world the quantities are evaluated on.
    phase1
        ``q_m``, ``pi_h`` ``[state, human, goal, action]`` and ``v_m``
        ``[state, human, goal]``.
    phase2
        ``q_r``, ``pi_r`` ``[state, robot_action]``, ``v_e`` ``[state, human, goal]``,
        ``x_h`` ``[state, human]``, ``u_r`` and ``v_r`` ``[state]``.
    networks
        The phase loss modules, holding the trained networks (``z``; ``v_e`` and
        ``q_r``, or ``v_e``, ``v_r`` and the actor) and their target copies.
    stats
        Frames, gradient steps and the seconds spent collecting and updating, per
        phase (cumulated over interrupted and resumed runs).
    """

    world: CompiledWorld
    phase1: TensorDict
    phase2: TensorDict
    networks: dict[str, nn.Module] = field(repr=False)
    stats: dict[str, float] = field(default_factory=dict)


class PhaseRunner:
    """Collect, store and update for one phase, with a complete ``state_dict``.

    Parameters
    ----------
    name
        ``"phase1"`` or ``"phase2"``.
    loss
        The phase's loss module. A loss whose ``tabular`` attribute is true is
        trained as a lookup table (module docstring); its ``refresh(states)``, if
        it has one, is called after each update with the updated states.
    collect
        ``collect(frames_done) -> (visited states, schedule metrics)``.
    knobs
        The phase's parameter block.
    device
        Device of the replay buffer and of uniform state draws.
    generator
        Generator of the rollouts and of uniform state draws.
    buffer_generator
        Generator of the replay buffer's sampler.
    alive
        States that ``uniform_state_fraction`` of each batch is drawn from (the
        non-terminal states of an enumerated world), or ``None`` for none.
    """

    def __init__(
        self,
        name: str,
        loss: LossModule,
        collect: Callable[[int], tuple[Int64[Tensor, " n"], dict[str, float]]],
        knobs: Any,
        device: torch.device,
        generator: torch.Generator,
        buffer_generator: torch.Generator,
        alive: Int64[Tensor, " n"] | None = None,
    ):
        self.name = name
        self.loss = loss
        self.collect = collect
        self.knobs = knobs
        self.device = device
        self.alive = alive
        self.generator = generator
        self.buffer_generator = buffer_generator
        self.num_collections = math.ceil(knobs.num_frames / knobs.frames_per_batch)
        self.tabular = bool(getattr(loss, "tabular", False))
        self.updater: SoftUpdate | None = None
        if self.tabular:
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                loss.parameters(), lr=knobs.learning_rate
            )
            size = sum(p.numel() * p.element_size() for p in loss.parameters())
            log.info("%s: lookup tables of %.1f MiB", name, size / 2**20)
        else:
            self.optimizer = torch.optim.Adam(loss.parameters(), lr=knobs.learning_rate)
            self.updater = SoftUpdate(loss, tau=knobs.target_update_tau)
        decay = knobs.learning_rate_decay ** (1.0 / self.num_collections)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, decay)
        self.buffer = TensorDictReplayBuffer(
            storage=LazyTensorStorage(knobs.buffer_size, device=device),
            batch_size=knobs.batch_size,
            generator=buffer_generator,
        )
        self.collections = 0
        self.frames = 0
        self.grad_steps = 0
        self.backups = 0
        self.collect_seconds = 0.0
        self.update_seconds = 0.0

    @property
    def done(self) -> bool:
        """Whether all collections of this phase have run."""
        return self.collections >= self.num_collections

    def _batch(self) -> Int64[Tensor, " batch"]:
        states = self.buffer.sample()["state"]
        uniform = round(self.knobs.uniform_state_fraction * states.shape[0])
        if uniform and self.alive is not None:
            pick = torch.randint(
                self.alive.shape[0],
                (uniform,),
                generator=self.generator,
                device=self.device,
            )
            states = torch.cat([self.alive[pick], states[uniform:]])
        if self.tabular:
            states = torch.unique(states)
        return states

    def step(self) -> dict[str, float]:
        """One collection followed by ``updates_per_batch`` gradient steps.

        Returns
        -------
        dict
            Mean loss terms of the updates and the schedule values.
        """
        start = time.perf_counter()
        states, metrics = self.collect(self.frames)
        self.buffer.extend(TensorDict({"state": states}, batch_size=[states.shape[0]]))
        collected = time.perf_counter()
        totals: dict[str, float] = {}
        refresh = getattr(self.loss, "refresh", None) if self.tabular else None
        for _ in range(self.knobs.updates_per_batch):
            batch = self._batch()
            self.backups += batch.shape[0]
            losses = self.loss(TensorDict({"state": batch}, batch_size=[]))
            total = sum(losses.values())
            self.optimizer.zero_grad()
            total.backward()
            self.optimizer.step()
            if self.updater is not None:
                self.updater.step()
            elif refresh is not None:
                refresh(batch)
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
        self.scheduler.step()
        self.collections += 1
        self.frames += states.shape[0]
        self.grad_steps += self.knobs.updates_per_batch
        self.collect_seconds += collected - start
        self.update_seconds += time.perf_counter() - collected
        for key, value in totals.items():
            metrics[f"{self.name}/{key}"] = value / self.knobs.updates_per_batch
        metrics[f"{self.name}/learning_rate"] = self.scheduler.get_last_lr()[0]
        return metrics

    def stats(self) -> dict[str, float]:
        """Frames, gradient steps, states backed up (batch rows, after the
        de-duplication of tables) and the seconds spent collecting and updating,
        keyed ``"<name>/<what>"``."""
        return {
            f"{self.name}/frames": self.frames,
            f"{self.name}/grad_steps": self.grad_steps,
            f"{self.name}/backups": self.backups,
            f"{self.name}/collect_seconds": self.collect_seconds,
            f"{self.name}/update_seconds": self.update_seconds,
        }

    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimiser, schedule, buffer, generators and counters."""
        return {
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "buffer": self.buffer.state_dict(),
            "generator": self.generator.get_state(),
            "buffer_generator": self.buffer_generator.get_state(),
            "collections": self.collections,
            "frames": self.frames,
            "grad_steps": self.grad_steps,
            "backups": self.backups,
            "collect_seconds": self.collect_seconds,
            "update_seconds": self.update_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.buffer.load_state_dict(state["buffer"])
        self.buffer.set_rng(self.buffer_generator)
        self.generator.set_state(state["generator"])
        self.buffer_generator.set_state(state["buffer_generator"])
        self.collections = state["collections"]
        self.frames = state["frames"]
        self.grad_steps = state["grad_steps"]
        self.backups = state["backups"]
        self.collect_seconds = state["collect_seconds"]
        self.update_seconds = state["update_seconds"]


def stream_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent 63-bit seeds derived from ``seed`` (numpy SeedSequence):
    networks, rollouts and replay sampling of each phase get their own stream."""
    sequence = np.random.SeedSequence([seed, 0x5EED])
    return [int(s.generate_state(1, np.uint64)[0] >> 1) for s in sequence.spawn(count)]


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _chunks(model: TransitionModel) -> list[Int64[Tensor, " chunk"]]:
    ids = torch.arange(model.num_states, device=model.device)
    return list(torch.split(ids, _EVAL_CHUNK))


@torch.no_grad()
def evaluate_phase1(loss: Phase1Loss) -> TensorDict:
    """``q_m``, ``pi_h``, ``v_m`` of the online phase-1 network on every state."""
    parts = [
        loss.phase1_values(loss.z_network_params, ids) for ids in _chunks(loss.model)
    ]
    out = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    return TensorDict(out, batch_size=[loss.model.num_states])


@torch.no_grad()
def evaluate_phase2(loss: Phase2Loss | ActorCriticLoss, beta_r: float) -> TensorDict:
    """``v_e, x_h, u_r, q_r, pi_r, v_r`` of the online phase-2 networks, all states."""
    parts = [loss.online_values(ids, beta_r) for ids in _chunks(loss.model)]
    out = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    return TensorDict(out, batch_size=[loss.model.num_states])


def _encoder(
    model: TransitionModel, knobs: Any, world: CompiledWorld, device: torch.device
) -> StateEncoder | Tabular:
    from empo.parameters.learning import StateEncoding

    if knobs.state_encoding == StateEncoding.TABLE:
        return Tabular(model.num_states)
    table = None
    if knobs.state_encoding == StateEncoding.FEATURES:
        if world.state_table is None:
            raise ValueError(
                f"{knobs.prefix}.state_encoding = 'features' needs a world with a "
                "state_table (generic or MultiGrid worlds); use 'embedding'"
            )
        table = world.state_table
    return StateEncoder(model.num_states, knobs.embed_dim, table, device)


def run_phase(
    runner: PhaseRunner,
    progress: bool,
    logger: Logger | None,
    step_offset: int,
    checkpoint: Callable[[], None],
    extra_metrics: Callable[[], dict[str, float]],
) -> None:
    """Run ``runner`` to its end with a progress bar, checkpointing every
    ``checkpoint_interval`` collections and logging every ``log_interval`` (plus
    ``extra_metrics()``) at step ``step_offset + frames``."""
    knobs = runner.knobs
    bar = tqdm(
        total=runner.num_collections,
        initial=runner.collections,
        desc=runner.name,
        disable=not progress,
    )
    with bar:
        while not runner.done:
            metrics = runner.step()
            bar.update(1)
            if runner.collections % knobs.checkpoint_interval == 0 or runner.done:
                checkpoint()
            if logger is not None and (
                runner.collections % knobs.log_interval == 0 or runner.done
            ):
                metrics.update(extra_metrics())
                logger(metrics, step_offset + runner.frames)


def train(
    world: Any,
    params: Any,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    logger: Logger | None = None,
    run_dir: str | Path | None = None,
    exact: Any = None,
) -> LearnedSolution | SampledSolution:
    """Learn phase 1 and phase 2 on a world (THEORY.md, learning-based approximation).

    Parameters
    ----------
    world
        A compiled world, a tabular world or a world model (compiled first).
    params
        :class:`empo.Parameters`; reads ``theory``, ``phase1``, ``phase2``, ``seed``.
    device
        Torch device of networks and rollouts (default CPU).
    progress
        Show progress bars.
    logger
        ``logger(metrics, step)`` called every ``log_interval`` collections.
    run_dir
        Directory for the checkpoint; an existing checkpoint there is resumed (its
        parameters must equal ``params``).
    exact
        The exact solution, if any: errors against it (:func:`empo.analysis.compare`)
        are logged at the end.

    Returns
    -------
    LearnedSolution
        Quantities on every state of the compiled world, and the networks; or,
        when ``phase1.world_access`` resolves to ``"sampled"``, the
        :class:`~empo.learning.sampled.SampledSolution` of
        :func:`~empo.learning.sampled.train_sampled`.
    """
    from empo.analysis.compare import compare
    from empo.learning.sampled import train_sampled, uses_sampled
    from empo.parameters.learning import Phase2Variant, StateEncoding
    from empo.worlds.registry import compile_any

    if uses_sampled(world, params):
        return train_sampled(
            world,
            params,
            device=device,
            progress=progress,
            logger=logger,
            run_dir=run_dir,
            exact=exact,
        )
    device = torch.device(device or "cpu")
    compiled = compile_any(world, device="cpu", dtype=torch.float64)
    model = TransitionModel(compiled, device)
    tp = params.theory
    k1, k2 = params.phase1, params.phase2
    seeds = stream_seeds(int(params.seed), 7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[0])
        z_net = joint_backup_module(
            _encoder(model, k1, compiled, device),
            model.num_humans,
            model.num_goals,
            model.num_joint,
            k1.embed_dim,
            tuple(k1.hidden_sizes),
        ).to(device)
        ve_net = goal_value_module(
            _encoder(model, k2, compiled, device),
            model.num_humans,
            model.num_goals,
            k2.embed_dim,
            tuple(k2.hidden_sizes),
        ).to(device)
        if k2.variant == Phase2Variant.DQN:
            robot_nets = [
                robot_q_module(
                    _encoder(model, k2, compiled, device),
                    model.robot_actions,
                    tuple(k2.hidden_sizes),
                ).to(device)
            ]
        else:
            robot_nets = [
                robot_value_module(
                    _encoder(model, k2, compiled, device), tuple(k2.hidden_sizes)
                ).to(device),
                robot_policy_module(
                    _encoder(model, k2, compiled, device),
                    model.robot_actions,
                    tuple(k2.hidden_sizes),
                ).to(device),
            ]
    gen1, buf1, gen2, buf2 = (seeded_generator(s, device) for s in seeds[1:5])
    potential = None
    if k1.shaping_scale > 0:
        potential = k1.shaping_scale * goal_distance_potential(model, tp.gamma_h)
    loss1 = Phase1Loss(
        z_net,
        model,
        tp,
        sampled=not k1.expected_targets,
        potential=potential,
        generator=gen1,
        tabular=k1.state_encoding == StateEncoding.TABLE,
    )
    collector1 = Phase1Collector(model, loss1, k1.num_envs, k1.max_episode_steps, gen1)

    def collect1(frames: int) -> tuple[Tensor, dict[str, float]]:
        eps = linear_epsilon(frames, k1.epsilon_start, k1.epsilon_end, k1.epsilon_steps)
        return collector1.collect(k1.frames_per_batch, eps), {"phase1/epsilon": eps}

    alive = torch.nonzero(~model.terminal)[:, 0]
    runner1 = PhaseRunner("phase1", loss1, collect1, k1, device, gen1, buf1, alive)
    store = RunCheckpoint(run_dir, params.to_dict())
    if store.register(phase1=runner1, collector1=collector1):
        log.info(
            "resuming the learned solver from %s (phase 1 at %d frames)",
            run_dir,
            runner1.frames,
        )

    run_phase(runner1, progress, logger, 0, store.save, dict)
    log.info(
        "phase 1 done: %d frames, %d gradient steps", runner1.frames, runner1.grad_steps
    )
    phase1 = evaluate_phase1(loss1)

    pi_h = phase1["pi_h"].to(torch.float32)
    tables2 = k2.state_encoding == StateEncoding.TABLE
    loss2: Phase2Loss | ActorCriticLoss
    if k2.variant == Phase2Variant.DQN:
        loss2 = Phase2Loss(
            ve_net,
            robot_nets[0],
            model,
            tp,
            pi_h,
            sampled=not k2.expected_targets,
            generator=gen2,
            advantage_weight=k2.advantage_weight,
            tabular=tables2,
        )
    else:
        loss2 = ActorCriticLoss(
            ve_net,
            *robot_nets,
            model,
            tp,
            pi_h,
            sampled=not k2.expected_targets,
            generator=gen2,
            tabular=tables2,
        )
    collector2 = Phase2Collector(
        model, loss2, k2.num_envs, k2.max_episode_steps, k2.goal_resample_steps, gen2
    )

    def collect2(frames: int) -> tuple[Tensor, dict[str, float]]:
        eps = linear_epsilon(frames, k2.epsilon_start, k2.epsilon_end, k2.epsilon_steps)
        beta = annealed_beta(frames, k2.beta_r_start, tp.beta_r, k2.beta_r_steps)
        loss2.beta_r = beta
        states = collector2.collect(k2.frames_per_batch, eps, beta)
        return states, {"phase2/epsilon": eps, "phase2/beta_r": beta}

    runner2 = PhaseRunner("phase2", loss2, collect2, k2, device, gen2, buf2, alive)
    store.register(phase2=runner2, collector2=collector2)
    s0 = torch.tensor([model.initial_state], device=device)

    @torch.no_grad()
    def initial_metrics() -> dict[str, float]:
        values = loss2.online_values(s0, tp.beta_r)
        out = {"phase2/V_r(s0)": float(values["v_r"][0])}
        for h in range(model.num_humans):
            out[f"phase2/W_h(s0)/{h}"] = float(theory.power_bits(values["x_h"][0, h]))
        return out

    run_phase(runner2, progress, logger, runner1.frames, store.save, initial_metrics)
    log.info(
        "phase 2 done: %d frames, %d gradient steps", runner2.frames, runner2.grad_steps
    )
    phase2 = evaluate_phase2(loss2, float(tp.beta_r))
    solution = LearnedSolution(
        world=compiled,
        phase1=phase1,
        phase2=phase2,
        networks={"phase1": loss1, "phase2": loss2},
        stats={**runner1.stats(), **runner2.stats()},
    )
    if exact is not None and logger is not None:
        errors = compare(solution, exact)
        logger(
            {f"error/{k}": v for k, v in errors.items()},
            runner1.frames + runner2.frames,
        )
    return solution
