"""Learned two-phase solver on TorchRL (THEORY.md, learning-based approximation)."""
