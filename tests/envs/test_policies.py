"""Solutions as TorchRL policies: exact and learned solutions act in the environments
(batched rollouts, a collector, a ParallelEnv), and the power reward's return is V_r."""

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.envs import ParallelEnv, TransformedEnv

from empo import Parameters
from empo.envs import keys
from empo.envs.policies import human_policy, joint_policy, robot_policy
from empo.envs.power_reward import PowerReward
from empo.envs.world_env import WorldEnv
from empo.exact import solve
from empo.learning import train
from empo.parameters import TheoryParameters
from empo.theory import goal_marginal_policy
from empo.worlds.registry import build_world, compile_any

# 0.1% critical values of the chi-square distribution by degrees of freedom
CHI2 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46}


def _chi2(actions: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    counts = torch.bincount(actions, minlength=len(probs)).double()
    expected = len(actions) * probs.double()
    live = expected > 0
    assert counts[~live].sum() == 0
    stat = ((counts[live] - expected[live]) ** 2 / expected[live]).sum()
    return float(stat), int(live.sum()) - 1


@pytest.fixture(scope="module")
def corridor():
    world = build_world("corridor")
    theory = TheoryParameters()
    return world, theory, solve(compile_any(world), theory)


def _corridor_env() -> WorldEnv:
    return WorldEnv(build_world("corridor"), seed=0)


def test_exact_robot_policy_drives_512_envs_with_pi_r_at_s0(corridor) -> None:
    world, _, exact = corridor
    env = WorldEnv(world, batch_size=(512,), seed=1)
    policy = joint_policy(exact, env.world)
    torch.manual_seed(2)
    first = env.rollout(1, policy)[:, 0]
    s0 = exact.world.initial_state
    pi_r = exact.phase2["pi_r"][s0]
    assert torch.allclose(first[keys.ROBOT_PROBS], pi_r.float().expand(512, -1))
    stat, df = _chi2(first[keys.ROBOT_ACTION][:, 0], pi_r)
    assert df >= 2 and stat < CHI2[df]
    goals = first[keys.HUMAN_GOAL][:, 0]
    expected = exact.phase1["pi_h"][s0, 0][goals].float()
    assert torch.allclose(first[keys.HUMAN_PROBS][:, 0], expected)


def test_deterministic_policies_take_the_most_likely_actions(corridor) -> None:
    world, _, exact = corridor
    env = WorldEnv(world, batch_size=(3,), seed=1)
    td = env.reset()
    joint_policy(exact, env.world, deterministic=True)(td)
    s0 = exact.world.initial_state
    assert (
        td[keys.ROBOT_ACTION].tolist() == [[int(exact.phase2["pi_r"][s0].argmax())]] * 3
    )
    goals = td[keys.HUMAN_GOAL][:, 0]
    best = exact.phase1["pi_h"][s0, 0][goals].argmax(-1)
    assert torch.equal(td[keys.HUMAN_ACTION][:, 0], best)


def test_goal_marginal_human_policy(corridor) -> None:
    world, _, exact = corridor
    env = WorldEnv(world, batch_size=(2,), seed=1)
    td = human_policy(exact, env.world, goal_conditioned=False)(env.reset())
    s0 = exact.world.initial_state
    pi_bar = goal_marginal_policy(exact.phase1["pi_h"][s0], exact.world.goal_weights)
    assert torch.allclose(td[keys.HUMAN_PROBS], pi_bar.float().expand(2, -1, -1))


def test_power_reward_return_is_v_r(corridor) -> None:
    """Mean discounted robot return of 512 episodes under the exact policies (the
    humans playing their goal-marginal policies, as eq. 4 assumes) is V_r(s0)
    within 4 standard errors."""
    world, theory, exact = corridor
    env = TransformedEnv(
        WorldEnv(world, batch_size=(512,), seed=3), PowerReward(exact, theory)
    )
    policy = joint_policy(exact, env.base_env.world, goal_conditioned=False)
    torch.manual_seed(4)
    rollout = env.rollout(1000, policy)
    assert rollout["next", keys.DONE][:, -1].all()
    reward = rollout["next", keys.ROBOT_REWARD][..., 0, 0].double()
    steps = reward.shape[1]
    returns = (reward * theory.gamma_r ** torch.arange(steps)).sum(1)
    v_r = float(exact.phase2["v_r"][exact.world.initial_state])
    error = float(returns.std()) / 512**0.5
    assert abs(float(returns.mean()) - v_r) < 4 * error
    first = exact.phase2["u_r"][exact.world.initial_state]
    assert torch.allclose(reward[:, 0], first.expand(512))


def test_a_collector_runs_with_the_exported_policy(corridor) -> None:
    world, theory, exact = corridor
    policy = joint_policy(exact, WorldEnv(world).world)
    collector = Collector(
        lambda: TransformedEnv(
            WorldEnv(build_world("corridor"), batch_size=(4,), seed=5),
            PowerReward(exact, theory),
        ),
        policy,
        frames_per_batch=32,
        total_frames=64,
        auto_register_policy_transforms=False,
    )
    batches = list(collector)
    collector.shutdown()
    assert len(batches) == 2
    batch = batches[0].reshape(-1)
    ids = exact.state_ids(batch[keys.STATE])
    assert torch.allclose(batch[keys.ROBOT_PROBS], exact.phase2["pi_r"][ids].float())
    u_r = exact.phase2["u_r"][ids].float()
    reward = batch["next", keys.ROBOT_REWARD][:, 0, 0]
    ends = batch["next", keys.TERMINATED][:, 0]
    expected = u_r + ends * theory.gamma_r * theory.terminal_v_r
    assert torch.allclose(reward, expected)


def test_parallel_env_with_two_workers(corridor) -> None:
    _, _, exact = corridor
    env = ParallelEnv(2, _corridor_env, mp_start_method="fork")
    try:
        policy = joint_policy(exact, _corridor_env().world, deterministic=True)
        rollout = env.rollout(3, policy)
    finally:
        env.close()
    assert rollout.batch_size == (2, 3)
    assert torch.equal(rollout[keys.STATE][0], rollout[keys.STATE][1])
    best = int(exact.phase2["pi_r"][exact.world.initial_state].argmax())
    assert rollout[keys.ROBOT_ACTION][:, 0, 0].tolist() == [best, best]


def test_a_learned_solution_exports_the_same_policies() -> None:
    """A lookup-table learned solution of the commitment paradigm acts through the
    same modules: first-step robot frequencies match its own π_r(s0)."""
    table = {
        "state_encoding": "table",
        "learning_rate": 0.5,
        "batch_size": 64,
        "num_frames": 600,
        "frames_per_batch": 100,
        "updates_per_batch": 10,
        "num_envs": 10,
        "uniform_state_fraction": 1.0,
    }
    params = Parameters(
        world="commitment",
        solver="learned",
        theory={"beta_h": 5.0, "gamma_h": 0.95, "gamma_r": 0.95},
        seed=1,
        phase1=table,
        phase2={**table, "beta_r_start": 0.5, "beta_r_steps": 200},
    )
    world = build_world("commitment")
    learned = train(world, params, progress=False)
    env = TransformedEnv(
        WorldEnv(world, batch_size=(512,), seed=6), PowerReward(learned, params.theory)
    )
    torch.manual_seed(7)
    rollout = env.rollout(10, joint_policy(learned, env.base_env.world))
    tables = learned.tabulate()
    s0 = tables.world.initial_state
    pi_r = tables.phase2["pi_r"][s0]
    stat, df = _chi2(rollout[keys.ROBOT_ACTION][:, 0, 0], pi_r)
    assert df >= 1 and stat < CHI2[df]
    reward = rollout["next", keys.ROBOT_REWARD][:, 0, 0, 0]
    assert torch.allclose(reward, tables.phase2["u_r"][s0].float().expand(512))
    robot = robot_policy(learned, env.base_env.world, deterministic=True)
    td = robot(env.reset())
    assert td[keys.ROBOT_JOINT_ACTION].tolist() == [int(pi_r.argmax())] * 512
