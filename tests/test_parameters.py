"""The Parameters tree: validation, messages, round trips, overrides, migrations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import empo
from empo import Parameters, SolverKind
from empo.parameters import (
    DEFAULT_WORLD,
    ParameterError,
    Phase1Parameters,
    TheoryParameters,
    migration,
)
from empo.parameters.migrations import MIGRATIONS, migrate
from empo.worlds.registry import WorldName


def test_defaults_follow_the_paper() -> None:
    p = Parameters()
    assert p.world.name is DEFAULT_WORLD
    assert p.solver is SolverKind.EXACT
    assert (p.theory.zeta, p.theory.xi, p.theory.eta, p.theory.beta_r) == (
        2.0,
        1.0,
        1.1,
        5.0,
    )
    assert p.theory.gamma_h == p.theory.gamma_r == 0.99
    assert p.seed == 0


def test_nested_dicts_and_strings_are_accepted() -> None:
    p = Parameters(world="key_door", solver="both", theory={"beta_r": 10})
    assert p.world.name is WorldName.KEY_DOOR
    assert p.world.options == {}
    assert p.solver is SolverKind.BOTH
    assert p.theory == TheoryParameters(beta_r=10.0)
    assert isinstance(p.theory.beta_r, float)
    same = Parameters(world={"name": "key_door"}, solver=SolverKind.BOTH)
    assert same.world == p.world


def test_theory_keyword_constructor_still_works() -> None:
    t = TheoryParameters(beta_h=math.inf, gamma_r=0.9, others="habitual")
    assert t.beta_h == math.inf and t.others.value == "habitual"
    with pytest.raises(ValueError, match=r"theory\.eta = 0\.5"):
        TheoryParameters(eta=0.5)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"theory": {"zeta": 0}}, ["theory.zeta", "0", "0 < ζ < inf"]),
        ({"theory": {"xi": -1}}, ["theory.xi", "-1", "0 < ξ < inf"]),
        ({"theory": {"eta": 0.9}}, ["theory.eta", "0.9", "1 ≤ η < inf"]),
        ({"theory": {"beta_r": -1}}, ["theory.beta_r", "β_r ≥ 0 or inf"]),
        ({"theory": {"gamma_h": 1.5}}, ["theory.gamma_h", "1.5", "0 ≤ γ_h ≤ 1"]),
        ({"theory": {"nu_h": 2}}, ["theory.nu_h", "0 ≤ ν_h ≤ 1"]),
        ({"theory": {"terminal_v_r": 0}}, ["theory.terminal_v_r", "< 0"]),
        ({"theory": {"zeta": "big"}}, ["theory.zeta", "'big'", "number"]),
        ({"theory": {"beta_h": float("nan")}}, ["theory.beta_h", "nan"]),
        ({"theory": {"others": "nobody"}}, ["theory.others", "uniform", "habitual"]),
        ({"solver": "magic"}, ["solver", "'magic'", "exact", "learned", "both"]),
        ({"world": "comitment"}, ["world.name", "did you mean 'commitment'"]),
        ({"phase1": {"batch_size": 0}}, ["phase1.batch_size", "≥ 1"]),
        ({"phase1": {"batch_size": 2.5}}, ["phase1.batch_size", "integer"]),
        ({"phase1": {"expected_targets": "yes"}}, ["phase1.expected_targets"]),
        ({"phase2": {"variant": "ppo"}}, ["phase2.variant", "dqn", "actor_critic"]),
        ({"phase2": {"buffer_size": 8, "batch_size": 16}}, ["phase2.buffer_size"]),
        ({"exact": {"dtype": "float16"}}, ["exact.dtype", "float64", "float32"]),
        ({"evaluation": {"horizon": 0}}, ["evaluation.horizon", "≥ 1"]),
        ({"seed": -3}, ["seed", "-3", "0 ≤ seed"]),
        ({"seed": True}, ["seed", "integer"]),
        ({"world": {"options": {"x": math.inf}}}, ["world.options", "finite"]),
    ],
)
def test_validation_messages_name_field_value_and_range(
    kwargs: dict, fragments: list[str]
) -> None:
    with pytest.raises(ParameterError) as info:
        Parameters(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_keys_name_the_closest_valid_keys() -> None:
    with pytest.raises(ParameterError, match=r"theory\.bta_r.*did you mean 'beta_r'"):
        Parameters(theory={"bta_r": 1})
    with pytest.raises(ParameterError, match=r"unknown parameter thoery.*'theory'"):
        Parameters.from_dict({"thoery": {}})
    with pytest.raises(ParameterError, match=r"did you mean 'theory\.gamma_h'"):
        Parameters().with_overrides({"theory.gama_h": 0.5})
    with pytest.raises(ParameterError, match=r"did you mean 'seed'"):
        Parameters().get("sed")


def test_infinite_rationalities_round_trip_through_files(tmp_path: Path) -> None:
    p = Parameters(theory={"beta_h": "inf", "beta_r": math.inf})
    assert p.theory.beta_h == math.inf
    assert p.to_dict()["theory"]["beta_h"] == "inf"
    json.dumps(p.to_dict(), allow_nan=False)
    for name in ("p.yaml", "p.yml", "p.json"):
        assert Parameters.load(p.save(tmp_path / name)) == p
    (tmp_path / "hand.yaml").write_text("theory:\n  beta_r: .inf\n")
    assert Parameters.load(tmp_path / "hand.yaml").theory.beta_r == math.inf


def test_with_overrides_returns_a_new_validated_object() -> None:
    p = Parameters()
    q = p.with_overrides(
        {"theory.beta_r": 5, "seed": 3, "world": "rock", "exact.dtype": "float32"}
    )
    assert (q.theory.beta_r, q.seed, q.world.name, q.exact.dtype.value) == (
        5.0,
        3,
        WorldName.ROCK,
        "float32",
    )
    assert p == Parameters()
    r = q.with_overrides(
        {"world.options.max_steps": 4, "world.options.possible_goals": [[1, 1]]}
    )
    assert r.get("world.options") == {"max_steps": 4, "possible_goals": [[1, 1]]}
    assert r.get("world.options.max_steps") == 4
    assert r.get("theory.beta_r") == 5.0
    with pytest.raises(ParameterError, match=r"theory\.zeta = -1"):
        p.with_overrides({"theory.zeta": -1})
    with pytest.raises(ParameterError, match="unknown parameter world.options.nope"):
        r.get("world.options.nope")


def test_load_reports_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="nothere.yaml does not exist"):
        Parameters.load(tmp_path / "nothere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("theory: [beta_r: 1\n")
    with pytest.raises(ParameterError, match="bad.yaml is malformed"):
        Parameters.load(bad)
    broken_json = tmp_path / "bad.json"
    broken_json.write_text('{"seed": 1,}')
    with pytest.raises(ParameterError, match="bad.json is malformed"):
        Parameters.load(broken_json)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("theory:\n  zeta: -2\n")
    with pytest.raises(ParameterError, match=r"wrong.yaml: theory\.zeta = -2"):
        Parameters.load(wrong)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ParameterError, match="list.yaml: parameters must be"):
        Parameters.load(listed)
    with pytest.raises(ParameterError, match="allowed: .yaml, .yml, .json"):
        Parameters().save(tmp_path / "p.txt")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert Parameters.load(empty) == Parameters()


def test_migration_upgrades_an_old_version_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("empo.parameters.migrations.MIGRATIONS", dict(MIGRATIONS))

    @migration("0.0.9")
    def rename_beta(data: dict) -> dict:
        theory = dict(data.get("theory", {}))
        if "robot_rationality" in theory:
            theory["beta_r"] = theory.pop("robot_rationality")
        return {**data, "theory": theory}

    old = tmp_path / "old.yaml"
    old.write_text("version: 0.0.3\ntheory:\n  robot_rationality: 7\nseed: 2\n")
    p = Parameters.load(old)
    assert (p.theory.beta_r, p.seed) == (7.0, 2)
    # a file of the current version is not migrated again
    current = {"version": empo.__version__, "theory": {"robot_rationality": 7}}
    with pytest.raises(ParameterError, match="robot_rationality"):
        Parameters.from_dict(current)
    with pytest.raises(ParameterError, match="newer than this empo"):
        migrate({"version": "99.0.0"}, empo.__version__)
    with pytest.raises(ParameterError, match="not a version"):
        migrate({"version": "latest"}, empo.__version__)


def test_no_machine_state_in_parameters() -> None:
    keys = json.dumps(Parameters().to_dict())
    for forbidden in ("device", "cuda", "output_dir", "wandb", "progress", "/"):
        assert forbidden not in keys


_unit = st.floats(0, 1, allow_nan=False)
_positive = st.floats(1e-6, 1e6, allow_nan=False)
_beta = st.one_of(st.just(math.inf), st.floats(0, 1e6, allow_nan=False))
_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)
#: Worlds with options of every kind their builders take (nested values included).
_worlds = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(list(WorldName))}),
    st.fixed_dictionaries(
        {
            "name": st.just("multigrid"),
            "options": st.fixed_dictionaries(
                {"map": st.text(max_size=8), "possible_goals": st.lists(_json)},
                optional={"max_steps": st.integers(1, 10_000)},
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "name": st.just("confirmation"),
            "options": st.fixed_dictionaries(
                {"slip": _unit, "absorbing": st.booleans()},
                optional={"max_restarts": _json},
            ),
        }
    ),
)


@st.composite
def parameters(draw: st.DrawFn) -> Parameters:
    batch = draw(st.integers(1, 512))
    frames = draw(st.integers(1, 512))
    knobs = {
        "learning_rate": draw(_positive),
        "learning_rate_decay": draw(st.floats(1e-6, 1)),
        "batch_size": batch,
        "frames_per_batch": frames,
        "updates_per_batch": draw(st.integers(1, 100)),
        "buffer_size": draw(st.integers(max(batch, frames), 10**6)),
        "uniform_state_fraction": draw(_unit),
        "state_encoding": draw(st.sampled_from(["embedding", "features"])),
        "target_update_tau": draw(st.floats(1e-6, 1)),
        "hidden_sizes": draw(st.lists(st.integers(1, 512), min_size=1, max_size=4)),
        "epsilon_start": draw(_unit),
        "epsilon_end": draw(_unit),
        "expected_targets": draw(st.booleans()),
    }
    return Parameters(
        world=draw(_worlds),
        solver=draw(st.sampled_from(list(SolverKind))),
        theory={
            "beta_h": draw(_beta),
            "beta_r": draw(_beta),
            "gamma_h": draw(_unit),
            "gamma_r": draw(_unit),
            "nu_h": draw(_unit),
            "zeta": draw(_positive),
            "xi": draw(_positive),
            "eta": draw(st.floats(1, 1e6)),
            "eps_q": draw(st.floats(0, 1e3)),
            "terminal_v_r": draw(st.floats(-1e6, -1e-300)),
            "others": draw(st.sampled_from(["uniform", "habitual"])),
            "robot_policy": draw(
                st.sampled_from(["power_law", "normalized_boltzmann"])
            ),
        },
        exact={
            "tolerance": draw(_positive),
            "dtype": draw(st.sampled_from(["float32", "float64"])),
        },
        phase1={**knobs, "shaping_scale": draw(st.floats(0, 1e3))},
        phase2={
            **knobs,
            "beta_r_start": draw(st.floats(0, 1e3)),
            "goal_resample_steps": draw(st.integers(1, 10**4)),
            "variant": draw(st.sampled_from(["dqn", "actor_critic"])),
        },
        seed=draw(st.integers(0, 2**63 - 1)),
        evaluation={
            "rollouts": draw(st.integers(0, 10**4)),
            "horizon": draw(st.one_of(st.none(), st.integers(1, 10**4))),
        },
    )


@settings(max_examples=60, deadline=None)
@given(parameters())
def test_round_trip_is_lossless(p: Parameters) -> None:
    d = p.to_dict()
    assert d["version"] == empo.__version__
    assert Parameters.from_dict(d) == p
    assert Parameters.from_dict(json.loads(json.dumps(d, allow_nan=False))) == p
    assert Parameters.from_dict(yaml.safe_load(yaml.safe_dump(d))) == p
    assert Parameters.from_dict(d).to_dict() == d


def test_phase_blocks_are_independent_types() -> None:
    p = Parameters(phase1={"learning_rate": 0.1}, phase2={"variant": "actor_critic"})
    assert isinstance(p.phase1, Phase1Parameters)
    assert p.phase1.learning_rate == 0.1 and p.phase2.learning_rate == 1e-3
    assert p.phase2.variant.value == "actor_critic"
    assert p.phase1.hidden_sizes == (128, 128)


def test_numbers_written_as_yaml_text_are_read_as_numbers() -> None:
    # YAML 1.1 (PyYAML) reads 1e-3 and 1e4 as strings
    assert yaml.safe_load("x: 1e-3")["x"] == "1e-3"
    p = Parameters(phase1={"learning_rate": "1e-3", "num_frames": "1e4"})
    assert (p.phase1.learning_rate, p.phase1.num_frames) == (1e-3, 10_000)
    assert Parameters(theory={"beta_h": "Infinity"}).theory.beta_h == math.inf
    with pytest.raises(ParameterError, match="phase1.num_frames = '1.5' must be an"):
        Parameters(phase1={"num_frames": "1.5"})
    with pytest.raises(ParameterError, match="theory.beta_r = -inf is out of range"):
        Parameters(theory={"beta_r": "-inf"})


def test_exact_outputs_of_older_files_become_output_quantities() -> None:
    chosen = {"version": "0.2.0", "exact": {"outputs": ["x_h"], "dtype": "float32"}}
    params = Parameters.from_dict(chosen)
    assert params.output.quantities == ("x_h",)
    assert params.exact.dtype.value == "float32"
    # the learned solver's migration of the same version applies too
    assert params.phase1.schedule.value == "online"
    old_default = {"version": "0.2.0", "exact": {"outputs": ["pi_r", "x_h", "w_h"]}}
    assert Parameters.from_dict(old_default).output == Parameters().output
    assert Parameters().output.quantities == ("default",)
    with pytest.raises(ParameterError, match="unknown parameter exact.outputs"):
        Parameters.from_dict({"exact": {"outputs": ["x_h"]}})
