"""Training loop of the sampled learned solver, :func:`train_sampled`.

The same two phases as :func:`empo.learning.train`, without enumerating the world:
``num_envs`` batched episodes run from the initial state row with
``world.transitions`` (:mod:`empo.learning.sampled.collect`), the visited rows go
into a TorchRL ``TensorDictReplayBuffer`` over a ``LazyTensorStorage``, and after each
collection ``updates_per_batch`` gradient steps are taken on batches of rows from it
(:mod:`empo.learning.sampled.losses`), each followed by a soft target update. Phase 1
ends frozen; its network gives ``π_h`` (eq. 2) wherever phase 2 needs it.
Checkpoints hold the complete state, so an interrupted run resumes and ends exactly
as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from empo import theory
from empo.learning.checkpoint import RunCheckpoint
from empo.learning.sampled.collect import SampledPhase1Collector, SampledPhase2Collector
from empo.learning.sampled.losses import SampledPhase1Loss, SampledPhase2Loss
from empo.learning.sampled.networks import goal_head_module, robot_head_module
from empo.learning.sampled.row_model import CompiledRows, RowModel
from empo.learning.schedules import annealed_beta, linear_epsilon
from empo.learning.sampled.solution import SampledSolution
from empo.learning.trainer import (
    Logger,
    PhaseRunner,
    run_phase,
    seeded_generator,
    stream_seeds,
)
from empo.worlds.compiled import CompiledWorld

__all__ = [
    "enumerable",
    "train_sampled",
    "uses_sampled",
]

log = logging.getLogger(__name__)


def enumerable(world: Any) -> bool:
    """Whether ``world`` is compiled, tabular, or a world model with at most
    :data:`~empo.parameters.learning.SAMPLED_JOINT_THRESHOLD` joint actions."""
    from empo.parameters.learning import SAMPLED_JOINT_THRESHOLD

    if isinstance(world, CompiledWorld) or hasattr(world, "compile"):
        return True
    joint = math.prod(len(names) for names in world.action_names)
    return joint <= SAMPLED_JOINT_THRESHOLD


def uses_sampled(world: Any, params: Any) -> bool:
    """Whether ``params.phase1.world_access`` resolves to ``"sampled"`` for ``world``
    (``"auto"``: when the world is not :func:`enumerable`)."""
    from empo.parameters.learning import WorldAccess

    access = WorldAccess(params.phase1.world_access)
    if access is WorldAccess.AUTO:
        return not enumerable(world)
    return access is WorldAccess.SAMPLED


def _world_model(world: Any, device: torch.device) -> Any:
    """Compiled and tabular worlds as row models over state ids (their tables moved
    to ``device`` once); other worlds unchanged."""
    if hasattr(world, "compile") and not isinstance(world, CompiledWorld):
        world = world.compile(device="cpu", dtype=torch.float64)
    if isinstance(world, CompiledWorld):
        return CompiledRows(world.to(device=device, dtype=torch.float64))
    return world


def _check(params: Any) -> None:
    """Reject knobs that need an enumerated world, naming the field."""
    from empo.parameters.learning import Phase2Variant, StateEncoding

    if params.phase2.variant != Phase2Variant.DQN:
        raise ValueError(
            f"phase2.variant = {params.phase2.variant.value!r} is not available when "
            "the world is accessed by sampling (phase1.world_access resolves to "
            "'sampled'); use 'dqn'"
        )
    if params.phase1.shaping_scale > 0:
        raise ValueError(
            f"phase1.shaping_scale = {params.phase1.shaping_scale} needs an enumerated "
            "world (goal distances over all states); use 0 with world_access 'sampled'"
        )
    for knobs in (params.phase1, params.phase2):
        if knobs.state_encoding == StateEncoding.TABLE:
            raise ValueError(
                f"{knobs.prefix}.state_encoding = 'table' needs an enumerated world "
                "(one table row per state id); use 'features' or 'embedding' with "
                "world_access 'sampled'"
            )
        if knobs.uniform_state_fraction > 0:
            raise ValueError(
                f"{knobs.prefix}.uniform_state_fraction = "
                f"{knobs.uniform_state_fraction} needs an enumerated world; use 0 "
                "with world_access 'sampled'"
            )


def train_sampled(
    world: Any,
    params: Any,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    logger: Logger | None = None,
    run_dir: str | Path | None = None,
    exact: Any = None,
) -> SampledSolution:
    """Learn both phases on state rows without enumerating the world.

    Networks read rows through :func:`~empo.learning.sampled.networks.make_encoder`
    (graph encoder for transport worlds, hashed per-column features otherwise), so
    ``state_encoding`` is not used; ``embed_dim`` and ``hidden_sizes`` are.
    ``samples_per_state`` is ``M`` of :mod:`empo.learning.sampled.losses`.

    Parameters
    ----------
    world
        A :class:`~empo.worlds.base.WorldModel` (compiled and tabular worlds are
        trained on their state ids).
    params
        :class:`empo.Parameters`; reads ``theory``, ``phase1``, ``phase2``, ``seed``.
    device
        Torch device of networks and rollouts (default CPU).
    progress
        Show progress bars.
    logger
        ``logger(metrics, step)`` every ``log_interval`` collections.
    run_dir
        Directory of the checkpoint; one found there is resumed (same parameters).
    exact
        The exact solution of the same world, if any: errors against it are logged.

    Raises
    ------
    ValueError
        For ``phase2.variant = "actor_critic"``, ``phase1.shaping_scale > 0`` or a
        ``uniform_state_fraction > 0`` (they need an enumerated world), or a
        checkpoint written with other parameters.
    """
    _check(params)
    device = torch.device(device or "cpu")
    model = RowModel(_world_model(world, device), device)
    tp = params.theory
    k1, k2 = params.phase1, params.phase2
    seeds = stream_seeds(int(params.seed), 7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[0])
        shape = (model.num_humans, model.num_goals)
        q_net = goal_head_module(
            model.world,
            *shape,
            model.max_human_actions,
            k1.embed_dim,
            tuple(k1.hidden_sizes),
            "q_m",
        ).to(device)
        ve_net = goal_head_module(
            model.world, *shape, 1, k2.embed_dim, tuple(k2.hidden_sizes), "v_e"
        ).to(device)
        qr_net = robot_head_module(
            model.world, model.robot_actions, k2.embed_dim, tuple(k2.hidden_sizes)
        ).to(device)
    gen1, buf1, gen2, buf2 = (seeded_generator(s, device) for s in seeds[1:5])
    loss1 = SampledPhase1Loss(
        q_net, model, tp, k1.samples_per_state, not k1.expected_targets, gen1
    )
    collector1 = SampledPhase1Collector(
        model, loss1.policy, k1.num_envs, k1.max_episode_steps, gen1
    )

    def collect1(frames: int) -> tuple[Tensor, dict[str, float]]:
        eps = linear_epsilon(frames, k1.epsilon_start, k1.epsilon_end, k1.epsilon_steps)
        return collector1.collect(k1.frames_per_batch, eps), {"phase1/epsilon": eps}

    runner1 = PhaseRunner("phase1", loss1, collect1, k1, device, gen1, buf1)
    store = RunCheckpoint(run_dir, params.to_dict())
    if store.register(phase1=runner1, collector1=collector1):
        log.info("resuming the sampled learned solver from %s", run_dir)

    run_phase(runner1, progress, logger, 0, store.save, dict)
    log.info(
        "phase 1 done: %d frames, %d gradient steps", runner1.frames, runner1.grad_steps
    )
    loss2 = SampledPhase2Loss(
        ve_net,
        qr_net,
        model,
        tp,
        loss1.policy,
        k2.samples_per_state,
        not k2.expected_targets,
        gen2,
        k2.advantage_weight,
    )
    collector2 = SampledPhase2Collector(
        model,
        loss1.policy,
        loss2.acting_policy,
        k2.num_envs,
        k2.max_episode_steps,
        k2.goal_resample_steps,
        gen2,
    )

    def collect2(frames: int) -> tuple[Tensor, dict[str, float]]:
        eps = linear_epsilon(frames, k2.epsilon_start, k2.epsilon_end, k2.epsilon_steps)
        beta = annealed_beta(frames, k2.beta_r_start, tp.beta_r, k2.beta_r_steps)
        loss2.beta_r = beta
        rows = collector2.collect(k2.frames_per_batch, eps, beta)
        return rows, {"phase2/epsilon": eps, "phase2/beta_r": beta}

    runner2 = PhaseRunner("phase2", loss2, collect2, k2, device, gen2, buf2)
    store.register(phase2=runner2, collector2=collector2)
    s0 = model.initial_state[None]

    @torch.no_grad()
    def initial_metrics() -> dict[str, float]:
        values = loss2.online_values(s0, float(tp.beta_r))
        out = {"phase2/V_r(s0)": float(values["v_r"][0])}
        for h in range(model.num_humans):
            out[f"phase2/W_h(s0)/{h}"] = float(theory.power_bits(values["x_h"][0, h]))
        return out

    run_phase(runner2, progress, logger, runner1.frames, store.save, initial_metrics)
    log.info(
        "phase 2 done: %d frames, %d gradient steps", runner2.frames, runner2.grad_steps
    )
    final = initial_metrics()
    solution = SampledSolution(
        world=world,
        model=model,
        networks={"phase1": loss1, "phase2": loss2},
        beta_r=float(tp.beta_r),
        stats={**runner1.stats(), **runner2.stats()},
        v_r_s0=final["phase2/V_r(s0)"],
        w_h_s0=[final[f"phase2/W_h(s0)/{h}"] for h in range(model.num_humans)],
    )
    log.info("V_r(s0) = %.6g, W_h(s0) = %s bits", solution.v_r_s0, solution.w_h_s0)
    if logger is not None:
        logger(final, runner1.frames + runner2.frames)
    if exact is not None and logger is not None:
        from empo.analysis.compare import compare

        errors = compare(solution.on_compiled(exact.world), exact)
        logger(
            {f"error/{k}": v for k, v in errors.items()},
            runner1.frames + runner2.frames,
        )
    return solution
