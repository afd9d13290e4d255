"""The ``Parameters`` tree: one validated block per concern (DESIGN.md)."""

from empo.parameters.theory import OthersModel, RobotPolicyKind, TheoryParameters

__all__ = ["OthersModel", "RobotPolicyKind", "TheoryParameters"]
