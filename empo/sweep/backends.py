"""Where the runs of a sweep execute: in process, in local processes, or on Ray.

Every backend executes the same picklable :class:`~empo.sweep.worker.RunTask` with
:func:`~empo.sweep.worker.execute_run`, which makes (or adopts, or continues) the run
and returns its table row (see :mod:`empo.sweep.table`). A backend hands each row to
a callback in the calling process as soon as the run ends, so the table is written by
one process only.

``sequential``
    One run after the other in this process, on ``devices[0]`` if given, else on the
    run's default device (CPU).
``multiprocess``
    ``workers`` reusable processes (:mod:`empo.sweep.pool`), each making one run
    after the other: on the CPU forked from this process (nothing to import again),
    on GPUs from a fresh ``forkserver`` process that imported torch and empo once.
    With several GPUs, worker ``i`` pins its runs to
    ``devices[i % len(devices)]``. A process that dies without a result (killed, out
    of memory) is recorded as a failed run and replaced.
``ray``
    One Ray task per run with its CPU/GPU request (Ray reuses its worker processes
    across tasks). ``address`` connects to an existing cluster
    (``ray.init(address=...)``; the workers get this ``empo`` on their
    ``PYTHONPATH`` through the tasks' runtime environment); without it a local Ray
    instance with ``workers`` CPUs is started (and shut down at the end) unless Ray
    is already initialised in this process, which is then reused. A local Ray's
    worker processes inherit this process's environment and import torch and empo
    as they start, while Ray finishes starting (no runtime environment, whose
    dedicated workers would start only when the first task arrives). Usage statistics are turned off and the dashboard
    is not started, so a local sweep never reaches the network.

On ``KeyboardInterrupt`` (SIGINT, or the SIGTERM that :func:`~empo.sweep.run_sweep`
turns into one) every backend stops its runs so that they end ``interrupted`` (a
learned run keeps its checkpoint), passes on the rows of runs that ended meanwhile,
and re-raises.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from empo.sweep.pool import WorkerPool
from empo.sweep.worker import (
    RunTask,
    execute_ray_run,
    execute_run,
    failed_row,
    worker_modules,
)
from empo.utils.extras import require

logger = logging.getLogger(__name__)

RowCallback = Callable[[dict[str, Any]], None]
Backend = Callable[[Sequence[RunTask], RowCallback, "BackendOptions"], None]


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


def default_devices() -> tuple[str, ...]:
    """One device per visible GPU when there are several, else none (run default)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return tuple(f"cuda:{i}" for i in range(count)) if count > 1 else ()


def run_multiprocess(
    tasks: Sequence[RunTask], on_row: RowCallback, options: BackendOptions
) -> None:
    """Execute the runs on ``workers`` reusable processes
    (:class:`~empo.sweep.pool.WorkerPool`).

    Parameters
    ----------
    tasks
        The runs, started in order.
    on_row
        Called in this process with each run's row as soon as it ends.
    options
        ``workers`` (processes) and ``devices`` (worker ``i`` uses
        ``devices[i % len(devices)]``).

    Notes
    -----
    On ``KeyboardInterrupt`` (SIGINT, or SIGTERM turned into one) every busy worker
    gets SIGTERM, so that its run ends ``interrupted`` with its checkpoint; rows of
    runs that end meanwhile are still recorded, then the interrupt is re-raised.
    """
    pool = WorkerPool(options.workers or 1, options.devices, worker_modules(tasks))
    queue = list(tasks)
    try:
        while queue or pool.busy:
            while queue and pool.has_room():
                pool.start(queue.pop(0))
            for row in pool.finished():
                on_row(row)
    except KeyboardInterrupt:
        for row in pool.interrupt():
            on_row(row)
        raise
    finally:
        pool.close()


def _empo_import_root() -> str:
    """The directory from which ``import empo`` works (given to Ray workers)."""
    import empo

    return str(Path(empo.__file__).resolve().parents[1])


@contextlib.contextmanager
def _import_path_for_children() -> Iterator[None]:
    """``PYTHONPATH`` led by :func:`_empo_import_root` while processes that must
    import empo start (a local Ray's daemons pass it on to its workers)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (_empo_import_root(), saved) if part
    )
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


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
    check_backend("ray")
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    local = started and not options.address
    if started and options.address:
        ray.init(
            address=options.address,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    elif local:
        cpus = math.ceil((options.workers or 1) * max(options.cpus_per_run, 1.0))
        with _import_path_for_children():
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                _system_config={"preload_python_modules": list(worker_modules(tasks))},
            )
    environment = {
        "env_vars": {"PYTHONPATH": f"{_empo_import_root()}{os.pathsep}${{PYTHONPATH}}"}
    }
    remote = ray.remote(execute_ray_run).options(
        num_cpus=options.cpus_per_run,
        num_gpus=options.gpus_per_run,
        max_retries=0,
        **({} if local else {"runtime_env": environment}),
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
            ray.cancel(reference)  # KeyboardInterrupt inside the run
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=120)
        for reference in ready:
            try:
                on_row(ray.get(reference))
            except ray.exceptions.RayError:
                continue  # cancelled: the run ended interrupted
        raise
    finally:
        if started:
            ray.shutdown()


BACKEND_EXTRAS: dict[str, tuple[str, str]] = {"ray": ("ray", "the ray sweep backend")}
"""Backends that need an optional package: its module and what needs it."""


def check_backend(backend: str) -> None:
    """Fail at once, naming the extra to install, if ``backend`` needs a package
    that is not installed.

    Raises
    ------
    MissingExtraError
        ``"the ray sweep backend needs ray, which is not installed: pip install
        'empo[ray]'"``.
    """
    if backend in BACKEND_EXTRAS:
        module, purpose = BACKEND_EXTRAS[backend]
        require(module, module, purpose)


BACKENDS: dict[str, Backend] = {
    "sequential": run_sequential,
    "multiprocess": run_multiprocess,
    "ray": run_ray,
}
