"""Running a sweep: the sweep directory, the table, and the backend.

Each run of a :class:`~empo.sweep.spec.SweepSpec` is made by
:func:`empo.run_experiment` under its stable name and the sweep's W&B group, on one
of the backends of :mod:`empo.sweep.backends`.

The sweep directory holds ``sweep.json`` (the spec), ``results.jsonl`` and
``results.csv`` (the table, :mod:`empo.sweep.table`), ``runs/<run>/`` (the run
directories) and ``logs/<run>.log`` (each run's output). A row is recorded as soon as
its run ends.

Stopping and resuming: SIGINT or SIGTERM to the sweep's process stops every run in
flight (each ends ``interrupted``, a learned run with its checkpoint), records the
rows of runs that ended meanwhile, adopts any completed run directory whose row is
missing, rewrites ``results.csv`` and re-raises ``KeyboardInterrupt``. Running the
same sweep into the same directory again skips runs whose row says ``completed``,
adopts completed run directories without a row (a run that finished after its sweep
was killed), continues unfinished runs in their own directories (from their
checkpoints) and retries failed ones; a different base in the same directory is
refused.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from empo.sweep.backends import (
    BACKENDS,
    BackendOptions,
    check_backend,
    default_devices,
)
from empo.sweep.spec import SweepError, SweepSpec
from empo.sweep.table import (
    COMPLETED,
    CSV_NAME,
    FAILED,
    append_row,
    ordered_rows,
    read_rows,
    write_csv,
)
from empo.sweep.worker import RunTask, completed_row
from empo.utils.run_dir import Interruption, interruptible
from empo.utils.run_settings import RunSettings, check_extras

logger = logging.getLogger(__name__)

SPEC_NAME = "sweep.json"


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`run_sweep`.

    Parameters
    ----------
    sweep_dir
        The sweep directory.
    rows
        The table rows in sweep order (including rows of earlier invocations).
    skipped
        Names of runs skipped because an earlier invocation completed them.
    executed
        Names of runs executed by this invocation.
    """

    sweep_dir: Path
    rows: list[dict[str, Any]]
    skipped: tuple[str, ...] = ()
    executed: tuple[str, ...] = ()

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Rows whose status is ``failed``."""
        return [row for row in self.rows if row["status"] == FAILED]

    @property
    def csv_path(self) -> Path:
        """The table as CSV."""
        return self.sweep_dir / CSV_NAME


def _prepare_directory(spec: SweepSpec, sweep_dir: Path) -> None:
    """Create the sweep directory or check it holds the same sweep, then save spec."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    spec_path = sweep_dir / SPEC_NAME
    if spec_path.exists():
        try:
            previous = json.loads(spec_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise SweepError(f"{spec_path} is malformed: {error}") from None
        base = json.loads(json.dumps(spec.base.to_dict()))
        if previous.get("name") != spec.name or previous.get("base") != base:
            raise SweepError(
                f"{sweep_dir} holds a different sweep ({previous.get('name')!r} "
                "with other base parameters); choose another output directory"
            )
    temporary = spec_path.with_name(f".{SPEC_NAME}.tmp")
    temporary.write_text(json.dumps(spec.to_dict(), indent=2) + "\n", encoding="utf-8")
    temporary.replace(spec_path)


def _adopt_completed(
    sweep_dir: Path, tasks: Sequence[RunTask], rows: dict[str, dict[str, Any]]
) -> int:
    """Record the row of every run whose directory says ``completed`` but whose row
    is missing or stale (its worker finished after the sweep was stopped); return
    how many were adopted."""
    adopted = 0
    for task in tasks:
        if rows.get(task.name, {}).get("status") == COMPLETED:
            continue
        row = completed_row(task)
        if row is not None:
            append_row(sweep_dir, row)
            rows[task.name] = row
            adopted += 1
    return adopted


def run_sweep(
    spec: SweepSpec,
    output_dir: Path | str,
    *,
    backend: str = "sequential",
    workers: int | None = 1,
    address: str | None = None,
    devices: Sequence[str] | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    wandb_mode: str = "offline",
    progress: bool = True,
) -> SweepResult:
    """Make every run of a sweep not yet completed in ``output_dir``.

    Parameters
    ----------
    spec
        The sweep.
    output_dir
        The sweep directory (created if needed; resumed if it holds this sweep).
    backend
        ``"sequential"``, ``"multiprocess"`` or ``"ray"``.
    workers
        Runs in flight at once (ignored by ``sequential``).
    address
        Ray cluster address; ``None`` starts Ray locally (``ray`` only).
    devices
        Devices the ``multiprocess`` slots cycle through; ``None`` means one per GPU
        when there are several, else each run's default.
    cpus_per_run, gpus_per_run
        Resource request of each Ray task.
    wandb_mode
        W&B mode of every run; all runs share the W&B group ``spec.name``.
    progress
        Show one overall progress bar (runs done/failed/remaining, elapsed, estimate).

    Returns
    -------
    SweepResult
        The table; a failed run is a row with status ``failed``, never an exception.

    Raises
    ------
    SweepError
        On an unknown backend or a directory that holds a different sweep.
    MissingExtraError
        When the backend or a run (its pictures, W&B) needs a package that is not
        installed (before anything is written).
    """
    if backend not in BACKENDS:
        raise SweepError(
            f"unknown sweep backend {backend!r}; allowed: {', '.join(BACKENDS)}"
        )
    check_backend(backend)
    settings = RunSettings.parse(None, wandb_mode, spec.name, "wandb", False)
    for run in spec.runs:
        check_extras(run.params, settings)
    if devices is None:
        devices = default_devices() if backend == "multiprocess" else ()
    try:
        options = BackendOptions(
            workers=workers,
            address=address,
            devices=tuple(devices),
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
        )
    except ValueError as error:
        raise SweepError(str(error)) from None
    sweep_dir = Path(output_dir)
    _prepare_directory(spec, sweep_dir)
    rows = read_rows(sweep_dir)
    order = [run.name for run in spec.runs]
    tasks = [
        RunTask(
            name=run.name,
            params=run.params.to_dict(),
            overrides=run.overrides,
            output_dir=str(sweep_dir / "runs"),
            log_path=str(sweep_dir / "logs" / f"{run.name}.log"),
            wandb_group=spec.name,
            wandb_mode=wandb_mode,
        )
        for run in spec.runs
        if rows.get(run.name, {}).get("status") != COMPLETED
    ]
    adopted = _adopt_completed(sweep_dir, tasks, rows)
    skipped = tuple(n for n in order if rows.get(n, {}).get("status") == COMPLETED)
    tasks = [task for task in tasks if task.name not in skipped]
    logger.info(
        "sweep %s: %d runs, %d already completed (%d adopted from their "
        "directories), %d to run on %s",
        spec.name,
        len(order),
        len(skipped),
        adopted,
        len(tasks),
        backend,
    )
    write_csv(sweep_dir, ordered_rows(rows, order))
    counts = {COMPLETED: len(skipped), FAILED: 0}
    bar = tqdm(
        total=len(order),
        initial=len(skipped),
        desc=f"sweep {spec.name}",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    start = time.perf_counter()

    def record(row: dict[str, Any]) -> None:
        """Append a finished run's row, refresh the CSV and the progress bar."""
        append_row(sweep_dir, row)
        rows[row["run"]] = row
        write_csv(sweep_dir, ordered_rows(rows, order))
        status = row["status"] if row["status"] in counts else FAILED
        counts[status] += 1
        if row["status"] == FAILED:
            logger.info(
                "sweep %s: run %s failed: %s", spec.name, row["run"], row["error"]
            )
        bar.set_postfix(
            done=counts[COMPLETED],
            failed=counts[FAILED],
            remaining=len(order) - counts[COMPLETED] - counts[FAILED],
            refresh=False,
        )
        bar.update(1)

    stop = Interruption()
    try:
        with interruptible() as stop:
            BACKENDS[backend](tasks, record, options)
    except BaseException as caught:
        error = stop.error(caught)
        if not isinstance(error, KeyboardInterrupt):
            raise
        _adopt_completed(sweep_dir, tasks, rows)
        write_csv(sweep_dir, ordered_rows(rows, order))
        logger.warning(
            "sweep %s interrupted: %d of %d runs completed; run it again to resume",
            spec.name,
            sum(row["status"] == COMPLETED for row in rows.values()),
            len(order),
        )
        if error is not caught:
            raise error
        raise
    finally:
        bar.close()
    logger.info(
        "sweep %s: %d completed, %d failed in %.1f s",
        spec.name,
        counts[COMPLETED],
        counts[FAILED],
        time.perf_counter() - start,
    )
    return SweepResult(
        sweep_dir=sweep_dir,
        rows=ordered_rows(rows, order),
        skipped=skipped,
        executed=tuple(task.name for task in tasks),
    )
