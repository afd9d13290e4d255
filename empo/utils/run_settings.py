"""The settings of one run that do not decide its result (DESIGN.md: per-run
settings are arguments of ``run_experiment``, not parameters), checked at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from empo.parameters import Parameters
from empo.utils.extras import require
from empo.utils.loggers import LoggerKind, WandbMode, parse_logger, parse_mode


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
    """

    device: torch.device
    wandb_mode: WandbMode
    wandb_group: str | None
    logger: Any
    progress: bool

    @classmethod
    def parse(
        cls,
        device: torch.device | str | None,
        wandb_mode: WandbMode | str,
        wandb_group: str | None,
        logger: LoggerKind | str | Any,
        progress: bool,
    ) -> RunSettings:
        """Check every setting (before anything is written)."""
        return cls(
            torch.device(device or "cpu"),
            parse_mode(wandb_mode),
            wandb_group,
            parse_logger(logger),
            progress,
        )


def check_extras(params: Parameters, settings: RunSettings) -> None:
    """Fail before anything is written when the run needs an optional package
    that is not installed: matplotlib for ``output.plots``, wandb or tensorboard
    for the chosen logger.

    Parameters
    ----------
    params
        The run's parameters.
    settings
        The run's settings.

    Raises
    ------
    MissingExtraError
        One line naming the extra to install.
    """
    if params.output.plots:
        require(
            "matplotlib", "plots", "output.plots (a run's pictures; false draws none)"
        )
    if settings.logger is LoggerKind.WANDB and settings.wandb_mode is not (
        WandbMode.DISABLED
    ):
        require("wandb", "wandb", "W&B logging (logger 'wandb')")
    if settings.logger is LoggerKind.TENSORBOARD:
        require(
            "tensorboard", "tensorboard", "TensorBoard logging (logger 'tensorboard')"
        )
