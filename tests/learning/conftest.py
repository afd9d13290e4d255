"""Shared set-up of the learning tests: one torch thread, the small worlds and
parameters they train on, and the check that an interrupted run resumes exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from empo import Parameters
from empo.learning import LearnedSolution, train
from empo.learning.checkpoint import CHECKPOINT_NAME
from empo.worlds.random_world import random_layered_world

THEORY = {"beta_h": 5.0, "gamma_h": 0.95, "gamma_r": 0.95}
"""Theory of the tests' learned runs (:func:`learned_params`)."""

LearnedParams = Callable[..., Parameters]
ResumeCheck = Callable[..., tuple[LearnedSolution, LearnedSolution, list[int]]]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_world() -> Any:
    """The 30-state random layered world (5 layers, 3 actions, 3 goals) on which
    the learned schedules are checked against the exact solver."""
    return random_layered_world(
        30, num_actions=3, num_goals=3, num_layers=5, rest_action=True, seed=3
    )


@pytest.fixture
def resume_world() -> Any:
    """The 16-state random layered world of the resume tests."""
    return random_layered_world(16, num_actions=2, num_goals=2, num_layers=4, seed=5)


def _learned_params(
    phase1: dict[str, Any], phase2: dict[str, Any], **extra: Any
) -> Parameters:
    return Parameters(
        world="commitment",
        solver="learned",
        theory=THEORY,
        phase1=phase1,
        phase2=phase2,
        **extra,
    )


@pytest.fixture
def learned_params() -> LearnedParams:
    """``(phase1, phase2, **extra) -> Parameters`` of a learned run with
    :data:`THEORY` (the world is the one handed to ``train``)."""
    return _learned_params


def _resume_check(
    world: Any, params: Parameters, tmp_path: Path, interrupt_at: tuple[int, ...]
) -> tuple[LearnedSolution, LearnedSolution, list[int]]:
    reference = train(world, params, progress=False, run_dir=tmp_path / "a")

    class Interrupt(Exception):
        pass

    calls: list[int] = []

    def interrupting(metrics: dict[str, float], step: int) -> None:
        calls.append(step)
        if len(calls) in interrupt_at:
            raise Interrupt

    run_dir = tmp_path / "b"
    for _ in interrupt_at:
        with pytest.raises(Interrupt):
            train(world, params, progress=False, logger=interrupting, run_dir=run_dir)
    # the checkpoint holds tensors, numbers, strings and dicts only
    torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)
    resumed = train(world, params, progress=False, logger=interrupting, run_dir=run_dir)
    for key in ("phase1", "phase2"):
        ref = reference.networks[key].state_dict()
        got = resumed.networks[key].state_dict()
        assert ref.keys() == got.keys()
        for name in ref:
            assert torch.equal(ref[name], got[name]), f"{key}.{name} differs"
    return reference, resumed, calls


@pytest.fixture
def resume_check() -> ResumeCheck:
    """``(world, params, tmp_path, interrupt_at) -> (reference, resumed, calls)``:
    train once to the end, then train with a logger that interrupts the run at its
    ``interrupt_at``-th calls (one interruption per entry, each resumed from the
    checkpoint in ``tmp_path / "b"``), and assert that the resumed run ends with the
    reference's network parameters. ``calls`` are the logged steps."""
    return _resume_check
