"""Which solution tensors a run writes, and in which precision.

A solution has nine quantities (THEORY.md): phase 1 ``q_m``, ``pi_h`` (``[state,
human, goal, action]``) and ``v_m``; phase 2 ``q_r``, ``pi_r``, ``v_e``, ``x_h``,
``u_r``, ``v_r``. The two per-action phase-1 tables hold most of the bytes (on
key_door 83 of 106 MB in float64), and the exact solver recomputes them bit-identically
from ``params.yaml``, so by default a run writes the other seven, in float32 (key_door:
12 MB). ``"all"`` writes every quantity, ``"none"`` no solution file, and a list
writes exactly the quantities named; the dtype ``float64`` keeps full precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

PHASE_KEYS: dict[str, tuple[str, ...]] = {
    "phase1": ("q_m", "pi_h", "v_m"),
    "phase2": ("q_r", "pi_r", "v_e", "x_h", "u_r", "v_r"),
}
ALL_KEYS: tuple[str, ...] = PHASE_KEYS["phase1"] + PHASE_KEYS["phase2"]
DEFAULT_KEYS: tuple[str, ...] = tuple(k for k in ALL_KEYS if k not in ("q_m", "pi_h"))
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def parse_keys(keys: str | Sequence[str]) -> tuple[str, ...]:
    """The quantities a run writes.

    Parameters
    ----------
    keys
        ``"default"``, ``"all"``, ``"none"``, a comma-separated string of quantity
        names, or a sequence of them.

    Raises
    ------
    ValueError
        Naming an unknown quantity and the allowed ones.
    """
    if isinstance(keys, str):
        named = {"default": DEFAULT_KEYS, "all": ALL_KEYS, "none": ()}
        if keys in named:
            return named[keys]
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ALL_KEYS]
    if unknown:
        raise ValueError(
            f"solution_keys: unknown quantity {unknown[0]!r}; allowed: "
            f"{', '.join(ALL_KEYS)}, or default, all, none"
        )
    return tuple(k for k in ALL_KEYS if k in keys)


def parse_dtype(dtype: str) -> torch.dtype:
    """The float precision of saved solution tensors.

    Parameters
    ----------
    dtype
        ``"float32"`` or ``"float64"``.

    Raises
    ------
    ValueError
        Naming the allowed values.
    """
    if dtype not in DTYPES:
        raise ValueError(
            f"solution_dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}"
        )
    return DTYPES[dtype]


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
        Quantities to write (from :func:`parse_keys`); nothing is written when empty.
    dtype
        Precision of floating-point tensors.

    Returns
    -------
    Path or None
        The file, or ``None`` when no quantity was asked for.
    """
    if not keys:
        return None
    data = {}
    for phase, names in PHASE_KEYS.items():
        tensors = getattr(solution, phase)
        data[phase] = {
            k: _cast(tensors[k].detach().cpu(), dtype)
            for k in names
            if k in keys and k in tensors.keys()
        }
    torch.save(data, path)
    return path


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor
