"""Checkpoints of the learned solver: one file per run directory, written atomically.

A checkpoint holds everything that decides the rest of a run (networks and their
target copies, optimisers, learning-rate schedules, replay buffers, collector states,
frame counters and every random generator), so that a run resumed from it ends with
exactly the parameters of an uninterrupted run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch

__all__ = ["CHECKPOINT_NAME", "RunCheckpoint", "load_checkpoint", "save_checkpoint"]

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


class _Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RunCheckpoint:
    """The checkpoint of one learned run: named parts saved together, restored on
    registration.

    Parameters
    ----------
    run_dir
        The run directory, or ``None`` (nothing is saved or restored).
    params
        The run's parameter dictionary; a checkpoint found in ``run_dir`` must have
        been written with the same one.

    Raises
    ------
    ValueError
        If the checkpoint in ``run_dir`` was written with other parameters.
    """

    def __init__(self, run_dir: str | Path | None, params: dict[str, Any]):
        self.run_dir = run_dir
        self.params = params
        self.parts: dict[str, _Stateful] = {}
        self.saved = load_checkpoint(run_dir)
        if self.saved is not None and self.saved["params"] != params:
            raise ValueError(
                f"the checkpoint in {run_dir} was written with other parameters; "
                "use a fresh run directory"
            )

    def register(self, **parts: _Stateful) -> bool:
        """Add parts (runners, collectors) to what is saved; restore each from the
        checkpoint when it holds that part. Returns whether anything was restored."""
        restored = False
        for name, part in parts.items():
            self.parts[name] = part
            if self.saved is not None and self.saved.get(name) is not None:
                part.load_state_dict(self.saved[name])
                restored = True
        return restored

    def save(self) -> None:
        """Write every registered part (nothing without a run directory)."""
        if self.run_dir is None:
            return
        state = {name: part.state_dict() for name, part in self.parts.items()}
        save_checkpoint(self.run_dir, {"params": self.params, **state})
