"""CloFormer compression pipeline: load, calibrate, quantize or prune, export, verify, report."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


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
