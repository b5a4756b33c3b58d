"""CloFormer compression: load, calibrate, quantize or prune, export, verify, report.

The front door (each name is imported on first use, so `import compress` stays light):

    import compress
    loaded = compress.load("cloformer_xxs", "proxy")
    parts = compress.quant_parts(compress.DataSpec(calib="sample", val="proxy-val"), loaded.input_size)
    report = compress.quantize_model(loaded, parts, compress.QuantSettings(), Path("outputs/int8"))

Packages by verb (quantize/, prune/, evaluate/: each a job, a list of stages, and its command) over the shared
modules here (stages, data, sources, export, verification, speed, isa, report, render, settings).
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

_FRONT_DOOR = {
    "load": "compress.loading", "LoadedModel": "compress.loading",
    "DataSpec": "compress.sources", "quant_parts": "compress.sources", "resolve_source": "compress.sources",
    "QuantSettings": "compress.settings", "PruneSettings": "compress.settings", "RunConfig": "compress.settings",
    "ScopeEntry": "compress.settings",
    "quantize_model": "compress.quantize", "prune_model": "compress.prune", "PruneJob": "compress.prune",
    "evaluate_model": "compress.evaluate", "EvalJob": "compress.evaluate",
    "read_report": "compress.report",
}
__all__ = sorted(_FRONT_DOOR)


def __getattr__(name: str) -> Any:
    if name in _FRONT_DOOR:
        return getattr(importlib.import_module(_FRONT_DOOR[name]), name)
    raise AttributeError(f"module 'compress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FRONT_DOOR})


def _decline_telemetry() -> None:
    """OpenVINO's and NNCF's usage telemetry sends every event from a process that it forks (multiprocessing,
    fork) out of a worker thread. Forking a process that runs OpenVINO's, torch's and the decoding threads can
    deadlock the child, and multiprocessing joins it at exit: measured here, offline, a child stuck in getaddrinfo
    on a lock held at fork time, and a test process that finished its tests and never exited (issue 21). NNCF
    turns telemetry off under CI for the same kind of reason; this package declines it for its own process, always
    (an offline tool has nothing to send it to). The user's opt-in file is neither read nor changed."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package: nothing to decline
        return
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED


_decline_telemetry()


def _quiet_third_parties() -> None:
    """What third parties print that a user's log file should not carry (issue 30): onnxruntime's telemetry says
    "Failed to persist telemetry device ID" in colour on every run where HOME is not writable (declined, as above);
    matplotlib, with no writable config folder, warns and rebuilds its font cache on every import (a temporary
    folder for this process instead). A user's own settings of either are kept."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if "MPLCONFIGDIR" not in os.environ:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
        try:  # what matplotlib itself does first; the access check is what it does next
            config.mkdir(parents=True, exist_ok=True)
            usable = os.access(config, os.W_OK)
        except OSError:
            usable = False
        if not usable:
            os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="cloformer-matplotlib-")
            atexit.register(shutil.rmtree, os.environ["MPLCONFIGDIR"], ignore_errors=True)


_quiet_third_parties()
