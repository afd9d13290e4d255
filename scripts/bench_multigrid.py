"""Benchmark the MultiGrid world: sampled transitions per second and BFS states/s.

Usage::

    python scripts/bench_multigrid.py [--device cpu|cuda] [--threads N]
        [--batches 1 64 4096] [--seconds 2] [--world key_door]

For each batch size it measures (a) ``world.sample`` (one sampled successor per row,
the explicit model's code path) and (b) ``MultiGridEnv.step`` (the TorchRL
environment, tensordict overhead included), both on uniformly random joint actions
drawn with ``torch.randint`` (as a policy would supply them; TorchRL's
``rand_action`` alone costs more than a batch-1 step), restarting finished rows.
Then it enumerates the world with the BFS compiler and reports states per second. Rates are given per wall-clock second and per CPU second of this process
(the latter is robust to other processes sharing the machine; with ``--threads 1`` it
is what one core delivers). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from empo.worlds.compiler import compile_world
from empo.envs import keys
from empo.worlds.multigrid.env import MultiGridEnv
from empo.worlds.multigrid.world import MultiGridWorld
from empo.worlds.registry import build_world


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_sample(
    world: MultiGridWorld, batch: int, device: torch.device, seconds: float
) -> tuple[float, float]:
    """Sampled transitions of ``world.sample`` per wall-clock and per CPU second."""
    gen = torch.Generator(device=device).manual_seed(0)
    start = world.initial_states().to(device)
    states = start.expand(batch, -1).clone()
    n_agents, n_actions = len(world.agents), len(world.action_names[0])
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds or steps < 3:
        actions = torch.randint(
            0, n_actions, (batch, n_agents), device=device, generator=gen
        )
        states = world.sample(states, actions, generator=gen)
        states = torch.where(world.is_terminal(states).unsqueeze(1), start, states)
        steps += 1
    _sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return steps * batch / wall, steps * batch / cpu


def bench_env(
    world: MultiGridWorld, batch: int, device: torch.device, seconds: float
) -> tuple[float, float]:
    """Transitions of the TorchRL environment's ``step`` per wall-clock and CPU
    second."""
    env = MultiGridEnv(world, batch_size=batch, device=device, seed=0)
    td = env.reset()
    gen = torch.Generator(device=device).manual_seed(0)
    n_actions = len(world.action_names[0])
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds or steps < 3:
        for group in (keys.HUMANS, keys.ROBOTS):
            shape = td[group, keys.ACTION_MASK].shape[:-1]
            actions = torch.randint(0, n_actions, shape, device=device, generator=gen)
            td.set((group, keys.ACTION), actions)
        td = env.step_and_maybe_reset(td)[1]
        steps += 1
    _sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return steps * batch / wall, steps * batch / cpu


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 4096])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--world", default="key_door")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    world = build_world(args.world, {"device": str(device)})
    print(
        f"world {args.world}, device {device}, torch threads {torch.get_num_threads()}"
    )
    print(
        "| batch | world.sample /s (wall) | world.sample /s (CPU time) "
        "| env.step /s (wall) | env.step /s (CPU time) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for batch in args.batches:
        sample = bench_sample(world, batch, device, args.seconds)
        env = bench_env(world, batch, device, args.seconds)
        print(
            f"| {batch} | {sample[0]:,.0f} | {sample[1]:,.0f} "
            f"| {env[0]:,.0f} | {env[1]:,.0f} |"
        )
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = compile_world(world, device=device)
    _sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    joint = compiled.successors.shape[1]
    print(
        f"\nBFS: {compiled.num_states:,} states x {joint} joint actions in "
        f"{wall:.2f} s wall ({compiled.num_states / wall:,.0f} states/s), "
        f"{cpu:.2f} s CPU ({compiled.num_states / cpu:,.0f} states/CPU-s)"
    )


if __name__ == "__main__":
    main()
