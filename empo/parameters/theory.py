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


class RobotPolicyKind(str, Enum):
    """Form of the robot policy, eq. (5) or the supplement's variant."""

    POWER_LAW = "power_law"
    NORMALIZED_BOLTZMANN = "normalized_boltzmann"


class OthersModel(str, Enum):
    """Default belief ``mu_-h`` of a human about the other humans' actions."""

    UNIFORM = "uniform"
    HABITUAL = "habitual"


@dataclass(frozen=True)
class TheoryParameters:
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
    """

    beta_h: float = 10.0
    gamma_h: float = 0.99
    nu_h: float = 0.0
    others: OthersModel = OthersModel.UNIFORM
    gamma_r: float = 0.99
    beta_r: float = 5.0
    zeta: float = 2.0
    xi: float = 1.0
    eta: float = 1.1
    eps_q: float = 0.0
    eps_x: float = 0.0
    terminal_v_r: float = -1e-10
    robot_policy: RobotPolicyKind = RobotPolicyKind.POWER_LAW

    def __post_init__(self) -> None:
        object.__setattr__(self, "others", OthersModel(self.others))
        object.__setattr__(self, "robot_policy", RobotPolicyKind(self.robot_policy))
        checks = {
            "beta_h": (self.beta_h >= 0, "β_h ≥ 0 or inf"),
            "gamma_h": (0 <= self.gamma_h <= 1, "0 ≤ γ_h ≤ 1"),
            "nu_h": (0 <= self.nu_h <= 1, "0 ≤ ν_h ≤ 1"),
            "gamma_r": (0 <= self.gamma_r <= 1, "0 ≤ γ_r ≤ 1"),
            "beta_r": (self.beta_r >= 0, "β_r ≥ 0 or inf"),
            "zeta": (self.zeta > 0 and math.isfinite(self.zeta), "0 < ζ < inf"),
            "xi": (self.xi > 0 and math.isfinite(self.xi), "0 < ξ < inf"),
            "eta": (self.eta >= 1 and math.isfinite(self.eta), "1 ≤ η < inf"),
            "eps_q": (self.eps_q >= 0 and math.isfinite(self.eps_q), "ε_Q ≥ 0"),
            "eps_x": (self.eps_x >= 0 and math.isfinite(self.eps_x), "ε_X ≥ 0"),
            "terminal_v_r": (
                self.terminal_v_r < 0 and math.isfinite(self.terminal_v_r),
                "terminal_v_r < 0",
            ),
        }
        for name, (ok, allowed) in checks.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"theory.{name} must be a number, got {value!r}")
            if math.isnan(value) or not ok:
                raise ValueError(
                    f"theory.{name} = {value!r} is out of range: {allowed}"
                )
