"""The learned solver's targets reproduce the exact solution at its fixed point.

Plugging the exact tables into the networks' places, the phase-1 head's targets give
the exact ``Q^m_h``, ``π_h``, ``V^m_h`` (eqs. 1-3, explicit minimum over robot actions)
and the phase-2 targets give the exact ``V^e_h`` and ``Q_r`` (eqs. 4-9, 12-13), for one
and two humans and for a team of two robots.
"""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from empo import theory
from empo.exact import solve
from empo.learning.losses import Phase1Loss, Phase2Loss
from empo.learning.model import TransitionModel
from empo.learning.modules import (
    StateEncoder,
    goal_value_module,
    joint_backup_module,
    robot_q_module,
)
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world

THEORY = TheoryParameters(beta_h=4.0, gamma_h=0.9, gamma_r=0.95, nu_h=0.1)


@pytest.fixture(params=["hr", "hhr", "hrr"])
def world_and_exact(request: pytest.FixtureRequest):
    world = random_layered_world(
        24,
        roles=request.param,
        num_actions=2 if len(request.param) == 3 else 3,
        num_goals=3,
        num_layers=5,
        rest_action=True,
        seed=7,
    )
    return world, solve(world, THEORY)


def _exact_backups(model: TransitionModel, v_m: torch.Tensor) -> torch.Tensor:
    states = torch.arange(model.num_states)
    succ, prob = model.successors_of(states, sampled=False)
    backup = theory.goal_backup(model.in_goal(succ), v_m[succ], THEORY.gamma_h)
    return (prob[..., None, None] * backup).sum(2).permute(0, 2, 3, 1)


def test_phase1_head_reproduces_eqs_1_to_3(world_and_exact) -> None:
    world, exact = world_and_exact
    model = TransitionModel(world)
    encoder = StateEncoder(model.num_states, 4)
    net = joint_backup_module(
        encoder, model.num_humans, model.num_goals, model.num_joint, 4, (4,)
    )
    loss = Phase1Loss(net, model, THEORY)
    z = _exact_backups(model, exact.phase1["v_m"].float())
    loss.joint_backups = lambda params, states: z[states]
    values = loss.phase1_values(None, torch.arange(model.num_states))
    for key in ("q_m", "pi_h", "v_m"):
        torch.testing.assert_close(
            values[key].double(), exact.phase1[key], atol=2e-6, rtol=0
        )


def test_phase2_targets_are_the_exact_fixed_point(world_and_exact) -> None:
    world, exact = world_and_exact
    model = TransitionModel(world)
    ve = goal_value_module(
        StateEncoder(model.num_states, 4), model.num_humans, model.num_goals, 4, (4,)
    )
    qr = robot_q_module(StateEncoder(model.num_states, 4), model.robot_actions, (4,))
    loss = Phase2Loss(ve, qr, model, THEORY, exact.phase1["pi_h"].float())
    v_e = exact.phase2["v_e"].float()
    q_r = exact.phase2["q_r"].float()
    loss.goal_values = lambda params, states: v_e[states]
    loss.robot_q = lambda params, states: torch.where(
        model.robot_mask(states), q_r[states], -1.0
    )
    states = torch.arange(model.num_states)
    ve_target, q_target = loss._targets(states)
    alive = ~model.terminal
    mask = model.robot_mask(states)
    torch.testing.assert_close(
        ve_target[alive].double(), exact.phase2["v_e"][alive], atol=2e-6, rtol=0
    )
    torch.testing.assert_close(
        (q_target * mask).double(), exact.phase2["q_r"], atol=0, rtol=2e-6
    )
    values = loss.robot_values(None, None, states, THEORY.beta_r)
    for key in ("x_h", "u_r", "v_r", "pi_r"):
        torch.testing.assert_close(
            values[key].double(), exact.phase2[key], atol=0, rtol=2e-6
        )


def test_sampled_successors_average_to_the_expectation() -> None:
    world = random_layered_world(
        12, num_actions=2, num_layers=3, stochastic_fraction=1.0, seed=3
    )
    model = TransitionModel(world)
    states = torch.arange(model.num_states).repeat(4000)
    generator = torch.Generator().manual_seed(0)
    succ, prob = model.successors_of(states, sampled=True, generator=generator)
    assert succ.shape[-1] == 1
    counts = torch.zeros(model.num_states, model.num_joint, model.num_states)
    rows = states[:, None].expand(-1, model.num_joint)
    cols = torch.arange(model.num_joint).expand_as(rows)
    counts.index_put_((rows, cols, succ[..., 0]), prob[..., 0], accumulate=True)
    exact = torch.zeros_like(counts)
    base = torch.arange(model.num_states)[:, None, None].expand_as(model.successors)
    joint = torch.arange(model.num_joint)[None, :, None].expand_as(model.successors)
    exact.index_put_(
        (base, joint, model.successors), model.probabilities, accumulate=True
    )
    torch.testing.assert_close(counts / 4000, exact, atol=0.03, rtol=0)


def test_advantage_weight_one_is_the_plain_log_q_error() -> None:
    world = random_layered_world(10, num_actions=3, num_layers=3, seed=2)
    model = TransitionModel(world)
    pi_h = torch.full((model.num_states, 1, model.num_goals, 3), 1 / 3)
    torch.manual_seed(0)
    nets = [
        goal_value_module(
            StateEncoder(model.num_states, 4), 1, model.num_goals, 4, (4,)
        ),
        robot_q_module(StateEncoder(model.num_states, 4), model.robot_actions, (4,)),
    ]
    states = torch.nonzero(~model.terminal)[:, 0]
    q_target = -torch.rand(len(states), model.robot_actions) - 0.5
    ve_target = torch.rand(len(states), 1, model.num_goals)
    losses = {}
    for weight in (1.0, 10.0):
        loss = Phase2Loss(*nets, model, THEORY, pi_h, advantage_weight=weight)
        loss._targets = lambda s: (ve_target, q_target)
        losses[weight] = loss(TensorDict({"state": states}, batch_size=[]))
    with loss.qr_network_params.to_module(loss.qr_network):
        log_pred = loss.qr_network.module(states)
    mask = model.robot_mask(states)
    err = (log_pred - torch.log(-q_target)) * mask
    plain = (err.pow(2).sum(-1) / mask.sum(-1)).mean()
    torch.testing.assert_close(losses[1.0]["loss_q_r"], plain)
    mean = err.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)
    dev = ((err - mean) * mask).pow(2).sum(-1) / mask.sum(-1)
    torch.testing.assert_close(
        losses[10.0]["loss_q_r"], (mean.squeeze(-1).pow(2) + 10.0 * dev).mean()
    )
