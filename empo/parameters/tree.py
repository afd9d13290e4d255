"""The :class:`Parameters` tree: everything that determines a run's result.

Per-run machine settings (device, output directory, W&B mode, progress bars) are
arguments of :func:`empo.run_experiment`, never parameters (DESIGN.md, "Parameters").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

import empo
from empo.parameters.blocks import (
    EvaluationParameters,
    ExactSolverParameters,
    OutputParameters,
    SolverKind,
    WorldParameters,
)
from empo.parameters.files import read_config_file
from empo.parameters.learning import Phase1Parameters, Phase2Parameters
from empo.parameters.migrations import migrate
from empo.parameters.theory import TheoryParameters
from empo.parameters.validation import (
    Block,
    ParameterError,
    closest,
    coerce,
    unchecked_init,
)

_BLOCKS: dict[str, type[Block]] = {
    "world": WorldParameters,
    "theory": TheoryParameters,
    "exact": ExactSolverParameters,
    "phase1": Phase1Parameters,
    "phase2": Phase2Parameters,
    "evaluation": EvaluationParameters,
    "output": OutputParameters,
}
_FREE_FORM = ("world", "options")
_MAX_SEED = 2**63 - 1


@unchecked_init
@dataclass(frozen=True)
class Parameters:
    """All parameters of an experiment, one validated block per concern.

    Every block accepts an instance or a nested mapping (a bare string for ``world``
    is its name), e.g. ``Parameters(world="commitment", theory={"beta_r": 10})``.

    Parameters
    ----------
    world
        Which registered world to build (:class:`WorldParameters`).
    solver
        ``"exact"``, ``"learned"`` or ``"both"`` (:class:`SolverKind`).
    theory
        Normative and behavioural parameters of THEORY.md (:class:`TheoryParameters`).
    exact
        Numerics of the exact solver (:class:`ExactSolverParameters`).
    phase1, phase2
        Training knobs of the learned solver.
    seed
        The one seed every random choice derives from, ``0 ≤ seed < 2**63``.
    evaluation
        How the solution is evaluated (:class:`EvaluationParameters`).
    output
        What the run writes: solution quantities, their precision, pictures
        (:class:`OutputParameters`).

    Raises
    ------
    ParameterError
        On an invalid value or unknown key, naming the dotted field.
    """

    world: WorldParameters = field(default_factory=WorldParameters)
    solver: SolverKind = SolverKind.EXACT
    theory: TheoryParameters = field(default_factory=TheoryParameters)
    exact: ExactSolverParameters = field(default_factory=ExactSolverParameters)
    phase1: Phase1Parameters = field(default_factory=Phase1Parameters)
    phase2: Phase2Parameters = field(default_factory=Phase2Parameters)
    seed: int = 0
    evaluation: EvaluationParameters = field(default_factory=EvaluationParameters)
    output: OutputParameters = field(default_factory=OutputParameters)

    def __post_init__(self) -> None:
        for name, block in _BLOCKS.items():
            value = getattr(self, name)
            if name == "world" and isinstance(value, str):
                value = {"name": value}
            object.__setattr__(self, name, block.from_dict(value))
        object.__setattr__(self, "solver", coerce("solver", SolverKind, self.solver))
        seed = coerce("seed", int, self.seed)
        if not 0 <= seed <= _MAX_SEED:
            raise ParameterError(
                f"seed = {seed!r} is out of range; allowed: 0 ≤ seed < 2**63"
            )
        object.__setattr__(self, "seed", seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with ``"version"``; ``inf`` is written ``"inf"``.

        Returns
        -------
        dict
            ``Parameters.from_dict(p.to_dict()) == p`` for every ``p``.
        """
        data: dict[str, Any] = {"version": empo.__version__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.to_dict() if isinstance(value, Block) else value
        data["solver"] = self.solver.value
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Parameters:
        """Build parameters from a (possibly older) serialised dict.

        Parameters
        ----------
        data
            As written by :meth:`to_dict`; missing keys take their defaults, a
            missing ``"version"`` means the installed version, older versions are
            upgraded by the registered migrations. Anything but a mapping (e.g. a
            YAML list read from a file) is refused with a :class:`ParameterError`.

        Raises
        ------
        ParameterError
            On data that is not a mapping, an unknown key (naming the closest valid
            keys) or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise ParameterError(
                f"parameters must be a mapping of blocks, got {type(data).__name__}"
            )
        data = migrate(dict(data), empo.__version__)
        data.pop("version")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                raise ParameterError(
                    f"unknown parameter {key}; {closest(str(key), names + ['version'])}"
                )
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        """Write the parameters to a ``.yaml``/``.yml`` or ``.json`` file.

        Parameters
        ----------
        path
            Destination; the suffix picks the format.

        Returns
        -------
        Path
            The path written.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        elif suffix == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            raise ParameterError(
                f"cannot save parameters to {path}: suffix {suffix!r} is not "
                "allowed; allowed: .yaml, .yml, .json"
            )
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Parameters:
        """Read parameters from a YAML or JSON file.

        Parameters
        ----------
        path
            A file written by :meth:`save` or by hand.

        Raises
        ------
        ParameterError
            If the file is missing, a directory, not UTF-8 text, malformed, holds a
            key twice or holds invalid parameters; the message names the file.
        """
        path = Path(path)
        data = read_config_file(path, "parameter file")
        if data is None:
            data = {}
        try:
            return cls.from_dict(data)
        except ParameterError as error:
            raise ParameterError(f"{path}: {error}") from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> Parameters:
        """A new validated copy with dotted paths replaced.

        Parameters
        ----------
        overrides
            ``{"theory.beta_r": 5, "seed": 3, "world.options.size": 4}``; a block name
            alone replaces the whole block.

        Raises
        ------
        ParameterError
            On an unknown path (naming the closest valid paths) or invalid value.
        """
        data = self.to_dict()
        for path, value in overrides.items():
            keys = self._check_path(path)
            node = data
            for key in keys[:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ParameterError(f"{path}: {key} is not a mapping")
            node[keys[-1]] = value
        return Parameters.from_dict(data)

    def get(self, path: str) -> Any:
        """The value at a dotted path, e.g. ``p.get("theory.beta_r")``.

        Raises
        ------
        ParameterError
            On an unknown path, naming the closest valid paths.
        """
        keys = self._check_path(path)
        value: Any = self
        for key in keys:
            if isinstance(value, dict):
                if key not in value:
                    raise ParameterError(
                        f"unknown parameter {path}; {closest(key, list(value))}"
                    )
                value = value[key]
            else:
                value = getattr(value, key)
        return value

    @staticmethod
    def paths() -> list[str]:
        """All valid dotted parameter paths (blocks and their fields)."""
        result = ["solver", "seed"]
        for name, block in _BLOCKS.items():
            result.append(name)
            result.extend(f"{name}.{f.name}" for f in dataclasses.fields(block))
        return result

    def _check_path(self, path: str) -> list[str]:
        keys = str(path).split(".")
        if tuple(keys[:2]) == _FREE_FORM and len(keys) > 2 and all(keys):
            return keys
        if ".".join(keys) not in self.paths():
            raise ParameterError(
                f"unknown parameter {path}; "
                f"{closest(str(path), self.paths(), list_valid=False)}"
            )
        return keys
