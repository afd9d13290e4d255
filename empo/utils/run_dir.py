"""Run directories: default names and collision-free atomic creation."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from empo.parameters import Parameters

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
    """
    name = _UNSAFE.sub("_", run_name).strip("._") or "run"
    parent = Path(output_dir)
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
