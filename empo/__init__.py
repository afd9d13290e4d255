"""empo: policies that softly maximise aggregate human power.

Public API: :class:`Parameters`, :func:`run_experiment`, :class:`RunResult` and the
public enums.
"""

__version__ = "0.4.0"

from empo.parameters import (  # noqa: E402
    FloatDType,
    OthersModel,
    Parameters,
    Phase2Variant,
    RobotPolicyKind,
    SolverKind,
)
from empo.run import RunResult, run_experiment  # noqa: E402
from empo.worlds.registry import WorldName  # noqa: E402

__all__ = [
    "FloatDType",
    "OthersModel",
    "Parameters",
    "Phase2Variant",
    "RobotPolicyKind",
    "RunResult",
    "SolverKind",
    "WorldName",
    "__version__",
    "run_experiment",
]
