"""Utilities below `run.py`: run directories, seeding, logging, plots."""
