"""Exploration and annealing schedules of the learned solver (functions of frames)."""

from __future__ import annotations

import math

__all__ = ["annealed_beta", "linear_epsilon"]


def linear_epsilon(frames: int, start: float, end: float, steps: int) -> float:
    """Extra exploration ε, linear from ``start`` to ``end`` over ``steps`` frames.

    Parameters
    ----------
    frames
        Frames collected so far.
    start, end
        Values at frame 0 and from frame ``steps`` on.
    steps
        Length of the ramp (0: ``end`` at once).
    """
    if steps <= 0 or frames >= steps:
        return end
    return start + (end - start) * frames / steps


def annealed_beta(frames: int, start: float, final: float, steps: int) -> float:
    """Rollout rationality ``β'_r``, annealed from ``start`` up to ``final``.

    Geometric interpolation (linear in ``log β``) when both ends are positive and
    finite, linear otherwise; ``final = inf`` is reached at the end of the ramp.

    Parameters
    ----------
    frames
        Frames collected so far.
    start
        ``β'_r`` at frame 0.
    final
        ``theory.beta_r``, used from frame ``steps`` on.
    steps
        Length of the ramp (0: ``final`` at once).
    """
    if steps <= 0 or frames >= steps or math.isinf(final):
        return final if steps <= 0 or frames >= steps else start
    fraction = frames / steps
    if start > 0 and final > 0:
        return math.exp(
            math.log(start) + fraction * (math.log(final) - math.log(start))
        )
    return start + (final - start) * fraction
