"""``resume_experiment``: continue an interrupted, failed or killed run in place.

``python -m empo run --resume RUN_DIR`` and the sweeps (:mod:`empo.sweep.worker`)
call it; the run itself is made by :func:`empo.run.execute_in_run_dir`, exactly as
:func:`empo.run_experiment` makes a new one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from empo.parameters import Parameters
from empo.parameters.world_options import build_checked_world
from empo.run import RunResult, execute_in_run_dir
from empo.utils.loggers import LoggerKind, WandbMode
from empo.utils.run_dir import (
    COMPLETED,
    RUNNING,
    RunDirError,
    read_metrics,
    run_state,
)
from empo.utils.run_settings import RunSettings, check_extras

log = logging.getLogger(__name__)


def resume_experiment(
    run_dir: str | Path,
    *,
    device: torch.device | str | None = None,
    wandb_mode: WandbMode | str = "offline",
    wandb_group: str | None = None,
    logger: LoggerKind | str | Any = "wandb",
    progress: bool = True,
) -> RunResult:
    """Continue an unfinished run in its own directory.

    The parameters come from the directory's ``params.yaml``. A learned run
    continues from its checkpoint (``learned_checkpoint.pt``); an exact run is
    solved again (it is deterministic). With the same torch thread count (recorded
    as ``threads`` in ``metrics.json``) the run ends bit-identical to one that was
    never interrupted.

    Parameters
    ----------
    run_dir
        A run directory whose status is ``interrupted``, ``failed`` or ``killed``
        (see :func:`~empo.utils.run_dir.run_state`).
    device, wandb_mode, wandb_group, logger, progress
        As for :func:`empo.run_experiment`.

    Returns
    -------
    RunResult
        As for :func:`empo.run_experiment`.

    Raises
    ------
    RunDirError
        If ``run_dir`` is no run directory, its run completed, or its process is
        still running.
    ParameterError
        If its parameters or world inputs are invalid.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "params.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no params.yaml)")
    state = run_state(run_dir)
    if state == COMPLETED:
        raise RunDirError(f"{run_dir}: the run already completed")
    if state == RUNNING:
        pid = (read_metrics(run_dir) or {}).get("pid")
        raise RunDirError(f"{run_dir}: the run is still running (process {pid})")
    params = Parameters.load(run_dir / "params.yaml")
    settings = RunSettings.parse(device, wandb_mode, wandb_group, logger, progress)
    check_extras(params, settings)
    world = build_checked_world(params.world)
    log.info("resuming run %s (status %s)", run_dir.name, state)
    return execute_in_run_dir(params, world, lambda: run_dir, settings)
