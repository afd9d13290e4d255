"""The learned solver's targets reproduce the exact solution at its fixed point.

Plugging the exact tables into the networks' places, the phase-1 target gives the
exact ``Q^m_h`` (eq. 1, explicit minimum over robot actions inside the expectation
over the other humans) and the phase-2 targets give the exact ``V^e_h``, ``Q_r`` and
``V_r`` (eqs. 4-9, 12-13), for one and two humans and for a team of two robots, on
either data source; the actor-critic targets too, with eq. (5) as the minimiser of
the actor loss.
"""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from empo import theory
from empo.exact import solve
from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.data import STATE_ID, CompiledData, RowData
from empo.learning.phase2 import Phase2Loss
from empo.learning.targets import phase1_target, phase2_target
from empo.parameters.learning import Phase2Parameters
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world
from empo.worlds.rows import CompiledRows

THEORY = TheoryParameters(beta_h=4.0, gamma_h=0.9, gamma_r=0.95, nu_h=0.1)
KNOBS = Phase2Parameters(embed_dim=4, hidden_sizes=(4,), state_encoding="embedding")


@pytest.fixture(scope="module", params=["hr", "hhr", "hrr"])
def solved(request: pytest.FixtureRequest):
    world = random_layered_world(
        24,
        roles=request.param,
        num_actions=2 if len(request.param) == 3 else 3,
        num_goals=3,
        num_layers=5,
        rest_action=True,
        seed=7,
    )
    return CompiledData(world), solve(world, THEORY)


def _alive(data: CompiledData) -> TensorDict:
    return data.of_ids(data.alive)


def test_phase1_target_is_eq1(solved) -> None:
    data, exact = solved
    states = _alive(data)
    v_m = exact.phase1["v_m"].float()
    others = data.others_profiles(states, 1, None)
    target = phase1_target(
        data, states, others, lambda s: v_m[s.get(STATE_ID)], THEORY.gamma_h
    )
    valid = data.human_mask(states)[:, :, None, :] & data.goal_mask[None, :, :, None]
    want = exact.phase1["q_m"][data.alive]
    torch.testing.assert_close(target[valid].double(), want[valid], atol=2e-6, rtol=0)


def _phase2_loss(data: CompiledData, exact) -> Phase2Loss:
    from empo.learning.modules import goal_network, state_network

    pi_h = exact.phase1["pi_h"].float()
    loss = Phase2Loss(
        goal_network(data, KNOBS, 1, "v_e_raw"),
        state_network(data, KNOBS, data.robot_actions, "log_neg_q_r"),
        data,
        THEORY,
        lambda s: pi_h[s.get(STATE_ID)],
    )
    v_e = exact.phase2["v_e"].float()
    q_r = exact.phase2["q_r"].float()
    loss.goal_values = lambda params, s: v_e[s.get(STATE_ID)]
    loss.robot_q = lambda params, s: torch.where(
        data.robot_mask(s), q_r[s.get(STATE_ID)], -1.0
    )
    return loss


def test_phase2_targets_are_the_exact_fixed_point(solved) -> None:
    data, exact = solved
    loss = _phase2_loss(data, exact)
    states = _alive(data)
    ve_target, q_target = loss.targets(states)
    mask = data.robot_mask(states)
    p2 = exact.phase2
    torch.testing.assert_close(
        ve_target.double(), p2["v_e"][data.alive], atol=2e-6, rtol=0
    )
    torch.testing.assert_close(
        (q_target * mask).double(), p2["q_r"][data.alive], atol=0, rtol=2e-6
    )
    values = loss.robot_values(None, None, data.all_states(), THEORY.beta_r)
    for key in ("x_h", "u_r", "v_r", "pi_r"):
        torch.testing.assert_close(values[key].double(), p2[key], atol=0, rtol=2e-6)


def test_row_targets_with_the_same_profiles_are_the_same(solved) -> None:
    """Reached by rows (``[state_id]`` of the compiled world), the targets from the
    same profiles are those of the compiled data source."""
    data, exact = solved
    rows = RowData(CompiledRows(data.world))
    states = _alive(data)
    row_states = rows.states(states.get("state"))
    v_m = exact.phase1["v_m"].float()
    others = data.others_profiles(states, 1, None)

    def by_row(table: torch.Tensor):
        return lambda s: table[s.get("state")[:, 0]]

    want = phase1_target(data, states, others, by_row(v_m), THEORY.gamma_h)
    got = phase1_target(rows, row_states, others, by_row(v_m), THEORY.gamma_h)
    torch.testing.assert_close(got, want)
    p1, p2 = exact.phase1, exact.phase2
    pi_h = p1["pi_h"].float()[data.alive]
    pi_bar = theory.goal_marginal_policy(pi_h, data.goal_weights)
    profiles = data.human_profiles(pi_bar, 1, None)

    def values(s: TensorDict) -> dict[str, torch.Tensor]:
        ids = s.get("state")[:, 0]
        return {"v_e": p2["v_e"].float()[ids], "v_r": p2["v_r"].float()[ids]}

    pi_r = p2["pi_r"].float()[data.alive]
    args = (pi_h, pi_r, profiles, values, THEORY.gamma_h, THEORY.gamma_r)
    for w, g in zip(
        phase2_target(data, states, *args), phase2_target(rows, row_states, *args)
    ):
        torch.testing.assert_close(g, w)


def test_actor_critic_targets_are_the_exact_fixed_point(solved) -> None:
    from empo.learning.modules import goal_network, state_network

    data, exact = solved
    pi_h = exact.phase1["pi_h"].float()
    loss = ActorCriticLoss(
        goal_network(data, KNOBS, 1, "v_e_raw"),
        state_network(data, KNOBS, 1, "log_neg_v_r"),
        state_network(data, KNOBS, data.robot_actions, "logits_r"),
        data,
        THEORY,
        lambda s: pi_h[s.get(STATE_ID)],
    )
    p2 = exact.phase2
    v_e, v_r, pi_r = (p2[k].float() for k in ("v_e", "v_r", "pi_r"))
    loss.goal_values = lambda params, s: v_e[s.get(STATE_ID)]
    loss.robot_v = lambda params, s: v_r[s.get(STATE_ID)]
    loss.log_neg_robot_value = lambda params, s: torch.log(-v_r[s.get(STATE_ID)])
    loss.log_policy = lambda params, s: torch.log(
        pi_r[s.get(STATE_ID)].clamp_min(1e-30)
    )
    values = loss.online_values(data.all_states(), THEORY.beta_r)
    for key in ("x_h", "u_r", "q_r", "v_r"):
        torch.testing.assert_close(values[key].double(), p2[key], atol=0, rtol=2e-6)
    states = _alive(data)
    ve_target, v_target, weights = loss.targets(states)
    alive = data.alive
    torch.testing.assert_close(ve_target.double(), p2["v_e"][alive], atol=2e-6, rtol=0)
    torch.testing.assert_close(v_target.double(), p2["v_r"][alive], atol=0, rtol=2e-6)
    torch.testing.assert_close(weights.double(), p2["pi_r"][alive], atol=2e-6, rtol=0)
    # the actor loss is a KL divergence: zero exactly at eq. (5) of the look-ahead
    losses = loss(states).detach()
    assert float(losses["loss_v_r"]) < 1e-10
    assert abs(float(losses["loss_pi_r"])) < 1e-5
    uniform = torch.log(data.robot_mask(data.all_states()).float())
    loss.log_policy = lambda params, s: torch.log_softmax(uniform[s.get(STATE_ID)], -1)
    assert float(loss(states)["loss_pi_r"]) > 0.01


def test_advantage_weight_one_is_the_plain_log_q_error() -> None:
    from empo.learning.modules import goal_network, state_network

    world = random_layered_world(10, num_actions=3, num_layers=3, seed=2)
    data = CompiledData(world)
    pi_h = torch.full((data.num_states, 1, data.num_goals, 3), 1 / 3)
    torch.manual_seed(0)
    nets = [
        goal_network(data, KNOBS, 1, "v_e_raw"),
        state_network(data, KNOBS, data.robot_actions, "log_neg_q_r"),
    ]
    states = _alive(data)
    n = states.shape[0]
    q_target = -torch.rand(n, data.robot_actions) - 0.5
    ve_target = torch.rand(n, 1, data.num_goals)
    losses = {}
    for weight in (1.0, 10.0):
        loss = Phase2Loss(
            *nets,
            data,
            THEORY,
            lambda s: pi_h[s.get(STATE_ID)],
            advantage_weight=weight,
        )
        loss.targets = lambda s: (ve_target, q_target)
        losses[weight] = loss(states)
    log_pred = loss.evaluate(loss.qr_network, None, states, "log_neg_q_r")
    mask = data.robot_mask(states)
    err = (log_pred - torch.log(-q_target)) * mask
    plain = (err.pow(2).sum(-1) / mask.sum(-1)).mean()
    torch.testing.assert_close(losses[1.0]["loss_q_r"], plain)
    mean = err.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)
    dev = ((err - mean) * mask).pow(2).sum(-1) / mask.sum(-1)
    torch.testing.assert_close(
        losses[10.0]["loss_q_r"], (mean.squeeze(-1).pow(2) + 10.0 * dev).mean()
    )


def test_losses_read_their_batch_through_configurable_keys() -> None:
    world = random_layered_world(10, num_actions=3, num_layers=3, seed=2)
    data = CompiledData(world)
    exact = solve(world, THEORY)
    loss = _phase2_loss(data, exact)
    states = _alive(data)
    want = loss(states)
    renamed = TensorDict(
        {"obs": states.get("state"), ("ids", "s"): states.get(STATE_ID)},
        batch_size=states.batch_size,
    )
    loss.set_keys(state="obs", state_id=("ids", "s"))
    got = loss(renamed)
    for key in want.keys():
        torch.testing.assert_close(got[key], want[key])
    with pytest.raises(ValueError, match="not an accepted tensordict key"):
        loss.set_keys(rows="obs")
