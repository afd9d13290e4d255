"""Learned solver on worlds that are never enumerated (state rows, sampled profiles).

:func:`train_sampled` is what :func:`empo.learning.train` runs when
``phase1.world_access`` resolves to ``"sampled"`` (:func:`uses_sampled`): both phases
train on batches of integer state rows of a :class:`~empo.worlds.base.WorldModel`,
with targets computed from ``world.transitions`` of sampled action profiles
(:mod:`empo.learning.sampled.losses`) and networks that read rows
(:mod:`empo.learning.sampled.networks`). The result, :class:`SampledSolution`,
evaluates the learned quantities on any rows and, on a world small enough to compile,
on all its states for :func:`empo.analysis.compare`.
"""

from empo.learning.sampled.losses import (
    SampledPhase1Loss,
    SampledPhase2Loss,
    phase1_target,
    phase2_target,
)
from empo.learning.sampled.networks import (
    GoalHead,
    GraphRowEncoder,
    RobotHead,
    RowFeatureEncoder,
)
from empo.learning.sampled.row_model import CompiledRows, RowModel
from empo.learning.sampled.solution import SampledSolution
from empo.learning.sampled.trainer import enumerable, train_sampled, uses_sampled

__all__ = [
    "CompiledRows",
    "GoalHead",
    "GraphRowEncoder",
    "RobotHead",
    "RowFeatureEncoder",
    "RowModel",
    "SampledPhase1Loss",
    "SampledPhase2Loss",
    "SampledSolution",
    "enumerable",
    "phase1_target",
    "phase2_target",
    "train_sampled",
    "uses_sampled",
]
