"""Command line: ``python -m empo [run|defaults|sweep] ...``.

With no arguments the default experiment runs (:data:`DEFAULT_PARAMETERS`: the world
:data:`~empo.parameters.DEFAULT_WORLD`, exact solver) and a one-screen summary is
printed. Bad input ends with one message on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

import torch
import yaml

from empo.parameters import ParameterError, Parameters
from empo.parameters.files import load_yaml
from empo.resume import resume_experiment
from empo.run import RunResult, run_experiment
from empo.summary import format_summary
from empo.sweep.cli import add_sweep_parser, run_sweep_command
from empo.utils.extras import MissingExtraError
from empo.utils.loggers import LoggerKind, WandbMode
from empo.utils.run_dir import RunDirError, RunInterrupted, read_metrics

DEFAULT_PARAMETERS = Parameters()
"""The embedded default experiment of ``python -m empo``."""

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130
"""SIGINT's conventional status; SIGTERM gives 128 + 15."""
MAX_THREADS = 1024
"""Most torch threads a resumed run asks for (torch crashes on absurd counts)."""


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``--set KEY=VALUE``; the value is read as a YAML scalar or flow value.

    Parameters
    ----------
    text
        E.g. ``"theory.beta_r=10"``, ``"world=key_door"``, ``"theory.beta_h=.inf"``.

    Raises
    ------
    ParameterError
        If there is no ``=``, the key is empty or the value is not valid YAML.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParameterError(
            f"--set {text!r}: expected KEY=VALUE, e.g. --set theory.beta_r=10"
        )
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ParameterError(f"--set {text!r}: value is not valid YAML: {detail}")
    return key, value


def _default_wandb_mode() -> str:
    """``$WANDB_MODE`` when it names a mode of :class:`WandbMode`, else offline."""
    mode = os.environ.get("WANDB_MODE", "")
    allowed = [m.value for m in WandbMode]
    return mode if mode in allowed else WandbMode.OFFLINE.value


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="parameter file (.yaml/.yml/.json); omitted keys keep their defaults",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one parameter by dotted path, value parsed as YAML "
        "(repeatable), e.g. --set theory.beta_r=10 --set seed=3",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="torch device: cpu (default; with --resume the run's own), cuda, "
        "cuda:1, or auto (cuda if available)",
    )
    parser.add_argument(
        "--wandb",
        choices=[m.value for m in WandbMode],
        default=_default_wandb_mode(),
        help="Weights & Biases mode: offline (default; no network, sync later), "
        "online, or disabled (default: $WANDB_MODE if set)",
    )
    parser.add_argument("--wandb-group", help="W&B group of the run")
    parser.add_argument(
        "--logger",
        choices=[k.value for k in LoggerKind],
        default=LoggerKind.WANDB.value,
        help="where metrics go, through TorchRL's loggers: wandb (default, in the "
        "--wandb mode), tensorboard (<run dir>/tensorboard), csv (<run dir>/csv) "
        "or none",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("runs"),
        help="parent directory of run directories (default: runs)",
    )
    parser.add_argument(
        "--run-name",
        help="run directory name (default: <world>-<UTC time>-<hash>; a suffix is "
        "added if it exists)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--threads",
        type=_thread_count,
        default=None,
        help="torch CPU threads, 1 to the number of CPUs (default: 1, safe on a "
        "shared machine where more threads stall each other; with --resume the "
        "run's own count, which learned results depend on)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted, failed or killed run in its directory (its "
        "params.yaml; a learned run from its checkpoint) instead of starting one",
    )


def _thread_count(text: str) -> int:
    """An argparse type for torch thread counts: 1 to the number of CPUs."""
    limit = os.cpu_count() or 1
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= limit:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 1 to {limit} (the number of CPUs), got {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m empo``."""
    parser = argparse.ArgumentParser(
        prog="python -m empo",
        description="Robot policies that softly maximise aggregate human power. "
        "Without a command, runs the default experiment and prints a summary.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = subparsers.add_parser(
        "run",
        help="run one experiment",
        description="Run one experiment: build the world, solve both phases, "
        "evaluate, and write a run directory.",
    )
    _add_run_options(run)
    subparsers.add_parser(
        "defaults",
        help="print the default parameters as YAML",
        description="Print the default parameters as YAML (a template for --config).",
    )
    add_sweep_parser(subparsers)
    return parser


def _resolve_device(name: str) -> str:
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _parameters(args: argparse.Namespace) -> Parameters:
    params = Parameters.load(args.config) if args.config else DEFAULT_PARAMETERS
    overrides = dict(parse_assignment(text) for text in args.overrides)
    return params.with_overrides(overrides) if overrides else params


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.resume is not None:
        result = _resume(args)
    else:
        params = _parameters(args)
        torch.set_num_threads(args.threads or 1)
        result = run_experiment(
            params,
            device=_resolve_device(args.device or "cpu"),
            output_dir=args.output_dir,
            run_name=args.run_name,
            **_output_options(args),
        )
    print(format_summary(result), file=out)
    return 0


def _output_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords ``run`` and ``run --resume`` pass alike: where the run logs
    (what it writes is the parameter block ``output``)."""
    return {
        "wandb_mode": args.wandb,
        "wandb_group": args.wandb_group,
        "logger": args.logger,
        "progress": not args.no_progress,
    }


def _resume(args: argparse.Namespace) -> RunResult:
    """``run --resume RUN_DIR``: the run's own parameters, threads and device."""
    given = [
        flag
        for flag, value in (
            ("--config", args.config),
            ("--set", args.overrides),
            ("--run-name", args.run_name),
        )
        if value
    ]
    if given:
        raise ParameterError(
            f"--resume takes the parameters of the run directory; drop {given[0]}"
        )
    recorded = read_metrics(args.resume) or {}
    threads = args.threads or recorded.get("threads") or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise RunDirError(f"{args.resume}/metrics.json: threads = {threads!r}")
    torch.set_num_threads(min(threads, MAX_THREADS))
    return resume_experiment(
        args.resume,
        device=_resolve_device(args.device or recorded.get("device") or "cpu"),
        **_output_options(args),
    )


@contextlib.contextmanager
def _console_logging() -> Iterator[None]:
    """Warnings (without tracebacks) on stderr; torchrl's INFO lines silenced."""
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("empo: %(levelname)s: %(message)s"))
    console.addFilter(lambda record: record.exc_info is None)
    root = logging.getLogger()
    root.addHandler(console)
    torchrl_log = logging.getLogger("torchrl")
    torchrl_level = torchrl_log.level
    torchrl_log.setLevel(logging.WARNING)
    added = "RL_LOGGING_LEVEL" not in os.environ
    if added:  # torchrl reads it when first imported (lazily, by the learned solver)
        os.environ["RL_LOGGING_LEVEL"] = "WARNING"
    try:
        yield
    finally:
        root.removeHandler(console)
        torchrl_log.setLevel(torchrl_level)
        if added:
            os.environ.pop("RL_LOGGING_LEVEL", None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m empo``; returns the exit status.

    Parameters
    ----------
    argv
        Arguments without the program name (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    with _console_logging():
        return _dispatch(parser, args)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the chosen command, turning errors into one line and an exit status."""
    try:
        if args.command == "defaults":
            print(yaml.safe_dump(Parameters().to_dict(), sort_keys=False), end="")
            return 0
        if args.command == "sweep":
            return run_sweep_command(args)
        if args.command is None:
            args = parser.parse_args(["run"])
        return _run(args, sys.stdout)
    except (
        ParameterError,
        RunDirError,
        NotImplementedError,
        MissingExtraError,
    ) as error:
        print(f"empo: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as error:
        notes = " ".join(getattr(error, "__notes__", []))
        hint = f" {notes}; continue it with --resume RUN_DIR" if notes else ""
        print(f"empo: interrupted{hint}", file=sys.stderr)
        if isinstance(error, RunInterrupted):
            return 128 + error.signal_number
        return EXIT_INTERRUPTED
    except Exception as error:
        notes = " ".join(getattr(error, "__notes__", []))
        print(
            f"empo: run failed: {type(error).__name__}: {error} {notes}".rstrip(),
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED
