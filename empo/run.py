"""``run_experiment``: build → phase 1 → phase 2 → evaluate → save and log.

Data flows one way (DESIGN.md): the :class:`~empo.parameters.Parameters` decide the
result; the keyword arguments of :func:`run_experiment` only decide where it runs and
where it is written. A run directory holds:

``params.yaml``
    the parameters (load with ``Parameters.load``);
``metrics.json``
    the run's status, written atomically at the start (``"running"`` with ``pid``,
    ``host``, ``started_at``, ``threads``, ``device``) and at the end
    (``"completed"`` once every output, W&B included, is written; ``"failed"`` or
    ``"interrupted"`` with ``"error"``; see :mod:`empo.utils.run_dir`), with the
    flat metrics of a completed run;
``solution.pt``
    the solution tensors, ``{"phase1": {...}, "phase2": {...}}`` (``torch.load``), in
    float32 and without ``q_m``, ``pi_h`` unless asked for
    (:mod:`empo.utils.solution_files`);
``trajectory.json``
    the most likely trajectory: states and per-agent actions;
``power_over_time.png``, ``robot_policy_s0.png``
    plots; ``power_heatmap_<human>.png`` and ``rollout.gif`` when the world can draw;
``comparison.json``
    learned-vs-exact errors (solver ``"both"``), and under ``"policy"`` the exact
    evaluation of the learned robot's policy next to the exact robot's
    (:func:`empo.analysis.policy_report`: ``V_r(s0)``, expected ``W_h`` over time,
    largest per-state errors over states visited with probability ≥ 1e-3);

A world that cannot be enumerated (``phase1.world_access`` resolving to
``"sampled"``, :class:`empo.learning.data.RowData`) gets no table-based plots: its
``trajectory.json`` is the learned solution's most likely rollout (state rows, their
descriptions and per-agent actions), ``rollout.gif`` is drawn by ``world.save_gif``
where the world has it, and ``metrics.json`` holds ``learned/V_r(s0)`` and
``learned/W_h(s0)/<human>``.
``run.log``
    the ``empo`` log of the run; ``wandb/`` the W&B run (unless disabled).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from empo.analysis import compare, policy_report
from empo.evaluation import Evaluation, evaluate, json_number, most_likely_rollout
from empo.parameters import Parameters, SolverKind
from empo.parameters.world_options import build_checked_world
from empo.solution import Solution, SolutionTables
from empo.theory import power_bits
from empo.utils.run_dir import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    METRICS_NAME,
    check_output_dir,
    create_run_dir,
    default_run_name,
    interruptible,
    start_record,
    write_json_atomic,
)
from empo.utils.run_settings import RunSettings, check_extras
from empo.utils.seeding import generator, seed_everything, solution_digest
from empo.utils.solution_files import (
    DTYPES,
    save_solution,
    solution_dtype,
    solution_keys,
)
from empo.utils.loggers import LoggerKind, RunLogger, WandbMode
from empo.worlds.capabilities import (
    DescribesStates,
    DrawsPowerMaps,
    RendersStates,
    WritesAnimations,
)
from empo.worlds.rows import world_model

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`run_experiment` returns.

    Attributes
    ----------
    params
        The parameters of the run.
    run_dir
        Where everything was written.
    metrics
        The flat metrics also written to ``metrics.json``.
    status
        ``"completed"`` or ``"failed"``.
    solution
        The exact solution (solver ``"exact"``/``"both"``) or the learned one.
    duration_s
        Wall-clock seconds of the whole run.
    evaluation
        Trajectory and expectation views of the solution, when it was evaluated.
    learned
        The learned solver's result (solver ``"learned"``/``"both"``).
    world
        The world object the run built (drawings of its states in summaries).
    tables
        The solution laid out on the compiled world, when it was evaluated there.
    """

    params: Parameters
    run_dir: Path
    metrics: dict[str, Any]
    status: str
    solution: Any = None
    duration_s: float = 0.0
    evaluation: Evaluation | None = None
    learned: Any = None
    world: Any = None
    tables: SolutionTables | None = None


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _learned_train() -> Any:
    try:
        from empo.learning import train
    except ImportError as error:
        raise NotImplementedError(
            "the learned solver (solver 'learned' or 'both') needs "
            f"empo.learning.train, which cannot be imported: {error}"
        ) from None
    return train


def _flat_numbers(prefix: str, data: Any) -> dict[str, Any]:
    """Nested numbers as flat ``prefix/key`` metrics; other values are dropped."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat_numbers(f"{prefix}/{key}", value))
        return out
    if isinstance(data, torch.Tensor) and data.numel() == 1:
        data = data.item()
    if isinstance(data, (bool, int, float)):
        return {prefix: json_number(data)}
    return {}


def _draw(
    world: Any, solution: SolutionTables, evaluation: Evaluation, run_dir: Path
) -> tuple[dict[str, Path], dict[str, Path]]:
    """Plots of the evaluation, plus the world's own pictures where it offers them."""
    from empo.utils.plots import (  # matplotlib is imported only when drawing
        plot_heatmap,
        plot_power_over_time,
        plot_robot_policy,
        save_gif,
    )

    images = {
        "power_over_time": plot_power_over_time(
            evaluation, run_dir / "power_over_time.png"
        ),
        "robot_policy_s0": plot_robot_policy(
            evaluation, run_dir / "robot_policy_s0.png"
        ),
    }
    videos: dict[str, Path] = {}
    compiled = solution.world
    rows = (
        compiled.state_table
        if compiled.state_table is not None
        else compiled.state_labels
    )
    if isinstance(world, DrawsPowerMaps):
        w_h = power_bits(solution.phase2["x_h"])
        path = torch.tensor(evaluation.trajectory, device=w_h.device)
        total = w_h[path].sum(1).masked_fill(compiled.terminal[path], -math.inf)
        references = {
            "": (compiled.initial_state, "initial state"),
            "_peak": (int(path[total.argmax()]), "power peak"),
        }
        for h, name in enumerate(evaluation.humans):
            for suffix, (state, where) in references.items():
                values = world.power_heatmap(compiled, w_h, h, state)
                key = f"power_heatmap_{name}{suffix}"
                picture = None
                if isinstance(world, RendersStates):
                    picture = world.render_state(rows[state])
                images[key] = plot_heatmap(
                    values,
                    f"$W_h$ of {name} [bits], {where}",
                    run_dir / f"{key}.png",
                    background=picture,
                )
    if isinstance(world, RendersStates):
        frames = [world.render_state(rows[s]) for s in evaluation.trajectory]
        videos["rollout"] = save_gif(frames, run_dir / "rollout.gif")
    return images, videos


def _sampled_rollout(
    world: Any, learned: Solution, run_dir: Path, plots: bool
) -> dict[str, Path]:
    """``trajectory.json`` (and, with ``plots``, ``rollout.gif`` where the world
    draws) of the most likely rollout of a solution learned without enumerating the
    world."""
    model = world_model(world)
    rows, actions = most_likely_rollout(model, learned)
    names = model.action_names
    if isinstance(world, DescribesStates):
        labels = [world.describe(row) for row in rows]
    else:
        labels = [str(row.tolist()) for row in rows]
    _write_json(
        run_dir / "trajectory.json",
        {
            "states": rows.tolist(),
            "labels": labels,
            "actions": [
                {model.agents[i]: names[i][int(a)] for i, a in enumerate(step)}
                for step in actions
            ],
        },
    )
    if not plots or not isinstance(world, WritesAnimations):
        return {}
    return {"rollout": world.save_gif(list(rows), run_dir / "rollout.gif")}


def _solve(
    params: Parameters,
    world: Any,
    device: torch.device,
    progress: bool,
    tracker: RunLogger,
    run_dir: Path,
    metrics: dict[str, Any],
) -> tuple[Any, Any]:
    """Run the chosen solver(s); return ``(exact solution or None, learned or None)``."""
    exact = learned = None
    saving = (solution_keys(params.output), solution_dtype(params.output))
    if params.solver is SolverKind.BOTH:
        from empo.learning import enumerable

        if not enumerable(world):
            name = getattr(params.world.name, "value", params.world.name)
            raise ValueError(
                "solver = 'both' needs a world that can be enumerated; "
                f"world = {name!r}"
            )
    if params.solver in (SolverKind.EXACT, SolverKind.BOTH):
        from empo.exact import solve
        from empo.exact.auto import (
            compile_planned,
            discard_plan,
            plan_exact,
            solve_layered_run,
        )

        start = time.perf_counter()
        plan = plan_exact(world, params, device, scratch=run_dir)
        if plan.layered and params.solver is SolverKind.BOTH:
            discard_plan(plan)
            raise ValueError(
                "solver = 'both' compares on every state, which needs the in-memory "
                f"solver (about {plan.in_memory_gib:.1f} GiB, more than "
                f"exact.memory_gib = {params.exact.memory_gib:g})"
            )
        if plan.layered:
            layered = solve_layered_run(
                world, params, plan, device, run_dir, metrics, progress
            )
            return layered, None
        compiled = compile_planned(world, plan, params, device)
        metrics["time/compile_s"] = time.perf_counter() - start
        metrics["num_states"] = compiled.num_states
        metrics["num_joint_actions"] = compiled.num_joint_actions
        log.info("compiled %d states", compiled.num_states)
        start = time.perf_counter()
        exact = solve(
            compiled,
            params.theory,
            device=device,
            dtype=DTYPES[params.exact.dtype],
            tolerance=params.exact.tolerance,
            max_iterations=params.exact.max_iterations,
        )
        metrics["time/exact_solve_s"] = time.perf_counter() - start
        metrics.update(_flat_numbers("exact/converged", exact.converged))
        metrics.update(_flat_numbers("exact/iterations", exact.iterations))
        metrics.update({f"time/exact_{k}_s": v for k, v in exact.seconds.items()})
        metrics["solution_sha256"] = solution_digest(
            {"phase1": exact.phase1, "phase2": exact.phase2}
        )
        save_solution(exact, run_dir / "solution.pt", *saving)
    if params.solver in (SolverKind.LEARNED, SolverKind.BOTH):
        train = _learned_train()
        start = time.perf_counter()
        learned = train(
            world,
            params,
            device=device,
            progress=progress,
            logger=tracker,
            run_dir=run_dir,
            exact=exact,
        )
        metrics["time/learned_s"] = time.perf_counter() - start
        metrics.update(_flat_numbers("learned", learned.stats))
        metrics.update(_s0_metrics(world, learned))
        tables = learned.tabulate(exact.world if exact is not None else None)
        if tables is not None:
            save_solution(tables, run_dir / "solution_learned.pt", *saving)
    if params.solver is SolverKind.BOTH:
        data = {**compare(tables, exact), "policy": policy_report(learned, exact)}
        _write_json(run_dir / "comparison.json", data)
        metrics.update(_flat_numbers("comparison", data))
    return exact, learned


def _s0_metrics(world: Any, learned: Solution) -> dict[str, Any]:
    """``learned/V_r(s0)`` and ``learned/W_h(s0)/<human>`` (bits, eq. 10)."""
    model = world_model(world)
    s0 = model.initial_states()[:1]
    out = {"learned/V_r(s0)": json_number(float(learned.robot_values(s0)[0]))}
    bits = power_bits(learned.human_power(s0)[0].double())
    for h, agent in enumerate(model.humans):
        out[f"learned/W_h(s0)/{model.agents[agent]}"] = json_number(float(bits[h]))
    return out


def run_experiment(
    params: Parameters | Mapping[str, Any],
    *,
    device: torch.device | str | None = None,
    output_dir: str | Path | None = None,
    run_name: str | None = None,
    wandb_mode: WandbMode | str = "offline",
    wandb_group: str | None = None,
    logger: LoggerKind | str | Any = "wandb",
    progress: bool = True,
) -> RunResult:
    """Build the world, solve both phases, evaluate, save and log one run.

    Parameters
    ----------
    params
        The experiment (or a dict for :meth:`Parameters.from_dict`).
    device
        Where tensors live (default CPU).
    output_dir
        Parent of the run directory (default ``runs``).
    run_name
        Name of the run directory (default ``<world>-<UTC time>-<hash>``); an
        existing directory is never reused, a suffix ``-1``, ``-2``, ... is added.
    wandb_mode
        ``"offline"`` (default, no network needed), ``"online"`` or ``"disabled"``.
    wandb_group
        Optional W&B group.
    logger
        Where metrics are logged, through TorchRL's loggers: ``"wandb"`` (default,
        in ``wandb_mode``), ``"tensorboard"``, ``"csv"``, ``"none"``, or a
        ``torchrl.record.loggers.Logger`` to log into (:mod:`empo.utils.loggers`).
    progress
        Show progress bars (learned solver).

    What the run writes (solution quantities, their precision, pictures) is chosen
    by ``params.output`` (:class:`~empo.parameters.OutputParameters`).

    Returns
    -------
    RunResult
        Parameters, run directory, metrics, status, solution and duration.

    Raises
    ------
    ParameterError
        For invalid parameters, world options, map files or a world its builder
        refuses (before anything is written).
    RunDirError
        For an output directory that is a file (before anything is written).
    ValueError
        For an invalid W&B mode or logger (before anything is written).
    MissingExtraError
        For ``output.plots`` without matplotlib, or a logger whose package is not
        installed (before anything is written).
    RunInterrupted, KeyboardInterrupt
        On SIGTERM or SIGINT; ``metrics.json`` then has ``status`` ``"interrupted"``
        and the run can be continued with :func:`empo.resume.resume_experiment`.
    Exception
        Whatever failed during the run; ``metrics.json`` then has ``status``
        ``"failed"`` and the error text, and ``run.log`` the traceback.
    """
    if not isinstance(params, Parameters):
        params = Parameters.from_dict(params)
    settings = RunSettings.parse(device, wandb_mode, wandb_group, logger, progress)
    check_extras(params, settings)
    world = build_checked_world(params.world)
    parent = Path(output_dir or "runs")
    check_output_dir(parent)
    name = run_name or default_run_name(params)

    def make_dir() -> Path:
        run_dir = create_run_dir(parent, name)
        params.save(run_dir / "params.yaml")
        return run_dir

    return execute_in_run_dir(params, world, make_dir, settings)


def execute_in_run_dir(
    params: Parameters,
    world: Any,
    make_dir: Callable[[], Path],
    settings: RunSettings,
) -> RunResult:
    """Run in the directory ``make_dir`` creates (or finds, on resume, see
    :func:`empo.resume.resume_experiment`) and keep its ``metrics.json`` true: a
    signal that arrives before the status file is written takes effect right after
    it."""
    start = time.perf_counter()
    target = settings.device
    with interruptible(armed=False) as stop:
        run_dir = make_dir()
        metrics: dict[str, Any] = start_record(torch.get_num_threads(), str(target))
        write_json_atomic(run_dir / METRICS_NAME, metrics)
        package_log = logging.getLogger("empo")
        handler = logging.FileHandler(run_dir / "run.log", encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        handler.setLevel(logging.INFO)
        previous_level = package_log.level
        package_log.addHandler(handler)
        if package_log.getEffectiveLevel() > logging.INFO:
            package_log.setLevel(logging.INFO)
        tracker = RunLogger()
        try:
            stop.arm()
            log.info("run %s: %s", run_dir.name, json.dumps(params.to_dict()))
            tracker = RunLogger.start(
                settings.logger,
                params,
                run_dir,
                settings.wandb_mode,
                settings.wandb_group,
            )
            seed_everything(params.seed)
            exact, learned = _solve(
                params,
                world,
                target,
                settings.progress,
                tracker,
                run_dir,
                metrics,
            )
            solution = exact if exact is not None else learned
            tables = solution.tabulate()
            evaluation = None
            images: dict[str, Path] = {}
            videos: dict[str, Path] = {}
            if tables is not None:
                evaluation = evaluate(
                    tables,
                    params.evaluation,
                    params.theory,
                    generator(params.seed, "evaluation", target),
                )
                metrics.update(evaluation.metrics())
                _write_json(
                    run_dir / "trajectory.json",
                    {
                        "states": evaluation.trajectory,
                        "labels": evaluation.trajectory_labels,
                        "actions": evaluation.trajectory_actions,
                    },
                )
                if params.output.plots:
                    images, videos = _draw(world, tables, evaluation, run_dir)
            else:
                videos = _sampled_rollout(world, solution, run_dir, params.output.plots)
            final = {**metrics, "status": COMPLETED}
            final["duration_s"] = time.perf_counter() - start
            if evaluation is not None:
                tracker.log_series(_series(evaluation))
            with tempfile.TemporaryDirectory(dir=run_dir) as staging:
                copy = Path(staging) / METRICS_NAME
                write_json_atomic(copy, final)  # the logger keeps the final status
                tracker.log_results(
                    {
                        k: v
                        for k, v in final.items()
                        if "/expected/" not in k and "/trajectory/" not in k
                    },
                    images,
                    videos,
                    [run_dir / "params.yaml", copy],
                )
            tracker.finish(0)
            stop.armed = False  # every output is written: a late signal waits
            metrics = {**final, "duration_s": time.perf_counter() - start}
            write_json_atomic(run_dir / METRICS_NAME, metrics)
            log.info("run %s completed in %.2f s", run_dir.name, metrics["duration_s"])
            result = RunResult(
                params=params,
                run_dir=run_dir,
                metrics=metrics,
                status=COMPLETED,
                solution=solution,
                duration_s=metrics["duration_s"],
                evaluation=evaluation,
                learned=learned,
                world=world,
                tables=tables,
            )
        except BaseException as caught:
            error = stop.error(caught)
            interrupted = isinstance(error, KeyboardInterrupt)
            metrics["status"] = INTERRUPTED if interrupted else FAILED
            metrics["error"] = f"{type(error).__name__}: {error}".rstrip(": ")
            metrics["duration_s"] = time.perf_counter() - start
            write_json_atomic(run_dir / METRICS_NAME, metrics)
            if interrupted:
                log.warning("run %s interrupted (%s)", run_dir.name, metrics["error"])
            else:
                log.exception("run %s failed", run_dir.name)
            _finish_quietly(tracker)
            if hasattr(error, "add_note"):
                error.add_note(f"(run directory: {run_dir}; see run.log)")
            if error is not caught:
                raise error
            raise
        finally:
            package_log.removeHandler(handler)
            package_log.setLevel(previous_level)
            handler.close()
    stop.resend()
    return result


def _finish_quietly(tracker: RunLogger) -> None:
    """End the logger of a failed or interrupted run; a failure here is logged,
    never raised over the run's own error."""
    try:
        tracker.finish(1)
    except Exception:
        log.exception("the logger did not finish cleanly")


def _series(evaluation: Evaluation) -> dict[str, list[float]]:
    """Per-time-step curves of an evaluation, for W&B."""
    series = {
        "u_r_expected": evaluation.u_r_expected.tolist(),
        "alive": evaluation.alive.tolist(),
    }
    for h, name in enumerate(evaluation.humans):
        series[f"w_h_expected/{name}"] = evaluation.w_h_expected[:, h].tolist()
        live = evaluation.final_step() + 1
        series[f"w_h_trajectory/{name}"] = evaluation.w_h_trajectory[:live, h].tolist()
    return series
