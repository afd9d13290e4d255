"""Weights & Biases logging of a run, offline by default.

``mode="offline"`` writes a W&B run under ``<run_dir>/wandb/`` without network access
or an API key (upload it later with ``wandb sync <run_dir>/wandb/offline-run-*``);
``"online"`` logs live (credentials are required up front, never prompted for);
``"disabled"`` never imports wandb. The run's configuration
is ``Parameters.to_dict()``; ``params.yaml`` and ``metrics.json`` are also copied into
the W&B run's files.
"""

from __future__ import annotations

import logging
import os
import shutil
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from empo.parameters import Parameters

log = logging.getLogger(__name__)


class WandbMode(str, Enum):
    """Where W&B logs go."""

    OFFLINE = "offline"
    ONLINE = "online"
    DISABLED = "disabled"


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
    try:
        return WandbMode(mode)
    except ValueError:
        allowed = ", ".join(m.value for m in WandbMode)
        raise ValueError(
            f"wandb mode {mode!r} is not allowed; allowed: {allowed}"
        ) from None


class WandbTracker:
    """Logs metrics, pictures and files of one run to W&B (or nowhere).

    Also the ``logger`` handed to the learned solver: calling it, like :meth:`log`,
    takes a mapping of scalars and a step.

    Parameters
    ----------
    run
        The ``wandb`` run, or ``None`` when disabled.
    """

    def __init__(self, run: Any = None) -> None:
        self.run = run

    @classmethod
    def start(
        cls,
        params: Parameters,
        run_dir: Path,
        mode: WandbMode | str = WandbMode.OFFLINE,
        group: str | None = None,
    ) -> WandbTracker:
        """Start a W&B run in ``run_dir`` named after the directory.

        Parameters
        ----------
        params
            Logged as the run's config.
        run_dir
            The run directory; W&B writes into ``run_dir/wandb``.
        mode
            ``"offline"``, ``"online"`` or ``"disabled"``.
        group
            Optional W&B group (e.g. a sweep's name).
        """
        mode = parse_mode(mode)
        if mode is WandbMode.DISABLED:
            return cls(None)
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        if mode is WandbMode.ONLINE and wandb.run is None:
            if not wandb.login(prompt=False, verify=False):
                raise RuntimeError(
                    "W&B online mode needs credentials: run `wandb login` or set "
                    "WANDB_API_KEY (or log offline and upload later with `wandb sync`)"
                )
        run = wandb.init(
            mode=mode.value,
            dir=str(run_dir),
            project="empo",
            name=run_dir.name,
            group=group,
            config=params.to_dict(),
            reinit="create_new",
            settings=wandb.Settings(
                silent=True, console="off", save_code=False, x_disable_stats=True
            ),
        )
        run.define_metric("eval/t")
        run.define_metric("eval/*", step_metric="eval/t")
        log.info("W&B %s run in %s", mode.value, run.dir)
        return cls(run)

    @property
    def enabled(self) -> bool:
        """Whether a W&B run is active."""
        return self.run is not None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log scalars (training curves of the learned solver, for instance).

        Parameters
        ----------
        metrics
            Name to number.
        step
            Monotonic step (frames); ``None`` lets W&B count.
        """
        log.debug("step %s: %s", step, dict(metrics))
        if self.run is not None:
            self.run.log(dict(metrics), step=step)

    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Same as :meth:`log` (the learned solver's ``logger(metrics, step)``)."""
        self.log(metrics, step)

    def log_series(self, series: Mapping[str, list[float]]) -> None:
        """Log per-time-step series against their own axis ``eval/t``.

        Parameters
        ----------
        series
            Name to values, one per time step (names are prefixed ``eval/``).
        """
        if self.run is None or not series:
            return
        length = max(len(v) for v in series.values())
        for t in range(length):
            row = {f"eval/{k}": v[t] for k, v in series.items() if t < len(v)}
            self.run.log({"eval/t": t, **row})

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
            Scalar metrics, written to the run summary.
        images
            Name to PNG path.
        videos
            Name to GIF path.
        files
            Files copied into the W&B run's files (uploaded on sync).
        """
        if self.run is None:
            return
        import wandb

        self.run.summary.update(dict(summary))
        media: dict[str, Any] = {k: wandb.Image(str(p)) for k, p in images.items()}
        media.update({k: wandb.Video(str(p), format="gif") for k, p in videos.items()})
        if media:
            self.run.log(media)
        for path in files:
            shutil.copy(path, Path(self.run.dir) / path.name)

    def finish(self, exit_code: int = 0) -> None:
        """End the W&B run (a no-op when disabled).

        Parameters
        ----------
        exit_code
            0 for a completed run, non-zero for a failed one.
        """
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
