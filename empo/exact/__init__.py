"""Exact solvers: backward induction and fixed-point iteration (THEORY.md)."""

from empo.exact.human_model import HumanModel
from empo.exact.solution import ExactSolution
from empo.exact.solve import NotConvergedError, solve

__all__ = ["HumanModel", "NotConvergedError", "ExactSolution", "solve"]
