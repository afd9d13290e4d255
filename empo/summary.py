"""The one-screen summary of a run that ``python -m empo`` prints.

It answers what a person asks of a run: what the robot does first, what happens along
the most likely trajectory (the actions of each agent, and a drawing of the start, of
the state where the humans' power peaks and of the end), and how much power each human
has (``W_h = log2 X_h``, eq. 10) at the start, at its peak and at the end: along the
most likely trajectory and in expectation under the actual, stochastic policies
(``π_r`` of eq. 5 and ``π̄_h`` of eq. 4), which can differ a lot from the most likely
path when ``π_r`` is nearly uniform.

States are drawn by the world's ``draw_text(row)`` where it has one
(:class:`~empo.worlds.capabilities.DrawsText`; MultiGrid: a text map; transport: a
line per vehicle and human) and otherwise named by their labels (tabular worlds).
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from empo.worlds.capabilities import DrawsText

if TYPE_CHECKING:
    from empo.evaluation import Evaluation
    from empo.run import RunResult

WIDTH = 100
"""Drawings side by side wider than this are stacked instead."""

_GAP = "    "


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=88, subsequent_indent=indent)


def compress_actions(actions: Sequence[str]) -> str:
    """Actions in order, runs of one action written once with a count.

    Parameters
    ----------
    actions
        One action name per step.

    Examples
    --------
    >>> compress_actions(["still", "still", "still", "forward", "left"])
    'still×3 forward left'
    """
    out: list[str] = []
    i = 0
    while i < len(actions):
        j = i
        while j < len(actions) and actions[j] == actions[i]:
            j += 1
        out.append(actions[i] + (f"×{j - i}" if j - i > 1 else ""))
        i = j
    return " ".join(out)


def side_by_side(blocks: Sequence[tuple[str, list[str]]], width: int = WIDTH) -> str:
    """Titled blocks of lines next to each other, or one below the other if too wide.

    Parameters
    ----------
    blocks
        ``(title, lines)`` per block.
    width
        Largest total width of blocks placed side by side.
    """
    widths = [max([len(t), *map(len, lines)]) for t, lines in blocks]
    if sum(widths) + len(_GAP) * (len(blocks) - 1) > width:
        return "\n".join(
            "\n".join([title, *("  " + line for line in lines)])
            for title, lines in blocks
        )
    height = max(len(lines) for _, lines in blocks)
    rows = []
    for r in range(height + 1):
        cells = []
        for (title, lines), w in zip(blocks, widths):
            text = title if r == 0 else (lines[r - 1] if r - 1 < len(lines) else "")
            cells.append(text.ljust(w))
        rows.append(_GAP.join(cells).rstrip())
    return "\n".join(rows)


def peak(values: Float[Tensor, " step"]) -> tuple[int, float]:
    """Step and value of the largest finite entry (the first one on ties).

    Parameters
    ----------
    values
        One value per step; NaN entries are skipped.

    Raises
    ------
    ValueError
        If no entry is finite.
    """
    finite = torch.isfinite(values)
    if not finite.any():
        raise ValueError("no finite value to take the peak of")
    step = int(torch.where(finite, values, -math.inf).argmax())
    return step, float(values[step])


def _last_finite(values: Float[Tensor, " step"]) -> tuple[int, float]:
    steps = torch.isfinite(values).nonzero()
    step = int(steps[-1]) if len(steps) else 0
    return step, float(values[step])


def _drawing(result: RunResult, evaluation: Evaluation, t: int) -> list[str]:
    """The world's text drawing of step ``t`` of the trajectory, else its label."""
    world, compiled = result.world, result.tables.world
    if isinstance(world, DrawsText) and compiled.state_table is not None:
        return world.draw_text(compiled.state_table[evaluation.trajectory[t]])
    return [evaluation.trajectory_labels[t]]


def _power_rows(evaluation: Evaluation) -> list[str]:
    final = evaluation.final_step()
    header = f"  {'':<34}{'start':>8}  {'peak (step)':>14}  {'end (step)':>14}"
    lines = ["Human power W_h [bits]:", header]
    for h, name in enumerate(evaluation.humans):
        views = {
            f"{name}, most likely trajectory": evaluation.w_h_trajectory[
                : final + 1, h
            ],
            f"{name}, expected (stochastic π_r)": evaluation.w_h_expected[:, h],
        }
        for label, values in views.items():
            top_step, top = peak(values)
            end_step, end = _last_finite(values)
            lines.append(
                f"  {label:<34}{float(values[0]):>8.4g}  "
                f"{f'{top:.4g} ({top_step})':>14}  {f'{end:.4g} ({end_step})':>14}"
            )
    return lines


def _trajectory(result: RunResult, evaluation: Evaluation) -> list[str]:
    steps = len(evaluation.trajectory_actions)
    lines = [f"Most likely trajectory ({steps} steps), actions per agent:"]
    agents = list(evaluation.trajectory_actions[0]) if steps else []
    for agent in agents:
        acts = [step[agent] for step in evaluation.trajectory_actions]
        lines.append(_wrap(f"  {agent:<12} {compress_actions(acts)}", " " * 15))
    final = evaluation.final_step()
    total = evaluation.w_h_trajectory[: final + 1].sum(dim=1)
    top = peak(total)[0]
    end = len(evaluation.trajectory) - 1
    blocks = [
        (f"{what} (t={t})", _drawing(result, evaluation, t))
        for what, t in (("start", 0), ("peak", top), ("end", end))
    ]
    lines.append(side_by_side(blocks))
    return lines


def format_summary(result: RunResult) -> str:
    """One screen about a run (see the module docstring).

    Parameters
    ----------
    result
        A completed run.
    """
    p, m = result.params, result.metrics
    states = f"; {m['num_states']:,} states" if "num_states" in m else ""
    lines = [
        f"empo run: world {p.world.name.value}, solver {p.solver.value}, "
        f"seed {p.seed} ({result.duration_s:.2f} s){states}",
    ]
    evaluation = result.evaluation
    if evaluation is not None:
        ranked = sorted(evaluation.robot_policy_s0.items(), key=lambda kv: -kv[1])
        policy = ", ".join(f"{a} {q:.3f}" for a, q in ranked[:8])
        lines.append(_wrap(f"Robot policy at the start: {policy}", "  "))
        lines += _trajectory(result, evaluation)
        lines += _power_rows(evaluation)
        lines.append(f"V_r(s_0) = {_number(evaluation.v_r_s0)}")
    for key in sorted(k for k in m if k.startswith("learned/") and "(s0)" in k):
        lines.append(f"{key} = {_number(m[key])}")
    for key in sorted(k for k in m if k.startswith("comparison/"))[:6]:
        lines.append(f"  {key} = {_number(m[key])}")
    lines.append(f"Run directory: {result.run_dir}")
    wandb_dirs = sorted((result.run_dir / "wandb").glob("offline-run-*"))
    if wandb_dirs:
        lines.append(f"W&B offline run (upload: wandb sync {wandb_dirs[-1]})")
    return "\n".join(lines)
