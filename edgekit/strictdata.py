"""Build frozen dataclasses from plain dicts (TOML, JSON), rejecting unknown keys and wrong types.

Errors name the file, the dotted key, the bad value and what is allowed, so a user can fix a profile or
an agent config without reading code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class DataError(ValueError):
    """A value does not fit its declared type; ``key`` is the dotted path to it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"key {key!r}: {message}" if key else message)
        self.key = key


def build(cls: type[T], data: Any, key: str = "") -> T:
    """Return ``cls(**data)`` after checking every key and value against the dataclass's annotations."""
    if not isinstance(data, dict):
        raise DataError(key, f"expected a table, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = _join(key, unknown[0])
        raise DataError(where, f"unknown key; allowed here: {', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        where = _join(key, name)
        if name in data:
            values[name] = _coerce(hints[name], data[name], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DataError(where, "required key is missing")
    return cls(**values)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except DataError as err:
                errors.append(str(err))
        raise DataError(key, f"{value!r} fits none of the allowed types")
    if origin is Literal:
        if value not in args:
            raise DataError(key, f"{value!r} is not allowed; allowed: {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise DataError(key, f"expected a list, got {type(value).__name__} {value!r}")
        item_tp = args[0]
        return tuple(_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise DataError(key, f"expected a table, got {type(value).__name__} {value!r}")
        return {str(k): _coerce(args[1], v, _join(key, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)  # type: ignore[arg-type]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(key, f"expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(key, f"expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise DataError(key, f"expected a {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"strictdata cannot handle annotation {tp!r} at {key}")


def to_dict(obj: Any) -> Any:
    """dataclass -> plain dict/list/scalars, suitable for JSON (tuples become lists, None values dropped)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if getattr(obj, f.name) is not None
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
