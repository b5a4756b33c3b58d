"""Preprocessing must never hang. Decoding runs in threads of this process (nothing is forked from a
process that holds OpenVINO's and torch's thread pools), and every early exit (a limit reached, an error raised
while decoders are busy, Ctrl-C, SIGTERM) ends within a bound and leaves no thread or child process behind."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.data import DataSource, Images, Item
from compress.errors import InputError
from compress.evaluate.job import OVRun, evaluate_openvino
from tests.helpers import ROOT

BOUND_S = 20.0  # how long the threads may take to end after an early exit: a decode takes milliseconds, a deadlock
# takes forever (a wait with a deadline, not a timing: nothing is asserted about how long it took)
WORKERS = 2


def _children() -> list[int]:
    """PIDs whose parent is this process (zombies included: a <defunct> worker is a leak too)."""
    me, kids = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                kids.append(int(d))
    return kids


def _decoders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("preprocess")]


def _source(n: int, size: int = 32, limit: int | None = None, fail_at: int | None = None,
            exc: type[BaseException] = InputError, delay: float = 0.0, sigint_at: int | None = None,
            loads: list[int] | None = None) -> DataSource:
    """n synthetic images; item `fail_at` raises `exc` inside a decoding thread (not an unreadable-image error,
    so it propagates like a bad-input error or an interrupt raised mid-iteration); decoding item `sigint_at`
    sends this process a real SIGINT (Ctrl-C at a known point of the work, not after a guessed delay); `loads`
    collects the index of every load started."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (48, 40, 3), np.uint8)

    def load(i: int) -> Image.Image:
        if loads is not None:
            loads.append(i)
        if delay:
            time.sleep(delay)
        if i == sigint_at:
            os.kill(os.getpid(), signal.SIGINT)
        if i == fail_at:
            raise exc(f"item {i} is bad")
        return Image.fromarray(pixels)
    return DataSource("synthetic", [Item(f"img{i}", i % 3, lambda i=i: load(i)) for i in range(n)], size,
                      limit=limit)


def busy_runtimes(folder: Path) -> Path:
    """OpenVINO and torch thread pools started in this process, as they are when the pipeline preprocesses; the
    proxy model's FP32 IR (32 px) written into `folder`."""
    import torch

    from compress import export, loading, runtime

    xml = export.export(loading.load("cloformer_xxs", "proxy", 32), folder).fp32_xml
    # the device's default precision, as deployed (under an imposed ISA without bf16: f32, as on such a CPU; the
    # plugin would otherwise pick bf16 from the CPU's own flags and find no bf16 Softmax kernel under the cap)
    compiled = runtime.compile_ov(xml, "CPU", None)
    compiled(np.zeros((1, 3, 32, 32), np.float32))
    torch.ones(256, 256) @ torch.ones(256, 256)
    return xml


@pytest.fixture(scope="module")
def runtimes_busy(tmp_path_factory):
    return busy_runtimes(tmp_path_factory.mktemp("ir"))


# decoding threads keep at most 4 x workers loads in flight (compress.data.source._threaded): an early exit may
# start that many past the point where it stopped, and no more
READ_AHEAD = 4 * WORKERS


def _assert_clean(loads: list[int], stopped_at: int, what: str) -> None:
    """The work stopped where it should (no load started past `stopped_at` plus the read-ahead: a count, not a
    clock), and within BOUND_S no decoding thread or child process is left (a deadlock never gets there)."""
    assert max(loads) <= stopped_at + READ_AHEAD, f"{what}: loads went on to item {max(loads)} (stop: {stopped_at})"
    deadline = time.perf_counter() + BOUND_S
    while _decoders() and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert not _decoders(), f"{what}: decoding threads left running: {_decoders()}"
    assert not _children(), f"{what}: child processes left behind: {_children()}"


def _early_exits(xml: Path, ctrl_c: bool = True) -> None:
    """Every early exit; Ctrl-C (a real SIGINT to this process) only where asked: it is run in a fresh
    interpreter (test_ctrl_c_in_a_fresh_interpreter), never inside the suite's own process, where a signal to
    the pytest process could take the whole run down with it (the suite once died there, silently)."""
    # 1. a limit smaller than the source (--val-limit): stop consuming, the rest is cancelled
    loads: list[int] = []
    src = _source(400, limit=10, loads=loads)
    data = Images.of(src, workers=WORKERS)
    assert len(data) == 10 and [it.key for it in data.items] == [f"img{i}" for i in range(10)]
    _assert_clean(loads, 9, "limit")
    # 2. a bad-input error raised while the decoders are busy
    loads = []
    with pytest.raises(InputError, match="item 37 is bad"):
        Images.of(_source(400, fail_at=37, loads=loads), workers=WORKERS)
    _assert_clean(loads, 37, "error mid-iteration")
    # 3. Ctrl-C while the decoders decode (SIGINT to this process, as a terminal sends it, while item 100 decodes)
    if ctrl_c:
        loads = []
        with pytest.raises(KeyboardInterrupt):
            Images.of(_source(4000, delay=0.001, sigint_at=100, loads=loads), workers=WORKERS)
        _assert_clean(loads, 100, "Ctrl-C")
    # 3b. an error while OpenVINO infers asynchronously and the decoders decode: every request drained
    loads = []
    with pytest.raises(InputError, match="item 300 is bad"):
        evaluate_openvino(xml, _source(400, fail_at=300, loads=loads), OVRun("CPU", "f32", 2), progress=False)
    _assert_clean(loads, 300, "error during inference")
    # 4. the consumer simply stops (a generator dropped half-way)
    loads = []
    it = iter(_source(400, loads=loads).decode(workers=WORKERS))
    next(it)
    it.close()
    _assert_clean(loads, 0, "consumer stopped")


def test_early_exits_end_cleanly(runtimes_busy) -> None:
    _early_exits(runtimes_busy, ctrl_c=False)


# a fresh interpreter running OpenVINO and torch; SIGINT handled as Python does for a terminal's program (a shell
# that starts a job in the background makes it ignore SIGINT, and Python then keeps it ignored)
STRESS = """
import signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from tests.compress import test_early_exit as t
xml = t.busy_runtimes(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    t._early_exits(xml)
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
        src = _source(60, limit=40)
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
