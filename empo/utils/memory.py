"""Resident memory of this process (and of the accelerator), for progress reports."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch

_GIB = 2**30


def _status_gib(field: str) -> float | None:
    """A ``/proc/self/status`` memory field in GiB (``None`` where there is none)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / _GIB
    return None


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (_GIB if sys.platform == "darwin" else 2**20)


def rss_gib() -> float:
    """Current resident memory of this process in GiB (the peak where the current
    value is not available)."""
    current = _status_gib("VmRSS")
    return current if current is not None else peak_rss_gib()


def device_gib(device: torch.device) -> float:
    """Memory allocated by torch on ``device`` in GiB (0 for the CPU)."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / _GIB
    return 0.0
