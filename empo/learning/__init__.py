"""Learned two-phase solver on TorchRL (THEORY.md, learning-based approximation).

:func:`train` learns phase 1 (``Q^m_h``, goal-conditioned) and then phase 2 (``V^e_h``
and ``Q_r``, or ``V_r`` and ``π_r`` in the actor-critic variant) on any world: one
pipeline whose data source (:mod:`empo.learning.data`) reaches an enumerated world by
compiled ids or a larger one by state rows, and returns a :class:`LearnedSolution`
(the :class:`empo.solution.Solution` protocol on state rows).
"""

from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.data import CompiledData, RowData, WorldData
from empo.learning.losses import TargetOptions
from empo.learning.phase1 import Phase1Loss
from empo.learning.phase2 import Phase2Base, Phase2Loss
from empo.learning.solution import LearnedSolution, LearnedTables
from empo.learning.trainer import PhaseRunner, enumerable, make_data, train

__all__ = [
    "ActorCriticLoss",
    "CompiledData",
    "LearnedSolution",
    "LearnedTables",
    "Phase1Loss",
    "Phase2Base",
    "Phase2Loss",
    "PhaseRunner",
    "RowData",
    "TargetOptions",
    "WorldData",
    "enumerable",
    "make_data",
    "train",
]
