"""Baseline: stock TorchRL PPO trains a robot on the power reward U_r (eq. 8).

The robot acts in the world's TorchRL environment (:class:`empo.envs.world_env.
WorldEnv`) with the robot reward of :class:`empo.envs.power_reward.PowerReward`,
computed from the exact solution's ``X_h``; the humans play their exact goal-marginal
policies ``π̄_h`` (the humans of eq. 4), fixed. Under this reward and discount
``γ_r`` the PPO robot's expected return is ``V_r(s_0)`` of its own policy (eq. 9), so
PPO maximises the same objective that the exact robot soft-maximises by eq. (5).

Training is plain TorchRL: a ``Collector``, ``GAE`` and ``ClipPPOLoss`` with the
multi-agent keys of the environment (``("robots", ...)``). Afterwards the PPO robot's
policy is evaluated exactly (:func:`empo.analysis.compare_robots`): its ``V_r(s_0)``
and the humans' expected power ``W_h`` over time, next to the exact robot's and a
uniformly random robot's.

Example (see docs/environments.md for the figures)::

    python scripts/baseline_ppo.py --world corridor --frames 60000
"""

from __future__ import annotations

import argparse
import time

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import Tensor, nn
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer, SamplerWithoutReplacement
from torchrl.envs import TransformedEnv
from torchrl.modules import MLP, MaskedCategorical, ProbabilisticActor
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from empo.analysis import compare_robots
from empo.envs import keys
from empo.envs.policies import human_policy
from empo.envs.power_reward import PowerReward
from empo.envs.world_env import WorldEnv
from empo.exact import ExactSolution, solve
from empo.parameters import TheoryParameters
from empo.worlds.registry import build_world, compile_any
from empo.worlds.rows import compiled_rows

LOGITS = (keys.ROBOTS, "logits")
VALUE = (keys.ROBOTS, "state_value")
LOG_PROB = (keys.ROBOTS, "action_log_prob")


class OneHotRows(nn.Module):
    """One-hot code of every column of a state row (value ranges of the compiled
    states), concatenated."""

    def __init__(self, table: Tensor):
        super().__init__()
        low, high = table.amin(0), table.amax(0)
        sizes = high - low + 1
        self.register_buffer("low", low)
        self.register_buffer("offset", torch.cumsum(sizes, 0) - sizes)
        self.width = int(sizes.sum())

    def forward(self, states: Tensor) -> Tensor:
        """``[*batch, width]`` float features."""
        index = (states - self.low + self.offset)[..., None]
        every = torch.arange(self.width, device=states.device)
        return (index == every).any(-2).float()


class PerRobot(nn.Module):
    """A network on state features whose output sits on the single robot."""

    def __init__(self, encoder: OneHotRows, out: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.mlp = MLP(
            in_features=encoder.width,
            out_features=out,
            num_cells=[hidden, hidden],
            activation_class=nn.Tanh,
        )

    def forward(self, states: Tensor) -> Tensor:
        """``[*batch, 1, out]``."""
        return self.mlp(self.encoder(states)).unsqueeze(-2)


def build_actor_critic(
    exact: ExactSolution, hidden: int
) -> tuple[ProbabilisticActor, TensorDictModule]:
    """The robot's actor (masked categorical over its actions) and critic."""
    encoder = OneHotRows(compiled_rows(exact.world))
    actions = exact.phase2["pi_r"].shape[1]
    actor = ProbabilisticActor(
        TensorDictModule(
            PerRobot(encoder, actions, hidden),
            in_keys=[keys.STATE],
            out_keys=[LOGITS],
        ),
        in_keys={"logits": LOGITS, "mask": keys.ROBOT_MASK},
        out_keys=[keys.ROBOT_ACTION],
        distribution_class=MaskedCategorical,
        return_log_prob=True,
        log_prob_key=LOG_PROB,
    )
    critic = TensorDictModule(
        PerRobot(encoder, 1, hidden), in_keys=[keys.STATE], out_keys=[VALUE]
    )
    return actor, critic


def actor_probs(actor: ProbabilisticActor, world: WorldEnv):
    """``π_r`` of the actor on state rows (for exact policy evaluation)."""
    net = actor.module[0].module

    @torch.no_grad()
    def probs(rows: Tensor) -> Tensor:
        logits = net(rows)[:, 0].double()
        mask = world.world.action_mask(rows)[:, list(world.world.robots)][:, 0]
        mask = mask[:, : logits.shape[-1]]
        return torch.softmax(logits.masked_fill(~mask, -torch.inf), -1)

    return probs


def train(args: argparse.Namespace, exact: ExactSolution) -> ProbabilisticActor:
    """PPO on the power reward; returns the trained actor."""
    theory = exact.theory
    world = build_world(args.world)

    def make_env() -> TransformedEnv:
        base = WorldEnv(world, batch_size=(args.envs,), seed=args.seed)
        return TransformedEnv(base, PowerReward(exact, theory))

    probe = make_env()
    if probe.base_env.num_robots != 1:
        raise ValueError("this baseline trains a single robot")
    actor, critic = build_actor_critic(exact, args.hidden)
    humans = human_policy(exact, probe.base_env.world, goal_conditioned=False)
    collector = Collector(
        make_env,
        TensorDictSequential(humans, actor),
        frames_per_batch=args.frames_per_batch,
        total_frames=args.frames,
        auto_register_policy_transforms=False,
    )
    advantage = GAE(
        gamma=theory.gamma_r, lmbda=0.95, value_network=critic, average_gae=True
    )
    robot_keys = {
        "value": VALUE,
        "reward": keys.ROBOT_REWARD,
        "done": (keys.ROBOTS, keys.DONE),
        "terminated": (keys.ROBOTS, keys.TERMINATED),
        "advantage": (keys.ROBOTS, "advantage"),
        "value_target": (keys.ROBOTS, "value_target"),
    }
    advantage.set_keys(**robot_keys)
    loss = ClipPPOLoss(
        actor,
        critic,
        clip_epsilon=0.2,
        entropy_coeff=args.entropy,
        normalize_advantage=False,
    )
    loss.set_keys(action=keys.ROBOT_ACTION, sample_log_prob=LOG_PROB, **robot_keys)
    optimiser = torch.optim.Adam(loss.parameters(), lr=args.lr)
    buffer = ReplayBuffer(
        storage=LazyTensorStorage(args.frames_per_batch),
        sampler=SamplerWithoutReplacement(),
        batch_size=args.minibatch,
    )
    start = time.perf_counter()
    for i, batch in enumerate(collector):
        with torch.no_grad():
            advantage(batch)
        buffer.extend(batch.reshape(-1))
        for _ in range(args.epochs):
            for _ in range(args.frames_per_batch // args.minibatch):
                terms = loss(buffer.sample())
                total = terms["loss_objective"] + terms["loss_critic"]
                total = total + terms["loss_entropy"]
                optimiser.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optimiser.step()
        reward = batch["next", keys.ROBOT_REWARD].mean()
        print(
            f"batch {i + 1:3d}  frames {(i + 1) * args.frames_per_batch:7d}  "
            f"mean robot reward {float(reward):9.4f}  "
            f"{time.perf_counter() - start:6.1f} s"
        )
    collector.shutdown()
    return actor


def main() -> None:
    """Train, then print the exact evaluation of the PPO robot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", default="corridor", choices=["corridor", "key_door"])
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--frames-per-batch", type=int, default=2_000)
    parser.add_argument("--envs", type=int, default=50)
    parser.add_argument("--minibatch", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--entropy", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--beta-r", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    theory = TheoryParameters()
    if args.beta_r is not None:
        theory = TheoryParameters(beta_r=args.beta_r)
    start = time.perf_counter()
    exact = solve(compile_any(build_world(args.world)), theory)
    print(
        f"{args.world}: {exact.world.num_states} states, exact solution in "
        f"{time.perf_counter() - start:.1f} s (beta_r = {theory.beta_r})"
    )
    actor = train(args, exact)
    env = WorldEnv(build_world(args.world))
    world = exact.world
    uniform = world.action_mask[:, world.robots[0], : exact.phase2["pi_r"].shape[1]]
    uniform = uniform.double() / uniform.sum(-1, keepdim=True).clamp_min(1)
    robots = {
        "exact (eq. 5)": exact,
        "PPO": actor_probs(actor, env),
        "uniform": lambda rows: uniform[exact.state_ids(rows)],
    }
    summaries = {
        name: compare_robots(exact, robot).summary(exact)
        for name, robot in robots.items()
    }
    human = world.agents[world.humans[0]]
    peak = summaries["exact (eq. 5)"]["peak"][human]["step"]
    print()
    print(
        f"| robot | V_r(s0) | expected W_h [bits] at step {peak} "
        "(exact robot's peak) | mean expected W_h over the episode |"
    )
    print("|---|---:|---:|---:|")
    for name, summary in summaries.items():
        curve = torch.tensor(
            [float(v) for v in summary["w_h_expected"][human]["robot"]]
        )
        mean = float(curve[~torch.isnan(curve)].mean())
        print(
            f"| {name} | {summary['v_r_s0']['robot']:.4f} | "
            f"{float(curve[peak]):.4f} | {mean:.4f} |"
        )


if __name__ == "__main__":
    main()
