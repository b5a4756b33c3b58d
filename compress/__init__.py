"""CloFormer compression pipeline: load, calibrate, quantize or prune, export, verify, report."""

from __future__ import annotations


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
