"""Optional abilities of a world object, as protocols checked with ``isinstance``.

Beyond :class:`~empo.worlds.base.WorldModel`, a world may draw one successor directly,
draw its states (as a picture or as text), describe them in words, write its own
animations or draw a map of the humans' power. Callers ask for an ability through
these protocols, never by attribute name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from jaxtyping import Float, Int64
from torch import Tensor

__all__ = [
    "DescribesStates",
    "DrawsPowerMaps",
    "DrawsText",
    "RendersStates",
    "SamplesSuccessors",
    "WritesAnimations",
]


@runtime_checkable
class RendersStates(Protocol):
    """A world that draws one state row as an RGB image."""

    def render_state(self, state: Int64[Tensor, " dim"]) -> np.ndarray:
        """``[height, width, 3]`` uint8 picture of the state."""


@runtime_checkable
class DescribesStates(Protocol):
    """A world that describes one state row in words."""

    def describe(self, state: Int64[Tensor, " dim"]) -> str:
        """A short readable description of the state."""


@runtime_checkable
class DrawsText(Protocol):
    """A world that draws one state row as lines of text (a map, a line per agent)."""

    def draw_text(self, state: Int64[Tensor, " dim"]) -> list[str]:
        """The lines of the drawing, for terminal summaries."""


@runtime_checkable
class WritesAnimations(Protocol):
    """A world that writes an animation of a sequence of state rows itself."""

    def save_gif(self, states: Sequence[Int64[Tensor, " dim"]], path: Path) -> Path:
        """Write the animation to ``path`` and return it."""


@runtime_checkable
class DrawsPowerMaps(Protocol):
    """A world that lays the humans' power ``W_h`` (eq. 10) out as a map."""

    def power_heatmap(
        self,
        compiled: Any,
        w_h: Float[Tensor, "state human"],
        human: int,
        reference_state: int,
    ) -> np.ndarray:
        """Per map cell, ``W_h`` of ``human`` were it there, other things as in
        ``reference_state``."""


@runtime_checkable
class SamplesSuccessors(Protocol):
    """A world that draws one successor per row itself, with exactly the
    probabilities of its ``transitions`` (faster than enumerating them)."""

    def sample(
        self,
        states: Int64[Tensor, "batch dim"],
        actions: Int64[Tensor, "batch agent"],
        generator: torch.Generator | None = None,
    ) -> Int64[Tensor, "batch dim"]:
        """One successor row per (state, per-agent action) pair."""
