"""Reusable worker processes of the ``multiprocess`` sweep backend.

Each worker runs :func:`~empo.sweep.worker.serve`: it executes one run after the
other, so a sweep of short runs pays a process start per worker, not per run. How a
worker starts (:func:`start_context`):

- a sweep on the CPU, on Linux: forked from the sweep's own process, which imports
  what the runs need first (torch, empo, and matplotlib when a run draws), so a
  worker starts in milliseconds and imports nothing (the sweep process has used one
  torch thread and no GPU; a worker sets its own signal handling and thread count
  before its first run);
- a sweep on GPUs (``devices`` given), or elsewhere: forked from a fresh
  ``forkserver`` process that imports torch and empo once (``spawn`` where there is
  no fork server), since CUDA cannot be used in a process forked after CUDA was
  initialised.

Runs in one worker share no state that matters: every run seeds its generators, uses
one torch thread and writes its own directory and log.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any, Sequence

from empo.sweep.worker import WORKER_MODULES, RunTask, failed_row, serve


def start_context(
    devices: Sequence[str] = (), modules: Sequence[str] = WORKER_MODULES
) -> Any:
    """How workers start: ``fork`` for a CPU sweep on Linux (``modules`` imported
    here first, so that no worker imports them again), else a ``forkserver`` that
    imports ``modules`` once, else ``spawn``.

    Parameters
    ----------
    devices
        The devices the workers use; any device rules out ``fork``.
    modules
        What the runs import (:func:`~empo.sweep.worker.worker_modules`).
    """
    methods = multiprocessing.get_all_start_methods()
    if not devices and sys.platform.startswith("linux") and "fork" in methods:
        for module in modules:
            importlib.import_module(module)
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(modules))
    return context


@dataclass
class _Worker:
    """A worker process, its pipe, its device and the run it is making."""

    process: Any
    connection: Connection
    device: str | None
    task: RunTask | None = None
    started: float = 0.0


class WorkerPool:
    """Up to ``size`` worker processes, started as runs need them.

    Parameters
    ----------
    size
        Number of workers.
    devices
        Devices the workers cycle through (worker ``i`` uses
        ``devices[i % len(devices)]``); empty means each run's default.
    modules
        What the runs import, imported once before the first worker starts
        (:func:`start_context`).
    """

    def __init__(
        self,
        size: int,
        devices: Sequence[str] = (),
        modules: Sequence[str] = WORKER_MODULES,
    ):
        self.devices = tuple(devices)
        self.context = start_context(self.devices, modules)
        self.size = size
        self.workers: list[_Worker] = []

    @property
    def busy(self) -> list[_Worker]:
        """Workers making a run."""
        return [worker for worker in self.workers if worker.task is not None]

    def has_room(self) -> bool:
        """Whether a run can start now (an idle worker, or room for a new one)."""
        return len(self.busy) < self.size

    def start(self, task: RunTask) -> None:
        """Hand ``task`` to an idle worker (started if needed)."""
        worker = next((w for w in self.workers if w.task is None), None)
        if worker is None:
            worker = self._spawn()
        if worker.device is not None and task.device is None:
            task = replace(task, device=worker.device)
        worker.task, worker.started = task, time.perf_counter()
        worker.connection.send(task)

    def _spawn(self) -> _Worker:
        slot = len(self.workers)
        device = self.devices[slot % len(self.devices)] if self.devices else None
        parent, child = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=serve, args=(child,), name=f"empo-sweep-{slot}", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, device)
        self.workers.append(worker)
        return worker

    def finished(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait for busy workers; the rows of the runs that ended.

        A run interrupted inside its worker, or a worker that died, gives a
        ``failed`` row and the worker is dropped (a new one starts when needed).
        Returns an empty list when ``timeout`` passes first.
        """
        return [row for _, row in self._collect(timeout)]

    def _collect(self, timeout: float | None) -> list[tuple[str, dict[str, Any]]]:
        """``(kind, row)`` of each run that ended: ``row`` (the worker's row),
        ``interrupted`` or ``died`` (a failed row made here)."""
        busy = {worker.connection: worker for worker in self.busy}
        out: list[tuple[str, dict[str, Any]]] = []
        for connection in wait(list(busy), timeout):
            worker = busy[connection]
            task = worker.task
            assert task is not None
            try:
                kind, payload = connection.recv()
            except (EOFError, OSError):
                kind, payload = "died", None
            worker.task = None
            if kind == "row":
                out.append((kind, payload))
                continue
            self._drop(worker)
            if kind == "interrupted":
                error = "interrupted by a signal to its worker; resume continues it"
            else:
                error = (
                    f"worker process exited with code {worker.process.exitcode} "
                    "before reporting a result"
                )
            elapsed = time.perf_counter() - worker.started
            out.append((kind, failed_row(task, error, elapsed)))
        return out

    def interrupt(self, grace_s: float = 120.0) -> list[dict[str, Any]]:
        """Send SIGTERM to every busy worker, so that its run ends ``interrupted``
        (with its checkpoint) and gets no row; return the rows of runs that ended
        on their own meanwhile."""
        for worker in self.busy:
            if worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGTERM)
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + grace_s
        while self.busy and time.monotonic() < deadline:
            rows += [row for kind, row in self._collect(1.0) if kind == "row"]
        return rows

    def _drop(self, worker: _Worker) -> None:
        worker.process.join(timeout=10)
        worker.connection.close()
        self.workers.remove(worker)

    def close(self) -> None:
        """Stop every worker; one still busy (or stuck) is killed."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
        self.workers.clear()
