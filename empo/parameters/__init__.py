"""The ``Parameters`` tree: one validated block per concern (DESIGN.md).

``Parameters`` (in :mod:`empo.parameters.tree`) holds the blocks ``world``
(:mod:`~empo.parameters.blocks`), ``theory`` (:mod:`~empo.parameters.theory`),
``exact``, ``phase1``/``phase2`` (:mod:`~empo.parameters.learning`), ``seed`` and
``evaluation``. Validation and the error type live in
:mod:`~empo.parameters.validation`, upgrades of old files in
:mod:`~empo.parameters.migrations`.
"""

from empo.parameters.blocks import (
    DEFAULT_WORLD,
    EvaluationParameters,
    ExactMethod,
    ExactSolverParameters,
    FloatDType,
    OutputParameters,
    SolverKind,
    WorldParameters,
)
from empo.parameters.learning import (
    Phase1Parameters,
    Phase2Parameters,
    Phase2Variant,
    Schedule,
    StateEncoding,
    WorldAccess,
)
from empo.parameters.migrations import migration
from empo.parameters.theory import OthersModel, RobotPolicyKind, TheoryParameters
from empo.parameters.tree import Parameters
from empo.parameters.validation import ParameterError

__all__ = [
    "DEFAULT_WORLD",
    "EvaluationParameters",
    "ExactMethod",
    "ExactSolverParameters",
    "FloatDType",
    "OthersModel",
    "OutputParameters",
    "ParameterError",
    "Parameters",
    "Phase1Parameters",
    "Phase2Parameters",
    "Phase2Variant",
    "RobotPolicyKind",
    "Schedule",
    "SolverKind",
    "StateEncoding",
    "TheoryParameters",
    "WorldAccess",
    "WorldParameters",
    "migration",
]
