"""The early-exit harness: a busy OpenVINO and torch runtime, sources that fail or stop mid-way, and the check
that decoding threads end within a bound and leave no thread or child process behind (test_early_exit runs it in
the suite's process and in a fresh interpreter)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.data import DataSource, Images, Item
from compress.errors import InputError
from compress.evaluate.job import OVRun, evaluate_openvino

BOUND_S = 20.0  # how long the threads may take to end after an early exit: a decode takes milliseconds, a deadlock

# takes forever (a wait with a deadline, not a timing: nothing is asserted about how long it took)
WORKERS = 2


def children() -> list[int]:
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


def decoders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("preprocess")]


def source(n: int, size: int = 32, limit: int | None = None, fail_at: int | None = None,
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

# decoding threads keep at most 4 x workers loads in flight (compress.data.source._threaded): an early exit may
# start that many past the point where it stopped, and no more
READ_AHEAD = 4 * WORKERS


def assert_clean(loads: list[int], stopped_at: int, what: str) -> None:
    """The work stopped where it should (no load started past `stopped_at` plus the read-ahead: a count, not a
    clock), and within BOUND_S no decoding thread or child process is left (a deadlock never gets there)."""
    assert max(loads) <= stopped_at + READ_AHEAD, f"{what}: loads went on to item {max(loads)} (stop: {stopped_at})"
    deadline = time.perf_counter() + BOUND_S
    while decoders() and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert not decoders(), f"{what}: decoding threads left running: {decoders()}"
    assert not children(), f"{what}: child processes left behind: {children()}"


def early_exits(xml: Path, ctrl_c: bool = True) -> None:
    """Every early exit; Ctrl-C (a real SIGINT to this process) only where asked: it is run in a fresh
    interpreter (test_ctrl_c_in_a_fresh_interpreter), never inside the suite's own process, where a signal to
    the pytest process could take the whole run down with it (the suite once died there, silently)."""
    # 1. a limit smaller than the source (--val-limit): stop consuming, the rest is cancelled
    loads: list[int] = []
    src = source(400, limit=10, loads=loads)
    data = Images.of(src, workers=WORKERS)
    assert len(data) == 10 and [it.key for it in data.items] == [f"img{i}" for i in range(10)]
    assert_clean(loads, 9, "limit")
    # 2. a bad-input error raised while the decoders are busy
    loads = []
    with pytest.raises(InputError, match="item 37 is bad"):
        Images.of(source(400, fail_at=37, loads=loads), workers=WORKERS)
    assert_clean(loads, 37, "error mid-iteration")
    # 3. Ctrl-C while the decoders decode (SIGINT to this process, as a terminal sends it, while item 100 decodes)
    if ctrl_c:
        loads = []
        with pytest.raises(KeyboardInterrupt):
            Images.of(source(4000, delay=0.001, sigint_at=100, loads=loads), workers=WORKERS)
        assert_clean(loads, 100, "Ctrl-C")
    # 3b. an error while OpenVINO infers asynchronously and the decoders decode: every request drained
    loads = []
    with pytest.raises(InputError, match="item 300 is bad"):
        evaluate_openvino(xml, source(400, fail_at=300, loads=loads), OVRun("CPU", "f32", 2), progress=False)
    assert_clean(loads, 300, "error during inference")
    # 4. the consumer simply stops (a generator dropped half-way)
    loads = []
    it = iter(source(400, loads=loads).decode(workers=WORKERS))
    next(it)
    it.close()
    assert_clean(loads, 0, "consumer stopped")
