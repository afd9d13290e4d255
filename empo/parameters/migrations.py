"""Upgrades of serialised parameter dicts written by older versions of empo.

A migration is registered with ``@migration(from_version)``: it takes the dict of a
file written by version ``from_version`` *or older* (the last version with the old
layout) and returns the dict in the layout of the next version. :func:`migrate`
applies every migration whose ``from_version`` is at least the file's version, oldest
first, then stamps the current version.
"""

from __future__ import annotations

from typing import Any, Callable

from empo.parameters.validation import ParameterError

Migration = Callable[[dict[str, Any]], dict[str, Any]]

MIGRATIONS: dict[str, tuple[Migration, ...]] = {}
"""Registered migrations by ``from_version``, in registration order (several parts
of the package may upgrade the files of one version)."""


def parse_version(version: Any) -> tuple[int, ...]:
    """Parse ``"MAJOR.MINOR.PATCH"`` into a comparable tuple.

    Parameters
    ----------
    version
        The version string of a serialised dict.

    Raises
    ------
    ParameterError
        If the version is not dot-separated non-negative integers.
    """
    parts = str(version).split(".")
    if not all(p.isdigit() for p in parts):
        raise ParameterError(
            f"version = {version!r} is not a version; allowed: e.g. '0.1.0'"
        )
    return tuple(int(p) for p in parts)


def migration(from_version: str) -> Callable[[Migration], Migration]:
    """Register a migration of dicts written by ``from_version`` or older.

    Parameters
    ----------
    from_version
        The last version whose files need this upgrade.
    """
    parse_version(from_version)

    def register(function: Migration) -> Migration:
        MIGRATIONS[from_version] = (*MIGRATIONS.get(from_version, ()), function)
        return function

    return register


def migrate(data: dict[str, Any], current: str) -> dict[str, Any]:
    """Upgrade a serialised dict to the layout of version ``current``.

    Parameters
    ----------
    data
        The dict, with its ``"version"`` key (missing means ``current``).
    current
        The running package version.

    Returns
    -------
    dict
        A new dict in the current layout, ``"version"`` set to ``current``.

    Raises
    ------
    ParameterError
        If the dict comes from a newer empo than ``current``.
    """
    data = dict(data)
    version = parse_version(data.get("version", current))
    if version > parse_version(current):
        raise ParameterError(
            f"version = {data['version']!r} is newer than this empo ({current}); "
            "allowed: versions up to the installed one (upgrade empo)"
        )
    for from_version in sorted(MIGRATIONS, key=parse_version):
        if version <= parse_version(from_version) < parse_version(current):
            for upgrade in MIGRATIONS[from_version]:
                data = upgrade(data)
    data["version"] = current
    return data
