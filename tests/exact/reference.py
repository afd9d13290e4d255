"""A per-state, pure-Python reference implementation of eqs. (1)-(9) of THEORY.md.

Written independently of :mod:`empo.theory` and :mod:`empo.exact` (plain floats,
``math`` and loops over states, goals and joint actions) so that the vectorised solver
can be checked against it on small acyclic worlds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from empo.parameters.theory import TheoryParameters
from empo.worlds.compiled import CompiledWorld

TIE = 1e-9


@dataclass
class Beliefs:
    """Plain-list human beliefs: ``beta[s][h][g]``, ``nu[s][h][g]``,
    ``pi0[s][h][g][a]`` and ``mu[h]`` (``None`` or ``mu[h][s]`` either a list over
    the others' joint actions or ``[g][joint]``)."""

    beta: list | None = None
    nu: list | None = None
    pi0: list | None = None
    mu: list | None = None


def _argmax(values: dict) -> dict:
    best = max(values.values())
    scale = max(1.0, abs(best))
    ties = [a for a, v in values.items() if v >= best - TIE * scale]
    return {a: (1.0 / len(ties) if a in ties else 0.0) for a in values}


def _softmax(logits: dict) -> dict:
    infinite = [a for a, v in logits.items() if v == math.inf]
    if infinite:
        return {a: (1.0 / len(infinite) if a in infinite else 0.0) for a in logits}
    top = max(logits.values())
    if top == -math.inf:
        return {a: 1.0 / len(logits) for a in logits}
    w = {a: math.exp(v - top) for a, v in logits.items()}
    total = sum(w.values())
    return {a: x / total for a, x in w.items()}


def _boltzmann(values: dict, beta: float) -> dict:
    if beta == math.inf:
        return _argmax(values)
    if beta == 0:
        return {a: 1.0 / len(values) for a in values}
    return _softmax({a: beta * v for a, v in values.items()})


def _robot_policy(q: dict, theory: TheoryParameters) -> dict:
    beta = theory.beta_r
    if beta == 0:
        return {a: 1.0 / len(q) for a in q}
    if beta == math.inf:
        return _argmax(q)
    if theory.robot_policy.value == "power_law":
        logits = {}
        for a, v in q.items():
            base = theory.eps_q - v
            logits[a] = math.inf if base <= 0 else -beta * math.log(base)
        return _softmax(logits)
    hi, lo = max(q.values()), min(q.values())
    if hi == lo:
        return {a: 1.0 / len(q) for a in q}
    return _softmax({a: beta * (v - hi) / (hi - lo) for a, v in q.items()})


def _radix(digits: list[int], sizes: list[int]) -> int:
    index = 0
    for d, n in zip(digits, sizes):
        index = index * n + d
    return index


def reference_solve(
    world: CompiledWorld, theory: TheoryParameters, beliefs: Beliefs | None = None
) -> dict:
    """Solve an acyclic world state by state; returns nested dicts of floats.

    Keys: ``q_m[s][h][g][a]``, ``pi_h[s][h][g][a]``, ``v_m[s][h][g]``,
    ``q_r[s][a_r]``, ``pi_r[s][a_r]``, ``v_e[s][h][g]``, ``x_h[s][h]``, ``u_r[s]``,
    ``v_r[s]`` (robot joint actions as mixed-radix indices over ``world.robots``).
    """
    beliefs = beliefs or Beliefs()
    S = world.num_states
    counts = list(world.action_counts)
    humans, robots = list(world.humans), list(world.robots)
    H = len(humans)
    mask = world.action_mask.tolist()
    succ = world.successors.tolist()
    prob = world.probabilities.tolist()
    terminal = world.terminal.tolist()
    member = world.goal_membership.tolist()
    weights = world.goal_weights.tolist()
    goals = [[g for g in range(len(weights[i])) if weights[i][g] > 0] for i in range(H)]
    height = world.height.tolist()
    order = sorted(range(S), key=lambda s: height[s])
    gh, gr = theory.gamma_h, theory.gamma_r

    def allowed(s: int, agent: int) -> list[int]:
        return [a for a in range(counts[agent]) if mask[s][agent][a]]

    def outcomes(s: int, per_agent: dict) -> list[tuple[float, int]]:
        j = _radix([per_agent[i] for i in range(len(counts))], counts)
        return [(p, t) for p, t in zip(prob[s][j], succ[s][j]) if p > 0]

    def target(i: int, g: int, t: int, values: list) -> float:
        if member[i][g][t]:
            return 1.0
        return gh * values[t][i][g]

    def habit(s: int, i: int, g: int) -> dict:
        acts = allowed(s, humans[i])
        if beliefs.pi0 is None:
            return {a: 1.0 / len(acts) for a in acts}
        raw = {a: beliefs.pi0[s][i][g][a] for a in acts}
        total = sum(raw.values())
        return {a: v / total for a, v in raw.items()}

    def others_belief(s: int, i: int, g: int) -> dict:
        others = [j for j in range(H) if j != i]
        lists = [allowed(s, humans[j]) for j in others]
        result = {}
        for combo in itertools.product(*lists):
            if beliefs.mu is not None and beliefs.mu[i] is not None:
                row = beliefs.mu[i][s]
                if isinstance(row[0], list):
                    row = row[g]
                sizes = [counts[humans[j]] for j in others]
                result[combo] = row[_radix(list(combo), sizes)]
            elif theory.others.value == "habitual":
                p = 1.0
                for j, a in zip(others, combo):
                    wsum = sum(weights[j][gg] for gg in goals[j])
                    p *= sum(
                        weights[j][gg] / wsum * habit(s, j, gg)[a] for gg in goals[j]
                    )
                result[combo] = p
            else:
                p = 1.0
                for options in lists:
                    p /= len(options)
                result[combo] = p
        return result

    zero_hg = [[0.0] * len(weights[i]) for i in range(H)]
    v_m = [[row[:] for row in zero_hg] for _ in range(S)]
    q_m = [[[{} for _ in weights[i]] for i in range(H)] for _ in range(S)]
    pi_h = [[[{} for _ in weights[i]] for i in range(H)] for _ in range(S)]
    for s in order:
        if terminal[s]:
            continue
        robot_lists = [allowed(s, r) for r in robots]
        for i, h in enumerate(humans):
            others = [j for j in range(H) if j != i]
            for g in goals[i]:
                mu = others_belief(s, i, g)
                q = {}
                for a in allowed(s, h):
                    total = 0.0
                    for combo, weight in mu.items():
                        worst = math.inf
                        for rcombo in itertools.product(*robot_lists):
                            acts = {h: a}
                            acts.update({humans[j]: x for j, x in zip(others, combo)})
                            acts.update(dict(zip(robots, rcombo)))
                            val = sum(
                                p * target(i, g, t, v_m) for p, t in outcomes(s, acts)
                            )
                            worst = min(worst, val)
                        total += weight * worst
                    q[a] = total
                beta = theory.beta_h if beliefs.beta is None else beliefs.beta[s][i][g]
                nu = theory.nu_h if beliefs.nu is None else beliefs.nu[s][i][g]
                pol = _boltzmann(q, beta)
                hab = habit(s, i, g)
                pol = {a: nu * hab[a] + (1 - nu) * pol[a] for a in q}
                rest = world.rest_action[h]
                if member[i][g][s] and rest is not None and rest in q:
                    pol = {a: 1.0 if a == rest else 0.0 for a in q}
                q_m[s][i][g], pi_h[s][i][g] = q, pol
                v_m[s][i][g] = sum(pol[a] * q[a] for a in q)
    v_e = [[row[:] for row in zero_hg] for _ in range(S)]
    x_h = [[0.0] * H for _ in range(S)]
    u_r = [0.0] * S
    v_r = [theory.terminal_v_r] * S
    q_r: list[dict] = [{} for _ in range(S)]
    pi_r: list[dict] = [{} for _ in range(S)]
    robot_sizes = [counts[r] for r in robots]
    for s in order:
        if terminal[s]:
            continue
        bar = []
        for i, h in enumerate(humans):
            wsum = sum(weights[i][g] for g in goals[i])
            bar.append(
                {
                    a: sum(weights[i][g] / wsum * pi_h[s][i][g][a] for g in goals[i])
                    for a in allowed(s, h)
                }
            )
        human_lists = [allowed(s, h) for h in humans]
        q = {}
        for rcombo in itertools.product(*[allowed(s, r) for r in robots]):
            total = 0.0
            for hcombo in itertools.product(*human_lists):
                p_h = math.prod(bar[i][a] for i, a in enumerate(hcombo))
                acts = dict(zip(humans, hcombo))
                acts.update(dict(zip(robots, rcombo)))
                inner = sum(p * v_r[t] for p, t in outcomes(s, acts))
                if p_h > 0:
                    total += p_h * inner
            q[_radix(list(rcombo), robot_sizes)] = gr * total if gr > 0 else 0.0
        pol = _robot_policy(q, theory)
        q_r[s], pi_r[s] = q, pol
        for i, h in enumerate(humans):
            for g in goals[i]:
                total = 0.0
                for rcombo in itertools.product(*[allowed(s, r) for r in robots]):
                    p_r = pol[_radix(list(rcombo), robot_sizes)]
                    for hcombo in itertools.product(*human_lists):
                        p = p_r * pi_h[s][i][g][hcombo[i]]
                        for j, a in enumerate(hcombo):
                            if j != i:
                                p *= bar[j][a]
                        if p == 0:
                            continue
                        acts = dict(zip(humans, hcombo))
                        acts.update(dict(zip(robots, rcombo)))
                        total += p * sum(
                            pp * target(i, g, t, v_e) for pp, t in outcomes(s, acts)
                        )
                v_e[s][i][g] = total
            x_h[s][i] = sum(
                weights[i][g] * v_e[s][i][g] ** theory.zeta for g in goals[i]
            )
        inner = sum((x + theory.eps_x) ** (-theory.xi) for x in x_h[s])
        u_r[s] = -(inner**theory.eta)
        v_r[s] = u_r[s] + sum(pol[a] * q[a] for a in q if pol[a] > 0)
    return {
        "q_m": q_m,
        "pi_h": pi_h,
        "v_m": v_m,
        "q_r": q_r,
        "pi_r": pi_r,
        "v_e": v_e,
        "x_h": x_h,
        "u_r": u_r,
        "v_r": v_r,
    }
