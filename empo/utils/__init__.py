"""Utilities: sweeps, logging, rendering, checkpoints."""
