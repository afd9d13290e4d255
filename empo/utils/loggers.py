"""Logging of a run through TorchRL's loggers (W&B, TensorBoard, CSV).

``run_experiment(logger=...)`` (CLI ``--logger``) chooses where a run's metrics go:

``"wandb"`` (default)
    :class:`torchrl.record.loggers.WandbLogger`, in the mode ``wandb_mode``:
    ``"offline"`` (default) writes the W&B run under ``<run_dir>/wandb/`` with no
    network and no API key (upload later with ``wandb sync``), ``"online"`` logs live
    (credentials are checked up front, never prompted for), ``"disabled"`` logs
    nothing and never imports wandb.
``"tensorboard"``
    :class:`torchrl.record.loggers.TensorboardLogger`, event files in
    ``<run_dir>/tensorboard/``.
``"csv"``
    :class:`torchrl.record.loggers.CSVLogger`, one CSV file per metric under
    ``<run_dir>/csv/``.
``"none"``
    nothing.

Any :class:`~torchrl.record.loggers.Logger` instance may be passed instead of a name;
the run logs into it and leaves it open. TorchRL's loggers carry scalars,
hyperparameters and (with moviepy) videos; what they do not carry is done here on the
logger's experiment: the run's pictures (W&B images, TensorBoard images), the GIF of
the rollout and copies of ``params.yaml``/``metrics.json`` (W&B), and the final
metrics as the W&B run summary. The config is ``Parameters.to_dict()`` (flattened to
dotted keys for TensorBoard and CSV); the package list TorchRL's W&B logger can add is
left out (``requirements.txt`` pins the environment).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from empo.parameters import Parameters
from empo.utils.extras import require

log = logging.getLogger(__name__)


class WandbMode(str, Enum):
    """Where W&B logs go."""

    OFFLINE = "offline"
    ONLINE = "online"
    DISABLED = "disabled"


class LoggerKind(str, Enum):
    """The TorchRL logger a run writes to."""

    WANDB = "wandb"
    TENSORBOARD = "tensorboard"
    CSV = "csv"
    NONE = "none"


def _parse(enum: type[Enum], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ValueError(
            f"{what} {value!r} is not allowed; allowed: {allowed}"
        ) from None


def parse_mode(mode: WandbMode | str) -> WandbMode:
    """Validate a W&B mode.

    Parameters
    ----------
    mode
        ``"offline"``, ``"online"`` or ``"disabled"``.

    Raises
    ------
    ValueError
        Naming the allowed modes.
    """
    return _parse(WandbMode, mode, "wandb mode")


def parse_logger(logger: Any) -> Any:
    """Validate a logger choice: a :class:`LoggerKind` (or its name, ``None`` for
    ``"none"``) or a TorchRL ``Logger`` instance (returned as it is).

    Parameters
    ----------
    logger
        The ``logger`` argument of ``run_experiment``.

    Raises
    ------
    ValueError
        Naming the allowed logger names.
    """
    if logger is None:
        return LoggerKind.NONE
    if isinstance(logger, (str, LoggerKind)):
        return _parse(LoggerKind, logger, "logger")
    from torchrl.record.loggers import Logger

    if not isinstance(logger, Logger):
        raise ValueError(
            f"logger {logger!r} is neither a logger name "
            f"({', '.join(k.value for k in LoggerKind)}) nor a torchrl Logger"
        )
    return logger


def flat_config(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters as ``{"theory.beta_r": 5.0, ...}`` with scalar values
    (lists and ``None`` as text), for loggers that take flat hyperparameters.

    Parameters
    ----------
    data
        E.g. ``Parameters.to_dict()``.
    prefix
        Prefix of every key.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def _wandb_logger(
    params: Parameters, run_dir: Path, mode: WandbMode, group: str | None
) -> Any:
    wandb = require("wandb", "wandb", "W&B logging (logger 'wandb')")
    from torchrl.record.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    if mode is WandbMode.ONLINE and wandb.run is None:
        if not wandb.login(prompt=False, verify=False):
            raise RuntimeError(
                "W&B online mode needs credentials: run `wandb login` or set "
                "WANDB_API_KEY (or log offline and upload later with `wandb sync`)"
            )
    previous = os.environ.get("WANDB_MODE")
    try:
        logger = WandbLogger(
            exp_name=run_dir.name,
            offline=mode is WandbMode.OFFLINE,
            save_dir=str(run_dir),
            project="empo",
            log_env_packages=False,
            group=group,
            config=params.to_dict(),
            mode=mode.value,
            reinit="create_new",
            settings=wandb.Settings(
                silent=True, console="off", save_code=False, x_disable_stats=True
            ),
        )
    finally:  # TorchRL's offline flag sets WANDB_MODE for the whole process
        if previous is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = previous
    log.info("W&B %s run in %s", mode.value, logger.experiment.dir)
    return logger


def _tensorboard_logger(params: Parameters, run_dir: Path) -> Any:
    require("tensorboard", "tensorboard", "TensorBoard logging (logger 'tensorboard')")
    from torchrl.record.loggers import TensorboardLogger

    logger = TensorboardLogger(exp_name="", log_dir=str(run_dir / "tensorboard"))
    logger.log_hparams(flat_config(params.to_dict()))
    return logger


def _csv_logger(params: Parameters, run_dir: Path) -> Any:
    from torchrl.record.loggers import CSVLogger

    logger = CSVLogger(exp_name="csv", log_dir=str(run_dir))
    logger.log_hparams(flat_config(params.to_dict()))
    return logger


class RunLogger:
    """What a run logs, written to one TorchRL logger (or nowhere).

    It is also the ``logger`` handed to the learned solver: calling it, like
    :meth:`log`, takes a mapping of scalars and a step.

    Parameters
    ----------
    logger
        A TorchRL ``Logger``, or ``None`` to log nothing.
    owned
        Whether :meth:`finish` closes the logger (True for loggers the run made).
    """

    def __init__(self, logger: Any = None, owned: bool = True) -> None:
        self.logger = logger
        self.owned = owned

    @classmethod
    def start(
        cls,
        choice: Any,
        params: Parameters,
        run_dir: Path,
        wandb_mode: WandbMode | str = WandbMode.OFFLINE,
        wandb_group: str | None = None,
    ) -> RunLogger:
        """Open the chosen logger for a run (see the module docstring).

        Parameters
        ----------
        choice
            A :class:`LoggerKind`, its name, ``None`` or a TorchRL ``Logger``.
        params
            The run's parameters (logged as its config).
        run_dir
            The run directory the logger writes into.
        wandb_mode, wandb_group
            Mode and group of a W&B logger.
        """
        choice = parse_logger(choice)
        mode = parse_mode(wandb_mode)
        if not isinstance(choice, LoggerKind):
            choice.log_hparams(params.to_dict())
            return cls(choice, owned=False)
        if choice is LoggerKind.WANDB and mode is not WandbMode.DISABLED:
            return cls(_wandb_logger(params, run_dir, mode, wandb_group))
        if choice is LoggerKind.TENSORBOARD:
            return cls(_tensorboard_logger(params, run_dir))
        if choice is LoggerKind.CSV:
            return cls(_csv_logger(params, run_dir))
        return cls(None)

    @property
    def enabled(self) -> bool:
        """Whether anything is logged."""
        return self.logger is not None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log scalars (training curves of the learned solver, for instance).

        Parameters
        ----------
        metrics
            Name to number (non-numbers are skipped).
        step
            Monotonic step (frames).
        """
        log.debug("step %s: %s", step, dict(metrics))
        numbers = _numbers(metrics)
        if self.logger is not None and numbers:
            self.logger.log_metrics(numbers, step=step)

    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Same as :meth:`log` (the learned solver's ``logger(metrics, step)``)."""
        self.log(metrics, step)

    def log_series(self, series: Mapping[str, list[float]]) -> None:
        """Log per-time-step series, with the time step as their step.

        Parameters
        ----------
        series
            Name to values, one per time step (names are prefixed ``eval/``).
        """
        if self.logger is None or not series:
            return
        length = max(len(v) for v in series.values())
        for t in range(length):
            row = {f"eval/{k}": v[t] for k, v in series.items() if t < len(v)}
            self.log(row, step=t)

    def log_results(
        self,
        summary: Mapping[str, Any],
        images: Mapping[str, Path],
        videos: Mapping[str, Path],
        files: list[Path],
    ) -> None:
        """Log final metrics, pictures and files.

        Parameters
        ----------
        summary
            Final metrics: the W&B run summary; scalars at step 0 elsewhere.
        images
            Name to PNG path.
        videos
            Name to GIF path (W&B only).
        files
            Files copied into the W&B run's files (uploaded on sync).
        """
        if self.logger is None:
            return
        experiment = self.logger.experiment
        if hasattr(experiment, "summary"):  # W&B
            import wandb

            experiment.summary.update(dict(summary))
            media: dict[str, Any] = {k: wandb.Image(str(p)) for k, p in images.items()}
            media.update(
                {k: wandb.Video(str(p), format="gif") for k, p in videos.items()}
            )
            if media:
                experiment.log(media)
            for path in files:
                shutil.copy(path, Path(experiment.dir) / path.name)
            return
        self.log(summary, step=0)
        if hasattr(experiment, "add_image"):  # TensorBoard
            import imageio.v2 as imageio

            for name, path in images.items():
                picture = imageio.imread(path)[..., :3]
                experiment.add_image(name, picture, dataformats="HWC")

    def finish(self, exit_code: int = 0) -> None:
        """Flush the logger and close it if the run opened it.

        Parameters
        ----------
        exit_code
            0 for a completed run, non-zero for a failed one (W&B records it).
        """
        if self.logger is None:
            return
        experiment = self.logger.experiment
        if self.owned and hasattr(experiment, "finish"):  # W&B
            experiment.finish(exit_code=exit_code)
        elif self.owned:
            self.logger.close()
            _close_files(experiment)
        else:
            self.logger.flush()
        self.logger = None


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite-or-not real numbers among ``metrics`` (bools and strings dropped)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, str) and value in ("inf", "-inf", "nan"):
            out[key] = math.nan if value == "nan" else float(value)
    return out


def _close_files(experiment: Any) -> None:
    """Close the CSV files a TorchRL ``CSVExperiment`` keeps open."""
    for handle in getattr(experiment, "files", {}).values():
        handle.close()
