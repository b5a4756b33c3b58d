"""Evaluation of any checkpoint or IR, one code path for every backend (job.py), and its command (cli.py:
`python -m compress.evaluate`)."""

from __future__ import annotations

from typing import Any

from .job import EvalJob, EvalResult, evaluate, evaluate_model, evaluate_openvino

__all__ = ["EvalJob", "EvalResult", "evaluate", "evaluate_model", "evaluate_openvino", "main"]


def __getattr__(name: str) -> Any:
    # the command, imported only when asked for (the console script `cloformer-evaluate`, tests): the library
    # above never loads argparse's side
    if name in ("main", "build_parser"):
        from . import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
