"""State and memory budgets of exact solving, and the memory each solver needs.

Enumerating a world and solving it exactly costs memory that grows with the number
of reachable states, which is unknown until the enumeration ends. A
:class:`StateBudget` is therefore checked *during* enumeration, as the states are
found: once more states are reachable than ``max_states``, or once the memory the
solver would need for the states found so far exceeds ``memory_bytes``, enumeration
stops with one :class:`BudgetExceededError` line naming the world, the states
reached and the budget (issue 17). The estimates are per-state byte counts of the
tensors each solver keeps:

* :func:`in_memory_bytes_per_state`: the compiled world's dense ``[S, J, K]``
  successor table and every quantity of both phases for every state
  (:func:`empo.exact.solve`);
* :func:`layered_bytes`: packed keys of all states plus the larger of the
  enumeration's bookkeeping (:func:`enumeration_bytes`) and the backward pass's
  values of the two largest adjacent layers and working set of one chunk
  (:func:`empo.exact.layered.solve_layered`).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30


class BudgetExceededError(ValueError):
    """A world needs more states or memory than the budget allows."""


@dataclass(frozen=True)
class WorldSize:
    """What a world's per-state memory depends on.

    Parameters
    ----------
    joint
        Number of joint actions (all agents' action counts multiplied).
    outcomes
        Successors per joint action (the largest seen, or the model's bound).
    humans, goals
        Humans and the largest goal count.
    human_actions
        Largest action count of a human.
    robot_actions
        Number of robot joint actions.
    state_dim
        Width of a state row.
    item
        Bytes of one float (8 for ``float64``).
    """

    joint: int
    outcomes: int
    humans: int
    goals: int
    human_actions: int
    robot_actions: int
    state_dim: int
    item: int = 8

    @property
    def quantities(self) -> int:
        """Floats of every quantity of both phases at one state."""
        hg = self.humans * self.goals
        return 2 * hg * self.human_actions + 2 * hg + 2 * self.robot_actions + 8


def in_memory_bytes_per_state(size: WorldSize) -> int:
    """Bytes per state of compiling and solving a world in memory.

    The dense successor ids (8 bytes) and probabilities of every joint action and
    outcome, twice (the compiler's batches and the assembled table), every quantity
    of both phases, the successor targets and the state row.
    """
    table = size.joint * size.outcomes * (8 + size.item)
    targets = 3 * size.humans * size.goals * size.item
    return 2 * table + size.quantities * size.item + targets + 8 * size.state_dim


def enumeration_bytes(size: WorldSize, largest_layer: int) -> int:
    """Bytes the layered enumeration holds besides the keys
    (:func:`~empo.worlds.layers.enumerate_layers`), per state of the largest layer:

    * the layer's decoded rows, 8 bytes per column;
    * the keys found for the next layer until they are compacted: at most two
      copies and a batch, and one more while merging them, 32 bytes;
    * the reuse bookkeeping (:mod:`empo.worlds.layer_repeats`) of two adjacent
      layers, 48 bytes each: configurations (8), offsets into the kept
      transitions' files (16) and the distinct successors, gathered and compacted
      (24).

    Parameters
    ----------
    size
        The world's per-state sizes.
    largest_layer
        States of the largest layer.
    """
    return largest_layer * (8 * size.state_dim + 32 + 2 * 48)


def layered_bytes(
    size: WorldSize,
    states: int,
    largest_layer: int,
    exact_keys: bool,
    chunk: int,
    stored: int = 0,
) -> int:
    """Bytes the layered solver needs.

    Parameters
    ----------
    size
        The world's per-state sizes.
    states
        Number of states (8 bytes of packed key each, plus the row if the keys
        are hashes).
    largest_layer
        States of the largest layer: in the backward pass two adjacent layers hold
        their rows, goal membership, successor values (``V^m``, ``V^e`` targets
        and ``V_r``) and stored quantities at once; before it, the enumeration
        holds :func:`enumeration_bytes` (freed when it ends).
    exact_keys
        Whether keys decode into rows (else rows are stored beside the keys).
    chunk
        Working memory of one chunk of states in bytes.
    stored
        Floats per state of the quantities written out per layer besides
        ``v_m``, ``v_e`` and ``v_r``.
    """
    per_key = 8 if exact_keys else 8 + 8 * size.state_dim
    hg = size.humans * size.goals
    floats = 2 * (2 * hg + 1) + stored
    per_layer_state = floats * size.item + 8 * size.state_dim + hg
    backward = 2 * largest_layer * per_layer_state + chunk
    return states * per_key + max(backward, enumeration_bytes(size, largest_layer))


@dataclass(frozen=True)
class StateBudget:
    """Limits on the states and memory of an exact solve.

    Parameters
    ----------
    max_states
        Most reachable states allowed (``None``: no limit).
    memory_bytes
        Most memory the solver may need (``None``: no limit).
    world
        Name of the world, for messages.
    """

    max_states: int | None = None
    memory_bytes: int | None = None
    world: str = "world"

    def check_states(self, states: int, where: str) -> None:
        """Raise once more than ``max_states`` states are reachable.

        Parameters
        ----------
        states
            States known to be reachable so far.
        where
            Where the enumeration is (e.g. ``"layer 12"``), for the message.
        """
        if self.max_states is not None and states > self.max_states:
            raise BudgetExceededError(
                f"world {self.world!r}: at least {states:,} reachable states ({where}),"
                f" more than exact.max_states = {self.max_states:,}"
            )

    def check_memory(
        self, states: int, needed: int, where: str, solver: str = "exact"
    ) -> None:
        """Raise once the memory ``needed`` exceeds ``memory_bytes``.

        Parameters
        ----------
        states
            States known to be reachable so far.
        needed
            Bytes the solver needs for them.
        where
            Where the enumeration is, for the message.
        solver
            Which solver needs the memory, for the message.
        """
        if self.memory_bytes is not None and needed > self.memory_bytes:
            raise BudgetExceededError(
                f"world {self.world!r}: at least {states:,} reachable states ({where})"
                f" need about {needed / GIB:.1f} GiB in the {solver} solver, more "
                f"than the budget exact.memory_gib = {self.memory_bytes / GIB:g}"
            )

    def fits(self, needed: int) -> bool:
        """Whether ``needed`` bytes are within the memory budget."""
        return self.memory_bytes is None or needed <= self.memory_bytes
