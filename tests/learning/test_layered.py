"""Fitted backward induction by layer (``phase1.schedule = "layered"``): accuracy
against the exact solver, which schedule ``"auto"`` picks, knob checks and resuming."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from empo import Parameters
from empo.analysis import compare
from empo.exact import solve
from empo.learning import train
from empo.learning.layered import profiles_enumerable, uses_layers
from empo.learning.layered_states import LayerSampler
from empo.learning.trainer import make_data
from empo.parameters.validation import ParameterError
from empo.worlds.random_world import random_layered_world
from empo.worlds.registry import build_world, compile_any

LAYERED = {
    "learning_rate": 1e-2,
    "learning_rate_decay": 0.01,
    "batch_size": 32,
    "layer_states": 64,
    "layer_updates": 300,
    "hidden_sizes": [64, 64],
}
PHASE1 = {**LAYERED, "schedule": "layered", "layer_passes": 1}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["dqn", "actor_critic"])
def test_layered_schedule_matches_exact_on_a_small_layered_world(
    variant: str, small_world: Any, learned_params: Callable[..., Parameters]
) -> None:
    world = small_world
    params = learned_params(PHASE1, {**LAYERED, "variant": variant}, seed=1)
    exact = solve(world, params.theory)
    learned = train(world, params, progress=False)
    # the last layer holds terminal states only
    assert learned.stats["phase1/grad_steps"] == 300 * 4
    errors = compare(learned.tabulate(), exact)
    assert errors["pi_h"] <= 1e-3 and errors["v_m"] <= 1e-3
    assert errors["v_e"] <= 2e-3 and errors["x_h"] <= 5e-3
    assert errors["pi_r"] <= 5e-3 and errors["v_r_rel"] <= 5e-3


def test_auto_schedule_is_layered_on_timed_worlds_with_networks_only(
    small_world: Any,
) -> None:
    corridor = make_data(compile_any(build_world("corridor")), Parameters(), "cpu")
    assert corridor.timed and corridor.num_layers is not None
    assert uses_layers(corridor, Parameters())
    for phase in ("phase1", "phase2"):
        tables = Parameters().with_overrides({f"{phase}.state_encoding": "table"})
        assert not uses_layers(corridor, tables)
    online = Parameters(phase1={"schedule": "online"})
    assert not uses_layers(corridor, online)
    # acyclic but without a time step: layered only when asked for
    acyclic = make_data(small_world, Parameters(), "cpu")
    assert acyclic.num_layers == 5 and not acyclic.timed
    assert not uses_layers(acyclic, Parameters())
    assert uses_layers(acyclic, Parameters(phase1={"schedule": "layered"}))
    # worlds reached by rows: layered where every action profile fits the targets
    rows = make_data(
        build_world("corridor"), Parameters(phase1={"world_access": "sampled"}), "cpu"
    )
    assert rows.timed and not rows.enumerated and uses_layers(rows, Parameters())
    many = make_data(build_world("transport_large"), Parameters(), "cpu")
    assert many.timed and not profiles_enumerable(many)
    assert not uses_layers(many, Parameters())
    assert uses_layers(many, Parameters(phase1={"schedule": "layered"}))
    cyclic = random_layered_world(12, num_layers=3, cyclic=True, seed=2)
    cyclic_data = make_data(cyclic, Parameters(), "cpu")
    assert cyclic_data.num_layers is None
    assert not uses_layers(cyclic_data, Parameters())


def test_layered_schedule_refuses_cyclic_worlds_and_tables(small_world: Any) -> None:
    cyclic = random_layered_world(12, num_layers=3, cyclic=True, seed=2)
    layered = Parameters(phase1={"schedule": "layered"})
    with pytest.raises(ValueError, match="phase1.schedule = 'layered'"):
        train(cyclic, layered, progress=False)
    tables = layered.with_overrides({"phase2.state_encoding": "table"})
    with pytest.raises(ValueError, match="phase2.state_encoding is 'table'"):
        train(small_world, tables, progress=False)


def test_layered_knobs_are_checked_with_the_field_name() -> None:
    with pytest.raises(ParameterError, match="phase1.schedule"):
        Parameters(phase1={"schedule": "backwards"})
    with pytest.raises(ParameterError, match="phase1.layer_states"):
        Parameters(phase1={"layer_states": 0})
    with pytest.raises(ParameterError, match="phase2.layer_updates"):
        Parameters(phase2={"layer_updates": 0})
    with pytest.raises(ParameterError, match="phase1.layer_passes"):
        Parameters(phase1={"layer_passes": 0})


def test_files_of_earlier_versions_keep_the_online_schedule() -> None:
    old = {"version": "0.2.0", "phase1": {"learning_rate": 0.01}}
    assert Parameters.from_dict(old).phase1.schedule.value == "online"
    assert Parameters.from_dict({"version": "0.1.0"}).phase1.schedule.value == (
        "online"
    )
    assert Parameters().phase1.schedule.value == "auto"


def test_files_of_earlier_versions_keep_the_smaller_fits() -> None:
    old = {"version": "0.3.0", "phase2": {"batch_size": 32, "buffer_size": 256}}
    params = Parameters.from_dict(old)
    for knobs in (params.phase1, params.phase2):
        assert (knobs.hidden_sizes, knobs.layer_updates) == ((64, 64), 1500)
    assert (params.phase1.batch_size, params.phase2.batch_size) == (64, 32)
    assert Parameters.from_dict(params.to_dict()) == params
    new = Parameters().phase2
    assert (new.hidden_sizes, new.batch_size, new.layer_updates) == (
        (128, 128),
        128,
        3000,
    )


def test_branching_sample_keeps_distinct_states_of_each_layer() -> None:
    data = make_data(compile_any(build_world("corridor")), Parameters(), "cpu")
    sampler = LayerSampler(data, 16, torch.Generator().manual_seed(0))
    layers = sampler.sample()
    assert len(layers) == data.num_layers
    for t, states in enumerate(layers):
        ids = states.get("state_id")
        assert len(ids) <= 16 and len(torch.unique(ids)) == len(ids)
        assert bool((data.layer(states) == t).all())


@pytest.mark.parametrize("variant", ["dqn", "actor_critic"])
def test_interrupted_layered_run_resumes_to_the_same_parameters(
    tmp_path,
    variant: str,
    resume_world: Any,
    learned_params: Callable[..., Parameters],
    resume_check: Callable[..., Any],
) -> None:
    knobs = {**LAYERED, "layer_states": 8, "layer_updates": 20, "batch_size": 8}
    phase1 = {**knobs, "schedule": "layered", "layer_passes": 2, "num_envs": 4}
    params = learned_params(phase1, {**knobs, "variant": variant}, seed=3)
    # interrupted in phase 1's first pass and in its second pass
    reference, resumed, _ = resume_check(resume_world, params, tmp_path, (2, 9))
    assert resumed.stats == reference.stats | {
        k: v for k, v in resumed.stats.items() if k.endswith("seconds")
    }
