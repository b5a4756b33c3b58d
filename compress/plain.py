"""Dataclasses to JSON-ready values and back, by their type hints: how every report is written and read."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from .settings import ScopeEntry


def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, Paths -> str, NaN/Inf -> None (JSON has neither)."""
    if isinstance(obj, ScopeEntry):
        return str(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return to_plain(obj.item())
    return obj


def from_plain(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` (dataclasses, lists, tuples, dicts, optionals) from to_plain's output."""
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for a in options:
            try:
                return from_plain(a, data)
            except (TypeError, ValueError, KeyError):
                continue
        return data
    if tp is ScopeEntry:
        return ScopeEntry.parse(data)
    if is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: from_plain(hints[f.name], data[f.name]) for f in fields(tp) if f.init and f.name in data}
        return tp(**kwargs)
    if origin is list:
        (arg,) = typing.get_args(tp)
        return [from_plain(arg, v) for v in data]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in data)
        return tuple(from_plain(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict:
        _, arg = typing.get_args(tp)
        return {k: from_plain(arg, v) for k, v in data.items()}
    if origin is typing.Literal:
        return data
    if tp in (float,) and isinstance(data, int):
        return float(data)
    return data
