"""The settings of one run that do not decide its result (DESIGN.md: per-run
settings are arguments of ``run_experiment``, not parameters), checked at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from empo.utils.loggers import LoggerKind, WandbMode, parse_logger, parse_mode
from empo.utils.solution_files import parse_dtype, parse_keys


@dataclass(frozen=True)
class RunSettings:
    """Where and how a run executes and logs: the keywords of
    :func:`empo.run_experiment` that do not decide its result, checked.

    Parameters
    ----------
    device
        Torch device of the run.
    wandb_mode, wandb_group, logger
        Logging (:mod:`empo.utils.loggers`).
    progress
        Show progress bars.
    saving
        Which solution tensors are saved and in which precision
        (:mod:`empo.utils.solution_files`).
    """

    device: torch.device
    wandb_mode: WandbMode
    wandb_group: str | None
    logger: Any
    progress: bool
    saving: tuple[Any, Any]

    @classmethod
    def parse(
        cls,
        device: torch.device | str | None,
        wandb_mode: WandbMode | str,
        wandb_group: str | None,
        logger: LoggerKind | str | Any,
        progress: bool,
        solution_keys: str | Sequence[str],
        solution_dtype: str,
    ) -> RunSettings:
        """Check every setting (before anything is written)."""
        return cls(
            torch.device(device or "cpu"),
            parse_mode(wandb_mode),
            wandb_group,
            parse_logger(logger),
            progress,
            (parse_keys(solution_keys), parse_dtype(solution_dtype)),
        )
