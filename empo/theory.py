"""The equations of THEORY.md as pure, batched tensor functions.

Every solver (exact backward induction in :mod:`empo.exact`, learned losses in
:mod:`empo.learning`) computes eqs. (1)-(14) through these functions and nowhere else.
All functions broadcast over arbitrary leading dimensions; the last dimension is the
action (or goal, or human) axis where the docstring says so. Disallowed actions are
given by boolean masks and get probability exactly 0.

Conventions (THEORY.md, "Conventions that every solver shares"):

* a goal is credited on *entering* it: the backup target is
  ``U_h(s', g) + gamma_h * 1[s' not in g] * V(s', g)`` (:func:`goal_backup`);
* ``beta = inf`` is argmax with ties split uniformly, ``beta = 0`` is uniform. Ties
  are values within ``tie_tol * max(1, |max|)`` of the maximum, so that values which
  agree up to floating-point rounding count as tied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

if TYPE_CHECKING:
    from empo.parameters.theory import TheoryParameters

__all__ = [
    "TIE_TOL",
    "RobotChain",
    "goal_backup",
    "goal_marginal_policy",
    "human_policy",
    "human_value",
    "joint_action_distribution",
    "masked_softmax",
    "power_bits",
    "power_x",
    "robot_chain",
    "robot_policy",
    "robot_policy_of",
    "robot_utility",
    "robot_value",
    "terminal_robot_value",
    "uniform_policy",
    "x_h_sample_target",
]

TIE_TOL = 1e-9
"""Relative tolerance below which two values count as tied under ``beta = inf``."""

Scalar = float | Tensor


def _as_tensor(value: Scalar, like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def goal_backup(
    in_goal: Bool[Tensor, "*batch"],
    v_next: Float[Tensor, "*batch"],
    gamma_h: Scalar,
) -> Float[Tensor, "*batch"]:
    """Backup target ``U_h(s', g) + gamma_h * 1[s' not in g] * V(s', g)``.

    The convention of THEORY.md: a goal ends its own episode when entered, so the
    successor's value counts only where the successor is not in the goal. Used by
    eqs. (1), (6) and (13).

    Parameters
    ----------
    in_goal
        Whether the successor ``s'`` lies in the goal ``g``.
    v_next
        ``V(s', g)`` (``V^m_h`` in eq. (1), ``V^e_h`` in eq. (6)).
    gamma_h
        Human discount, a float or a tensor broadcastable to ``v_next`` (e.g. a
        per-transition discount ``exp(-rho * D)``).
    """
    reached = in_goal.to(v_next.dtype)
    return reached + gamma_h * (1.0 - reached) * v_next


def uniform_policy(
    action_mask: Bool[Tensor, "*batch action"], dtype: torch.dtype = torch.float64
) -> Float[Tensor, "*batch action"]:
    """Uniform distribution over the allowed actions (zeros where none is allowed)."""
    allowed = action_mask.to(dtype)
    return allowed / allowed.sum(-1, keepdim=True).clamp_min(1.0)


def _argmax_policy(
    values: Float[Tensor, "*batch action"],
    action_mask: Bool[Tensor, "*#batch action"],
    tie_tol: float,
) -> Float[Tensor, "*batch action"]:
    masked = values.masked_fill(~action_mask, -math.inf)
    best = masked.amax(-1, keepdim=True)
    scale = best.abs().clamp_min(1.0).nan_to_num(posinf=1.0)
    ties = action_mask & (masked >= best - tie_tol * scale)
    return uniform_policy(ties, values.dtype)


def masked_softmax(
    logits: Float[Tensor, "*batch action"],
    action_mask: Bool[Tensor, "*#batch action"],
) -> Float[Tensor, "*batch action"]:
    """Softmax over the allowed actions, exact at infinite logits.

    Where some allowed logit is ``+inf`` the mass is split uniformly over those
    actions, where all allowed logits are ``-inf`` uniformly over the allowed
    actions; rows without allowed actions give zeros.
    """
    masked = torch.where(action_mask, logits, -math.inf)
    best = masked.amax(-1, keepdim=True)
    if bool(torch.isinf(best).any()):
        return _softmax_with_infinities(masked, action_mask)
    weights = torch.exp(masked - best)
    return weights / weights.sum(-1, keepdim=True)


def _softmax_with_infinities(
    masked: Float[Tensor, "*batch action"], action_mask: Bool[Tensor, "*#batch action"]
) -> Float[Tensor, "*batch action"]:
    infinite = action_mask & (masked == math.inf)
    has_infinite = infinite.any(-1, keepdim=True)
    finite = masked.masked_fill(infinite, 0.0)
    best = finite.amax(-1, keepdim=True)
    none_finite = best == -math.inf
    best = torch.where(torch.isfinite(best), best, torch.zeros_like(best))
    weights = torch.exp(finite - best)
    total = weights.sum(-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)
    probs = torch.where(
        none_finite, uniform_policy(action_mask, masked.dtype), weights / total
    )
    return torch.where(has_infinite, uniform_policy(infinite, masked.dtype), probs)


def _scalar(beta: Scalar) -> float | None:
    """``beta`` as a float if it is one number, else ``None``."""
    if isinstance(beta, Tensor):
        return float(beta) if beta.ndim == 0 else None
    return float(beta)


def _tempered(
    values: Float[Tensor, "*batch action"],
    argmax_values: Float[Tensor, "*batch action"],
    beta: Scalar,
    action_mask: Bool[Tensor, "*#batch action"],
    tie_tol: float,
) -> Float[Tensor, "*batch action"]:
    """``softmax(beta * values)``; ``beta = inf`` argmax of ``argmax_values``, 0 uniform.

    Only the branches that some entry of ``beta`` needs are computed.
    """
    scalar = _scalar(beta)
    if scalar is not None:
        if math.isinf(scalar):
            return _argmax_policy(argmax_values, action_mask, tie_tol)
        if scalar == 0:
            return uniform_policy(action_mask, values.dtype)
        return masked_softmax(scalar * values, action_mask)
    beta_t = _as_tensor(beta, values).unsqueeze(-1)
    is_inf = torch.isinf(beta_t)
    is_zero = beta_t == 0
    finite_beta = torch.where(is_inf | is_zero, torch.zeros_like(beta_t), beta_t)
    safe_values = values.masked_fill(~action_mask, 0.0)
    result = masked_softmax(finite_beta * safe_values, action_mask)
    if bool(is_inf.any()):
        argmax = _argmax_policy(argmax_values, action_mask, tie_tol)
        result = torch.where(is_inf, argmax, result)
    if bool(is_zero.any()):
        result = torch.where(is_zero, uniform_policy(action_mask, values.dtype), result)
    return result


def human_policy(
    q_m: Float[Tensor, "*batch action"],
    beta_h: Scalar,
    action_mask: Bool[Tensor, "*#batch action"],
    *,
    nu_h: Scalar | None = None,
    pi0_h: Float[Tensor, "*#batch action"] | None = None,
    reached: Bool[Tensor, "*#batch"] | None = None,
    rest_action: int | Int64[Tensor, "*#batch"] | None = None,
    tie_tol: float = TIE_TOL,
) -> Float[Tensor, "*batch action"]:
    """Human policy prior, eq. (2).

    ``pi_h = nu_h * pi0_h + (1 - nu_h) * softmax(beta_h * Q^m_h)`` over the allowed
    actions. Where the goal is already reached (``reached``) and the world names a
    rest action that is allowed there, the policy is one-hot on the rest action
    (THEORY.md, rest action convention).

    Parameters
    ----------
    q_m
        ``Q^m_h(s, g, .)``; values at disallowed actions are ignored.
    beta_h
        Rationality: a float or a tensor broadcastable to ``q_m[..., 0]``; ``inf``
        gives argmax with uniform ties, 0 gives uniform.
    action_mask
        Allowed actions, broadcastable to ``q_m``.
    nu_h
        Weight of the habitual policy, broadcastable to ``q_m[..., 0]``; default 0.
    pi0_h
        Habitual policy ``pi0_h``; default uniform over the allowed actions. It is
        renormalised over the allowed actions.
    reached
        Whether ``s`` lies in the goal ``g``.
    rest_action
        Index of the rest action, or a tensor of indices broadcastable to
        ``q_m[..., 0]`` with negative entries meaning "no rest action".
    tie_tol
        Relative tie tolerance for ``beta_h = inf``.
    """
    action_mask = action_mask.expand_as(q_m)
    policy = _tempered(q_m, q_m, beta_h, action_mask, tie_tol)
    if nu_h is not None:
        nu = _as_tensor(nu_h, q_m).unsqueeze(-1)
        if pi0_h is None:
            habit = uniform_policy(action_mask, q_m.dtype)
        else:
            habit = pi0_h.to(q_m.dtype) * action_mask
            habit = habit / habit.sum(-1, keepdim=True).clamp_min(
                torch.finfo(q_m.dtype).tiny
            )
        policy = nu * habit + (1.0 - nu) * policy
    if reached is not None and rest_action is not None:
        rest = torch.as_tensor(rest_action, device=q_m.device, dtype=torch.long)
        rest = rest.expand(q_m.shape[:-1])
        valid = rest >= 0
        one_hot = torch.nn.functional.one_hot(rest.clamp_min(0), q_m.shape[-1]).to(
            torch.bool
        )
        rest_ok = (
            valid & reached.expand(q_m.shape[:-1]) & (one_hot & action_mask).any(-1)
        )
        policy = torch.where(rest_ok.unsqueeze(-1), one_hot.to(q_m.dtype), policy)
    return policy


def _expectation(
    probs: Float[Tensor, "*batch action"], values: Float[Tensor, "*batch action"]
) -> Float[Tensor, "*batch"]:
    """``sum_a probs * values`` ignoring values where the probability is 0."""
    return torch.where(probs > 0, probs * values, 0.0).sum(-1)


def human_value(
    pi_h: Float[Tensor, "*batch action"], q_m: Float[Tensor, "*batch action"]
) -> Float[Tensor, "*batch"]:
    """``V^m_h(s, g) = sum_a pi_h(s, g)(a) Q^m_h(s, g, a)``, eq. (3)."""
    return _expectation(pi_h, q_m)


def robot_policy(
    q_r: Float[Tensor, "*batch action"],
    beta_r: Scalar,
    action_mask: Bool[Tensor, "*#batch action"],
    *,
    eps_q: float = 0.0,
    kind: str = "power_law",
    tie_tol: float = TIE_TOL,
) -> Float[Tensor, "*batch action"]:
    """Robot policy, eq. (5), or the supplement's normalised Boltzmann variant.

    ``kind="power_law"``: ``pi_r ∝ (-Q_r + eps_q)^(-beta_r)``, computed in log space
    as ``softmax(-beta_r * log(-Q_r + eps_q))``; an action with ``-Q_r + eps_q = 0``
    takes all the mass. ``kind="normalized_boltzmann"``:
    ``pi_r ∝ exp(beta_r * Q_r / (max Q_r - min Q_r))`` over the allowed actions
    (uniform where all allowed values are equal). ``beta_r = inf`` gives the argmax
    of ``Q_r`` (ties uniform), ``beta_r = 0`` the uniform policy.

    Parameters
    ----------
    q_r
        ``Q_r(s, .)``, negative at allowed actions.
    beta_r
        Rationality, a float or a tensor broadcastable to ``q_r[..., 0]``.
    action_mask
        Allowed robot (joint) actions.
    eps_q
        ``epsilon_Q >= 0``.
    kind
        ``"power_law"`` or ``"normalized_boltzmann"``.
    tie_tol
        Relative tie tolerance for ``beta_r = inf``.
    """
    action_mask = action_mask.expand_as(q_r)
    safe_q = q_r.masked_fill(~action_mask, -1.0)
    kind = getattr(kind, "value", kind)
    if kind == "power_law":
        values = -torch.log((eps_q - safe_q).clamp_min(0.0))
    elif kind == "normalized_boltzmann":
        hi = safe_q.masked_fill(~action_mask, -math.inf).amax(-1, keepdim=True)
        lo = safe_q.masked_fill(~action_mask, math.inf).amin(-1, keepdim=True)
        spread = (hi - lo).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
        values = torch.where(
            spread > 0,
            (safe_q - hi) / spread.clamp_min(1e-300),
            torch.zeros_like(safe_q),
        )
    else:
        raise ValueError(
            f"robot policy kind {kind!r} is unknown; use 'power_law' or "
            "'normalized_boltzmann'"
        )
    return _tempered(values, q_r, beta_r, action_mask, tie_tol)


def power_x(
    v_e: Float[Tensor, "*batch goal"],
    goal_weights: Float[Tensor, "*#batch goal"],
    zeta: float,
) -> Float[Tensor, "*batch"]:
    """Aggregate goal-reaching ability ``X_h(s) = sum_g w_h(g) V^e_h(s, g)^zeta``, eq. (7).

    Padded goals carry weight 0 and contribute nothing.
    """
    return (goal_weights * v_e.clamp_min(0.0).pow(zeta)).sum(-1)


def robot_utility(
    x_h: Float[Tensor, "*batch human"], xi: float, eta: float, eps_x: float = 0.0
) -> Float[Tensor, "*batch"]:
    """Robot's intrinsic reward ``U_r(s) = -(sum_h (X_h(s) + eps_x)^(-xi))^eta``, eq. (8).

    ``X_h + eps_x = 0`` gives ``U_r = -inf``.
    """
    return -((x_h + eps_x).pow(-xi).sum(-1).pow(eta))


def robot_value(
    u_r: Float[Tensor, "*batch"],
    pi_r: Float[Tensor, "*batch action"],
    q_r: Float[Tensor, "*batch action"],
) -> Float[Tensor, "*batch"]:
    """``V_r(s) = U_r(s) + sum_a pi_r(s)(a) Q_r(s, a)``, eq. (9)."""
    return u_r + _expectation(pi_r, q_r)


def goal_marginal_policy(
    pi_h: Float[Tensor, "*batch human goal action"],
    goal_weights: Float[Tensor, "human goal"],
) -> Float[Tensor, "*batch human action"]:
    """Goal-marginal human policy ``pi_bar_h(s) = sum_g w~_h(g) pi_h(s, g)``.

    THEORY.md, phase 2 (the humans' behaviour in eqs. 4 and 6): goals weighted by the
    normalised weights ``w~_h = w_h / sum_g w_h(g)``; padded goals (weight 0) drop
    out. Rows where ``pi_h`` is 0 (terminal states) stay 0.

    Parameters
    ----------
    pi_h
        ``pi_h(s, g)`` of eq. (2) for every human and goal.
    goal_weights
        ``w_h(g)``, 0 for padded goals.
    """
    total = goal_weights.sum(-1, keepdim=True)
    weights = (goal_weights / total.clamp_min(torch.finfo(total.dtype).tiny)).to(
        pi_h.dtype
    )
    return (weights[..., None] * pi_h).sum(-2)


def robot_policy_of(
    q_r: Float[Tensor, "*batch action"],
    action_mask: Bool[Tensor, "*#batch action"],
    params: TheoryParameters,
    beta_r: Scalar | None = None,
) -> Float[Tensor, "*batch action"]:
    """Eq. (5) with the robot-policy parameters of ``params``.

    :func:`robot_policy` at ``params.beta_r`` (or the annealed ``beta_r`` a learner
    acts with), ``params.eps_q`` and ``params.robot_policy`` (power law or the
    normalised-Boltzmann variant).
    """
    return robot_policy(
        q_r,
        params.beta_r if beta_r is None else beta_r,
        action_mask,
        eps_q=params.eps_q,
        kind=params.robot_policy,
    )


@dataclass(frozen=True)
class RobotChain:
    """What :func:`robot_chain` computes at a batch of states (eqs. 5, 7, 8, 9).

    Attributes
    ----------
    q_r
        ``Q_r(s, .)``, 0 at disallowed actions.
    pi_r
        ``pi_r(s)``: eq. (5), or the given policy.
    x_h
        ``X_h(s)`` per human, eq. (7).
    u_r
        ``U_r(s)``, eq. (8).
    v_r
        ``V_r(s)``, eq. (9).
    """

    q_r: Float[Tensor, "*batch action"]
    pi_r: Float[Tensor, "*batch action"]
    x_h: Float[Tensor, "*batch human"]
    u_r: Float[Tensor, "*batch"]
    v_r: Float[Tensor, "*batch"]


def robot_chain(
    q_r: Float[Tensor, "*batch action"],
    v_e: Float[Tensor, "*batch human goal"],
    action_mask: Bool[Tensor, "*#batch action"],
    goal_weights: Float[Tensor, "human goal"],
    params: TheoryParameters,
    *,
    pi_r: Float[Tensor, "*batch action"] | None = None,
    beta_r: Scalar | None = None,
    terminal: Bool[Tensor, "*batch"] | None = None,
    x_floor: float = 0.0,
) -> RobotChain:
    """The robot's side of a state from ``Q_r`` and ``V^e_h``: eqs. (5), (7), (8), (9).

    ``pi_r`` from ``Q_r`` by eq. (5) (:func:`robot_policy_of`), unless a robot policy
    is given (policy evaluation: a fixed or learned ``pi_r``, or the exact solver,
    which needs ``pi_r`` before ``V^e_h`` of eq. (6)); ``X_h = sum_g w_h(g)
    V^e_h^zeta`` (7); ``U_r = -(sum_h (X_h + eps_X)^(-xi))^eta`` (8);
    ``V_r = U_r + sum_a pi_r(a) Q_r(a)`` (9).

    Parameters
    ----------
    q_r
        ``Q_r(s, .)`` (eq. 4); entries at disallowed actions are ignored.
    v_e
        ``V^e_h(s, g)`` (eq. 6) for every human and goal.
    action_mask
        Allowed joint robot actions.
    goal_weights
        ``w_h(g)`` (0 for padded goals).
    params
        Theory parameters: ``beta_r``, ``eps_q``, ``robot_policy``, ``zeta``,
        ``xi``, ``eta``, ``eps_x``, ``terminal_v_r``.
    pi_r
        A given robot policy instead of eq. (5).
    beta_r
        Rationality for eq. (5) instead of ``params.beta_r`` (an annealed ``beta'_r``).
    terminal
        Terminal states: there no action is allowed, ``pi_r``, ``Q_r``, ``X_h`` and
        ``U_r`` are 0 and ``V_r = terminal_v_r`` (THEORY.md conventions).
    x_floor
        Floor on ``X_h`` inside eq. (8) only (learners use a tiny one so that an
        untrained ``V^e_h`` cannot give ``U_r = -inf``); 0 leaves eq. (8) exact.
    """
    if terminal is not None:
        action_mask = action_mask & ~terminal[..., None]
    action_mask = action_mask.expand_as(q_r)
    q_r = q_r.masked_fill(~action_mask, 0.0)
    if pi_r is None:
        pi_r = robot_policy_of(q_r, action_mask, params, beta_r)
    x_h = power_x(v_e, goal_weights.to(v_e.dtype), params.zeta)
    u_r = robot_utility(x_h.clamp_min(x_floor), params.xi, params.eta, params.eps_x)
    v_r = robot_value(u_r, pi_r, q_r)
    if terminal is not None:
        x_h = x_h.masked_fill(terminal[..., None], 0.0)
        u_r = u_r.masked_fill(terminal, 0.0)
        v_r = terminal_robot_value(v_r, terminal, params)
    return RobotChain(q_r=q_r, pi_r=pi_r, x_h=x_h, u_r=u_r, v_r=v_r)


def terminal_robot_value(
    v_r: Float[Tensor, "*batch"],
    terminal: Bool[Tensor, "*#batch"],
    params: TheoryParameters,
) -> Float[Tensor, "*batch"]:
    """``V_r`` with the terminal convention of THEORY.md: ``terminal_v_r`` at
    terminal states, ``v_r`` elsewhere (:func:`robot_chain`, and learners whose
    ``V_r`` is a network's output)."""
    return torch.where(terminal, torch.full_like(v_r, params.terminal_v_r), v_r)


def power_bits(x_h: Float[Tensor, "*batch"]) -> Float[Tensor, "*batch"]:
    """ICCEA power in bits ``W_h(s) = log2 X_h(s)``, eq. (10)."""
    return torch.log2(x_h)


def x_h_sample_target(
    v_e_sampled: Float[Tensor, "*batch"],
    num_goals: int | Tensor,
    zeta: float,
    goal_weight: Scalar = 1.0,
) -> Float[Tensor, "*batch"]:
    """Sampled target ``|G_h| * w_h(g_h) * V^e_h(s, g_h)^zeta`` for ``X_h``, eq. (14).

    With ``g_h`` drawn uniformly from the ``|G_h|`` goals its expectation is eq. (7);
    ``goal_weight`` defaults to 1 (the paper's unweighted eq. (14)).
    """
    return num_goals * goal_weight * v_e_sampled.clamp_min(0.0).pow(zeta)


def joint_action_distribution(
    factors: Sequence[Float[Tensor, "*#batch _"]],
) -> Float[Tensor, "*#batch joint"]:
    """Product distribution over a mixed-radix joint action.

    ``factors[i]`` is the distribution of the ``i``-th component; the first factor is
    the most significant digit (the :class:`~empo.worlds.compiled.CompiledWorld`
    joint-action order). An empty list gives the single joint action ``()``.
    """
    if not factors:
        raise ValueError("joint_action_distribution needs at least one factor")
    joint = factors[0]
    for factor in factors[1:]:
        joint = (joint.unsqueeze(-1) * factor.unsqueeze(-2)).flatten(-2)
    return joint
