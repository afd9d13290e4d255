"""Which solution quantities a run writes, and in which precision
(``params.output``, :class:`~empo.parameters.OutputParameters`).

A solution has nine quantities (THEORY.md): phase 1 ``q_m``, ``pi_h`` (``[state,
human, goal, action]``) and ``v_m``; phase 2 ``q_r``, ``pi_r``, ``v_e``, ``x_h``,
``u_r``, ``v_r``; ``w_h = log2 x_h`` is written when named. The two per-action
phase-1 tables hold most of the bytes (on key_door 83 of 106 MB in float64), and the
exact solver recomputes them bit-identically from ``params.yaml``, so by default a run
writes the other seven, in float32 (key_door: 12 MB). ``[all]`` writes the nine,
``[]`` no solution file, and a list writes exactly the quantities named; the dtype
``float64`` keeps full precision. The layered solver writes per-state files instead
(:func:`layered_outputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from empo.parameters import OutputParameters
from empo.parameters.blocks import LAYERED_DEFAULT, QUANTITIES

PHASE_KEYS: dict[str, tuple[str, ...]] = {
    "phase1": ("q_m", "pi_h", "v_m"),
    "phase2": ("q_r", "pi_r", "v_e", "x_h", "w_h", "u_r", "v_r"),
}
ALL_KEYS: tuple[str, ...] = tuple(
    k for k in PHASE_KEYS["phase1"] + PHASE_KEYS["phase2"] if k != "w_h"
)
DEFAULT_KEYS: tuple[str, ...] = tuple(k for k in ALL_KEYS if k not in ("q_m", "pi_h"))
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def solution_keys(output: OutputParameters) -> tuple[str, ...]:
    """The quantities ``solution.pt`` holds under ``output.quantities``.

    Parameters
    ----------
    output
        The run's output parameters.
    """
    return _named_or_listed(
        output, {"default": DEFAULT_KEYS, "all": ALL_KEYS}, QUANTITIES
    )


def layered_outputs(output: OutputParameters) -> tuple[str, ...]:
    """The per-state quantities the layered solver writes besides its values
    ``v_m``, ``v_e``, ``v_r`` under ``output.quantities``.

    Parameters
    ----------
    output
        The run's output parameters.
    """
    return _named_or_listed(
        output, {"default": LAYERED_DEFAULT, "all": QUANTITIES}, output.quantities
    )


def _named_or_listed(
    output: OutputParameters,
    named: dict[str, tuple[str, ...]],
    order: Sequence[str],
) -> tuple[str, ...]:
    """The quantities of a named set (``[default]`` or ``[all]``), else those of
    ``output.quantities`` in the order of ``order``."""
    if len(output.quantities) == 1 and output.quantities[0] in named:
        return named[output.quantities[0]]
    return tuple(k for k in order if k in output.quantities)


def solution_dtype(output: OutputParameters) -> torch.dtype:
    """The precision of ``solution.pt`` (``output.dtype``)."""
    return DTYPES[output.dtype.value]


def save_solution(
    solution: Any, path: Path, keys: Sequence[str], dtype: torch.dtype
) -> Path | None:
    """Write ``{"phase1": {...}, "phase2": {...}}`` with the chosen quantities.

    Parameters
    ----------
    solution
        Has ``phase1`` and ``phase2`` TensorDicts.
    path
        The ``.pt`` file.
    keys
        Quantities to write (:func:`solution_keys`); nothing is written when empty.
    dtype
        Precision of floating-point tensors.

    Returns
    -------
    Path or None
        The file, or ``None`` when no quantity was asked for.
    """
    if not keys:
        return None
    data: dict[str, dict[str, torch.Tensor]] = {}
    for phase, names in PHASE_KEYS.items():
        tensors = getattr(solution, phase)
        data[phase] = {
            k: _cast(tensors[k].detach().cpu(), dtype)
            for k in names
            if k in keys and k in tensors.keys()
        }
    if "w_h" in keys and "w_h" not in data["phase2"]:
        x_h = solution.phase2["x_h"].detach().cpu()
        data["phase2"]["w_h"] = _cast(torch.log2(x_h), dtype)
    torch.save(data, path)
    return path


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor
