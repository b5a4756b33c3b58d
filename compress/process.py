"""What a command does to its own process before any work: compress.cli.run_main calls prepare_process() first.
A library user who wants the same calls it once; importing compress changes nothing outside the package."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

# NNCF builds its C++ extension on first QAT use and gives up after NNCF_EXTENSION_LOAD_TIMEOUT seconds (its default:
# 60); on two busy cores the build takes longer than that
NNCF_EXTENSION_BUILD_TIMEOUT_S = 900

_prepared = False


def decline_telemetry() -> None:
    """OpenVINO's and NNCF's usage telemetry sends each event from a process it forks out of a worker thread.
    Forking a process that runs OpenVINO's, torch's and the decoding threads can deadlock the child on a lock held
    at fork time, and multiprocessing then joins it at exit, so the process never ends. An offline tool has nothing
    to send, so its process declines, always; the user's opt-in file is neither read nor changed."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package: nothing to decline
        return
    OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED


def quiet_third_parties() -> None:
    """What third parties print that a user's log file should not carry: onnxruntime's telemetry says "Failed to
    persist telemetry device ID" in colour on every run where HOME is not writable; matplotlib, with no writable
    config folder, warns and rebuilds its font cache on every import (a temporary folder for this process
    instead, removed at exit). A user's own settings of either are kept."""
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


def _default_sigterm_in_child() -> None:
    # a Python-level handler runs only when the main thread executes bytecode: a forked child blocked in C would
    # ignore its parent's terminate(), so a child gets the default action back
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def prepare_process() -> None:
    """Decline telemetry, quiet third parties, give NNCF's extension build time (a user's value wins), and let a
    forked child die on SIGTERM. Idempotent: the second call does nothing."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    decline_telemetry()
    quiet_third_parties()
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", str(NNCF_EXTENSION_BUILD_TIMEOUT_S))
    os.register_at_fork(after_in_child=_default_sigterm_in_child)
