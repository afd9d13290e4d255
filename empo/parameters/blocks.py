"""The ``world``, ``exact`` and ``evaluation`` blocks and the solver choice."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from empo.parameters.migrations import migration
from empo.parameters.validation import Block, positive, ranged, unchecked_init
from empo.parameters.world_options import check_world_options
from empo.worlds.registry import WorldName

DEFAULT_WORLD = WorldName.KEY_DOOR
"""The world of the default experiment (``python -m empo`` with no arguments)."""


class SolverKind(str, Enum):
    """Which solver computes the two phases."""

    EXACT = "exact"
    LEARNED = "learned"
    BOTH = "both"


class FloatDType(str, Enum):
    """Float precision of the exact solver's tensors or of written solution files."""

    FLOAT64 = "float64"
    FLOAT32 = "float32"


@unchecked_init
@dataclass(frozen=True)
class WorldParameters(Block):
    """Which registered world to build, and its builder's options.

    Parameters
    ----------
    name
        A registered :class:`~empo.worlds.registry.WorldName`.
    options
        Keyword options of the world's builder (YAML/JSON values only), checked by
        :func:`~empo.parameters.world_options.check_world_options`: unknown names,
        wrong types and values out of bounds are errors.
    """

    prefix: ClassVar[str] = "world"

    name: WorldName = DEFAULT_WORLD
    options: dict[str, Any] = ranged({})

    def check_consistency(self) -> None:
        """The options are keywords of the world's builder, within bounds."""
        check_world_options(self.name, self.options)


class ExactMethod(str, Enum):
    """How the exact solver holds the world (``docs/exact.md``)."""

    AUTO = "auto"
    IN_MEMORY = "in_memory"
    LAYERED = "layered"


QUANTITIES = ("q_m", "pi_h", "v_m", "q_r", "pi_r", "v_e", "x_h", "w_h", "u_r", "v_r")
"""Every solution quantity a run can write (THEORY.md; ``w_h = log2 x_h``)."""
OUTPUT_WORDS = ("default", "all")
"""Words that stand alone in ``output.quantities``."""
LAYERED_DEFAULT = ("pi_r", "x_h", "w_h")
"""The layered solver's files besides its values under ``[default]``."""


@unchecked_init
@dataclass(frozen=True)
class ExactSolverParameters(Block):
    """Numerics and budget of the exact solver (backward induction / fixed point).

    Parameters
    ----------
    tolerance
        Convergence threshold of the fixed-point iteration on cyclic worlds, ``> 0``.
    max_iterations
        Iteration cap of the fixed-point iteration, ``≥ 1``.
    dtype
        Float precision, ``"float64"`` or ``"float32"``.
    method
        ``"in_memory"`` (the compiled world's dense tables), ``"layered"`` (layer by
        layer, for worlds whose states carry their time step) or ``"auto"``: layered
        where the in-memory solver would exceed ``memory_gib`` and the world has
        layers.
    max_states
        Most reachable states a run may have, ``≥ 1`` (``null``: no limit); checked
        during enumeration.
    memory_gib
        Memory budget of the exact solver in GiB, ``> 0``: enumeration stops as soon
        as the chosen solver's estimate for the states found exceeds it.
    """

    prefix: ClassVar[str] = "exact"

    tolerance: float = ranged(1e-10, positive, "0 < tolerance < inf")
    max_iterations: int = ranged(10_000, lambda x: x >= 1, "max_iterations ≥ 1")
    dtype: FloatDType = FloatDType.FLOAT64
    method: ExactMethod = ExactMethod.AUTO
    max_states: int | None = ranged(
        100_000_000, lambda x: x >= 1, "max_states ≥ 1 or null"
    )
    memory_gib: float = ranged(8.0, positive, "0 < memory_gib < inf")


@migration("0.2.0")
def _outputs_moved(data: dict[str, Any]) -> dict[str, Any]:
    """Up to 0.2.0 the layered solver's files were chosen by ``exact.outputs``
    (default ``[pi_r, x_h, w_h]``) and ``solution.pt`` by run arguments; both are
    ``output.quantities`` now (the old default is its ``default``)."""
    out = dict(data)
    exact = data.get("exact")
    if isinstance(exact, dict) and "outputs" in exact:
        out["exact"] = {k: v for k, v in exact.items() if k != "outputs"}
        if list(exact["outputs"] or []) != list(LAYERED_DEFAULT):
            output = data.get("output") if isinstance(data.get("output"), dict) else {}
            out["output"] = {**output, "quantities": list(exact["outputs"] or [])}
    return out


def _quantities_allowed(names: tuple[str, ...]) -> bool:
    """``[default]``, ``[all]`` or distinct quantity names (``[]``: none)."""
    if len(names) == 1 and names[0] in OUTPUT_WORDS:
        return True
    return set(names) <= set(QUANTITIES) and len(set(names)) == len(names)


@unchecked_init
@dataclass(frozen=True)
class OutputParameters(Block):
    """What a run writes besides ``params.yaml``, ``metrics.json``,
    ``trajectory.json`` and ``run.log`` (``docs/run_directory.md``).

    Parameters
    ----------
    quantities
        Solution quantities written (``q_m``, ``pi_h``, ``v_m``, ``q_r``, ``pi_r``,
        ``v_e``, ``x_h``, ``w_h``, ``u_r``, ``v_r``; ``w_h = log2 x_h``): ``[default]``
        (an in-memory solution: all but the per-action phase-1 tables ``q_m`` and
        ``pi_h``; the layered solver: ``pi_r``, ``x_h``, ``w_h``), ``[all]``, ``[]``
        (none) or the names. An in-memory solution goes to ``solution.pt``
        (``solution_learned.pt``); the layered solver writes ``exact/<name>.npy``,
        always with ``v_m``, ``v_e`` and ``v_r``, from which it recomputes the rest.
    dtype
        Precision of ``solution.pt``: ``float32`` (default) or ``float64`` (the
        solver's full precision). The layered solver's files keep the solver's
        precision (``exact.dtype``).
    plots
        Draw the run's pictures (``*.png``, ``rollout.gif``); needs matplotlib (the
        extra ``empo[plots]``), checked before anything is written.
    """

    prefix: ClassVar[str] = "output"

    quantities: tuple[str, ...] = ranged(
        ("default",),
        _quantities_allowed,
        "[default], [all], [] or distinct names of " + ", ".join(QUANTITIES),
    )
    dtype: FloatDType = FloatDType.FLOAT32
    plots: bool = True


@unchecked_init
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
