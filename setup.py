"""Installation script for empo.

Install requirements are version ranges, so that empo installs next to other
packages; ``requirements.txt`` and ``requirements_dev.txt`` pin the exact versions of
a tested environment (CI, the container). Optional features are extras
(``pip install 'empo[ray]'``; see :mod:`empo.utils.extras`).
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "torch>=2.7,<3",
    "torchrl>=0.14,<0.15",
    "tensordict>=0.14,<0.15",
    "jaxtyping>=0.3,<0.4",
    "numpy>=1.26,<3",
    "PyYAML>=6,<7",
    "imageio>=2.30,<3",
    "pillow>=10",
    "tqdm>=4.60,<5",
]
EXTRAS_REQUIRE = {
    "plots": ["matplotlib>=3.8,<4"],
    "wandb": ["wandb>=0.19,<1"],
    "tensorboard": ["tensorboard>=2.15,<3"],
    "ray": ["ray>=2.40,<3"],
}
EXTRAS_REQUIRE["all"] = sorted({r for reqs in EXTRAS_REQUIRE.values() for r in reqs})

setup(
    name="empo",
    version="0.3.0",
    description=(
        "Policies that softly maximise aggregate human power "
        "(Heitzig & Potham, arXiv:2508.00159), on TorchRL and TensorDict."
    ),
    packages=find_packages(include=["empo", "empo.*"]),
    package_data={
        "empo": ["py.typed"],
        "empo.worlds.multigrid": ["worlds/*.yaml"],
    },
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["empo=empo.__main__:main"]},
)
