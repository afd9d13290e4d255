"""Sweep specifications: a base :class:`~empo.Parameters` and a set of overrides.

A sweep is a base parameter set plus the runs to make from it, each run a dict of
dotted overrides (``{"theory.beta_r": 5, "seed": 22}``). The runs come from

- a *grid* ``{"theory.beta_r": [1, 5, 10], "seed": [12, 22, 32]}`` (the Cartesian
  product, the last path varying fastest), or a list of such grids (their union),
- an explicit list of overrides, or
- both (grid runs first); a run listed twice is made once.

Every run is validated (``base.with_overrides``) before any run starts, so a path
that does not exist or a value out of range fails the whole sweep at once with the
run and field at fault. Each run gets a stable name (:func:`run_name`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from empo.parameters import ParameterError, Parameters
from empo.parameters.files import read_config_file
from empo.parameters.world_options import check_world_inputs

SWEEP_KEYS = ("name", "base", "grid", "overrides")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


class SweepError(ValueError):
    """A sweep specification, grid or sweep directory that cannot be used."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Parameters
    ----------
    name
        Stable run name (:func:`run_name`), also its directory and table key.
    overrides
        The dotted overrides applied to the sweep's base parameters.
    params
        The validated parameters of the run.
    """

    name: str
    overrides: dict[str, Any]
    params: Parameters


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: a name, base parameters and the runs made from them.

    Build one with :meth:`from_grid`, :meth:`from_dict` or :func:`load_sweep`.

    Parameters
    ----------
    name
        Sweep name: the prefix of run names and the W&B group.
    base
        Parameters every run starts from.
    runs
        The runs, in order.
    """

    name: str
    base: Parameters
    runs: tuple[SweepRun, ...]

    @classmethod
    def from_grid(
        cls,
        name: str,
        base: Parameters,
        grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]] = (),
        overrides: Sequence[Mapping[str, Any]] = (),
    ) -> SweepSpec:
        """Expand a grid (or list of grids) and explicit overrides into runs.

        Parameters
        ----------
        name
            Sweep name (letters, digits, ``._=+-``).
        base
            Parameters every run starts from.
        grid
            ``{dotted path: [values]}`` or a list of such grids.
        overrides
            Explicit runs, each ``{dotted path: value}``.

        Returns
        -------
        SweepSpec
            With every run validated; with neither grid nor overrides, one run of
            the base.

        Raises
        ------
        SweepError
            On a malformed grid, a path that does not exist or a value that fails
            validation; the message names the run and the field.
        """
        if not name or _UNSAFE.search(name):
            raise SweepError(
                f"sweep name {name!r} must be non-empty and use only letters, "
                "digits and ._=+-"
            )
        grids = [grid] if isinstance(grid, Mapping) else list(grid)
        combos = [combo for g in grids for combo in expand_grid(g)]
        for number, entry in enumerate(overrides):
            if not isinstance(entry, Mapping):
                raise SweepError(
                    f"overrides[{number}] must be a mapping of dotted paths to "
                    f"values, got {type(entry).__name__}"
                )
            combos.append(dict(entry))
        if not combos:
            combos = [{}]
        runs: dict[str, SweepRun] = {}
        errors: list[str] = []
        checked: dict[str, str | None] = {}
        for combo in combos:
            label = run_name(name, combo)
            if label in runs:
                continue
            try:
                params = base.with_overrides(combo)
                _check_inputs(params, checked)
                runs[label] = SweepRun(label, combo, params)
            except (ParameterError, TypeError, ValueError) as error:
                errors.append(f"run {label} ({format_overrides(combo)}): {error}")
        if errors:
            shown = "\n  ".join(errors[:5])
            more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
            raise SweepError(
                f"sweep {name!r}: {len(errors)} of {len(combos)} runs are invalid:"
                f"\n  {shown}{more}"
            )
        return cls(name=name, base=base, runs=tuple(runs.values()))

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base_dir: Path | None = None
    ) -> SweepSpec:
        """Build a sweep from the YAML/JSON form ``{name, base, grid, overrides}``.

        Parameters
        ----------
        data
            ``name`` (str), ``base`` (a :class:`~empo.Parameters` dict, or the path
            of a parameter file), ``grid`` (mapping or list of mappings) and
            ``overrides`` (list of mappings); all optional except ``name``.
        base_dir
            Directory a relative ``base`` file path is resolved against.

        Raises
        ------
        SweepError
            On an unknown key, invalid base parameters or an invalid run.
        """
        if not isinstance(data, Mapping):
            raise SweepError(f"a sweep must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(SWEEP_KEYS))
        if unknown:
            raise SweepError(
                f"unknown sweep key(s) {', '.join(map(str, unknown))}; "
                f"allowed: {', '.join(SWEEP_KEYS)}"
            )
        if "name" not in data:
            raise SweepError("the sweep has no 'name'")
        base_data = data.get("base") or {}
        try:
            if isinstance(base_data, str):
                path = Path(base_data)
                base = Parameters.load(path if base_dir is None else base_dir / path)
            else:
                base = Parameters.from_dict(base_data)
        except (ParameterError, TypeError) as error:
            raise SweepError(f"base parameters are invalid: {error}") from None
        grid = data.get("grid") or []
        if not isinstance(grid, (Mapping, list)):
            raise SweepError(
                f"'grid' must be a mapping or a list of mappings, got "
                f"{type(grid).__name__}"
            )
        overrides = data.get("overrides") or []
        if not isinstance(overrides, list):
            raise SweepError(
                f"'overrides' must be a list of mappings, got "
                f"{type(overrides).__name__}"
            )
        return cls.from_grid(str(data["name"]), base, grid, overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: name, base parameters and every run's name and overrides."""
        return {
            "name": self.name,
            "base": self.base.to_dict(),
            "runs": [{"run": r.name, "overrides": r.overrides} for r in self.runs],
        }


def _check_inputs(params: Parameters, checked: dict[str, str | None]) -> None:
    """:func:`~empo.parameters.world_options.check_world_inputs` once per distinct
    world (``checked`` maps a world's JSON to its error, or ``None``)."""
    world = params.world
    key = json.dumps(world.to_dict(), sort_keys=True, default=str)
    if key not in checked:
        try:
            check_world_inputs(world.name, world.options)
            checked[key] = None
        except ParameterError as error:
            checked[key] = str(error)
    if checked[key] is not None:
        raise ParameterError(checked[key])


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of a grid, the last path varying fastest.

    Parameters
    ----------
    grid
        ``{dotted path: [values]}``; each value list must be a non-empty list.

    Raises
    ------
    SweepError
        If the grid is not a mapping or a value is not a non-empty list.
    """
    if not isinstance(grid, Mapping):
        raise SweepError(
            f"a grid must be a mapping of dotted paths to value lists, got "
            f"{type(grid).__name__}"
        )
    for path, values in grid.items():
        if not isinstance(path, str):
            raise SweepError(f"grid path {path!r} must be a string")
        if not isinstance(values, (list, tuple)) or not values:
            raise SweepError(
                f"grid[{path!r}] must be a non-empty list of values, got {values!r}"
            )
    paths = list(grid)
    return [dict(zip(paths, combo)) for combo in itertools.product(*grid.values())]


def format_overrides(overrides: Mapping[str, Any]) -> str:
    """``theory.beta_r=5, seed=3`` (or ``base`` for no overrides)."""
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "base"


def run_name(sweep_name: str, overrides: Mapping[str, Any]) -> str:
    """Stable, file-system safe name of a run.

    ``<sweep>-<last path component>=<value>_...-<hash>`` (paths sorted), where the
    readable middle part is shortened to 60 characters and ``hash`` is the first 8
    hex digits of the SHA-256 of the overrides' canonical JSON (sorted keys), so equal
    overrides give equal names in every process and on every machine. Values are
    compared as written: ``1`` and ``1.0`` name different runs.

    Parameters
    ----------
    sweep_name
        The sweep's name.
    overrides
        The run's dotted overrides.
    """
    canonical = json.dumps(
        overrides, sort_keys=True, separators=(",", ":"), default=str
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]
    readable = "_".join(
        f"{path.rsplit('.', 1)[-1]}={json.dumps(value, sort_keys=True, default=str)}"
        for path, value in sorted(overrides.items())
    )
    readable = _UNSAFE.sub("", readable)[:60] or "base"
    return f"{sweep_name}-{readable}-{digest}"


def load_sweep(path: Path | str) -> SweepSpec:
    """Read a sweep file (YAML or JSON; see :meth:`SweepSpec.from_dict`).

    Raises
    ------
    SweepError
        If the file is missing, malformed or describes an invalid sweep; the
        message names the file.
    """
    path = Path(path)
    try:
        data = read_config_file(path, "sweep file")
    except ParameterError as error:
        raise SweepError(str(error)) from None
    try:
        return SweepSpec.from_dict(data or {}, base_dir=path.parent)
    except SweepError as error:
        raise SweepError(f"{path}: {error}") from None
