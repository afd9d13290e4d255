"""Installation script for empo."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
REQUIREMENTS = [
    line.strip()
    for line in (ROOT / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="empo",
    version="0.1.0",
    description=(
        "Policies that softly maximise aggregate human power "
        "(Heitzig & Potham, arXiv:2508.00159), on TorchRL and TensorDict."
    ),
    packages=find_packages(include=["empo", "empo.*"]),
    package_data={"empo.worlds.multigrid": ["worlds/*.yaml"]},
    python_requires=">=3.10",
    install_requires=REQUIREMENTS,
    entry_points={"console_scripts": ["empo=empo.__main__:main"]},
)
