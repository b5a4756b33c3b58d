"""Pruning: the job (job.py, a list of stages), its algorithms (structured.py; unstructured.py, NNCF's masks) and
its command (cli.py: `python -m compress.prune`)."""

from __future__ import annotations

from typing import Any

from .job import PruneContext, PruneJob, prune_model, prune_stages

__all__ = ["PruneContext", "PruneJob", "main", "prune_model", "prune_stages"]


def __getattr__(name: str) -> Any:
    # the command, imported only when asked for (the console script `cloformer-prune`, tests): the library
    # above never loads argparse's side
    if name in ("main", "build_parser"):
        from . import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
