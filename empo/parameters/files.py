"""Reading parameter and sweep files: text only, safe YAML, no duplicate keys.

YAML is read with a subclass of ``yaml.SafeLoader`` (no Python objects are ever
built) that refuses a mapping holding the same key twice, which plain YAML loaders
accept silently, keeping the last value. JSON is read with the same rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from empo.parameters.validation import ParameterError

__all__ = ["load_yaml", "read_config_file", "read_text_file"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports an unhashable key
            if key in seen:
                first = seen[key]
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {first.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, refusing duplicate keys.

    Parameters
    ----------
    text
        The YAML document.

    Raises
    ------
    yaml.YAMLError
        On malformed YAML or a duplicate key (with its line).
    """
    return yaml.load(text, Loader=_UniqueKeyLoader)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r}")
        data[key] = value
    return data


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a file given by the user.

    Parameters
    ----------
    path
        The file.
    what
        What it is, for messages (``"parameter file"``, ``"sweep file"``).

    Raises
    ------
    ParameterError
        If the path is missing, a directory, unreadable or not UTF-8 text; the
        message names the file.
    """
    if path.is_dir():
        raise ParameterError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise ParameterError(f"{what} {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ParameterError(f"{what} {path} cannot be read: {error.strerror}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParameterError(
            f"{what} {path} is not a UTF-8 text file (byte {error.start} is "
            f"{data[error.start]:#04x}); expected YAML or JSON"
        ) from None


def read_config_file(path: Path, what: str) -> Any:
    """Read a YAML (or ``.json``) file given by the user, refusing duplicate keys.

    Parameters
    ----------
    path
        The file.
    what
        What it is, for messages.

    Raises
    ------
    ParameterError
        On a missing or binary file, malformed content or a duplicate key, naming
        the file.
    """
    text = read_text_file(path, what)
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text, object_pairs_hook=_unique_pairs)
        return load_yaml(text)
    except (yaml.YAMLError, ValueError) as error:
        detail = " ".join(str(error).split())
        raise ParameterError(f"{what} {path} is malformed: {detail}") from None
