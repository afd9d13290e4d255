"""The robot's objective as an environment reward (THEORY.md, eqs. 8 and 9).

:class:`PowerReward` is a TorchRL ``Transform`` that writes the robots' reward
``("robots", "reward")`` from a solution's human power ``X_h`` (eq. 7, exact or
learned): the reward of the step from ``s_t`` to ``s_{t+1}`` is

    r_t = U_r(s_t) + γ_r · 1[s_{t+1} terminal] · terminal_v_r,

with ``U_r`` of eq. (8) computed by :func:`empo.theory.robot_utility`. Timing
convention: the reward of a step is the utility of the state the step *leaves*, and
the step that ends an episode also pays the discounted terminal value. Then the
discounted return ``Σ_t γ_r^t r_t`` of an episode is ``Σ_{t<T} γ_r^t U_r(s_t) +
γ_r^T terminal_v_r``, whose expectation, when the robots act by ``π_r`` and the humans
by their goal-marginal policies ``π̄_h``, is exactly ``V_r(s_0)`` of eq. (9)
(``V_r = U_r + E_{π_r} Q_r``, ``Q_r = γ_r E V_r(s')``, ``V_r = terminal_v_r`` at
terminal states). Any TorchRL algorithm run with discount ``γ_r`` on this reward thus
maximises the robot's objective ``V_r`` (in expectation over the same human model),
and its value estimates are estimates of ``V_r``. A step from a state that is already
terminal earns 0.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.envs.transforms import Transform

from empo.envs import keys
from empo.parameters.theory import TheoryParameters
from empo.solution import Solution
from empo.theory import robot_utility

__all__ = ["PowerReward"]


class PowerReward(Transform):
    """Robots' reward ``U_r(s_t)`` (eq. 8) plus the discounted terminal value.

    Parameters
    ----------
    solution
        Any solution; its ``human_power`` (``X_h``, eq. 7) is read at ``"state"``.
    theory
        ``xi``, ``eta``, ``eps_x`` of eq. (8); ``gamma_r`` and ``terminal_v_r`` of
        eq. (9).
    """

    def __init__(self, solution: Solution, theory: TheoryParameters):
        super().__init__(in_keys=[keys.STATE], out_keys=[keys.ROBOT_REWARD])
        self.solution = solution
        self.theory = theory

    def _step(
        self, tensordict: TensorDictBase, next_tensordict: TensorDictBase
    ) -> TensorDictBase:
        states = tensordict.get(keys.STATE)
        rows = states.reshape(-1, states.shape[-1])
        theory = self.theory
        x_h = self.solution.human_power(rows).to(states.device, torch.float64)
        u_r = robot_utility(x_h, theory.xi, theory.eta, theory.eps_x)
        ended = next_tensordict.get(keys.TERMINATED).reshape(-1).to(torch.float64)
        reward = u_r + theory.gamma_r * theory.terminal_v_r * ended
        already = tensordict.get(keys.DONE).reshape(-1)
        reward = torch.where(already, torch.zeros_like(reward), reward)
        shape = next_tensordict.get(keys.ROBOT_REWARD).shape
        reward = reward.to(torch.float32).reshape(*shape[:-2], 1, 1).expand(shape)
        next_tensordict.set(keys.ROBOT_REWARD, reward.clone())
        return next_tensordict
