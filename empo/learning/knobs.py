"""Knob sets of the learned solver's documented accuracy runs (docs/learned.md).

One definition for the tests (``tests/learning``) and the benchmark script
(``scripts/bench_learning.py``) that measure with them. Each is a plain dictionary of
phase knobs (:class:`empo.parameters.learning.Phase1Parameters` and
:class:`~empo.parameters.learning.Phase2Parameters` fields) to merge into a phase block.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ACCURATE", "ACCURATE_PHASE2"]

ACCURATE: dict[str, Any] = {
    "learning_rate": 1e-2,
    "learning_rate_decay": 0.01,
    "batch_size": 64,
    "num_frames": 6000,
    "frames_per_batch": 100,
    "updates_per_batch": 20,
    "num_envs": 10,
    "max_episode_steps": 50,
    "buffer_size": 5000,
    "uniform_state_fraction": 1.0,
    "target_update_tau": 0.2,
    "embed_dim": 32,
    "hidden_sizes": [64, 64],
    "epsilon_start": 0.5,
    "epsilon_end": 0.1,
    "epsilon_steps": 2000,
}
"""Knobs of both phases for the small worlds (the random test world, the paradigm
worlds): 6,000 frames, 1,200 gradient steps per phase, every batch drawn uniformly
from the enumerated states."""

ACCURATE_PHASE2: dict[str, Any] = {
    "beta_r_start": 0.5,
    "beta_r_steps": 2000,
    "goal_resample_steps": 10,
}
"""Phase-2 additions to :data:`ACCURATE`: ``β'_r`` annealed from 0.5 over 2,000
frames, goal profiles redrawn every 10 steps."""
