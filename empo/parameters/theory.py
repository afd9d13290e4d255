"""Normative and behavioural parameters of THEORY.md (the ``theory`` block).

Defaults follow the paper's recommendation (``zeta=2, xi=1, eta=1.1, beta_r=5,
gamma_h=gamma_r=0.99``). Per-state/goal tensors for ``beta_h``, ``nu_h``, the habitual
policy and ``mu_-h`` are not parameters (they cannot live in a YAML file); the exact
solver accepts them as arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from empo.parameters.validation import (
    Block,
    non_negative,
    positive,
    ranged,
    unchecked_init,
    unit_interval,
)


class RobotPolicyKind(str, Enum):
    """Form of the robot policy, eq. (5) or the supplement's variant."""

    POWER_LAW = "power_law"
    NORMALIZED_BOLTZMANN = "normalized_boltzmann"


class OthersModel(str, Enum):
    """Default belief ``mu_-h`` of a human about the other humans' actions."""

    UNIFORM = "uniform"
    HABITUAL = "habitual"


@unchecked_init
@dataclass(frozen=True)
class TheoryParameters(Block):
    """Parameters of eqs. (1)-(9) of THEORY.md.

    Parameters
    ----------
    beta_h
        Human rationality in eq. (2); ``inf`` for argmax, 0 for uniform.
    gamma_h
        Human discount in eqs. (1) and (6).
    nu_h
        Weight of the habitual policy ``pi0_h`` in eq. (2).
    others
        Default ``mu_-h`` of eq. (1).
    gamma_r
        Robot discount in eq. (4).
    beta_r
        Robot rationality in eq. (5); ``inf`` for argmax.
    zeta
        Risk aversion exponent of eq. (7), ``> 0``.
    xi
        Inequality aversion exponent of eq. (8), ``> 0``.
    eta
        Intertemporal inequality aversion of eq. (8), ``>= 1``.
    eps_q
        ``epsilon_Q >= 0`` of eq. (5).
    eps_x
        ``epsilon_X >= 0`` of eq. (8).
    terminal_v_r
        ``V_r`` at terminal states, ``< 0``.
    robot_policy
        Power-law policy of eq. (5) or the normalised Boltzmann variant.

    Raises
    ------
    ParameterError
        If a value is out of the range THEORY.md allows (eqs. 2, 5, 7, 8) or has the
        wrong type; the message names ``theory.<field>``, the value and the range.
    """

    prefix: ClassVar[str] = "theory"

    beta_h: float = ranged(10.0, lambda x: x >= 0, "β_h ≥ 0 or inf")
    gamma_h: float = ranged(0.99, unit_interval, "0 ≤ γ_h ≤ 1")
    nu_h: float = ranged(0.0, unit_interval, "0 ≤ ν_h ≤ 1")
    others: OthersModel = OthersModel.UNIFORM
    gamma_r: float = ranged(0.99, unit_interval, "0 ≤ γ_r ≤ 1")
    beta_r: float = ranged(5.0, lambda x: x >= 0, "β_r ≥ 0 or inf")
    zeta: float = ranged(2.0, positive, "0 < ζ < inf")
    xi: float = ranged(1.0, positive, "0 < ξ < inf")
    eta: float = ranged(1.1, lambda x: 1 <= x < math.inf, "1 ≤ η < inf")
    eps_q: float = ranged(0.0, non_negative, "0 ≤ ε_Q < inf")
    eps_x: float = ranged(0.0, non_negative, "0 ≤ ε_X < inf")
    terminal_v_r: float = ranged(
        -1e-10, lambda x: -math.inf < x < 0, "-inf < terminal_v_r < 0"
    )
    robot_policy: RobotPolicyKind = RobotPolicyKind.POWER_LAW
