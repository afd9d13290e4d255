"""Analysis: learned-vs-exact comparison, power over time."""

from empo.analysis.compare import compare, visitation

__all__ = ["compare", "visitation"]
