"""Research-code side of ``scripts/diff_multigrid.py`` (runs in the research venv).

Reads a job (a YAML world file, states in the common form, joint actions) as JSON on
stdin, builds the research code's ``MultiGridEnv`` (mensch72/empo,
``vendor/multigrid/gym_multigrid/multigrid.py``) from the same file, sets each state
and writes ``transition_probabilities`` for each pair, mapped back to the common form,
as JSON on stdout. Needs only the standard library, PyYAML and the research code's own
dependencies (numpy, gymnasium, matplotlib).

Common form of a state (both sides map to it)::

    {"t": step,
     "agents": [[x, y, dir, terminated, paused, forced action or None,
                 [type, colour] of the carried object or None], ...],
     "doors": [[x, y, "open" | "closed" | "locked"], ...],
     "objects": [[type, x, y, colour], ...],            # keys, balls, boxes on the floor
     "blocks": [[x, y], ...], "rocks": [[x, y], ...],
     "bushes": [[x, y, trampled], ...], "magic": [[x, y, active], ...],
     "kill": [[x, y, enabled], ...], "pause": [[x, y, on, enabled], ...],
     "control": [[x, y, enabled, controlled agent, action, awaiting], ...]}

(lists sorted). The research code's compact state omits objects lying on the floor and
its ``set_state`` leaves the grid's objects as they are, rebuilds carried balls with a
constructor call that fails, forgets the magic wall under an agent standing in it (and does not restore its
``active`` flag), and
objects it moves overwrite terrain in its grid. The worker therefore wraps
``get_state`` to append the floor objects and ``set_state`` to rebuild the grid from
the pristine layout (door states, then the research ``set_state`` with nothing
carried, then carried and floor objects, then magic walls under agents) before every
use, so that each query starts from exactly the state asked for. Agents get
``can_enter_magic_walls`` from the file's ``can_enter_magic_walls`` colour letters
(an empo key; the research code's map format has no way to set it).
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

MOVABLE = {"agent", "block", "rock", "key", "ball", "box"}
PICKABLE = ("key", "ball", "box")
COLOURS = {"r": "red", "g": "green", "b": "blue", "p": "purple", "y": "yellow"}
COLOURS["e"] = "grey"


def load_research(research: Path) -> types.ModuleType:
    """Import the research code's ``gym_multigrid.multigrid`` without its package."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    stub = types.ModuleType("empo")
    stub.__path__ = [str(research / "src" / "empo")]
    sys.modules["empo"] = stub
    sys.path.insert(0, str(research / "vendor" / "multigrid"))
    import gym_multigrid.multigrid as mg

    return mg


def _make(mg: types.ModuleType, env: Any, kind: str, colour: str) -> Any:
    if kind == "key":
        return mg.Key(env.objects, colour)
    if kind == "ball":
        return mg.Ball(env.objects, index=env.objects.COLOR_TO_IDX[colour])
    return mg.Box(env.objects, colour)


def research_env(mg: types.ModuleType, config: dict[str, Any]) -> Any:
    """Build the research environment and wrap ``get_state``/``set_state``."""
    enterers = {COLOURS[c] for c in config.get("can_enter_magic_walls", "") or ""}
    config = {
        k: v
        for k, v in config.items()
        if k not in ("possible_goals", "can_enter_magic_walls")
    }
    env = mg.MultiGridEnv(config=config)
    for agent in env.agents:
        agent.can_enter_magic_walls = agent.color in enterers
    pristine = [
        [
            (
                None
                if env.grid.get(i, j) is None or env.grid.get(i, j).type in MOVABLE
                else env.grid.get(i, j)
            )
            for i in range(env.width)
        ]
        for j in range(env.height)
    ]
    doors = {pos: obj for pos, obj in env._mutable_objects if obj.type == "door"}
    floor: list[tuple] = []

    def get_state() -> tuple:
        found = []
        for j in range(env.height):
            for i in range(env.width):
                cell = env.grid.get(i, j)
                if cell is not None and cell.type in PICKABLE:
                    found.append((cell.type, i, j, cell.color))
        return mg.MultiGridEnv.get_state(env) + (tuple(sorted(found)),)

    def set_state(state: tuple) -> None:
        if len(state) > 4:
            floor[:] = state[4]
        for j in range(env.height):
            for i in range(env.width):
                env.grid.set(i, j, pristine[j][i])
                env.terrain_grid.set(i, j, None)
        for agent in env.agents:
            agent.pos = None
        for entry in state[3]:
            if entry[0] == "door":
                doors[(entry[1], entry[2])].is_open = entry[3]
                doors[(entry[1], entry[2])].is_locked = entry[4]
        empty = tuple(a[:6] + (None, None) + a[8:] for a in state[1])
        mg.MultiGridEnv.set_state(env, (state[0], empty, state[2], state[3]))
        for agent, a in zip(env.agents, state[1]):
            agent.carrying = None if a[6] is None else _make(mg, env, a[6], a[7])
            cell = pristine[a[1]][a[0]]
            if cell is not None and cell.type == "magicwall":
                env.terrain_grid.set(a[0], a[1], cell)
        for kind, x, y, colour in floor:
            env.grid.set(x, y, _make(mg, env, kind, colour))
        for entry in state[3]:
            if entry[0] == "magicwall":
                pristine[entry[2]][entry[1]].active = entry[3]

    env.get_state = get_state
    env.set_state = set_state
    return env


def to_common(state: tuple) -> dict[str, Any]:
    """The common form of a wrapped research state."""
    agents = [
        [a[0], a[1], a[2], int(bool(a[3])), int(bool(a[5])), a[8]]
        + [None if a[6] is None else [a[6], a[7]]]
        for a in state[1]
    ]
    by_type: dict[str, list] = {
        k: [] for k in ("doors", "bushes", "magic", "kill", "pause", "control")
    }
    for m in state[3]:
        x, y = m[1], m[2]
        if m[0] == "door":
            door = "open" if m[3] else ("locked" if m[4] else "closed")
            by_type["doors"].append([x, y, door])
        elif m[0] == "bush":
            by_type["bushes"].append([x, y, int(bool(m[3]))])
        elif m[0] == "magicwall":
            by_type["magic"].append([x, y, int(bool(m[3]))])
        elif m[0] == "killbutton":
            by_type["kill"].append([x, y, int(bool(m[3]))])
        elif m[0] == "pauseswitch":
            by_type["pause"].append([x, y, int(bool(m[3])), int(bool(m[4]))])
        elif m[0] == "controlbutton":
            control = [int(bool(m[3])), m[4], m[5], int(bool(m[6]))]
            by_type["control"].append([x, y] + control)
    common = {
        "t": state[0],
        "agents": agents,
        "objects": sorted([list(o) for o in state[4]]),
        "blocks": sorted([[m[1], m[2]] for m in state[2] if m[0] == "block"]),
        "rocks": sorted([[m[1], m[2]] for m in state[2] if m[0] == "rock"]),
    }
    return {**common, **{k: sorted(v) for k, v in by_type.items()}}


def from_common(env: Any, common: dict[str, Any]) -> tuple:
    """The wrapped research state of a common-form state."""
    agents = tuple(
        (x, y, d, bool(dead), True, bool(paused))
        + ((None, None) if carried is None else tuple(carried))
        + (forced,)
        for x, y, d, dead, paused, forced, carried in common["agents"]
    )
    mobile = sorted(
        [("block", x, y) for x, y in common["blocks"]]
        + [("rock", x, y) for x, y in common["rocks"]]
    )

    def lookup(key: str) -> dict[tuple[int, int], list]:
        return {(e[0], e[1]): e[2:] for e in common[key]}

    tables = {
        "door": lookup("doors"),
        "bush": lookup("bushes"),
        "magicwall": lookup("magic"),
        "killbutton": lookup("kill"),
        "pauseswitch": lookup("pause"),
        "controlbutton": lookup("control"),
    }
    mutable = []
    for (x, y), obj in env._mutable_objects:
        if obj.type == "box":
            mutable.append(("box", x, y, None, None))
            continue
        values = tables[obj.type][(x, y)]
        if obj.type == "door":
            values = [values[0] == "open", values[0] == "locked"]
        elif obj.type == "controlbutton":
            values = [bool(values[0]), values[1], values[2], bool(values[3])]
        else:
            values = [bool(v) for v in values]
        mutable.append((obj.type, x, y, *values))
    floor = tuple(sorted(tuple(o) for o in common["objects"]))
    return (common["t"], agents, tuple(mobile), tuple(mutable), floor)


def static(env: Any) -> dict[str, Any]:
    """The parsed layout and options, for the static comparison."""
    cells, options = [], {"stumble": set(), "solidify": set(), "bush": set()}
    options["magic_entry"] = set()
    for j in range(env.height):
        row = []
        for i in range(env.width):
            cell = env.grid.get(i, j)
            if cell is None:
                row.append("empty")
            elif cell.type in ("door", "key", "agent", "ball", "box"):
                row.append(f"{cell.type}:{cell.color}")
            elif cell.type == "magicwall":
                row.append(f"magicwall:{cell.magic_side}")
                options["solidify"].add(cell.solidify_probability)
                options["magic_entry"].add(cell.entry_probability)
            elif cell.type == "disablingswitch":
                row.append(f"disablingswitch:{cell.target_type}")
            else:
                row.append(cell.type)
                if cell.type == "unsteadyground":
                    options["stumble"].add(cell.stumble_probability)
                if cell.type == "bush":
                    options["bush"].add(cell.enter_bush_success_prob)
        cells.append(row)
    agents = [
        [a.color, bool(a.can_push_rocks), bool(a.can_enter_magic_walls)]
        for a in env.agents
    ]
    return {
        "cells": cells,
        "agents": agents,
        "actions": list(env.actions.available),
        "max_steps": env.max_steps,
        **{k: sorted(v) for k, v in options.items()},
    }


def main() -> int:
    """Worker entry point: job on stdin, answers on stdout."""
    import yaml

    research = Path(sys.argv[sys.argv.index("--research") + 1])
    job = json.load(sys.stdin)
    mg = load_research(research)
    env = research_env(mg, yaml.safe_load(Path(job["path"]).read_text()))
    answer = {"static": static(env), "initial": to_common(env.get_state())}
    results: list[Any] = []
    for common, joint_actions in zip(job["states"], job["actions"]):
        state = from_common(env, common)
        for actions in joint_actions:
            try:
                out = env.transition_probabilities(state, list(actions))
            except Exception as err:  # a research-code crash is a finding, not ours
                results.append({"error": repr(err)})
                continue
            dist: dict[str, float] = {}
            for prob, succ in out or []:
                key = json.dumps(to_common(succ), sort_keys=True, separators=(",", ":"))
                dist[key] = dist.get(key, 0.0) + prob
            results.append(None if out is None else dist)
    answer["results"] = results
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
