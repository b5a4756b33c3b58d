"""How fast the artifacts run here: the speed section of every report.

Measured in-process with OpenVINO's runtime, the way benchmark_app measures (a LATENCY-hint request timed
infer by infer; a THROUGHPUT-hint AsyncInferQueue with the plugin's number of requests kept full), on the
device's default precision as deployed. Every model is compiled once per configuration, then timed in
interleaved rounds: within a round each configuration times every model back to back (order reversed every
other round), so the windows a ratio compares are seconds apart, and a machine that changes speed between two
modes (these VMs: the same IR at 14 or 24 ms) hits both alike. Ratios are medians of per-round ratios, beside the
best-of figures and the rounds' spread (report.UNSTABLE_SPREAD marks a ratio unstable here). The baseline is plain FP32:
`ov.convert_model(torch_model)` of the unpruned checkpoint, what a user gets without this tool.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .profile import profile_compiled
from .report import OpTime, SpeedReport, SpeedRow
from .runtime import compile_ov, cpu_isa

ROUNDS = 5  # more rounds of shorter windows: a mode switch spoils one round's ratio, not the median
BASELINE = "plain FP32"  # ov.convert_model of the unpruned checkpoint at the device's defaults
MIN_WINDOW_S = 0.2  # below this a window holds too few inferences for a median
PROFILE_RUNS = 100  # batch-1 inferences each IR's profile (compress.profile) sums its counters over


def isa_short(isa: str) -> str:
    """A reader's name for the ISA that bounds int8 and bf16 speed."""
    flags = set(isa.split())
    if "amx_int8" in flags:
        return "AMX-INT8/BF16"
    if "avx512_vnni" in flags:
        return "AVX-512 VNNI" + (" + BF16" if "avx512_bf16" in flags else "")
    if "avx_vnni" in flags:
        return "AVX-VNNI"
    return "AVX2" if "avx2" in flags else isa


def _latency_ms(request: Any, x: np.ndarray, seconds: float) -> float:
    request.infer({0: x})  # warm-up: first-inference allocations
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        request.infer({0: x})
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def _throughput(compiled: Any, x: np.ndarray, seconds: float) -> float:
    """Images/s in steady state: the queue kept full for `seconds`, the rate counted between its first and last
    completions. Counting from the first start to the end of the drain, as this did, added up to one inference's
    fill and drain to each window: at batch 8 a 0.33 s window holds about two inferences here, and its rate moved
    by 40% with the phase."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, 0)  # 0: the plugin's optimal number of requests
    for _ in range(len(queue)):  # warm-up: every request once
        queue.start_async({0: x})
    queue.wait_all()
    done: list[float] = []
    queue.set_callback(lambda request, userdata: done.append(time.perf_counter()))
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(done) < 2:
        queue.start_async({0: x})  # blocks while every request is busy
    queue.wait_all()
    return (len(done) - 1) * len(x) / (done[-1] - done[0])


def _counters(request: Any, x: np.ndarray, runs: int = 20) -> list[OpTime]:
    """Per-op-type time of one inference (average over `runs`), from the plugin's performance counters."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for _ in range(runs):
        request.infer({0: x})
        for info in request.profiling_info:
            if info.status.name != "EXECUTED":
                continue
            prec = info.exec_type.split("_")[-1]
            key = f"{info.node_type} [{prec}]"
            totals[key][0] += info.real_time.total_seconds() * 1e3 / runs
            totals[key][1] += 1
    return sorted((OpTime(k, round(ms, 3), n // runs) for k, (ms, n) in totals.items()), key=lambda o: -o.ms)


CONFIGS = (("latency", "LATENCY", False), ("fps_b1", "THROUGHPUT", False), ("fps_bn", "THROUGHPUT", True))
WEIGHTS = {"latency": 1.0, "fps_b1": 1.0, "fps_bn": 2.0}  # of a round's time: batch-N windows hold the fewest infers


def _compile_all(models: dict[str, Any], input_size: int, batch: int, device: str
                 ) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """(compiled, read): every (model, configuration) compiled once, and each model as the ov.Model it was compiled
    from. Compiled two at a time (compilation releases the GIL, so two overlap
    well on two cores). A model given as a callable (the plain baseline's conversion)
    is built in the pool too, beside the others' compilations. The timed configurations run without PERF_COUNT, as
    benchmark_app does: profiling costs time per executed node, so it slowed the model with more nodes more and
    moved latency ratios away from benchmark_app's; a separate
    "counters" compilation of each model but the baseline reads the per-op time."""
    import openvino as ov

    core = ov.Core()

    def load(model: Any) -> Any:
        if callable(model):
            return model()
        return core.read_model(str(model)) if isinstance(model, (str, Path)) else model

    def compile_one(loaded: Future, hint: str, n: int, perf: bool) -> Any:
        return compile_ov(loaded.result(), device, None, shape=[n, 3, input_size, input_size], core=core,
                          PERFORMANCE_HINT=hint, PERF_COUNT=perf)

    with ThreadPoolExecutor(2, thread_name_prefix="compile") as pool:
        bases = {label: pool.submit(load, model) for label, model in models.items()}
        order = sorted(models, key=lambda label: callable(models[label]))  # slow-to-build models' compiles last
        jobs = {(label, kind): pool.submit(compile_one, bases[label], hint, batch if batch_n else 1, False)
                for label in order for kind, hint, batch_n in CONFIGS}
        jobs |= {(label, "counters"): pool.submit(compile_one, bases[label], "LATENCY", 1, True)
                 for label in order if label != BASELINE}
        return {key: job.result() for key, job in jobs.items()}, {label: b.result() for label, b in bases.items()}


def measure_speed(models: dict[str, Any], input_size: int, *, batch: int = 8, seconds: float = 6.0,
                  device: str = "CPU") -> SpeedReport:
    """Time each model (label -> ov.Model, IR path, or a callable that builds an ov.Model; BASELINE among them)
    at batch 1 (latency, throughput) and at batch `batch` (throughput) within about `seconds` of timing, and
    read the per-op counters of the latency requests, and each model's profile but the baseline's."""
    import openvino as ov

    from .runtime import default_precision

    labels = list(models)
    compiled, read = _compile_all(models, input_size, batch, device)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, 3, input_size, input_size)).astype(np.float32)
    xn = rng.standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
    window = max(MIN_WINDOW_S, seconds / (ROUNDS * sum(WEIGHTS.values()) * len(models)))
    rows = {label: SpeedRow(label, [], [], []) for label in labels}
    requests = {label: compiled[label, "latency"].create_infer_request() for label in labels}
    for r in range(ROUNDS):
        order = labels if r % 2 == 0 else labels[::-1]
        for label in order:
            rows[label].latency_ms.append(round(_latency_ms(requests[label], x1, window), 4))
        for label in order:
            rows[label].fps_b1.append(round(_throughput(compiled[label, "fps_b1"], x1, window), 2))
        for label in order:
            rows[label].fps_bn.append(round(_throughput(compiled[label, "fps_bn"], xn, WEIGHTS["fps_bn"] * window), 2))
    counters = {label: _counters(compiled[label, "counters"].create_infer_request(), x1) for label in labels
                if label != BASELINE}
    profiles = [profile_compiled(compiled[label, "counters"], read[label], label, device, runs=PROFILE_RUNS)
                for label in labels if label != BASELINE]
    isa = cpu_isa() if device.upper().startswith("CPU") else f"{device} (ISA n/a)"
    return SpeedReport(device, isa, isa_short(isa), ov.get_version().split("-")[0], os.cpu_count() or 1,
                       default_precision(device), batch, round(window, 3), ROUNDS, [rows[lb] for lb in labels],
                       counters, BASELINE, profiles)




