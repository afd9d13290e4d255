"""Checkpoints of the learned solver: one file per run directory, written atomically.

A checkpoint holds everything that decides the rest of a run (networks and their
target copies, optimisers, learning-rate schedules, replay buffers, collector states,
frame counters and every random generator), so that a run resumed from it ends with
exactly the parameters of an uninterrupted run.

Checkpoints are read with ``torch.load(..., weights_only=True)``: they hold tensors,
numbers, strings and dictionaries only (random generator states as byte tensors), so
loading one never runs code from the file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "RunCheckpoint",
    "load_checkpoint",
    "read_tensor_file",
    "save_checkpoint",
]

CHECKPOINT_NAME = "learned_checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint (or other saved tensor file) that cannot be read safely; the
    message names the file and what is wrong."""


def read_tensor_file(path: str | Path) -> Any:
    """Load a file written by ``torch.save`` without unpickling arbitrary objects.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    Any
        Its content (tensors, numbers, strings, lists and dictionaries).

    Raises
    ------
    CheckpointError
        If the file is not a torch file, is truncated or corrupted, or holds objects
        other than tensors and plain containers (which would need unpickling).
    """
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused, it holds objects that only unpickling could build "
            f"(a checkpoint holds tensors, numbers, strings and dicts): "
            f"{_unpickling_reason(error)}"
        ) from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read: {error.strerror}") from None
    except Exception as error:  # torch raises many types on a damaged file
        first = (str(error).strip().splitlines() or [""])[0].split(". ")[0]
        raise CheckpointError(
            f"{path}: not a readable torch file (truncated or corrupted): "
            f"{type(error).__name__} {first}".rstrip()
        ) from None


def _unpickling_reason(error: pickle.UnpicklingError) -> str:
    """The line of torch's weights-only error that names what was refused."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (named or lines or ["unsupported content"])[0]


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

    Raises
    ------
    CheckpointError
        If the file exists but cannot be read safely (see :func:`read_tensor_file`).
    """
    if run_dir is None:
        return None
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    return read_tensor_file(path)


@runtime_checkable
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
