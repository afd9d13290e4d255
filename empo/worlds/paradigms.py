"""Paradigm worlds: small tabular games with predictions from the theory.

Each builder returns a :class:`~empo.worlds.tabular.TabularWorld` and is registered in
:mod:`empo.worlds.registry`. In every state all agents act simultaneously; an agent
without a choice has the single action ``"wait"``. The robot is always called
``"robot"``; equation numbers refer to THEORY.md. No paradigm names a rest action, so
eq. (2) applies everywhere.
"""

from __future__ import annotations

from typing import Hashable

from empo.worlds.tabular import TabularWorld

WAIT = "wait"


def _robot_moves(
    state_moves: dict[str, Hashable],
) -> dict[tuple, list[tuple[float, Hashable]]]:
    """Table of a state where only the robot chooses (the human waits)."""
    return {(move, WAIT): [(1.0, nxt)] for move, nxt in state_moves.items()}


def _human_moves(
    state_moves: dict[str, Hashable],
) -> dict[tuple, list[tuple[float, Hashable]]]:
    """Table of a state where only the human chooses (the robot waits)."""
    return {(WAIT, move): [(1.0, nxt)] for move, nxt in state_moves.items()}


def _robot_and_human(
    transitions: dict[Hashable, dict[tuple, list[tuple[float, Hashable]]]],
    goals: dict[str, list[Hashable]],
    initial_state: Hashable = ("start",),
) -> TabularWorld:
    """The world of a paradigm with one robot and one human (agents in that order)
    and the human's goals."""
    return TabularWorld(
        transitions=transitions,
        initial_state=initial_state,
        agents=("robot", "human"),
        humans=("human",),
        robots=("robot",),
        goals={"human": goals},
    )


def commitment(direct_tasks: bool = True) -> TabularWorld:
    """Commitment game: the robot may bind its later action to the human's button.

    Step 1: the robot does task A, does task B, commits to "button 1 → A, button 2 →
    B" (``"commit 1A 2B"``), commits to the reverse mapping (``"commit 1B 2A"``) or
    passes. Step 2: the human presses button 1, button 2 or passes. Step 3: the robot
    does A, B or passes; after a commitment and a pressed button it can only do the
    committed task. Every path has three steps. States are labelled
    ``(step, first_move, button, a_done, b_done)``; the human's goals are "A" (all
    states where A is done) and "B".

    Parameters
    ----------
    direct_tasks
        Whether the robot may do A or B directly in step 1.

    Notes
    -----
    Uncommitted, the robot's last action is the *minimum* over its actions in eq. (1),
    so the cautious human expects nothing from pressing; the robot's own last move is
    uniform (all its successors are terminal), so ``V^e_h = γ_h/3`` for each goal.
    Committed, eq. (2) gives the button of goal A the probability ``p = e^{β_h γ_h} /
    (e^{β_h γ_h} + 2)`` and each other move ``q = 1 / (e^{β_h γ_h} + 2)``; after
    "pass" the robot's last move is uniform, so ``V^e_h = γ_h (p + q/3)``. Hence
    ``X_h = 2 (γ_h (p + q/3))^ζ`` after committing versus ``1 + (γ_h/3)^ζ`` after
    doing a task directly: the robot commits when β_h is large and does a task
    itself when β_h is small (THEORY.md, "Commitment").
    """
    first_moves = ["A", "B", "commit 1A 2B", "commit 1B 2A", "pass"]
    if not direct_tasks:
        first_moves = first_moves[2:]
    transitions: dict[Hashable, dict] = {}
    start = (0, None, None, False, False)
    transitions[start] = _robot_moves(
        {m: (1, m, None, m == "A", m == "B") for m in first_moves}
    )
    for move in first_moves:
        a_done, b_done = move == "A", move == "B"
        after_first = (1, move, None, a_done, b_done)
        transitions[after_first] = _human_moves(
            {b: (2, move, b, a_done, b_done) for b in ("button 1", "button 2", "pass")}
        )
        for button in ("button 1", "button 2", "pass"):
            committed = move.startswith("commit") and button != "pass"
            if committed:
                mapping = {"commit 1A 2B": "AB", "commit 1B 2A": "BA"}[move]
                tasks = [mapping[0] if button == "button 1" else mapping[1]]
            else:
                tasks = ["A", "B", "pass"]
            transitions[(2, move, button, a_done, b_done)] = _robot_moves(
                {
                    t: (3, move, button, a_done or t == "A", b_done or t == "B")
                    for t in tasks
                }
            )
    states = set(transitions) | {
        nxt
        for table in transitions.values()
        for outcomes in table.values()
        for _, nxt in outcomes
    }
    return _robot_and_human(
        transitions,
        {"A": [s for s in states if s[3]], "B": [s for s in states if s[4]]},
        start,
    )


def menu_size(max_k: int = 5) -> TabularWorld:
    """Menu-size game: the robot chooses how many options the human gets.

    Step 1: the robot offers ``k ∈ {1, ..., max_k}`` options (state ``("menu", k)``).
    Step 2: the human picks option ``i ≤ k`` and reaches the terminal state
    ``("outcome", i)`` for sure. The human has ``max_k`` goals, goal ``"option i"``
    being ``{("outcome", i)}``.

    Parameters
    ----------
    max_k
        Largest menu the robot can offer (``>= 1``).

    Notes
    -----
    In ``("menu", k)``, ``Q^m_h = 1`` for the option of the goal and 0 otherwise
    (eq. 1, the goal is entered at the first step so ``γ_h`` plays no role), eq. (2)
    gives ``π_h = e^β / (e^β + k - 1)`` for it, and with one robot action eq. (6)
    gives the same ``V^e_h``. Goals ``i > k`` are out of reach, so eq. (7) gives

        X_h(("menu", k)) = k · (e^β / (e^β + k − 1))^ζ,

    which for ``ζ > 1`` peaks at ``k* = (e^β − 1) / (ζ − 1)``: a robot following
    eqs. (4)-(5) does not offer more options than that (THEORY.md, "Menu size").
    """
    if isinstance(max_k, bool) or not isinstance(max_k, int) or max_k < 1:
        raise ValueError(f"menu_size: max_k must be an integer >= 1, got {max_k!r}")
    transitions: dict[Hashable, dict] = {
        ("start",): _robot_moves(
            {f"offer {k}": ("menu", k) for k in range(1, max_k + 1)}
        )
    }
    for k in range(1, max_k + 1):
        transitions[("menu", k)] = _human_moves(
            {f"option {i}": ("outcome", i) for i in range(1, k + 1)}
        )
    return _robot_and_human(
        transitions,
        {f"option {i}": [("outcome", i)] for i in range(1, max_k + 1)},
    )


def confirmation(
    max_confirmations: int = 3,
    max_restarts: int | None = None,
    slip: float = 0.0,
    absorbing: bool = False,
) -> TabularWorld:
    """Confirmation dialogue (cyclic): how often should the robot ask "are you sure?".

    Step 1: the robot chooses ``k ∈ {0, ..., max_confirmations}`` (state
    ``("order", k, r)``). The human then orders A or B; the order is registered as
    the other task with probability ``slip`` (a human slip). Then, ``k`` times, the
    robot asks whether the registered order is right (state ``("confirm", k, r,
    task, asked)``) and the human answers ``"yes"`` or ``"no"``. After ``k`` yeses the
    robot does the registered task (state ``("done", task)``); a ``"no"`` sends the
    dialogue back to the order. The human's goals are "A" and "B" (the task done).

    Parameters
    ----------
    max_confirmations
        Largest number of confirmations the robot can ask for (``>= 0``).
    max_restarts
        ``None`` for the cyclic dialogue. An integer unrolls it: ``r`` in the state
        labels counts restarts and a ``"no"`` after ``max_restarts`` restarts ends in
        the state ``("failed",)``, in no goal. The unrolled world (without
        ``absorbing``) is acyclic and approaches the cyclic one as ``max_restarts``
        grows when ``γ_h < 1``.
    slip
        Probability in ``[0, 1]`` that an order is registered as the other task.
    absorbing
        If True, ``("done", task)`` and ``("failed",)`` are absorbing (a self-loop
        instead of terminal): life goes on after the dialogue.

    Notes
    -----
    Mistakes come from eq. (2) (finite ``β_h``, in ordering *and* in answering) and
    from slips; a "no" undoes a wrong registration at the price of delay (``γ_h``
    per step). With slips and a rational human, confirming raises ``X_h`` at the
    order state (e.g. ``β_h = 10, γ = 0.99, slip = 0.2``: ``X_h`` 1.28 for ``k = 0``,
    1.82 for ``k = 1``). With terminal end states the robot still asks for no
    confirmation, because ``V_r`` (eq. 9) sums the negative ``U_r`` of every step and
    a terminal state costs only ``terminal_v_r`` ≈ 0, so short dialogues win; with
    ``absorbing=True`` the comparison is with life after the dialogue and the robot
    asks (e.g. ``k = 1`` most likely for ``β_h = 10, γ = 0.9, slip = 0.2``). The world
    is cyclic, so ``γ_h, γ_r < 1`` are needed and the exact solver iterates eqs.
    (1)-(9) to a fixed point.
    """
    if (
        isinstance(max_confirmations, bool)
        or not isinstance(max_confirmations, int)
        or max_confirmations < 0
    ):
        raise ValueError(
            "confirmation: max_confirmations must be an integer >= 0, got "
            f"{max_confirmations!r}"
        )
    if max_restarts is not None and (
        isinstance(max_restarts, bool)
        or not isinstance(max_restarts, int)
        or max_restarts < 0
    ):
        raise ValueError(
            f"confirmation: max_restarts must be None or an integer >= 0, got "
            f"{max_restarts!r}"
        )
    if (
        isinstance(slip, bool)
        or not isinstance(slip, (int, float))
        or not 0 <= slip <= 1
    ):
        raise ValueError(f"confirmation: slip must be in [0, 1], got {slip!r}")

    if not isinstance(absorbing, bool):
        raise ValueError(f"confirmation: absorbing must be a bool, got {absorbing!r}")

    def registered(k: int, r: int, task: str) -> tuple:
        """State after the order ``task`` is registered."""
        return ("confirm", k, r, task, 0) if k else ("done", task)

    rounds = 1 if max_restarts is None else max_restarts + 1
    transitions: dict[Hashable, dict] = {
        ("start",): _robot_moves(
            {f"ask {k}": ("order", k, 0) for k in range(max_confirmations + 1)}
        )
    }
    for k in range(max_confirmations + 1):
        for r in range(rounds):
            if max_restarts is None:
                restart = ("order", k, 0)
            elif r < max_restarts:
                restart = ("order", k, r + 1)
            else:
                restart = ("failed",)
            transitions[("order", k, r)] = {
                (WAIT, task): [
                    (1.0 - slip, registered(k, r, task)),
                    (slip, registered(k, r, other)),
                ]
                for task, other in (("A", "B"), ("B", "A"))
            }
            for task in ("A", "B"):
                for asked in range(k):
                    yes = ("confirm", k, r, task, asked + 1)
                    transitions[("confirm", k, r, task, asked)] = _human_moves(
                        {
                            "yes": ("done", task) if asked + 1 == k else yes,
                            "no": restart,
                        }
                    )
    if absorbing:
        for end in (("done", "A"), ("done", "B"), ("failed",)):
            transitions[end] = {(WAIT, WAIT): [(1.0, end)]}
    return _robot_and_human(transitions, {"A": [("done", "A")], "B": [("done", "B")]})


def resource_split(units: int = 3) -> TabularWorld:
    """Resource split: the robot divides ``units`` between two humans.

    Step 1: the robot gives ``m ∈ {0, ..., units}`` units to ``human1`` and the rest
    to ``human2`` (state ``("split", m)``). Step 2: both humans act at once; a human
    with ``n`` units picks one of ``2^n`` outcomes, reaching the terminal state
    ``("end", m, o1, o2)``. Each human has ``2^units`` goals, goal ``"outcome j"``
    being the end states where that human's outcome is ``j``.

    Parameters
    ----------
    units
        Number of units ``M >= 0``. The joint action axis has ``(M + 1) · 4^M``
        entries, so keep ``M`` small (``<= 4``).

    Notes
    -----
    With ``β_h = ∞`` the ``2^n`` reachable goals are reached for sure, so eq. (7)
    gives ``X_1(("split", m)) = 2^m`` and ``X_2 = 2^(M−m)``; eq. (8) then favours the
    equal split (inequality aversion ``ξ > 0``).
    """
    if isinstance(units, bool) or not isinstance(units, int) or units < 0:
        raise ValueError(
            f"resource_split: units must be an integer >= 0, got {units!r}"
        )
    transitions: dict[Hashable, dict] = {
        ("start",): {
            (f"give {m}", WAIT, WAIT): [(1.0, ("split", m))] for m in range(units + 1)
        }
    }
    for m in range(units + 1):
        transitions[("split", m)] = {
            (WAIT, f"outcome {o1}", f"outcome {o2}"): [(1.0, ("end", m, o1, o2))]
            for o1 in range(2**m)
            for o2 in range(2 ** (units - m))
        }
    ends = [
        ("end", m, o1, o2)
        for m in range(units + 1)
        for o1 in range(2**m)
        for o2 in range(2 ** (units - m))
    ]
    goals = {
        human: {
            f"outcome {j}": [s for s in ends if s[2 + h] == j] for j in range(2**units)
        }
        for h, human in enumerate(("human1", "human2"))
    }
    return TabularWorld(
        transitions=transitions,
        initial_state=("start",),
        agents=("robot", "human1", "human2"),
        humans=("human1", "human2"),
        robots=("robot",),
        goals=goals,
    )


def pause_destroy(tasks: int = 3, tasks_alone: int = 1) -> TabularWorld:
    """Pause and destroy buttons: which off-switches does the robot offer?

    Step 1: the robot enables ``"neither"``, ``"pause"``, ``"destroy"`` or ``"both"``
    buttons (state ``("buttons", config)``). Step 2: the human presses an enabled
    button or ``"no button"``; the robot is then ``"working"``, ``"paused"`` or
    ``"destroyed"`` (state ``("act", mode)``). Step 3: the human finishes: with a
    working robot they get any task ``i ≤ tasks`` done; alone (robot paused or
    destroyed) only tasks ``i ≤ tasks_alone``; a paused robot can also be resumed for
    any task. Terminal states are ``("end", mode, i)``. Goals: ``"task i"`` for each
    task and ``"robot off"`` (the robot ends paused or destroyed).

    Parameters
    ----------
    tasks
        Number of tasks a working robot can do (``>= 1``).
    tasks_alone
        Number of tasks the human can do alone (``0 <= tasks_alone <= tasks``).

    Notes
    -----
    With ``β_h = ∞`` and ``γ_h = 1``, eq. (7) gives ``X_h = tasks`` when no button
    is enabled and ``tasks + 1`` with any button (the "robot off" goal comes into
    reach). After pressing, ``X_h = tasks + 1`` with a paused robot but only
    ``tasks_alone + 1`` with a destroyed one, so a robot following eqs. (4)-(5)
    prefers offering the pause button alone: it keeps the human's power highest at
    every later step.
    """
    for name, value in (("tasks", tasks), ("tasks_alone", tasks_alone)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"pause_destroy: {name} must be an integer, got {value!r}")
    if tasks < 1 or not 0 <= tasks_alone <= tasks:
        raise ValueError(
            f"pause_destroy: need tasks >= 1 and 0 <= tasks_alone <= tasks, got "
            f"tasks={tasks}, tasks_alone={tasks_alone}"
        )
    buttons = {
        "neither": {"no button": "working"},
        "pause": {"no button": "working", "press pause": "paused"},
        "destroy": {"no button": "working", "press destroy": "destroyed"},
        "both": {
            "no button": "working",
            "press pause": "paused",
            "press destroy": "destroyed",
        },
    }
    transitions: dict[Hashable, dict] = {
        ("start",): _robot_moves({c: ("buttons", c) for c in buttons})
    }
    for config, presses in buttons.items():
        transitions[("buttons", config)] = _human_moves(
            {press: ("act", mode) for press, mode in presses.items()}
        )
    alone = range(1, tasks_alone + 1)
    everything = range(1, tasks + 1)
    transitions[("act", "working")] = _human_moves(
        {f"task {i}": ("end", "working", i) for i in everything}
    )
    transitions[("act", "paused")] = _human_moves(
        {f"task {i}": ("end", "paused", i) for i in alone}
        | {f"resume, task {i}": ("end", "working", i) for i in everything}
        | {"idle": ("end", "paused", 0)}
    )
    transitions[("act", "destroyed")] = _human_moves(
        {f"task {i}": ("end", "destroyed", i) for i in alone}
        | {"idle": ("end", "destroyed", 0)}
    )
    ends = [("end", "working", i) for i in everything] + [
        ("end", mode, i)
        for mode in ("paused", "destroyed")
        for i in range(tasks_alone + 1)
    ]
    goals = {f"task {i}": [s for s in ends if s[2] == i] for i in everything}
    goals["robot off"] = [s for s in ends if s[1] != "working"]
    return _robot_and_human(transitions, goals)
