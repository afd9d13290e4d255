"""The actor-critic variant of phase 2 (``phase2.variant = "actor_critic"``).

Its targets are the exact fixed point (eqs. 4-9, 12-13 and eq. (5) as the minimiser
of the actor loss) and it learns the exact solution on small worlds. Its resume test
is the one of the DQN variant, parametrised over both (``test_learning_train.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tensordict import TensorDict

from empo import Parameters
from empo.analysis import compare
from empo.exact import solve
from empo.learning import train
from empo.learning.actor_critic import ActorCriticLoss
from empo.learning.model import TransitionModel
from empo.learning.modules import (
    StateEncoder,
    goal_value_module,
    robot_policy_module,
    robot_value_module,
)
from empo.parameters.theory import TheoryParameters
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import build_world

THEORY = TheoryParameters(beta_h=4.0, gamma_h=0.9, gamma_r=0.95, nu_h=0.1)
TRAIN_THEORY = {"beta_h": 5.0, "gamma_h": 0.95, "gamma_r": 0.95}
ACCURATE = {
    "learning_rate": 1e-2,
    "learning_rate_decay": 0.01,
    "batch_size": 64,
    "num_frames": 6000,
    "frames_per_batch": 100,
    "updates_per_batch": 20,
    "num_envs": 10,
    "max_episode_steps": 50,
    "buffer_size": 5000,
    "uniform_state_fraction": 1.0,
    "target_update_tau": 0.2,
    "embed_dim": 32,
    "hidden_sizes": [64, 64],
    "epsilon_start": 0.5,
    "epsilon_end": 0.1,
    "epsilon_steps": 2000,
}


def _params(phase1: dict[str, Any], phase2: dict[str, Any], seed: int) -> Parameters:
    return Parameters(
        world="commitment",
        solver="learned",
        theory=TRAIN_THEORY,
        phase1=phase1,
        phase2={**phase2, "variant": "actor_critic"},
        seed=seed,
    )


@pytest.mark.parametrize("roles", ["hr", "hhr", "hrr"])
def test_actor_critic_targets_are_the_exact_fixed_point(roles: str) -> None:
    world = random_layered_world(
        24,
        roles=roles,
        num_actions=2 if len(roles) == 3 else 3,
        num_goals=3,
        num_layers=5,
        rest_action=True,
        seed=7,
    )
    exact = solve(world, THEORY)
    model = TransitionModel(world)
    nets = [
        goal_value_module(
            StateEncoder(model.num_states, 4),
            model.num_humans,
            model.num_goals,
            4,
            (4,),
        ),
        robot_value_module(StateEncoder(model.num_states, 4), (4,)),
        robot_policy_module(
            StateEncoder(model.num_states, 4), model.robot_actions, (4,)
        ),
    ]
    loss = ActorCriticLoss(*nets, model, THEORY, exact.phase1["pi_h"].float())
    v_e = exact.phase2["v_e"].float()
    v_r = exact.phase2["v_r"].float()
    pi_r = exact.phase2["pi_r"].float()
    loss.goal_values = lambda params, states: v_e[states]
    loss.robot_v = lambda params, states: v_r[states]
    loss.log_neg_robot_value = lambda params, states: torch.log(-v_r[states])
    loss.log_policy = lambda params, states: torch.log(pi_r[states].clamp_min(1e-30))
    states = torch.arange(model.num_states)
    values = loss.online_values(states, THEORY.beta_r)
    for key in ("x_h", "u_r", "q_r", "v_r"):
        torch.testing.assert_close(
            values[key].double(), exact.phase2[key], atol=0, rtol=2e-6
        )
    alive = torch.nonzero(~model.terminal)[:, 0]
    ve_target, v_target, weights = loss._targets(alive)
    torch.testing.assert_close(
        ve_target.double(), exact.phase2["v_e"][alive], atol=2e-6, rtol=0
    )
    torch.testing.assert_close(
        v_target.double(), exact.phase2["v_r"][alive], atol=0, rtol=2e-6
    )
    torch.testing.assert_close(
        weights.double(), exact.phase2["pi_r"][alive], atol=2e-6, rtol=0
    )
    # the actor loss is a KL divergence: zero exactly at eq. (5) of the look-ahead
    losses = loss(TensorDict({"state": alive}, batch_size=[])).detach()
    assert float(losses["loss_v_r"]) < 1e-10
    assert abs(float(losses["loss_pi_r"])) < 1e-5
    uniform = torch.log(model.robot_mask(states).float())
    loss.log_policy = lambda params, states: torch.log_softmax(uniform[states], -1)
    assert float(loss(TensorDict({"state": alive}, batch_size=[]))["loss_pi_r"]) > 0.01


@pytest.mark.slow
def test_actor_critic_matches_exact_on_small_worlds() -> None:
    phase2 = {
        **ACCURATE,
        "beta_r_start": 0.5,
        "beta_r_steps": 2000,
        "goal_resample_steps": 10,
    }
    world = random_layered_world(
        30, num_actions=3, num_goals=3, num_layers=5, rest_action=True, seed=3
    )
    params = _params(ACCURATE, phase2, seed=1)
    exact = solve(world, params.theory)
    learned = train(world, params, progress=False)
    errors = compare(learned, exact)
    assert errors["pi_r"] <= 0.05
    assert errors["v_e"] <= 0.03
    assert errors["v_r_rel"] <= 0.02
    torch.testing.assert_close(
        learned.joint_policy().sum(-1)[~exact.world.terminal].double(),
        torch.ones(int((~exact.world.terminal).sum()), dtype=torch.float64),
    )
    short = {**ACCURATE, "num_frames": 3000}
    menu = build_world("menu_size")
    params = _params(short, {**phase2, "num_frames": 3000}, seed=2)
    errors = compare(train(menu, params, progress=False), solve(menu, params.theory))
    assert errors["pi_r"] <= 0.05 and errors["v_e"] <= 0.03
