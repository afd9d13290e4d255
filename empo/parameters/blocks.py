"""The ``world``, ``exact`` and ``evaluation`` blocks and the solver choice."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from empo.parameters.validation import Block, positive, ranged
from empo.worlds.registry import WorldName

DEFAULT_WORLD = WorldName.KEY_DOOR
"""The world of the default experiment (``python -m empo`` with no arguments)."""


class SolverKind(str, Enum):
    """Which solver computes the two phases."""

    EXACT = "exact"
    LEARNED = "learned"
    BOTH = "both"


class FloatDType(str, Enum):
    """Float precision of the exact solver's tensors."""

    FLOAT64 = "float64"
    FLOAT32 = "float32"


@dataclass(frozen=True)
class WorldParameters(Block):
    """Which registered world to build, and its builder's options.

    Parameters
    ----------
    name
        A registered :class:`~empo.worlds.registry.WorldName`.
    options
        Keyword options of the world's builder (YAML/JSON values only).
    """

    prefix: ClassVar[str] = "world"

    name: WorldName = DEFAULT_WORLD
    options: dict[str, Any] = ranged({})


@dataclass(frozen=True)
class ExactSolverParameters(Block):
    """Numerics of the exact solver (backward induction / fixed-point iteration).

    Parameters
    ----------
    tolerance
        Convergence threshold of the fixed-point iteration on cyclic worlds, ``> 0``.
    max_iterations
        Iteration cap of the fixed-point iteration, ``≥ 1``.
    dtype
        Float precision, ``"float64"`` or ``"float32"``.
    """

    prefix: ClassVar[str] = "exact"

    tolerance: float = ranged(1e-10, positive, "0 < tolerance < inf")
    max_iterations: int = ranged(10_000, lambda x: x >= 1, "max_iterations ≥ 1")
    dtype: FloatDType = FloatDType.FLOAT64


@dataclass(frozen=True)
class EvaluationParameters(Block):
    """How the solved policies are evaluated from the initial state.

    Parameters
    ----------
    rollouts
        Trajectories sampled under the solved joint policy for the sampled statistics,
        ``≥ 0`` (0 skips sampling).
    horizon
        Steps to follow the most likely trajectory and the state distribution, ``≥ 1``;
        ``None``: until every trajectory has ended (acyclic worlds) or
        :data:`~empo.evaluation.CYCLIC_HORIZON` steps (cyclic worlds).
    """

    prefix: ClassVar[str] = "evaluation"

    rollouts: int = ranged(100, lambda x: x >= 0, "rollouts ≥ 0")
    horizon: int | None = ranged(None, lambda x: x >= 1, "horizon ≥ 1 or null")
