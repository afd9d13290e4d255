"""One run of a sweep, as every backend executes it, and the table rows it yields.

:func:`execute_run` makes the run in ``<output_dir>/<name>``: a new directory is
created by :func:`empo.run_experiment`; a directory left by an earlier invocation is
adopted when its run completed (no rerun), and otherwise continued in place by
:func:`empo.resume.resume_experiment` (a learned run from its checkpoint), so a run never
gets a second directory. A failing run becomes a ``failed`` row; SIGINT or SIGTERM
(``KeyboardInterrupt``) propagates, leaving the run ``interrupted`` and without a row.

:func:`serve` is the loop of a reusable worker process (``multiprocess`` backend): it
imports torch and empo once and then executes the tasks its parent sends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator, NoReturn, Sequence

from empo.sweep.table import COMPLETED, FAILED
from empo.utils.run_dir import RUNNING, read_metrics, run_state

#: Fields of ``metrics.json`` that are not repeated among a row's metrics: the row's
#: own fields and the process record of the run.
ROW_FIELDS = ("status", "error", "duration_s", "pid", "host", "started_at")

WORKER_MODULES = ("empo.sweep.worker", "empo.run", "empo.resume")
"""What a run imports: a worker process that starts afresh (fork server, local Ray)
imports these once, as it starts."""

DRAWING_MODULES = ("empo.utils.plots",)
"""What a run that draws (``output.plots``) imports on top of :data:`WORKER_MODULES`
(matplotlib, imageio): about a second per process."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to execute one run of a sweep (picklable).

    Parameters
    ----------
    name
        The run's stable name, also its directory name under ``output_dir``.
    params
        The run's full parameters as :meth:`empo.Parameters.to_dict` writes them.
    overrides
        The dotted overrides that distinguish this run, copied into its row.
    output_dir
        Directory holding the run directory ``<output_dir>/<name>``.
    log_path
        File that receives the run's output (stdout, stderr, ``empo`` log records).
    wandb_group
        The sweep's W&B group.
    wandb_mode
        ``"online"``, ``"offline"`` or ``"disabled"``.
    device
        Torch device of the run; ``None`` lets :func:`empo.run_experiment` choose.
    """

    name: str
    params: dict[str, Any]
    overrides: dict[str, Any]
    output_dir: str
    log_path: str
    wandb_group: str
    wandb_mode: str = "offline"
    device: str | None = None

    @property
    def run_dir(self) -> Path:
        """The run's directory."""
        return Path(self.output_dir) / self.name


def worker_modules(tasks: Sequence[RunTask]) -> tuple[str, ...]:
    """The modules a worker should import before its first run: those of every run,
    and the drawing modules when a run draws (and matplotlib is installed; a run
    that draws without it fails on its own, naming the extra).

    Parameters
    ----------
    tasks
        The runs of the sweep.
    """
    draws = any(task.params["output"]["plots"] for task in tasks)
    drawable = importlib.util.find_spec("matplotlib") is not None
    return WORKER_MODULES + (DRAWING_MODULES if draws and drawable else ())


def failed_row(task: RunTask, error: str, duration_s: float) -> dict[str, Any]:
    """The table row of a run that raised or whose worker died.

    Parameters
    ----------
    task
        The run.
    error
        One-paragraph error text.
    duration_s
        Seconds from start to failure.
    """
    return {
        "run": task.name,
        "overrides": dict(task.overrides),
        "status": FAILED,
        "error": error,
        "duration_s": duration_s,
        "run_dir": str(task.run_dir) if task.run_dir.is_dir() else None,
        "metrics": {},
    }


def completed_row(task: RunTask) -> dict[str, Any] | None:
    """The table row of a run whose directory says ``completed``, else ``None``.

    The row is read back from ``metrics.json``, so a run recorded as it ends and a
    run adopted later (its row lost to an interruption) give the same row.

    Parameters
    ----------
    task
        The run.
    """
    metrics = read_metrics(task.run_dir)
    if metrics is None or metrics.get("status") != COMPLETED:
        return None
    return {
        "run": task.name,
        "overrides": dict(task.overrides),
        "status": COMPLETED,
        "error": None,
        "duration_s": metrics.get("duration_s"),
        "run_dir": str(task.run_dir),
        "metrics": {k: v for k, v in metrics.items() if k not in ROW_FIELDS},
    }


@contextlib.contextmanager
def _captured_output(log_path: str) -> Iterator[None]:
    """Send the run's stdout, stderr and ``empo`` log records to ``log_path``."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    package_logger = logging.getLogger("empo")
    saved = (package_logger.level, package_logger.propagate)
    with open(log_path, "a", encoding="utf-8") as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        package_logger.addHandler(handler)
        package_logger.setLevel(logging.INFO)
        package_logger.propagate = False
        try:
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield
        finally:
            package_logger.removeHandler(handler)
            package_logger.setLevel(saved[0])
            package_logger.propagate = saved[1]


def execute_run(task: RunTask) -> dict[str, Any]:
    """Make one run (new, adopted or continued) and return its table row.

    Parameters
    ----------
    task
        The run.

    Returns
    -------
    dict
        ``{"run", "overrides", "status", "error", "duration_s", "run_dir",
        "metrics"}``; for a failed run ``error`` holds the exception text and the
        full traceback is in the run's log file.

    Raises
    ------
    KeyboardInterrupt
        On SIGINT or SIGTERM during the run (its status is then ``interrupted``).
    """
    adopted = completed_row(task)
    if adopted is not None:
        return adopted
    start = time.perf_counter()
    with _captured_output(task.log_path):
        try:
            _make_run(task)
        except Exception as error:
            traceback.print_exc()
            text = f"{type(error).__name__}: {error}"
            return failed_row(task, text, time.perf_counter() - start)
    row = completed_row(task)
    if row is None:
        return failed_row(task, "the run ended without a completed status", 0.0)
    return row


def execute_ray_run(task: RunTask) -> dict[str, Any]:
    """:func:`execute_run` as a Ray task, with as many torch threads as CPUs Ray
    gave the task.

    Ray tells a task its CPUs through ``OMP_NUM_THREADS`` (set per task, at least
    1), which torch reads only when it is imported; a worker that imported torch as
    it started (or for an earlier task) is told here.

    Parameters
    ----------
    task
        The run.
    """
    import torch

    torch.set_num_threads(max(int(os.environ.get("OMP_NUM_THREADS") or 1), 1))
    return execute_run(task)


def _make_run(task: RunTask) -> None:
    """Start the run, or continue the one its directory holds."""
    from empo.parameters import Parameters
    from empo.resume import resume_experiment
    from empo.run import run_experiment

    directory = task.run_dir
    if directory.is_dir() and not (directory / "params.yaml").is_file():
        shutil.rmtree(directory)  # created, then stopped before anything was written
    options = {
        "device": task.device,
        "wandb_mode": task.wandb_mode,
        "wandb_group": task.wandb_group,
        "progress": False,
    }
    if directory.is_dir():
        state = run_state(directory)
        if state == RUNNING:
            pid = (read_metrics(directory) or {}).get("pid")
            raise RuntimeError(f"{directory} is being run by process {pid}")
        logger.info("continuing run %s (status %s)", task.name, state)
        resume_experiment(directory, **options)
        return
    run_experiment(
        Parameters.from_dict(task.params),
        output_dir=task.output_dir,
        run_name=task.name,
        **options,
    )


def serve(connection: Connection) -> None:
    """The loop of a reusable worker process: execute tasks until told to stop.

    The parent sends :class:`RunTask` objects and ``None`` to stop; the worker
    answers each task with ``("row", row)``, or ``("interrupted", name)`` when the
    parent's SIGTERM interrupted the run (the worker then exits). SIGINT is ignored:
    a Ctrl-C in the terminal reaches the parent, which stops the workers. Each run
    uses one torch thread, and the process's stdout and stderr go to the run's log.

    Parameters
    ----------
    connection
        The worker's end of a duplex pipe to the parent.
    """
    import torch

    import empo.resume  # noqa: F401  (imported once, before the first task)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            task = None
        if task is None:
            _leave()
        _redirect_output(task.log_path)
        try:
            row = execute_run(task)
        except KeyboardInterrupt:
            connection.send(("interrupted", task.name))
            _leave()
        connection.send(("row", row))


def _leave() -> NoReturn:
    """End the worker at once: every run has written and closed its files, and the
    interpreter's clean-up with torch loaded takes seconds that the sweep would
    wait for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _redirect_output(log_path: str) -> None:
    """Point the process's file descriptors 1 and 2 at ``log_path`` (output of C
    extensions included)."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
