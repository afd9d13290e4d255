"""Exact solvers: backward induction and fixed-point iteration (THEORY.md)."""
