"""Training knobs of the learned solver (the ``phase1`` and ``phase2`` blocks).

These change only how fast and how well the learned solver approximates the solution
of THEORY.md, never what the solution is ("Learning-based approximation"). Frames are
environment steps summed over the parallel rollouts; after each collection of
``frames_per_batch`` frames the solver takes ``updates_per_batch`` gradient steps
(:mod:`empo.learning.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from empo.parameters.migrations import migration
from empo.parameters.validation import (
    Block,
    ParameterError,
    non_negative,
    positive,
    ranged,
    unchecked_init,
    unit_interval,
)


class Phase2Variant(str, Enum):
    """How phase 2 learns the robot policy: ``Q_r`` (eq. 12, DQN) or ``V_r`` + ``π_r``.

    :func:`empo.learning.train` implements both (``"actor_critic"``:
    :class:`empo.learning.actor_critic.ActorCriticLoss`).
    """

    DQN = "dqn"
    ACTOR_CRITIC = "actor_critic"


class StateEncoding(str, Enum):
    """How networks read a state (:mod:`empo.learning.modules`): one learned vector
    per compiled state id (``"embedding"``), one per (column, value) of the state row
    (``"features"``; transport worlds reached by rows add the graph encoder), no
    network but a lookup table of the outputs per state id (``"table"``, the paper's
    tabular reference), or ``"auto"``: ``"embedding"`` where the world is enumerated,
    ``"features"`` where it is reached by rows. ``"embedding"`` and ``"table"`` need
    an enumerated world."""

    AUTO = "auto"
    EMBEDDING = "embedding"
    FEATURES = "features"
    TABLE = "table"


class WorldAccess(str, Enum):
    """How the learned solver reaches the world (``phase1.world_access``).

    ``"compiled"`` enumerates every state and joint action first
    (:func:`empo.worlds.registry.compile_any`; data source
    :class:`empo.learning.data.CompiledData`): targets take the exact expectation
    over action profiles. ``"sampled"`` never enumerates (data source
    :class:`empo.learning.data.RowData`): it trains on state rows of a
    :class:`~empo.worlds.base.WorldModel` and computes targets from
    ``world.transitions`` of ``samples_per_state`` drawn action profiles. Both run
    the same solver (:func:`empo.learning.train`). ``"auto"`` picks ``"sampled"``
    for a world model that is not compiled or tabular and has more than
    :data:`SAMPLED_JOINT_THRESHOLD` joint actions (the compiled solver's tensors
    grow with states times joint actions), ``"compiled"`` otherwise.
    """

    AUTO = "auto"
    COMPILED = "compiled"
    SAMPLED = "sampled"


class Schedule(str, Enum):
    """How the learned solver trains (``phase1.schedule``, both phases).

    ``"online"``: TD learning on rollouts with a replay buffer, targets that
    bootstrap from soft-updated target networks (:mod:`empo.learning.trainer`),
    for any world. ``"layered"``: fitted backward induction for worlds with layers
    (a time step in the state, or any acyclic compiled world): one sub-network per
    layer, fitted last layer first on fixed targets from the finished later layers
    (:mod:`empo.learning.layered`). ``"auto"``: ``"layered"`` where the world has
    the time step in its states (MultiGrid and transport worlds with a horizon),
    enumerated or reached by rows, both phases use networks and the layer targets can
    average over every action profile (at most :data:`SAMPLED_JOINT_THRESHOLD` joint
    actions of humans and robots where the world is reached by rows); ``"online"``
    otherwise (cyclic worlds, other acyclic worlds, lookup tables, worlds reached by
    rows with more joint actions).
    """

    AUTO = "auto"
    ONLINE = "online"
    LAYERED = "layered"


SAMPLED_JOINT_THRESHOLD = 4096
"""Joint-action count above which ``world_access = "auto"`` chooses ``"sampled"``."""


def _positive_int(x: int) -> bool:
    return x > 0


def _hidden_sizes(sizes: tuple[int, ...]) -> bool:
    return len(sizes) > 0 and all(n > 0 for n in sizes)


@unchecked_init
@dataclass(frozen=True)
class _TrainingKnobs(Block):
    """Knobs shared by both phases (see :class:`Phase1Parameters`)."""

    learning_rate: float = ranged(1e-3, positive, "0 < learning_rate < inf")
    learning_rate_decay: float = ranged(
        1.0, lambda x: 0 < x <= 1, "0 < learning_rate_decay ≤ 1"
    )
    batch_size: int = ranged(128, _positive_int, "batch_size ≥ 1")
    num_frames: int = ranged(20_000, _positive_int, "num_frames ≥ 1")
    frames_per_batch: int = ranged(256, _positive_int, "frames_per_batch ≥ 1")
    updates_per_batch: int = ranged(4, _positive_int, "updates_per_batch ≥ 1")
    num_envs: int = ranged(16, _positive_int, "num_envs ≥ 1")
    max_episode_steps: int = ranged(100, _positive_int, "max_episode_steps ≥ 1")
    buffer_size: int = ranged(10_000, _positive_int, "buffer_size ≥ 1")
    uniform_state_fraction: float = ranged(
        0.0, unit_interval, "0 ≤ uniform_state_fraction ≤ 1"
    )
    target_update_tau: float = ranged(
        0.01, lambda x: 0 < x <= 1, "0 < target_update_tau ≤ 1"
    )
    state_encoding: StateEncoding = StateEncoding.AUTO
    embed_dim: int = ranged(32, _positive_int, "embed_dim ≥ 1")
    hidden_sizes: tuple[int, ...] = ranged(
        (128, 128), _hidden_sizes, "a non-empty list of positive integers"
    )
    epsilon_start: float = ranged(1.0, unit_interval, "0 ≤ epsilon_start ≤ 1")
    epsilon_end: float = ranged(0.1, unit_interval, "0 ≤ epsilon_end ≤ 1")
    epsilon_steps: int = ranged(10_000, lambda x: x >= 0, "epsilon_steps ≥ 0")
    expected_targets: bool = True
    checkpoint_interval: int = ranged(10, _positive_int, "checkpoint_interval ≥ 1")
    log_interval: int = ranged(1, _positive_int, "log_interval ≥ 1")
    samples_per_state: int = ranged(4, _positive_int, "samples_per_state ≥ 1")
    layer_states: int = ranged(4096, _positive_int, "layer_states ≥ 1")
    layer_updates: int = ranged(3000, _positive_int, "layer_updates ≥ 1")

    def check_consistency(self) -> None:
        """Reject a replay buffer smaller than one batch or one collection."""
        least = max(self.batch_size, self.frames_per_batch)
        if self.buffer_size < least:
            raise ParameterError(
                f"{self.prefix}.buffer_size = {self.buffer_size} is out of range; "
                f"allowed: buffer_size ≥ batch_size ({self.batch_size}) and ≥ "
                f"frames_per_batch ({self.frames_per_batch})"
            )


@unchecked_init
@dataclass(frozen=True)
class Phase1Parameters(_TrainingKnobs):
    """Training knobs of phase 1 (goal-conditioned ``Q^m_h``, eqs. 1-3).

    Parameters
    ----------
    learning_rate
        Optimiser step size, ``> 0``: Adam's for networks; for
        ``state_encoding = "table"`` the tabular step ``α`` of
        ``y ← y + α (target − y)`` per visit (the paper's learning rate 0.1).
    learning_rate_decay
        Factor by which the learning rate falls over the whole phase, ``0 < d ≤ 1``
        (exponential schedule; 1 keeps it constant).
    batch_size
        Transitions per gradient step, ``≥ 1``.
    num_frames
        Environment steps collected in total, ``≥ 1``.
    frames_per_batch
        Environment steps per collector batch, ``≥ 1``.
    updates_per_batch
        Gradient steps after each collection, ``≥ 1``.
    num_envs
        Parallel rollouts of the collector, ``≥ 1``.
    max_episode_steps
        Steps after which a rollout restarts from the initial state, ``≥ 1``.
    buffer_size
        Replay buffer capacity, ``≥ batch_size`` and ``≥ frames_per_batch``.
    uniform_state_fraction
        Share of each batch drawn uniformly from the enumerated states, ``[0, 1]``.
    target_update_tau
        Soft target-network update rate, ``0 < τ ≤ 1`` (1 copies the network);
        unused by tables, which bootstrap from themselves.
    state_encoding
        ``"auto"`` (default), ``"embedding"`` (per state id), ``"features"`` (per
        column of the state row) or ``"table"`` (a lookup table instead of a
        network); ``"embedding"`` and ``"table"`` need an enumerated world
        (:class:`StateEncoding`).
    embed_dim
        Width of the state embedding, ``≥ 1`` (unused by tables).
    hidden_sizes
        Widths of the hidden layers (unused by tables).
    epsilon_start, epsilon_end, epsilon_steps
        Extra exploration ε annealed linearly from start to end over that many frames.
    expected_targets
        Targets with the exact expectation over successor states (True) or with one
        successor drawn per action profile (False). The expectation over actions is
        exact on enumerated worlds (all profiles, since all policies are known) and
        drawn on worlds reached by rows (``samples_per_state``).
    checkpoint_interval, log_interval
        Collections between checkpoints and between logger calls, ``≥ 1``.
    samples_per_state
        ``M``, action profiles of the other agents drawn per state for each target
        when the world is accessed by sampling (``world_access``), ``≥ 1``.
    layer_states
        Layered schedule: most distinct states per layer drawn by the branching
        rollouts and fitted, ``≥ 1`` (later passes add the solution's rollouts).
    layer_updates
        Layered schedule: gradient steps per layer and pass, ``≥ 1``.
        The defaults ``hidden_sizes = (128, 128)``, ``batch_size = 128`` and
        ``layer_updates = 3000`` are what the layered schedule needs on key_door:
        at ``β_r = 100`` the robot's action probabilities scale the errors of
        ``log(−Q_r)`` by ``β_r``, and with (64, 64), 64 and 1,500 the learned
        robot's expected human power fell to 87-93 % of the exact robot's
        (docs/learned.md, "Layered schedule"). ``hidden_sizes`` and ``batch_size``
        keep one meaning and one default in both schedules; the online schedule's
        defaults are a starting point, not an accuracy claim.
        ``num_frames``, ``frames_per_batch``, ``updates_per_batch``,
        ``buffer_size``, ``uniform_state_fraction``, ``target_update_tau`` and the
        ε schedule belong to the online schedule only.
    shaping_scale
        Weight of the potential-based shaping of phase 1, ``≥ 0`` (0: none); it does
        not change the fixed point.
    world_access
        ``"auto"``, ``"compiled"`` or ``"sampled"`` (:class:`WorldAccess`): whether
        both phases train on the enumerated world or on sampled state rows.
    schedule
        ``"auto"``, ``"online"`` or ``"layered"`` (:class:`Schedule`): TD learning
        on rollouts, or fitted backward induction layer by layer (both phases).
    layer_passes
        Layered schedule: backward passes, ``≥ 1``; each pass after the first adds
        the states visited by ``num_envs`` rollouts of the solution so far (robot
        exploring with ``phase2.epsilon_end``) and refits every layer.
    """

    prefix: ClassVar[str] = "phase1"

    shaping_scale: float = ranged(0.0, non_negative, "0 ≤ shaping_scale < inf")
    world_access: WorldAccess = WorldAccess.AUTO
    schedule: Schedule = Schedule.AUTO
    layer_passes: int = ranged(1, _positive_int, "layer_passes ≥ 1")


@unchecked_init
@dataclass(frozen=True)
class Phase2Parameters(_TrainingKnobs):
    """Training knobs of phase 2 (``V^e_h``, ``X_h``, ``Q_r``/``V_r``, eqs. 12-14).

    Parameters
    ----------
    learning_rate, learning_rate_decay, batch_size, num_frames, frames_per_batch,
    updates_per_batch, num_envs, max_episode_steps, buffer_size,
    uniform_state_fraction, target_update_tau, state_encoding, embed_dim,
    hidden_sizes, epsilon_start, epsilon_end, epsilon_steps, expected_targets,
    checkpoint_interval, log_interval, samples_per_state, layer_states,
    layer_updates
        As in :class:`Phase1Parameters`.
    beta_r_start
        Initial robot rationality ``β'_r`` of the rollout policy, annealed up to
        ``theory.beta_r``; ``≥ 0``.
    beta_r_steps
        Frames over which ``β'_r`` is annealed, ``≥ 0`` (0: no annealing).
    goal_resample_steps
        ``N_g``: the humans' goal profile is resampled every that many steps, ``≥ 1``.
    variant
        ``"dqn"`` (learn ``Q_r``) or ``"actor_critic"`` (learn ``V_r`` and ``π_r``).
    advantage_weight
        Weight of the action-dependent part of the ``log(-Q_r)`` error relative to
        its state mean, ``> 0`` (1: plain mean squared error); DQN variant only.
    """

    prefix: ClassVar[str] = "phase2"

    beta_r_start: float = ranged(0.1, non_negative, "0 ≤ beta_r_start < inf")
    beta_r_steps: int = ranged(10_000, lambda x: x >= 0, "beta_r_steps ≥ 0")
    goal_resample_steps: int = ranged(100, _positive_int, "goal_resample_steps ≥ 1")
    variant: Phase2Variant = Phase2Variant.DQN
    advantage_weight: float = ranged(1.0, positive, "0 < advantage_weight < inf")


@migration("0.1.0")
def _state_encoding_auto(data: dict[str, Any]) -> dict[str, Any]:
    """Up to 0.1.0, ``state_encoding = "embedding"`` (the default) meant a vector per
    state id on enumerated worlds and was ignored on worlds reached by rows, which
    read their row features: what ``"auto"`` means now."""
    out = dict(data)
    for phase in ("phase1", "phase2"):
        block = data.get(phase)
        if isinstance(block, dict) and block.get("state_encoding") == "embedding":
            out[phase] = {**block, "state_encoding": StateEncoding.AUTO.value}
    return out


@migration("0.2.0")
def _online_schedule(data: dict[str, Any]) -> dict[str, Any]:
    """Up to 0.2.0 the learned solver had one schedule, TD learning on rollouts:
    files of that time keep it (``phase1.schedule = "online"``) where they do not
    name one, instead of the layered schedule that ``"auto"`` now picks on worlds
    with layers."""
    out = dict(data)
    block = data.get("phase1")
    block = dict(block) if isinstance(block, dict) else {}
    block.setdefault("schedule", Schedule.ONLINE.value)
    out["phase1"] = block
    return out


@migration("0.3.0")
def _smaller_fits(data: dict[str, Any]) -> dict[str, Any]:
    """Up to 0.3.0 both phases defaulted to ``hidden_sizes = (64, 64)``,
    ``batch_size = 64`` and ``layer_updates = 1500``: files of that time keep these
    where they do not name them (files that ``to_dict`` wrote name every knob)."""
    old = {"hidden_sizes": [64, 64], "batch_size": 64, "layer_updates": 1500}
    out = dict(data)
    for phase in ("phase1", "phase2"):
        block = data.get(phase)
        block = dict(block) if isinstance(block, dict) else {}
        out[phase] = {**old, **block}
    return out
