"""Importing compress, or any of its verb packages, changes nothing outside the package: the environment, the
at-fork hooks and third-party classes are as they were. Run in a fresh interpreter (this one has prepared
its process, as the commands do)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = """
import os, signal, sys
from openvino_telemetry.utils.opt_in_checker import OptInChecker
check = OptInChecker.check
env = dict(os.environ)
signal.signal(signal.SIGTERM, lambda *a: None)  # a handler the at-fork hook would reset in a child
mine = signal.getsignal(signal.SIGTERM)
import compress, compress.quantize, compress.prune, compress.evaluate, compress.cli
import compress.quantize.cli, compress.prune.cli, compress.evaluate.cli
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
pid = os.fork()
if pid == 0:
    os._exit(0 if signal.getsignal(signal.SIGTERM) is mine else 3)
_, status = os.waitpid(pid, 0)
print(changed, OptInChecker.check is check, os.waitstatus_to_exitcode(status))
compress.prepare_process()
print(OptInChecker.check is check, os.environ.get("ORT_DISABLE_TELEMETRY"), "NNCF_EXTENSION_LOAD_TIMEOUT" in os.environ)
"""


def test_import_changes_nothing_outside_the_package_and_prepare_process_does() -> None:
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "NNCF_EXTENSION_LOAD_TIMEOUT", "MPLCONFIGDIR")}
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    imported, prepared = r.stdout.strip().splitlines()[-2:]
    assert imported == "[] True 0", imported  # no variable, the class untouched, a child keeps its handler
    assert prepared == "False 1 True", prepared  # the documented call does what the commands do
