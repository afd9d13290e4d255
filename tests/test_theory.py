"""Hand-computed values of the equation functions in :mod:`empo.theory`."""

import math

import pytest
import torch

from empo import theory as T
from empo.parameters.theory import TheoryParameters

F64 = torch.float64
INF = math.inf


def t(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def test_goal_backup_credits_entering_only() -> None:
    in_goal = torch.tensor([True, False, False])
    v_next = t([0.7, 0.5, 0.0])
    out = T.goal_backup(in_goal, v_next, 0.9)
    assert torch.allclose(out, t([1.0, 0.45, 0.0]))


def test_human_policy_boltzmann_and_limits() -> None:
    q = t([[0.5, 0.2, 0.9]])
    mask = torch.tensor([[True, True, False]])
    soft = T.human_policy(q, 2.0, mask)
    p0 = 1 / (1 + math.exp(-0.6))
    assert torch.allclose(soft, t([[p0, 1 - p0, 0.0]]))
    assert torch.allclose(T.human_policy(q, INF, mask), t([[1.0, 0.0, 0.0]]))
    assert torch.allclose(T.human_policy(q, 0.0, mask), t([[0.5, 0.5, 0.0]]))


def test_human_policy_argmax_ties_split_uniformly() -> None:
    q = t([[0.3, 0.3 + 1e-13, 0.1, 0.3]])
    mask = torch.tensor([[True, True, True, False]])
    assert torch.allclose(T.human_policy(q, INF, mask), t([[0.5, 0.5, 0.0, 0.0]]))


def test_human_policy_per_entry_beta() -> None:
    q = t([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    mask = torch.ones(3, 2, dtype=torch.bool)
    beta = t([0.0, 1.0, INF])
    e = math.e / (1 + math.e)
    expected = t([[0.5, 0.5], [e, 1 - e], [1.0, 0.0]])
    assert torch.allclose(T.human_policy(q, beta, mask), expected)


def test_human_policy_habitual_mixture_and_rest() -> None:
    q = t([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    pi0 = t([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    pol = T.human_policy(q, INF, mask, nu_h=t([0.25, 1.0]), pi0_h=pi0)
    assert torch.allclose(pol, t([[0.75, 0.0, 0.25], [0.0, 1.0, 0.0]]))
    reached = torch.tensor([True, False])
    pol = T.human_policy(q, INF, mask, reached=reached, rest_action=2)
    assert torch.allclose(pol, t([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    # rest action not allowed where reached: eq. (2) applies
    pol = T.human_policy(
        q, INF, mask, reached=torch.tensor([False, True]), rest_action=2
    )
    assert torch.allclose(pol, t([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))


def test_human_value() -> None:
    pi = t([[0.25, 0.75, 0.0]])
    q = t([[0.4, 0.8, -INF]])
    assert torch.allclose(T.human_value(pi, q), t([0.7]))


def test_robot_policy_power_law() -> None:
    q = t([[-0.5, -0.2, -0.1]])
    mask = torch.tensor([[True, True, False]])
    pol = T.robot_policy(q, 2.0, mask)
    assert torch.allclose(pol, t([[4 / 29, 25 / 29, 0.0]]))
    pol = T.robot_policy(q, 1.0, mask, eps_q=0.3)
    a, b = 1 / 0.8, 1 / 0.5
    assert torch.allclose(pol, t([[a / (a + b), b / (a + b), 0.0]]))
    assert torch.allclose(T.robot_policy(q, INF, mask), t([[0.0, 1.0, 0.0]]))
    assert torch.allclose(T.robot_policy(q, 0.0, mask), t([[0.5, 0.5, 0.0]]))


def test_robot_policy_power_law_is_stable_for_large_beta() -> None:
    q = t([[-1e-8, -2e-8]])
    pol = T.robot_policy(q, 500.0, torch.ones(1, 2, dtype=torch.bool))
    assert torch.isfinite(pol).all()
    assert pol[0, 0] == pytest.approx(1 / (1 + 2.0**-500), abs=1e-12)


def test_robot_policy_zero_q_takes_mass() -> None:
    q = t([[0.0, -0.5, 0.0]])
    pol = T.robot_policy(q, 3.0, torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(pol, t([[0.5, 0.0, 0.5]]))


def test_robot_policy_normalized_boltzmann() -> None:
    q = t([[-1.0, -3.0, -2.0], [-1.0, -1.0, -5.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    pol = T.robot_policy(q, 2.0, mask, kind="normalized_boltzmann")
    w = torch.exp(2.0 * q[0] / 2.0)
    assert torch.allclose(pol[0], w / w.sum())
    assert torch.allclose(pol[1], t([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="kind"):
        T.robot_policy(q, 2.0, mask, kind="nope")


def test_power_utility_value_bits() -> None:
    v_e = t([[1.0, 0.5, 0.0]])
    w = t([1.0, 2.0, 0.0])
    x = T.power_x(v_e, w, 2.0)
    assert torch.allclose(x, t([1.5]))
    u = T.robot_utility(t([[1.0, 4.0]]), 1.0, 2.0)
    assert torch.allclose(u, t([-(1.25**2)]))
    u = T.robot_utility(t([[0.0, 1.0]]), 1.0, 1.1, eps_x=1.0)
    assert torch.allclose(u, t([-(1.5**1.1)]))
    assert T.robot_utility(t([[0.0, 1.0]]), 1.0, 1.1).item() == -INF
    v = T.robot_value(t([-1.0]), t([[0.5, 0.5, 0.0]]), t([[-2.0, -4.0, 0.0]]))
    assert torch.allclose(v, t([-4.0]))
    assert torch.allclose(T.power_bits(t([4.0, 1.0])), t([2.0, 0.0]))


def test_x_h_sample_target_is_unbiased() -> None:
    v_e = t([1.0, 0.5, 0.25])
    w = t([1.0, 2.0, 3.0])
    targets = T.x_h_sample_target(v_e, 3, 2.0, goal_weight=w)
    assert torch.allclose(targets.mean(), T.power_x(v_e, w, 2.0))
    assert torch.allclose(T.x_h_sample_target(t([0.5]), 4, 2.0), t([1.0]))


def test_joint_action_distribution_mixed_radix() -> None:
    a = t([0.25, 0.75])
    b = t([0.1, 0.2, 0.7])
    joint = T.joint_action_distribution([a, b])
    assert joint.shape == (6,)
    assert joint[1 * 3 + 2] == pytest.approx(0.75 * 0.7)
    assert joint.sum() == pytest.approx(1.0)


def test_masked_softmax_infinite_rows() -> None:
    mask = torch.tensor([[True, True, False], [True, True, True], [False] * 3])
    logits = t([[-INF, -INF, 0.0], [INF, 1.0, INF], [0.0, 0.0, 0.0]])
    probs = T.masked_softmax(logits, mask)
    assert torch.allclose(probs, t([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0] * 3]))
    q = t([[-INF, -INF]])
    assert torch.allclose(T.robot_policy(q, 5.0, mask[:1, :2]), t([[0.5, 0.5]]))


def test_policies_are_differentiable() -> None:
    """Gradients flow through eqs. (2) and (5), as the learned losses need."""
    q_m = torch.tensor([[0.2, 0.5, 0.1]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    policy = T.human_policy(q_m, 2.0, mask)
    (policy[0, 0] + T.human_value(policy, q_m).sum()).backward()
    p0 = 1.0 / (1.0 + math.exp(0.6))
    # d pi_0 / d q_0 = beta p0 (1 - p0); d V / d q_0 = p0 (1 + beta (q_0 - V)).
    value = p0 * 0.2 + (1 - p0) * 0.5
    expected = 2.0 * p0 * (1 - p0) + p0 * (1 + 2.0 * (0.2 - value))
    assert q_m.grad[0, 0].item() == pytest.approx(expected, rel=1e-9)
    assert q_m.grad[0, 2].item() == 0.0
    q_r = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    T.robot_policy(q_r, 1.0, torch.ones(1, 2, dtype=torch.bool))[0, 0].backward()
    # pi_0 = (1/1) / (1/1 + 1/2) = 2/3 and d pi_0 / d Q_0 = -pi_0 (1 - pi_0) / Q_0.
    assert q_r.grad[0, 0].item() == pytest.approx(2 / 9, rel=1e-9)


def test_goal_marginal_policy_normalises_weights_and_skips_padding() -> None:
    pi_h = t(
        [
            [
                [[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]],
                [[0.6, 0.4], [0.0, 1.0], [1.0, 0.0]],
            ],
            [[[0.0, 0.0]] * 3] * 2,
        ]
    )
    weights = t([[1.0, 1.0, 2.0], [1.0, 3.0, 0.0]])
    out = T.goal_marginal_policy(pi_h, weights)
    expected = t([[[0.35, 0.65], [0.15, 0.85]], [[0.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(out, expected)


THEORY = TheoryParameters(zeta=2.0, xi=1.0, eta=2.0, beta_r=2.0)


def test_robot_chain_eqs_5_7_8_9_and_terminal_layout() -> None:
    q_r = t([[-1.0, -2.0, -5.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    v_e = t([[[0.5, 1.0]], [[0.3, 0.3]]])
    weights = t([[1.0, 1.0]])
    terminal = torch.tensor([False, True])
    chain = T.robot_chain(q_r, v_e, mask, weights, THEORY, terminal=terminal)
    assert torch.allclose(chain.pi_r, t([[0.8, 0.2, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.allclose(chain.q_r, t([[-1.0, -2.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.allclose(chain.x_h, t([[1.25], [0.0]]))
    assert torch.allclose(chain.u_r, t([-0.64, 0.0]))
    assert torch.allclose(chain.v_r, t([-1.84, THEORY.terminal_v_r]))
    # the convention alone, for values that do not come from eq. (9)
    critic = T.terminal_robot_value(t([-3.0, -4.0]), terminal, THEORY)
    assert torch.equal(critic, t([-3.0, THEORY.terminal_v_r]))


def test_robot_chain_with_a_given_policy_or_beta() -> None:
    q_r = t([[-1.0, -2.0, -5.0]])
    mask = torch.tensor([[True, True, False]])
    v_e = t([[[0.5, 1.0]]])
    weights = t([[1.0, 1.0]])
    given = T.robot_chain(q_r, v_e, mask, weights, THEORY, pi_r=t([[0.5, 0.5, 0.0]]))
    assert torch.allclose(given.v_r, t([-2.14]))
    greedy = T.robot_chain(q_r, v_e, mask, weights, THEORY, beta_r=INF)
    assert torch.allclose(greedy.pi_r, t([[1.0, 0.0, 0.0]]))
    assert torch.allclose(greedy.v_r, t([-1.64]))


def test_robot_chain_x_floor_keeps_u_r_finite() -> None:
    q_r = t([[-1.0]])
    mask = torch.tensor([[True]])
    v_e = t([[[0.0, 0.0]]])
    weights = t([[1.0, 1.0]])
    exact = T.robot_chain(q_r, v_e, mask, weights, THEORY)
    assert exact.u_r.item() == -INF
    floored = T.robot_chain(q_r, v_e, mask, weights, THEORY, x_floor=0.01)
    assert torch.allclose(floored.u_r, t([-1e4]))
    assert floored.x_h.item() == 0.0


def test_robot_policy_of_reads_the_parameters() -> None:
    q_r = t([[-1.0, -3.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    boltzmann = TheoryParameters(beta_r=2.0, robot_policy="normalized_boltzmann")
    pol = T.robot_policy_of(q_r, mask, boltzmann)
    assert torch.allclose(
        pol, T.robot_policy(q_r, 2.0, mask, kind="normalized_boltzmann")
    )
    p = 1 / (1 + math.exp(-2.0))
    assert torch.allclose(pol, t([[p, 1 - p]]))
    assert torch.allclose(T.robot_policy_of(q_r, mask, THEORY, 0.0), t([[0.5, 0.5]]))
