"""Shared test configuration: hermetic, offline, deterministic."""

import os

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")
