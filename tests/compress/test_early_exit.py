"""Preprocessing must never hang. Decoding runs in threads of this process (nothing is forked from a
process that holds OpenVINO's and torch's thread pools), and every early exit (a limit reached, an error raised
while decoders are busy, Ctrl-C, SIGTERM) ends within a bound and leaves no thread or child process behind."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.data import DataSource, Item
from tests.compress.early_exits import (
    busy_runtimes,
    early_exits,
    source,
)
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def runtimes_busy(tmp_path_factory):
    return busy_runtimes(tmp_path_factory.mktemp("ir"))


def test_early_exits_end_cleanly(runtimes_busy) -> None:
    early_exits(runtimes_busy, ctrl_c=False)


# a fresh interpreter running OpenVINO and torch; SIGINT handled as Python does for a terminal's program (a shell
# that starts a job in the background makes it ignore SIGINT, and Python then keeps it ignored)
STRESS = """
import signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from tests.compress import early_exits as t
xml = t.busy_runtimes(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    t.early_exits(xml)
print(sys.argv[2], "rounds clean")
"""


def test_ctrl_c_in_a_fresh_interpreter(tmp_path) -> None:
    """Every early exit once, Ctrl-C included, in its own interpreter."""
    r = subprocess.run([sys.executable, "-c", STRESS, str(tmp_path), "1"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "1 rounds clean" in r.stdout, r.stdout[-2000:] + r.stderr[-4000:]


@pytest.mark.slow
def test_early_exits_stress_50(tmp_path) -> None:
    """The early exits, 50 times each, in a fresh interpreter that runs OpenVINO and torch (its own
    process: what state earlier tests left behind does not enter the count, and it must exit by itself)."""
    r = subprocess.run([sys.executable, "-c", STRESS, str(tmp_path), "50"], cwd=ROOT, capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0 and "50 rounds clean" in r.stdout, r.stdout[-2000:] + r.stderr[-4000:]


def test_threads_give_the_serial_result() -> None:
    """Same arrays, labels, used and skipped lists as iterating in this thread, unreadable images included."""
    def make() -> DataSource:
        src = source(60, limit=40)
        broken = Item("broken", 1, lambda: Image.open(Path("/nonexistent.png")))
        return dataclasses.replace(src, items=(*src.items[:5], broken, *src.items[5:]))
    a, b = make(), make()
    da, db = a.decode(workers=1), b.decode(workers=2)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        serial = list(da)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        threaded = list(db)
    assert len(serial) == len(threaded) == 40
    assert all(np.array_equal(x, y) and la == lb for (x, la), (y, lb) in zip(serial, threaded, strict=True))
    assert [i.key for i in da.used] == [i.key for i in db.used] and da.skipped == db.skipped


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_cli_signal_during_preprocessing_cleans_up(tmp_path, sig: int, code: int, word: str) -> None:
    """SIGTERM (batch schedulers) and Ctrl-C mid-run: one line, the exit status, no staging folder, no child."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "compress.quantize", "--input-size", "32", "--subset-size", "16",
           "--fast-bias-correction", "--activation-range", "minmax", "--out", str(out)]
    # the run as a terminal starts it: SIGINT handled (a shell's background job would inherit it ignored)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob(".run.partial-*/model_fp32.xml")):
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)  # a run that ignores the signal fails here
    assert proc.returncode == code, err[-2000:]
    assert word in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".run*"))  # no staging folder, no lock file


def test_openvino_and_nncf_telemetry_is_declined() -> None:
    """Telemetry forks a sender out of a worker thread; offline, such a child hung in getaddrinfo and the test
    process waited for it at exit forever. Importing compress declines it (the user's opt-in file untouched)."""
    from openvino_telemetry import Telemetry

    import compress  # noqa: F401

    t = Telemetry(app_name="cloformer-test", app_version="0", tid="G-TEST", backend="ga4", enable_opt_in_dialog=False)
    t.init(app_name="cloformer-test", app_version="0", tid="G-TEST", backend="ga4", enable_opt_in_dialog=False)
    assert t.consent is False


def test_forked_child_of_a_cli_run_keeps_the_default_sigterm(tmp_path) -> None:
    """run_main turns SIGTERM into a clean exit, but a child forked during the run (by any library) must die on
    terminate(): a Python-level handler never runs while the child is blocked in C."""
    import multiprocessing as mp

    from compress.cli import run_main

    def caught_in(pid: int) -> bool:
        status = Path(f"/proc/{pid}/status").read_text()
        mask = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
        return bool(mask & (1 << (signal.SIGTERM - 1)))

    seen: dict[str, bool] = {}

    ctx = mp.get_context("fork")
    ready = ctx.Event()

    def child_main() -> None:  # runs after the at-fork hooks: the mask read once it is set is the child's for good
        ready.set()
        time.sleep(30)

    def job() -> int:
        child = ctx.Process(target=child_main, daemon=True)
        child.start()
        assert ready.wait(120), "the forked child never started"
        seen["parent"], seen["child"] = caught_in(os.getpid()), caught_in(child.pid)
        child.terminate()
        child.join(10)
        seen["child_ended"] = not child.is_alive()
        return 0

    assert run_main("test", job) == 0
    assert seen == {"parent": True, "child": False, "child_ended": True}
