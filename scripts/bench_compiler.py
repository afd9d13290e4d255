"""Benchmark of the generic batched compiler :func:`empo.worlds.compiler.compile_world`.

Compiles three worlds and prints a markdown table: states, joint actions, wall-clock
seconds (best of ``--repeats``), states per second, (state, joint action) pairs per
second, and the seconds spent inside the model's own ``transitions`` (so that the
compiler's share is the difference); then the same for the layered enumeration
(:func:`empo.worlds.layers.enumerate_layers`: packed keys, distinct action effects,
the previous layer's successors reused for repeated configurations, no tables), the
same without that reuse (every state expanded), and for
:func:`empo.worlds.compiler.compile_layers` (tables built from the enumerated
layers):

* ``key_door``: the built-in MultiGrid world (49 joint actions);
* ``transport``: the small ferry world with 3 humans, 2 seats and horizon 12;
* ``random``: a random layered tabular world (:func:`random_layered_world`) served
  back as a world model whose transitions are table look-ups, which measures the
  compiler alone.

Runs with one torch thread by default (``--threads 0`` keeps torch's default).

Example::

    python scripts/bench_compiler.py --repeats 3
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Callable

import torch
from torch import Tensor

from empo.worlds.compiler import compile_layers, compile_world
from empo.worlds.layers import enumerate_layers
from empo.worlds.random_world import random_layered_world
from empo.worlds.table_model import TableModel


class TimedModel:
    """Wraps a world model and adds up the seconds spent in ``transitions``."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.seconds = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def transitions(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """The wrapped model's transitions, timed."""
        started = time.perf_counter()
        result = self.model.transitions(states, actions)
        self.seconds += time.perf_counter() - started
        return result


def _key_door() -> object:
    from empo.worlds.multigrid.builtin import key_door

    return key_door()


def _transport() -> object:
    from empo.worlds.transport.builtin import small

    return small(n_humans=3, capacity=2, horizon=12)


def _random() -> object:
    world = random_layered_world(
        100_000, num_actions=[5, 5], num_layers=20, max_outcomes=3, seed=0
    )
    return TableModel(world)


WORLDS: dict[str, Callable[[], object]] = {
    "key_door": _key_door,
    "transport": _transport,
    "random": _random,
}


def main() -> None:
    """Parse arguments, compile each world and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1 << 16)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        "| world | states | joint actions | seconds | states/s | pairs/s "
        "| transitions s | CPU s | states per CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.worlds.split(","):
        model = WORLDS[name]()
        worlds: list = []

        def compiled(timed: TimedModel) -> None:
            worlds.append(compile_world(timed, batch_size=args.batch_size))

        runs = [
            ("", compiled),
            (" (layered)", enumerate_layers),
            (
                " (layered, every state expanded)",
                partial(enumerate_layers, reuse=False),
            ),
        ]
        runs.append(
            (" (compile_layers)", lambda t: compile_layers(t, enumerate_layers(t)))
        )
        for label, run in runs:
            seconds, cpu, in_model = min(
                _timed(model, run) for _ in range(args.repeats)
            )
            world = worlds[-1]
            pairs = world.num_states * world.num_joint_actions
            print(
                f"| {name}{label} | {world.num_states} "
                f"| {world.num_joint_actions} | {seconds:.3f} "
                f"| {world.num_states / seconds:,.0f} | {pairs / seconds:,.0f} "
                f"| {in_model:.3f} | {cpu:.3f} | {world.num_states / cpu:,.0f} |",
                flush=True,
            )


def _timed(model: object, run: Callable[[TimedModel], object]) -> tuple:
    """Wall-clock seconds, process CPU seconds (one torch thread: the time on
    one core, little affected by other processes) and seconds inside
    ``transitions`` of one run."""
    timed = TimedModel(model)
    started, cpu = time.perf_counter(), time.process_time()
    run(timed)
    return (
        time.perf_counter() - started,
        time.process_time() - cpu,
        timed.seconds,
    )


if __name__ == "__main__":
    main()
