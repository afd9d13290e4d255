"""The code base is formatted with black (88 columns); CI fails otherwise."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_black_check() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "black",
            "--check",
            "--quiet",
            "empo",
            "tests",
            "scripts",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
