"""Shared test configuration: hermetic, offline, deterministic.

Tests run with one torch thread: the suite's worlds are small, and on a 2-core machine
shared with subprocesses (sweep workers, sshd) several OpenMP threads per process stall
each other far more than they help.
"""

import os

import torch

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)
