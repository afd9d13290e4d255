"""Checkpoints are read without unpickling: a crafted file runs no code, a damaged one
is reported with its name."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from empo.learning.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    RunCheckpoint,
    save_checkpoint,
)


class _Payload:
    """Unpickling this object would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_does_not_execute(tmp_path) -> None:
    marker = tmp_path / "marker"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"params": {}, "phase1": _Payload(marker)}, run_dir / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match=CHECKPOINT_NAME) as raised:
        RunCheckpoint(run_dir, {})
    assert "posix.system" in str(raised.value)
    assert not marker.exists()


def test_raw_pickle_checkpoint_does_not_execute(tmp_path) -> None:
    marker = tmp_path / "marker"
    (tmp_path / CHECKPOINT_NAME).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="refused"):
        RunCheckpoint(tmp_path, {})
    assert not marker.exists()


def test_truncated_checkpoint_names_the_file(tmp_path) -> None:
    path = save_checkpoint(tmp_path, {"params": {"seed": 1}, "x": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"{path}: not a readable torch file"):
        RunCheckpoint(tmp_path, {"seed": 1})


def test_checkpoint_round_trip_under_weights_only(tmp_path) -> None:
    generator = torch.Generator().manual_seed(7)
    state = {"params": {"seed": 1, "name": "w"}, "rng": {"g": generator.get_state()}}
    save_checkpoint(tmp_path, state)
    saved = RunCheckpoint(tmp_path, {"seed": 1, "name": "w"}).saved
    assert torch.equal(saved["rng"]["g"], generator.get_state())
