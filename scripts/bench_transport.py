"""Transport world benchmark and demo.

Measures compiling and exactly solving the small built-in world (one and two
humans), the sampling throughput of the batched environment and of the graph
encoder on the large world, and optionally writes a GIF of the small world's most
likely exact rollout (``--gif docs/transport_small.gif``).

Usage::

    python scripts/bench_transport.py [--batch 1024] [--steps 24] [--gif PATH]
"""

from __future__ import annotations

import argparse
import time

import torch

from empo.exact.solve import solve
from empo.parameters.theory import TheoryParameters
from empo.worlds.transport.builtin import large, small
from empo.worlds.transport.encoder import TransportGraphEncoder
from empo.envs import keys
from empo.worlds.transport.env import TransportEnv


def most_likely_path(solution) -> list[int]:
    """State ids along the most likely joint action and outcome from the start."""
    compiled = solution.world
    joint = solution.joint_policy()
    path = [compiled.initial_state]
    while not bool(compiled.terminal[path[-1]]):
        s = path[-1]
        j = int(joint[s].argmax())
        path.append(
            int(compiled.successors[s, j, compiled.probabilities[s, j].argmax()])
        )
    return path


def bench_exact(gif: str | None) -> None:
    """Compile and solve the small world; report powers; write the GIF."""
    theory = TheoryParameters()
    for label, options in (
        ("1 human, 1 seat", {}),
        ("1 human, no seat", {"capacity": 0}),
        ("2 humans, 1 seat", {"n_humans": 2}),
        ("2 humans, 2 seats", {"n_humans": 2, "capacity": 2}),
    ):
        world = small(**options)
        start = time.perf_counter()
        solution = solve(world, theory)
        seconds = time.perf_counter() - start
        s0 = world.initial_states()[0]
        powers = [solution.power_bits(s0, h) for h in range(world.n_humans)]
        print(
            f"small ({label}): {solution.world.num_states} states, "
            f"compile+solve {seconds:.2f} s, W_h(s0) = "
            + ", ".join(f"{w:.4f}" for w in powers)
            + f", pi_r(s0) = {solution.robot_policy(s0)}"
        )
        if options:
            continue
        path = most_likely_path(solution)
        table = solution.world.state_table
        titles = []
        for s in path:
            state = table[s]
            power = solution.power_bits(state, 0)
            print(f"  {world.describe(state)}  W_h = {power:.4f}")
            end = bool(solution.world.terminal[s])
            titles.append(
                f"t = {int(state[0])}   "
                + ("(horizon)" if end else f"W_h = {power:.3f} bits")
            )
        if gif:
            world.save_gif([table[s] for s in path], gif, fps=1.0, titles=titles)
            print(f"  wrote {gif}")


def bench_sampling(batch: int, steps: int) -> None:
    """Environment steps and encoder passes per second on the large world."""
    world = large()
    env = TransportEnv(world, batch_size=(batch,), seed=0)
    generator = torch.Generator().manual_seed(0)
    td = env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        for group in (keys.HUMANS, keys.ROBOTS):
            mask = td[group, keys.ACTION_MASK]
            draw = torch.multinomial(
                mask.flatten(0, 1).double(), 1, generator=generator
            )
            td[group, keys.ACTION] = draw.reshape(mask.shape[:-1])
        td = env.step_and_maybe_reset(td)[1]
    seconds = time.perf_counter() - start
    print(
        f"large env: batch {batch} x {steps} steps in {seconds:.2f} s = "
        f"{batch * steps / seconds:,.0f} transitions/s"
    )
    encoder = TransportGraphEncoder(world, hidden=64, layers=3)
    states = td["state"]
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(10):
            encoder(states)
        seconds = (time.perf_counter() - start) / 10
    print(f"large encoder: {batch / seconds:,.0f} states/s (hidden 64, 3 layers)")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--gif", default=None, help="write the small world's GIF")
    args = parser.parse_args()
    bench_exact(args.gif)
    bench_sampling(args.batch, args.steps)


if __name__ == "__main__":
    main()
