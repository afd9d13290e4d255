"""Where the runs of a sweep execute: in process, in local processes, or on Ray.

Every backend executes the same picklable :class:`RunTask` with :func:`execute_run`,
which calls :func:`empo.run_experiment`, catches a failing run and returns its table
row (see :mod:`empo.sweep.table`). A backend hands each row to a callback in the
calling process as soon as the run ends, so the table is written by one process only.

``sequential``
    One run after the other in this process, on ``devices[0]`` if given, else on the
    run's default device (CPU).
``multiprocess``
    ``workers`` slots; each run gets a fresh process started with the ``spawn``
    method, so no state (CUDA context, torch threads, module caches) leaks between
    runs. With several GPUs, slot ``i`` pins its runs to ``devices[i % len(devices)]``.
    A process that dies without a result (killed, out of memory) is recorded as a
    failed run.
``ray``
    One Ray task per run with its CPU/GPU request. ``address`` connects to an existing
    cluster (``ray.init(address=...)``); without it a local Ray instance with
    ``workers`` CPUs is started (and shut down at the end) unless Ray is already
    initialised in this process, which is then reused. Usage statistics are turned
    off and the dashboard is not started, so a local sweep never reaches the network.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from empo.sweep.table import FAILED
from empo.utils.extras import require

#: Run metrics that are fields of the row itself and not repeated among its metrics.
ROW_FIELDS = ("status", "error", "duration_s")

logger = logging.getLogger(__name__)

RowCallback = Callable[[dict[str, Any]], None]
Backend = Callable[[Sequence["RunTask"], RowCallback, "BackendOptions"], None]


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
        Directory under which :func:`empo.run_experiment` creates the run directory.
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


@dataclass(frozen=True)
class BackendOptions:
    """How a backend spreads runs over workers and devices.

    Parameters
    ----------
    workers
        Runs in flight at once; for ``ray`` with ``address`` ``None`` means as many
        as the cluster schedules.
    address
        Ray cluster address (``host:port`` or ``"auto"``); ``None`` starts Ray locally.
    devices
        Devices the ``multiprocess`` slots cycle through (``sequential`` uses the
        first); empty means each run's default device.
    cpus_per_run, gpus_per_run
        Resource request of each Ray task.
    """

    workers: int | None = 1
    address: str | None = None
    devices: tuple[str, ...] = field(default_factory=tuple)
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.cpus_per_run < 0 or self.gpus_per_run < 0:
            raise ValueError("cpus_per_run and gpus_per_run must be >= 0")


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
        "run_dir": _latest_run_dir(task),
        "metrics": {},
    }


def _latest_run_dir(task: RunTask) -> str | None:
    """The newest directory of a run (``<name>`` or a retry's ``<name>-<n>``)."""
    parent = Path(task.output_dir)
    pattern = re.compile(re.escape(task.name) + r"(-\d+)?")
    candidates = [
        path
        for path in (parent.iterdir() if parent.is_dir() else ())
        if path.is_dir() and pattern.fullmatch(path.name)
    ]
    if not candidates:
        return None
    return str(max(candidates, key=lambda path: path.stat().st_mtime))


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


def _plain_metric(value: Any) -> Any:
    """A JSON-able metric value (tensor and numpy scalars become Python numbers)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def execute_run(task: RunTask) -> dict[str, Any]:
    """Execute one run and return its table row; a failing run does not raise.

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
    """
    start = time.perf_counter()
    with _captured_output(task.log_path):
        try:
            from empo.parameters import Parameters
            from empo.run import run_experiment

            result = run_experiment(
                Parameters.from_dict(task.params),
                device=task.device,
                output_dir=task.output_dir,
                run_name=task.name,
                wandb_mode=task.wandb_mode,
                wandb_group=task.wandb_group,
                progress=False,
            )
        except Exception as error:
            traceback.print_exc()
            text = f"{type(error).__name__}: {error}"
            return failed_row(task, text, time.perf_counter() - start)
    return {
        "run": task.name,
        "overrides": dict(task.overrides),
        "status": str(result.status),
        "error": None,
        "duration_s": result.duration_s,
        "run_dir": str(result.run_dir),
        "metrics": {
            key: _plain_metric(value)
            for key, value in result.metrics.items()
            if key not in ROW_FIELDS
        },
    }


def run_sequential(
    tasks: Sequence[RunTask], on_row: RowCallback, options: BackendOptions
) -> None:
    """Execute the runs one after the other in this process.

    Parameters
    ----------
    tasks
        The runs, in order.
    on_row
        Called with each run's row as soon as it ends.
    options
        Only ``devices[0]`` is used, if given.
    """
    for task in tasks:
        if options.devices and task.device is None:
            task = replace(task, device=options.devices[0])
        on_row(execute_run(task))


def _process_main(connection: Connection, task: RunTask) -> None:
    """Entry point of a spawned run process: silence it, run, send the row back.

    Each run uses one torch thread: the workers already share the cores, and several
    OpenMP threads per process on a busy machine stall each other.
    """
    import torch

    torch.set_num_threads(1)
    Path(task.log_path).parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(task.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    connection.send(execute_run(task))
    connection.close()


def default_devices() -> tuple[str, ...]:
    """One device per visible GPU when there are several, else none (run default)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return tuple(f"cuda:{i}" for i in range(count)) if count > 1 else ()


def run_multiprocess(
    tasks: Sequence[RunTask], on_row: RowCallback, options: BackendOptions
) -> None:
    """Execute each run in a fresh spawned process, ``workers`` at a time.

    Parameters
    ----------
    tasks
        The runs, started in order.
    on_row
        Called in this process with each run's row as soon as it ends.
    options
        ``workers`` (slots) and ``devices`` (slot ``i`` uses
        ``devices[i % len(devices)]``).

    Notes
    -----
    On ``KeyboardInterrupt`` the running processes are terminated and the interrupt
    is re-raised; rows of runs that ended before it are already recorded.
    """
    context = multiprocessing.get_context("spawn")
    queue = list(tasks)
    free_slots = list(range(options.workers or 1))
    running: dict[Connection, tuple[Any, RunTask, int, float]] = {}
    try:
        while queue or running:
            while queue and free_slots:
                slot = free_slots.pop(0)
                task = queue.pop(0)
                if options.devices and task.device is None:
                    device = options.devices[slot % len(options.devices)]
                    task = replace(task, device=device)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_process_main, args=(sender, task), name=task.name
                )
                process.start()
                sender.close()
                running[receiver] = (process, task, slot, time.perf_counter())
            for receiver in wait(list(running)):
                process, task, slot, start = running.pop(receiver)
                try:
                    row = receiver.recv()
                except EOFError:
                    process.join()
                    row = failed_row(
                        task,
                        f"worker process exited with code {process.exitcode} "
                        "before reporting a result",
                        time.perf_counter() - start,
                    )
                receiver.close()
                process.join()
                free_slots.append(slot)
                on_row(row)
    except KeyboardInterrupt:
        for process, *_ in running.values():
            process.terminate()
        for process, *_ in running.values():
            process.join()
        raise


def _empo_import_root() -> str:
    """The directory from which ``import empo`` works (given to Ray workers)."""
    import empo

    return str(Path(empo.__file__).resolve().parents[1])


def run_ray(
    tasks: Sequence[RunTask], on_row: RowCallback, options: BackendOptions
) -> None:
    """Execute each run as one Ray task (local Ray or an existing cluster).

    Parameters
    ----------
    tasks
        The runs, submitted in order.
    on_row
        Called in this process with each run's row as soon as it ends.
    options
        ``address``, ``workers`` (tasks in flight; also the CPUs of a local Ray),
        ``cpus_per_run`` and ``gpus_per_run`` (with ``gpus_per_run > 0`` a run uses
        device ``"cuda"``, i.e. the GPU(s) Ray assigned to its task).

    Notes
    -----
    On a cluster the output directory must be on a file system every node shares,
    and every node must be able to import the same ``empo`` (installed, or under the
    same path, which is put on the workers' ``PYTHONPATH``).
    """
    ray = require("ray", "ray", "the ray sweep backend")

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started and options.address:
        ray.init(
            address=options.address,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    elif started:
        cpus = math.ceil((options.workers or 1) * max(options.cpus_per_run, 1.0))
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    remote = ray.remote(execute_run).options(
        num_cpus=options.cpus_per_run,
        num_gpus=options.gpus_per_run,
        max_retries=0,
        runtime_env={
            "env_vars": {
                "PYTHONPATH": f"{_empo_import_root()}{os.pathsep}${{PYTHONPATH}}"
            }
        },
    )
    limit = options.workers or len(tasks)
    queue = list(tasks)
    pending: dict[Any, tuple[RunTask, float]] = {}
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                task = queue.pop(0)
                if options.gpus_per_run > 0 and task.device is None:
                    task = replace(task, device="cuda")
                pending[remote.remote(task)] = (task, time.perf_counter())
            ready, _ = ray.wait(list(pending), num_returns=1)
            for reference in ready:
                task, start = pending.pop(reference)
                try:
                    row = ray.get(reference)
                except ray.exceptions.RayError as error:
                    text = f"{type(error).__name__}: {error}".strip()
                    row = failed_row(task, text, time.perf_counter() - start)
                on_row(row)
    except KeyboardInterrupt:
        for reference in pending:
            ray.cancel(reference, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


BACKENDS: dict[str, Backend] = {
    "sequential": run_sequential,
    "multiprocess": run_multiprocess,
    "ray": run_ray,
}
