"""Analysis: learned-vs-exact comparison, exact evaluation of any robot policy."""

from empo.analysis.compare import compare, visitation
from empo.analysis.policy_evaluation import (
    compare_robots,
    evaluate_robot,
    policy_report,
)

__all__ = ["compare", "compare_robots", "evaluate_robot", "policy_report", "visitation"]
