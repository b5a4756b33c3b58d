"""INT8 post-training quantization: the job (job.py, a list of stages; ptq.py, the NNCF calls) and its command
(cli.py: `python -m compress.quantize`)."""

from __future__ import annotations

from typing import Any

from .job import INT8_STAGES, Int8Context, int8_report, quantize_model

__all__ = ["INT8_STAGES", "Int8Context", "int8_report", "main", "quantize_model"]


def __getattr__(name: str) -> Any:
    # the command, imported only when asked for (the console script `cloformer-quantize`, tests): the library
    # above never loads argparse's side
    if name in ("main", "build_parser"):
        from . import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
