"""Training loop of the learned two-phase solver and its entry point :func:`train`.

One pipeline for every world: a data source (:mod:`empo.learning.data`) decides how
states are reached (an enumerated world by compiled ids and tensors, or a world model
by state rows), the state encoding (:mod:`empo.learning.modules`) how networks read
them; losses, collectors, runners and the solution are the same.

Each phase is a :class:`PhaseRunner`: collect ``frames_per_batch`` frames with the
phase's collector, store the visited states in a TorchRL replay buffer, then take
``updates_per_batch`` gradient steps on batches drawn from it (optionally mixed with
states drawn uniformly from an enumerated world, which guarantees coverage on small
worlds), each followed by a soft target-network update. Phase 1 runs to the end and is
frozen (on an enumerated world into a policy table ``π_h``); phase 2 then learns
``V^e_h`` and ``Q_r`` (DQN variant) or ``V_r`` and ``π_r`` (actor-critic variant,
:mod:`empo.learning.actor_critic`) against it.

Networks are trained with Adam and soft-updated target copies. Lookup tables
(``state_encoding = "table"``) are trained as in tabular TD learning instead: plain SGD
on their sparse gradients, with losses whose gradient on each entry is its error, so
that each batch moves the entries of each distinct state in it (duplicates are
dropped) by ``learning_rate × (target − entry)``, and targets that bootstrap from the
table itself (no target copy to keep in step with a table of every state). Checkpoints
(:mod:`empo.learning.checkpoint`) hold the complete state, so an interrupted run
resumes and ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModuleBase
from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.objectives import LossModule, SoftUpdate
from tqdm.auto import tqdm

from empo import theory
from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.checkpoint import RunCheckpoint
from empo.learning.collect import Phase1Collector, Phase2Collector
from empo.learning.data import STATE, STATE_ID, CompiledData, RowData, WorldData
from empo.learning.losses import HumanPolicy, TargetOptions
from empo.learning.phase1 import Phase1Loss
from empo.learning.phase2 import Phase2Loss
from empo.learning.modules import goal_network, resolve_encoding, state_network
from empo.learning.schedules import annealed_beta, linear_epsilon
from empo.learning.shaping import goal_distance_potential
from empo.learning.solution import EVAL_CHUNK, LearnedSolution
from empo.worlds.compiled import CompiledWorld

__all__ = [
    "PhaseRunner",
    "enumerable",
    "make_data",
    "run_phase",
    "seeded_generator",
    "stream_seeds",
    "train",
]

log = logging.getLogger(__name__)

Logger = Callable[[dict[str, float], int], None]


def enumerable(world: Any) -> bool:
    """Whether ``world`` is compiled, tabular, or a world model with at most
    :data:`~empo.parameters.learning.SAMPLED_JOINT_THRESHOLD` joint actions."""
    from empo.parameters.learning import SAMPLED_JOINT_THRESHOLD

    if isinstance(world, CompiledWorld) or hasattr(world, "compile"):
        return True
    joint = math.prod(len(names) for names in world.action_names)
    return joint <= SAMPLED_JOINT_THRESHOLD


def make_data(world: Any, params: Any, device: torch.device | str) -> WorldData:
    """The data source ``params.phase1.world_access`` asks for on ``world``:
    :class:`~empo.learning.data.CompiledData` of the compiled world, or
    :class:`~empo.learning.data.RowData` of its row model (``"auto"``: rows when the
    world is not :func:`enumerable`)."""
    from empo.parameters.learning import WorldAccess
    from empo.worlds.registry import compile_any
    from empo.worlds.rows import world_model

    access = WorldAccess(params.phase1.world_access)
    if access is WorldAccess.AUTO:
        access = WorldAccess.COMPILED if enumerable(world) else WorldAccess.SAMPLED
    if access is WorldAccess.SAMPLED:
        return RowData(world_model(world), device)
    return CompiledData(compile_any(world, device="cpu", dtype=torch.float64), device)


def _check(params: Any, data: WorldData) -> None:
    """Reject knobs that need an enumerated world, naming the field."""
    if data.enumerated:
        return
    if params.phase1.shaping_scale > 0:
        raise ValueError(
            f"phase1.shaping_scale = {params.phase1.shaping_scale} needs an enumerated "
            "world (goal distances over all states); use 0 with world_access 'sampled'"
        )
    for knobs in (params.phase1, params.phase2):
        if knobs.uniform_state_fraction > 0:
            raise ValueError(
                f"{knobs.prefix}.uniform_state_fraction = "
                f"{knobs.uniform_state_fraction} needs an enumerated world; use 0 "
                "with world_access 'sampled'"
            )


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
    data
        The data source (``uniform_state_fraction`` of each batch is drawn from
        its non-terminal states where it enumerates them).
    generator
        Generator of the rollouts and of uniform state draws.
    buffer_generator
        Generator of the replay buffer's sampler.
    """

    def __init__(
        self,
        name: str,
        loss: LossModule,
        collect: Callable[[int], tuple[TensorDict, dict[str, float]]],
        knobs: Any,
        data: WorldData,
        generator: torch.Generator,
        buffer_generator: torch.Generator,
    ):
        self.name = name
        self.loss = loss
        self.collect = collect
        self.knobs = knobs
        self.data = data
        self.keys = [STATE, STATE_ID] if data.enumerated else [STATE]
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
            storage=LazyTensorStorage(knobs.buffer_size, device=data.device),
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

    def _batch(self) -> TensorDict:
        states = self.buffer.sample().select(*self.keys)
        uniform = round(self.knobs.uniform_state_fraction * states.shape[0])
        drawn = self.data.uniform(uniform, self.generator) if uniform else None
        if drawn is not None:
            states = torch.cat([drawn, states[uniform:]])
        if self.tabular:
            states, _ = self.data.distinct(states, torch.ones(states.shape[0]))
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
        self.buffer.extend(states)
        collected = time.perf_counter()
        totals: dict[str, float] = {}
        refresh = getattr(self.loss, "refresh", None) if self.tabular else None
        for _ in range(self.knobs.updates_per_batch):
            batch = self._batch()
            self.backups += batch.shape[0]
            losses = self.loss(batch)
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

    def stats(self) -> dict[str, int | float]:
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


def _options(data: WorldData, knobs: Any, generator: torch.Generator) -> TargetOptions:
    """The target options of a phase's knobs."""
    return TargetOptions(
        samples=knobs.samples_per_state,
        sampled=not knobs.expected_targets,
        generator=generator,
        tabular=resolve_encoding(data, knobs) == "table",
    )


def frozen_policy(loss: Phase1Loss, data: WorldData) -> HumanPolicy:
    """Phase 1 frozen: ``states -> π_h(s, g)`` (float32). On an enumerated world a
    table of every state, looked up by id; otherwise the (no longer trained)
    network."""
    everything = data.all_states()
    if everything is None:
        return loss.policy
    table = torch.cat([loss.policy(chunk) for chunk in everything.split(EVAL_CHUNK)])

    def lookup(states: TensorDict) -> torch.Tensor:
        return table[states.get(STATE_ID)]

    return lookup


def phase2_loss(
    knobs: Any,
    ve_net: TensorDictModuleBase,
    robot_nets: list[TensorDictModuleBase],
    data: WorldData,
    theory_params: Any,
    human_policy: HumanPolicy,
    options: TargetOptions,
) -> Phase2Loss | ActorCriticLoss:
    """The phase-2 loss of ``knobs.variant`` on the ``V^e`` network and the robot's
    networks (``[Q_r]`` for DQN, ``[V_r, π_r]`` for actor-critic)."""
    from empo.parameters.learning import Phase2Variant

    if knobs.variant == Phase2Variant.DQN:
        return Phase2Loss(
            ve_net,
            *robot_nets,
            data,
            theory_params,
            human_policy,
            options,
            knobs.advantage_weight,
        )
    return ActorCriticLoss(
        ve_net, *robot_nets, data, theory_params, human_policy, options
    )


def train(
    world: Any,
    params: Any,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    logger: Logger | None = None,
    run_dir: str | Path | None = None,
    exact: Any = None,
) -> LearnedSolution:
    """Learn phase 1 and phase 2 on a world (THEORY.md, learning-based approximation).

    Parameters
    ----------
    world
        A compiled world, a tabular world or a world model.
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

    Raises
    ------
    ValueError
        For knobs the data source cannot serve (``state_encoding`` ``"table"`` or
        ``"embedding"``, ``shaping_scale > 0`` or ``uniform_state_fraction > 0``
        without enumeration), or a checkpoint written with other parameters.
    """
    from empo.parameters.learning import Phase2Variant

    from empo.learning.layered import train_layered, uses_layers

    device = torch.device(device or "cpu")
    data = make_data(world, params, device)
    _check(params, data)
    if uses_layers(data, params):
        solution = train_layered(
            data, params, progress=progress, logger=logger, run_dir=run_dir
        )
        steps = (
            solution.stats["phase1/grad_steps"] + solution.stats["phase2/grad_steps"]
        )
        _log_errors(solution, exact, logger, int(steps))
        return solution
    tp = params.theory
    k1, k2 = params.phase1, params.phase2
    seeds = stream_seeds(int(params.seed), 7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[0])
        q_net = goal_network(data, k1, data.max_human_actions, "q_m_raw").to(device)
        ve_net = goal_network(data, k2, 1, "v_e_raw", table_init=1.0).to(device)
        if k2.variant == Phase2Variant.DQN:
            robot_nets = [
                state_network(
                    data,
                    k2,
                    data.robot_actions,
                    "log_neg_q_r",
                    dueling=True,
                ).to(device)
            ]
        else:
            robot_nets = [
                state_network(data, k2, 1, "log_neg_v_r").to(device),
                state_network(data, k2, data.robot_actions, "logits_r").to(device),
            ]
    gen1, buf1, gen2, buf2 = (seeded_generator(s, device) for s in seeds[1:5])
    potential = None
    if k1.shaping_scale > 0:
        potential = k1.shaping_scale * goal_distance_potential(data, tp.gamma_h)
    loss1 = Phase1Loss(q_net, data, tp, _options(data, k1, gen1), potential)
    collector1 = Phase1Collector(data, loss1, k1.num_envs, k1.max_episode_steps, gen1)

    def collect1(frames: int) -> tuple[TensorDict, dict[str, float]]:
        eps = linear_epsilon(frames, k1.epsilon_start, k1.epsilon_end, k1.epsilon_steps)
        return collector1.collect(k1.frames_per_batch, eps), {"phase1/epsilon": eps}

    runner1 = PhaseRunner("phase1", loss1, collect1, k1, data, gen1, buf1)
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
    human_policy = frozen_policy(loss1, data)
    options2 = _options(data, k2, gen2)
    loss2 = phase2_loss(k2, ve_net, robot_nets, data, tp, human_policy, options2)
    collector2 = Phase2Collector(
        data, loss2, k2.num_envs, k2.max_episode_steps, gen2, k2.goal_resample_steps
    )

    def collect2(frames: int) -> tuple[TensorDict, dict[str, float]]:
        eps = linear_epsilon(frames, k2.epsilon_start, k2.epsilon_end, k2.epsilon_steps)
        beta = annealed_beta(frames, k2.beta_r_start, tp.beta_r, k2.beta_r_steps)
        loss2.beta_r = beta
        states = collector2.collect(k2.frames_per_batch, eps, beta)
        return states, {"phase2/epsilon": eps, "phase2/beta_r": beta}

    runner2 = PhaseRunner("phase2", loss2, collect2, k2, data, gen2, buf2)
    store.register(phase2=runner2, collector2=collector2)
    s0 = data.initial()

    @torch.no_grad()
    def initial_metrics() -> dict[str, float]:
        values = loss2.online_values(s0, tp.beta_r)
        out = {"phase2/V_r(s0)": float(values["v_r"][0])}
        for h in range(data.num_humans):
            out[f"phase2/W_h(s0)/{h}"] = float(theory.power_bits(values["x_h"][0, h]))
        return out

    run_phase(runner2, progress, logger, runner1.frames, store.save, initial_metrics)
    log.info(
        "phase 2 done: %d frames, %d gradient steps", runner2.frames, runner2.grad_steps
    )
    solution = LearnedSolution(
        data=data,
        networks={"phase1": loss1, "phase2": loss2},
        beta_r=float(tp.beta_r),
        stats={**runner1.stats(), **runner2.stats()},
    )
    _log_errors(solution, exact, logger, runner1.frames + runner2.frames)
    return solution


def _log_errors(
    solution: LearnedSolution, exact: Any, logger: Logger | None, step: int
) -> None:
    """Log the errors against the exact solution (:func:`empo.analysis.compare`)
    at ``step`` once training is done."""
    from empo.analysis.compare import compare

    if exact is None or logger is None:
        return
    errors = compare(solution.tabulate(exact.world), exact)
    logger({f"error/{k}": v for k, v in errors.items()}, step)
