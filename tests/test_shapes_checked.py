"""The theory, exact-solver and learning tests again, with every annotation checked.

``pytest --jaxtyping-packages=empo,beartype.beartype`` imports ``empo`` through
jaxtyping's import hook, so that every call of an annotated function checks its
arguments and return value, tensor shapes included (``Float[Tensor, "state
action"]``), with beartype. It runs in a subprocess (the hook must be in place before
``empo`` is first imported, which this process has done already), on the tests of
the equations, the exact solver and the learned solver that are not marked slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["tests/test_theory.py", "tests/exact", "tests/learning"]


@pytest.mark.slow
def test_theory_exact_and_learning_tests_pass_with_checked_shapes() -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        "--jaxtyping-packages=empo,beartype.beartype",
        "-W",
        "ignore::beartype.roar.BeartypeDecorHintPep585DeprecationWarning",
        *CHECKED,
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
