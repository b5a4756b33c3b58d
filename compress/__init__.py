"""CloFormer compression: load, calibrate, quantize or prune, export, verify, report.

The front door (each name is imported on first use, so `import compress` stays light):

    import compress
    loaded = compress.load("cloformer_xxs", "proxy")
    parts = compress.quant_parts(compress.DataSpec(calib="sample", val="proxy-val"), loaded.input_size)
    report = compress.quantize_model(loaded, parts, compress.QuantSettings(), Path("outputs/int8"))

Importing it changes nothing outside the package. The commands prepare their process first (telemetry declined,
third-party noise quieted: compress.prepare_process); a library user calls that once to get the same.

Packages by verb (quantize/, prune/, evaluate/: each a job, a list of stages, and its command) over the shared
modules here (stages, data, export, verification, speed, isa, report, render, settings).
"""

from __future__ import annotations

import importlib
from typing import Any

_FRONT_DOOR = {
    "load": "compress.loading", "LoadedModel": "compress.loading",
    "DataSpec": "compress.data.sources", "quant_parts": "compress.data.sources",
    "resolve_source": "compress.data.sources",
    "QuantSettings": "compress.settings", "PruneSettings": "compress.settings", "RunConfig": "compress.settings",
    "ScopeEntry": "compress.settings",
    "quantize_model": "compress.quantize", "prune_model": "compress.prune", "PruneJob": "compress.prune",
    "evaluate_model": "compress.evaluate", "EvalJob": "compress.evaluate",
    "read_report": "compress.report",
    "prepare_process": "compress.process",
}
__all__ = sorted(_FRONT_DOOR)


def __getattr__(name: str) -> Any:
    if name in _FRONT_DOOR:
        return getattr(importlib.import_module(_FRONT_DOOR[name]), name)
    raise AttributeError(f"module 'compress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FRONT_DOOR})
