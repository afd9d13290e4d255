"""Benchmark of the layered exact solver on the 3-agent key-and-door world.

For each horizon of ``key_door_2h`` (two humans and a robot, 7 actions each: 343
joint actions; ``--world`` picks another registered world), a fresh process
enumerates the states layer by layer, keeping every base's successors on disk
(:class:`~empo.worlds.transition_cache.TransitionCache`), and solves both phases
(:func:`empo.exact.layered.solve_layered`, per-state values written to ``.npy``
files in a temporary directory), under an address-space limit
(``--memory-limit-gib``). It prints a markdown table: states, layers, largest
layer, enumeration seconds, the seconds of the backward pass spent on transitions
(expansion, reading the kept successors, key look-ups) and in the phase-1 and
phase-2 kernels, states per second of each, the total (wall clock) and the
process's CPU seconds (start-up included), the peak resident memory,
what the in-memory solver would need
(:func:`~empo.worlds.budget.in_memory_bytes_per_state`) and the load average.

``--research DIR`` also times the public research code (mensch72/empo, a checkout
in ``DIR`` run with ``--research-python``) on its ``key_bearer`` world for the
``--research-steps`` horizons, next to ours on the same YAML file, and prints the
ratio of the seconds per state. That needs the research code's dependencies and is
not part of the test suite.

Runs with one torch thread (``--threads``); ``--log`` shows each layer. Example::

    python scripts/bench_layered.py --horizons 8,11,14 --size 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

_CHILD = """
import json, logging, resource, sys, tempfile, time
limit = int(float(sys.argv[1]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
if sys.argv[6] == "1":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
import torch
torch.set_num_threads(int(sys.argv[5]))
from empo.exact.layered import solve_layered
from empo.worlds.transition_cache import TransitionCache
from empo.utils.memory import peak_rss_gib
from empo.worlds.budget import in_memory_bytes_per_state
from empo.worlds.layers import enumerate_layers, world_size
from empo.worlds.registry import build_world
world = build_world(sys.argv[2], json.loads(sys.argv[3]))
dtype = getattr(torch, sys.argv[4])
started = time.perf_counter()
with tempfile.TemporaryDirectory() as directory:
    cache = TransitionCache(directory + "/transitions")
    layers = enumerate_layers(world, cache=cache)
    solution = solve_layered(world, layers=layers, dtype=dtype, directory=directory)
seconds = dict(solution.seconds)
seconds["total"] = time.perf_counter() - started
seconds["cpu"] = time.process_time()
size = world_size(world, layers.max_outcomes, dtype.itemsize)
in_memory = layers.num_states * in_memory_bytes_per_state(size) / 2**30
print(json.dumps(dict(in_memory_gib=in_memory,
    states=layers.num_states, layers=len(layers.keys), largest=max(layers.sizes),
    seconds=seconds, peak_rss_gib=peak_rss_gib(),
)))
"""


def _load() -> str:
    """The 1-minute load average (``uptime``)."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def _ours(
    name: str, options: dict, limit: float, dtype: str, threads: int = 1, log=False
) -> dict:
    """Run one solve in a fresh process and return its measurements (its log,
    with ``log``, goes to our standard error)."""
    command = [sys.executable, "-c", _CHILD, str(limit), name, json.dumps(options)]
    done = subprocess.run(
        command + [dtype, str(threads), "1" if log else "0"],
        stdout=subprocess.PIPE,
        stderr=None if log else subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} {options} failed: {(done.stderr or '')[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _layered_table(args: argparse.Namespace) -> None:
    print(
        "| horizon | states | layers | largest layer | enumeration s | transitions s "
        "| phase 1 s | phase 2 s | total s | CPU s | enumeration states/s "
        "| phase 1 states/s | phase 2 states/s | peak RSS GiB "
        "| in-memory estimate GiB | load |"
    )
    print("|" + "---:|" * 16)
    for horizon in [int(h) for h in args.horizons.split(",")]:
        options = {"max_steps": horizon}
        if args.world == "key_door_2h":
            options["size"] = args.size
        result = _ours(
            args.world,
            options,
            args.memory_limit_gib,
            args.dtype,
            args.threads,
            args.log,
        )
        s, n = result["seconds"], result["states"]
        print(
            f"| {horizon} | {n:,} | {result['layers']} | {result['largest']:,} "
            f"| {s['enumeration']:.1f} | {s['transitions']:.1f} | {s['phase1']:.1f} "
            f"| {s['phase2']:.1f} | {s['total']:.1f} | {s['cpu']:.1f} "
            f"| {n / s['enumeration']:,.0f} | {n / s['phase1']:,.0f} "
            f"| {n / s['phase2']:,.0f} | {result['peak_rss_gib']:.2f} "
            f"| {result['in_memory_gib']:.1f} | {_load()} |",
            flush=True,
        )


def _research(directory: Path, python: str, steps: int, out: Path) -> tuple:
    """Seconds of both phases and the state count of the research code."""
    script = "examples/phase2/phase2_backward_induction.py"
    command = [python, script, "--world", "copilot_challenges/key_bearer"]
    command += ["--steps", str(steps), "--rollouts", "0", "-o", str(out)]
    environment = dict(os.environ, PYTHONPATH="src:vendor/multigrid")
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, env=environment
    )
    wall = time.perf_counter() - started
    text = done.stdout.replace("\r", "\n")
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    phases = [float(x) for x in re.findall(r"computed in ([0-9.]+) seconds", text)]
    states = int(re.findall(r"States: ([0-9,]+)", text)[0].replace(",", ""))
    return states, sum(phases), wall


def _research_table(args: argparse.Namespace) -> None:
    yaml = Path(args.research) / "multigrid_worlds/copilot_challenges/key_bearer.yaml"
    print(
        "\n| key_bearer steps | research states | research s (phases 1+2) "
        "| research ms/state | our states | our s (enumeration + both phases) "
        "| our ms/state | ratio | load |"
    )
    print("|" + "---:|" * 9)
    for steps in [int(h) for h in args.research_steps.split(",")]:
        with tempfile.TemporaryDirectory() as out:
            states, seconds, _ = _research(
                Path(args.research), args.research_python, steps, Path(out)
            )
        options = {"path": str(yaml), "max_steps": steps}
        ours = _ours("multigrid", options, args.memory_limit_gib, args.dtype)
        theirs = seconds / states * 1e3
        mine = ours["seconds"]["total"] / ours["states"] * 1e3
        print(
            f"| {steps} | {states:,} | {seconds:.1f} | {theirs:.2f} "
            f"| {ours['states']:,} | {ours['seconds']['total']:.2f} | {mine:.4f} "
            f"| {theirs / mine:,.0f} | {_load()} |",
            flush=True,
        )


def main() -> None:
    """Parse arguments and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--horizons", default="6,8,10")
    parser.add_argument("--world", default="key_door_2h")
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--memory-limit-gib", type=float, default=12.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--log", action="store_true", help="per-layer progress on standard error"
    )
    parser.add_argument("--research", default=None)
    parser.add_argument("--research-python", default=sys.executable)
    parser.add_argument("--research-steps", default="3,4")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average at start: {_load()}\n")
    if args.horizons:
        _layered_table(args)
    if args.research:
        _research_table(args)


if __name__ == "__main__":
    main()
