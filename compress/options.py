"""Settings fields that are also command-line options: one place per option.

A settings field declared with `option(...)` carries its help and how a command line spells it; compress.cli
derives the argparse options (`--field-name`) and reads them back from it, and library errors name the field
(`lr must be > 0`), which the command line shows as its flag (`--lr must be > 0`, `flag`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError

OptionKind = Literal["value", "flag", "toggle", "append"]  # --x V, --x (store_true), --x/--no-x, --x V repeated


@dataclass(frozen=True)
class Option:
    """A settings field as a command-line option: its help, the kind of argument, and how argv spells the value
    when it differs from the field's (`to_cli`: the default as --help shows it; `from_cli`: argv -> field)."""

    help: str
    kind: OptionKind = "value"
    type: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    to_cli: Callable[[Any], Any] | None = None
    from_cli: Callable[[Any], Any] | None = None


def option(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
           **cli: Any) -> Any:
    """A dataclass field that is also a command-line option (Option's keywords)."""
    return field(default=default, default_factory=default_factory, metadata={"option": Option(help, **cli)})


def options(cls: type) -> list[tuple[dataclasses.Field, Option]]:
    """The fields of a settings class that are options, in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def flag(name: str) -> str:
    """A field's command-line flag: lr -> --lr, val_limit -> --val-limit."""
    return "--" + name.replace("_", "-")


def check_choice(value: Any, allowed: tuple[Any, ...], name: str) -> None:
    """A field with a fixed set of values (a Literal): `name` is the field's name."""
    if value not in allowed:
        raise InputError(f"{name} '{value}': expected one of {', '.join(map(str, allowed))}", field=name)


def check_count(n: int | None, name: str, minimum: int = 1) -> int | None:
    """A count option (images, steps): an integer >= minimum, or None (= all / default)."""
    if n is not None and (not isinstance(n, int) or n < minimum):
        raise InputError(f"{name} must be an integer >= {minimum}; got {n}", field=name)
    return n
