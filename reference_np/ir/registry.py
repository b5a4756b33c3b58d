"""The op registry of reference_np.ir, as onnx.reference registers its op classes: each op function is registered
by (type, version) with its attributes, which are parsed, typed and checked once, when a graph is loaded (`bind`),
so an op or attribute value this package cannot run is an error at load that names the node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .parse import IRError, Node

REQUIRED = object()  # an attribute without a default


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def flag(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text == "true"


def lower(text: str) -> str:
    return text.lower()


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: how its text is parsed, its default when absent (the spec's), and the values this
    module implements (None: any)."""

    parse: Callable[[str], Any] = str
    default: Any = REQUIRED
    allowed: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class OpDef:
    type: str
    version: str
    fn: Callable[..., Any]
    attrs: dict[str, Attr]


REGISTRY: dict[tuple[str, str], OpDef] = {}
STRUCTURAL = ("Parameter", "Result", "Const")  # not computed by an op function


def op(type_: str, *versions: str, **attrs: Attr) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` for `type_` at each of `versions` (opsetN), with its attributes."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for v in versions:
            REGISTRY[(type_, v)] = OpDef(type_, v, fn, attrs)
        return fn
    return register


def lookup(n: Node) -> OpDef:
    spec = REGISTRY.get((n.type, n.version))
    if spec is None:
        known = sorted(v for t, v in REGISTRY if t == n.type)
        raise IRError(f"node '{n.name}' has op type {n.type} ({n.version}), which reference_np.ir does not implement"
                      + (f" at that version (it does: {', '.join(known)})" if known else ""))
    return spec


def bind(n: Node, overrides: dict[str, str] | None = None) -> Node:
    """Parse and type the node's attributes (its op's declared ones; `overrides` replace the file's text), and check
    each against the values this module implements: once, at load."""
    spec = lookup(n)
    raw = {**n.attrs, **(overrides or {})}
    typed: dict[str, Any] = {}
    for key, a in spec.attrs.items():
        if key not in raw:
            if a.default is REQUIRED:
                raise IRError(f"{n.type} node '{n.name}' lacks attribute '{key}'")
            typed[key] = a.default
            continue
        try:
            typed[key] = a.parse(raw[key])
        except ValueError as e:
            raise IRError(f"{n.type} node '{n.name}': attribute {key}={raw[key]!r} cannot be read ({e})") from None
        if a.allowed is not None and typed[key] not in a.allowed:
            raise IRError(f"{n.type} node '{n.name}': {key}={raw[key]} is not supported (supported: "
                          f"{', '.join(map(str, a.allowed))})")
    n.a = typed
    return n


def run_op(type_: str, version: str, attrs: dict[str, str], *inputs: np.ndarray | None,
           dtype: type = np.float64) -> Any:
    """One op on its own (as a test calls it): a node of `type_`/`version` with `attrs`, bound, then run."""
    n = bind(Node("0", type_.lower(), type_, version, dict(attrs)))
    n.dtype = dtype
    return REGISTRY[(type_, version)].fn(n, *inputs)
