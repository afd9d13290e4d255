"""Run directories: names, collision-free creation, and a status a reader can trust.

``metrics.json`` is the run's status file. It is written atomically (a temporary file
renamed over it) when the run starts, with ``status: running``, the process id, host,
start time, torch thread count and device, and again when the run ends:

``completed``
    only after every output (files, plots, the W&B run) is written;
``failed``
    an exception ended the run (``error`` holds it, ``run.log`` the traceback);
``interrupted``
    SIGINT or SIGTERM ended the run (``error`` names the signal); it can be resumed.

A process killed without a chance to write (SIGKILL, out of memory, power loss) leaves
``running``; :func:`run_state` then reports ``killed`` when the recorded process no
longer exists on this host.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Iterator

from empo.parameters import Parameters

METRICS_NAME = "metrics.json"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"
KILLED = "killed"


class RunDirError(ValueError):
    """A run or output directory that cannot be used (bad input, before any run)."""


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT reached a running experiment (see :func:`interruptible`).

    Parameters
    ----------
    signal_number
        The signal that arrived.
    """

    def __init__(self, signal_number: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename, so a
    reader sees the old or the new content, never a part.

    Parameters
    ----------
    path
        The file.
    data
        JSON-able data (other values are written with ``str``).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def start_record(threads: int, device: str) -> dict[str, Any]:
    """The status fields of a run starting in this process.

    Parameters
    ----------
    threads
        ``torch.get_num_threads()`` of the run (learned results depend on it).
    device
        The run's torch device.
    """
    return {
        "status": RUNNING,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threads": threads,
        "device": device,
    }


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The content of a run directory's ``metrics.json`` (``None`` if absent or not
    a JSON object)."""
    path = Path(run_dir) / METRICS_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run_dir: str | Path) -> str | None:
    """The status of a run directory as a reader should trust it.

    Parameters
    ----------
    run_dir
        The run directory.

    Returns
    -------
    str or None
        ``completed``, ``failed`` or ``interrupted`` as recorded; ``running`` while
        the recorded process exists (or runs on another host, which cannot be
        checked); ``killed`` when it recorded ``running`` and its process is gone
        from this host; ``None`` without a readable ``metrics.json``.
    """
    metrics = read_metrics(run_dir)
    if metrics is None:
        return None
    status = metrics.get("status")
    if status != RUNNING:
        return status
    pid, host = metrics.get("pid"), metrics.get("host")
    if host == socket.gethostname() and isinstance(pid, int):
        if pid != os.getpid() and not _process_exists(pid):
            return KILLED
    return RUNNING


class Interruption:
    """What :func:`interruptible` saw: the signal that arrived, if any.

    Parameters
    ----------
    armed
        Whether a signal raises :class:`RunInterrupted` at once; a disarmed
        interruption only records it until :meth:`arm`.
    """

    def __init__(self, armed: bool = True) -> None:
        self.signal_number: int | None = None
        self.armed = armed
        self.raised = False

    def arm(self) -> None:
        """Raise from now on; raise at once for a signal recorded meanwhile."""
        self.armed = True
        if self.signal_number is not None:
            self.raised = True
            raise RunInterrupted(self.signal_number)

    def resend(self) -> None:
        """Send again a signal that was recorded but not raised (it arrived while
        disarmed), now that the previous handlers are back."""
        if self.signal_number is not None and not self.raised:
            self.raised = True
            signal.raise_signal(self.signal_number)

    def error(self, cause: BaseException) -> BaseException:
        """The exception to raise for ``cause``: itself, or :class:`RunInterrupted`
        when a signal arrived (a library may have turned the interrupt raised in its
        code into another error)."""
        if self.signal_number is None or isinstance(cause, RunInterrupted):
            return cause
        interrupted = RunInterrupted(self.signal_number)
        interrupted.__cause__ = cause
        return interrupted


@contextlib.contextmanager
def interruptible(armed: bool = True) -> Iterator[Interruption]:
    """Turn SIGTERM and SIGINT into :class:`RunInterrupted` while the block runs.

    Only in the main thread (elsewhere the block runs unchanged), and SIGINT only
    where it is not ignored (sweep workers ignore it). The signal is also recorded in
    the yielded :class:`Interruption`, since code that catches the exception may
    raise another one. Further signals after the first are ignored (the clean-up
    runs undisturbed); the previous handlers are restored on exit.

    Parameters
    ----------
    armed
        ``False`` records a signal without raising until
        :meth:`Interruption.arm` (for a section that must not be torn, such as
        creating a run directory and its status file); a signal recorded and
        never raised can be sent again with :meth:`Interruption.resend` after the
        block.
    """
    interruption = Interruption(armed)
    if threading.current_thread() is not threading.main_thread():
        yield interruption
        return

    def handler(number: int, frame: FrameType | None) -> None:
        if interruption.signal_number is None:
            interruption.signal_number = number
            if interruption.armed:
                interruption.raised = True
                raise RunInterrupted(number)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler)}
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler)
    try:
        yield interruption
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def parameters_hash(params: Parameters) -> str:
    """Short stable hash of the parameters (8 hex digits of SHA-256).

    Parameters
    ----------
    params
        The run's parameters.
    """
    text = json.dumps(params.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def default_run_name(params: Parameters, now: datetime | None = None) -> str:
    """``<world>-<UTC timestamp>-<parameters hash>``.

    Parameters
    ----------
    params
        The run's parameters.
    now
        Time stamp to use (default: the current UTC time).
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return f"{params.world.name.value}-{stamp}-{parameters_hash(params)}"


def create_run_dir(output_dir: str | Path, run_name: str) -> Path:
    """Create a new, empty run directory ``output_dir/run_name``.

    An existing directory is never reused: ``-1``, ``-2``, ... are appended until
    ``mkdir(exist_ok=False)`` succeeds, so concurrent runs cannot collide.

    Parameters
    ----------
    output_dir
        Parent directory (created if missing).
    run_name
        Wanted name; characters outside ``[A-Za-z0-9._=+-]`` become ``_``.

    Returns
    -------
    Path
        The created directory.

    Raises
    ------
    RunDirError
        If ``output_dir`` (or a parent of it) exists and is not a directory.
    """
    name = _UNSAFE.sub("_", run_name).strip("._") or "run"
    parent = Path(output_dir)
    check_output_dir(parent)
    parent.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while True:
        candidate = parent / (name if suffix == 0 else f"{name}-{suffix}")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            suffix += 1
            continue
        return candidate


def check_output_dir(output_dir: str | Path) -> None:
    """Refuse an output directory that is (or lies under) an existing non-directory.

    Parameters
    ----------
    output_dir
        The directory runs will be created in.

    Raises
    ------
    RunDirError
        Naming the path that is a file.
    """
    path = Path(output_dir)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise RunDirError(
                    f"output directory {path}: {candidate} is a file, not a directory"
                )
            return
