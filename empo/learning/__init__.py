"""Learned two-phase solver on TorchRL (THEORY.md, learning-based approximation).

:func:`train` learns phase 1 (``Q^m_h`` through a goal-conditioned joint-action head)
and then phase 2 (``V^e_h`` and ``Q_r``, or ``V_r`` and ``π_r`` in the actor-critic
variant) from batched explicit transitions of a world
model and returns a :class:`LearnedSolution` laid out like the exact solution.
"""

from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.losses import Phase1Loss, Phase2Base, Phase2Loss
from empo.learning.model import TransitionModel
from empo.learning.trainer import LearnedSolution, PhaseRunner, train

__all__ = [
    "ActorCriticLoss",
    "LearnedSolution",
    "Phase1Loss",
    "Phase2Base",
    "Phase2Loss",
    "PhaseRunner",
    "TransitionModel",
    "train",
]
