"""Checkpoints of the learned solver: one file per run directory, written atomically.

A checkpoint holds everything that decides the rest of a run (networks and their
target copies, optimisers, learning-rate schedules, replay buffers, collector states,
frame counters and every random generator), so that a run resumed from it ends with
exactly the parameters of an uninterrupted run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "learned_checkpoint.pt"


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``run_dir/learned_checkpoint.pt`` (atomic replace).

    Parameters
    ----------
    run_dir
        The run directory (created if missing).
    state
        A ``torch.save``-able dictionary.

    Returns
    -------
    Path
        The checkpoint file.
    """
    directory = Path(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    partial = directory / (CHECKPOINT_NAME + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)
    return path


def load_checkpoint(run_dir: str | Path | None) -> dict[str, Any] | None:
    """The checkpoint in ``run_dir``, or ``None`` if there is none.

    Parameters
    ----------
    run_dir
        The run directory, or ``None``.
    """
    if run_dir is None:
        return None
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    return torch.load(path, weights_only=False)
