"""INT8 quantization: the job (job.py: the INT8 stages of compress.int8 on one model) and its command (cli.py:
`python -m compress.quantize`)."""

from __future__ import annotations

from typing import Any

from .job import quantize_model

__all__ = ["main", "quantize_model"]


def __getattr__(name: str) -> Any:
    # the command, imported only when asked for (the console script `cloformer-quantize`, tests): the library
    # above never loads argparse's side
    if name in ("main", "build_parser"):
        from . import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
