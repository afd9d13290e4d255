"""Hyperparameter sweeps: many runs of :func:`empo.run_experiment` from one spec.

This package sits above :mod:`empo.run` (it calls ``run_experiment``); nothing below
``run.py`` imports it.

- :mod:`empo.sweep.spec`: the sweep specification (base parameters, grid, overrides)
  and stable run names;
- :mod:`empo.sweep.runner`: :func:`run_sweep`, the sweep directory and resuming;
- :mod:`empo.sweep.backends`: where runs execute (in process, local processes, Ray);
- :mod:`empo.sweep.table`: the results table (``results.jsonl``, ``results.csv``);
- :mod:`empo.sweep.cli`: the ``python -m empo sweep`` subcommand.
"""

from empo.sweep.runner import SweepResult, run_sweep
from empo.sweep.spec import SweepError, SweepRun, SweepSpec, load_sweep

__all__ = [
    "SweepError",
    "SweepResult",
    "SweepRun",
    "SweepSpec",
    "load_sweep",
    "run_sweep",
]
