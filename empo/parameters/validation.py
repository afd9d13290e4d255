"""Validation shared by every parameter block.

A block is a frozen dataclass deriving from :class:`Block`. Each field is coerced to
its annotated type (``float``, ``int``, ``bool``, ``str``, ``str`` enums, ``X | None``,
``tuple[int, ...]`` and JSON-like ``dict[str, Any]``) and then checked against the
range attached with :func:`ranged`. Every failure raises :class:`ParameterError`
naming the dotted field, the value and what is allowed; unknown keys name the closest
valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from enum import Enum
from typing import Any, Callable, ClassVar, Iterable, Mapping

INF_STRINGS = {
    "inf": math.inf,
    "+inf": math.inf,
    ".inf": math.inf,
    "infinity": math.inf,
}


class ParameterError(ValueError):
    """An invalid parameter: the message names the dotted field, value and range."""


def closest(name: str, candidates: Iterable[str], list_valid: bool = True) -> str:
    """Describe the valid names closest to ``name`` for an error message.

    Parameters
    ----------
    name
        The unknown name.
    candidates
        The valid names.
    list_valid
        Also list every valid name (for short lists).

    Returns
    -------
    str
        ``"did you mean 'a' or 'b'? valid: ..."``.
    """
    candidates = sorted(candidates)
    matches = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    valid = "valid: " + ", ".join(candidates)
    if not list_valid:
        valid = "`python -m empo defaults` lists every parameter"
    if not matches:
        return valid
    return "did you mean " + " or ".join(repr(m) for m in matches) + "? " + valid


def ranged(
    default: Any,
    check: Callable[[Any], bool] | None = None,
    allowed: str = "",
) -> Any:
    """A dataclass field with a default, a range check and its description.

    Parameters
    ----------
    default
        Default value (a tuple or a dict is copied for every instance).
    check
        Predicate on the coerced value; ``None`` accepts every value of the type.
    allowed
        What is allowed, as printed in error messages (e.g. ``"0 ≤ γ_h ≤ 1"``).
    """
    metadata = {"check": check, "allowed": allowed}
    if isinstance(default, dict):
        return dataclasses.field(
            default_factory=lambda: dict(default), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


def _is_json_like(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_like(v) for k, v in value.items())
    return False


def _number(value: Any) -> Any:
    """Numbers written as strings (YAML 1.1 reads ``1e-3`` and ``.inf`` variants as
    text) become floats; everything else is returned unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in INF_STRINGS:
        return INF_STRINGS[text]
    if text in ("-inf", "-.inf", "-infinity"):
        return -math.inf
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return value


def coerce(path: str, annotation: Any, value: Any) -> Any:
    """Coerce ``value`` to the annotated type or raise :class:`ParameterError`.

    Parameters
    ----------
    path
        Dotted name of the field, for the error message.
    annotation
        The field's resolved type annotation.
    value
        The raw value (from Python, a dict, YAML or JSON).
    """
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        inner = [a for a in options if a is not type(None)]
        return coerce(path, inner[0], value)
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ParameterError(f"{path} = {value!r} must be a list of {item_type}")
        return tuple(coerce(f"{path}[{i}]", item_type, v) for i, v in enumerate(value))
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping) or not _is_json_like(dict(value)):
            raise ParameterError(
                f"{path} = {value!r} must be a mapping with string keys and "
                "YAML/JSON values (finite numbers, strings, booleans, null, lists, "
                "mappings)"
            )
        return to_plain(dict(value))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        if isinstance(value, annotation):
            return value
        try:
            return annotation(value)
        except ValueError:
            values = [str(m.value) for m in annotation]
            raise ParameterError(
                f"{path} = {value!r} is not allowed; {closest(str(value), values)}"
            ) from None
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"{path} = {value!r} must be true or false")
        return value
    if annotation is int:
        number = _number(value)
        if isinstance(number, float) and number.is_integer():
            return int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            raise ParameterError(f"{path} = {value!r} must be an integer")
        return number
    if annotation is float:
        number = _number(value)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ParameterError(f"{path} = {value!r} must be a number (or 'inf')")
        if math.isnan(number):
            raise ParameterError(f"{path} = {value!r} is not a number")
        return float(number)
    if annotation is str:
        if not isinstance(value, str):
            raise ParameterError(f"{path} = {value!r} must be a string")
        return value
    raise TypeError(f"{path}: unsupported parameter type {annotation!r}")


def unchecked_init(cls: type) -> type:
    """Exempt a parameter dataclass's generated ``__init__`` from run-time type checks.

    The constructor takes loose input on purpose (enum names as strings, ``"inf"``,
    integers for floats, dicts for blocks), which ``__post_init__`` validates and
    coerces with errors that name the field; a type checker on ``__init__`` (e.g.
    jaxtyping's import hook with beartype) would refuse it first, with a worse
    message. The field annotations still state the types the fields hold.

    Parameters
    ----------
    cls
        A dataclass.
    """
    cls.__init__.__no_type_check__ = True  # type: ignore[attr-defined]
    return cls


class Block:
    """Base of the frozen parameter dataclasses: coercion and range checks.

    Subclasses set ``prefix`` to their dotted place in :class:`~empo.parameters.Parameters`
    (``"theory"``, ``"phase1"``, ...) so that messages name the full field, and may
    override :meth:`check_consistency` for checks across fields.
    """

    prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            path = f"{self.prefix}.{f.name}" if self.prefix else f.name
            value = coerce(path, hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
            check = f.metadata.get("check")
            if check is not None and value is not None and not check(value):
                raise ParameterError(
                    f"{path} = {value!r} is out of range; allowed: "
                    f"{f.metadata['allowed']}"
                )
        self.check_consistency()

    def check_consistency(self) -> None:
        """Checks across fields; raise :class:`ParameterError` on failure."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Block) -> Block:
        """Build the block from a mapping, rejecting unknown keys.

        Parameters
        ----------
        data
            Field values by name (missing fields take their defaults), or an
            instance of the block, returned as is.
        """
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ParameterError(
                f"{cls.prefix} = {data!r} must be a mapping of "
                f"{cls.__name__} fields"
            )
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                raise ParameterError(
                    f"unknown parameter {cls.prefix}.{key}; {closest(str(key), names)}"
                )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: enums as values, tuples as lists, inf as ``"inf"``."""
        return {
            f.name: to_plain(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }


def to_plain(value: Any) -> Any:
    """Convert a field value to plain JSON types (``inf`` becomes ``"inf"``).

    Parameters
    ----------
    value
        A coerced field value.
    """
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def positive(x: float) -> bool:
    """``0 < x < inf``."""
    return 0 < x < math.inf


def non_negative(x: float) -> bool:
    """``0 ≤ x < inf``."""
    return 0 <= x < math.inf


def unit_interval(x: float) -> bool:
    """``0 ≤ x ≤ 1``."""
    return 0 <= x <= 1
