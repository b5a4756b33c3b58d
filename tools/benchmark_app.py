"""benchmark_app, driven and read: its command line, its run, its final statistics and its per-op counters (CSV).
Used by tools.benchmark and tools.bench_data; OpenVINO's own tool is what users run, so its numbers are what we
report."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from compress.runtime import cpu_config

# ---------------------------------------------------------------- benchmark_app
_NUM = r"([0-9]+(?:\.[0-9]+)?)"


# benchmark_app prints latencies in "us" when the average is under 1 ms (format_console_latency), else "ms";
# "s" is accepted too. Every latency is normalised to ms.
_UNIT_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


_LAT = rf"{_NUM}\s*(us|µs|ms|s)\b"


LATENCY_PATTERNS = {"median_ms": rf"Median:\s+{_LAT}", "average_ms": rf"Average:\s+{_LAT}",
                    "min_ms": rf"Min:\s+{_LAT}", "max_ms": rf"Max:\s+{_LAT}"}


OTHER_PATTERNS = {"throughput_fps": rf"Throughput:\s+{_NUM}\s*FPS", "count": r"Count:\s+([0-9]+)\s*iterations"}


def parse_benchmark_app(text: str) -> dict[str, float]:
    """The final statistics of a benchmark_app run: latency median/average/min/max in ms (whatever unit it
    printed), FPS, iteration count. Only the overall statistics block counts (the first figures after the
    last 'Count:' line), not the per-shape-group ones printed after it."""
    start = text.rfind("Count:")
    block = text[start:] if start >= 0 else text
    out: dict[str, float] = {}
    for key, pat in LATENCY_PATTERNS.items():
        m = re.search(pat, block)
        if m:
            out[key] = float(m.group(1)) * _UNIT_MS[m.group(2)]
    for key, pat in OTHER_PATTERNS.items():
        m = re.search(pat, block)
        if m:
            out[key] = float(m.group(1))
    if "median_ms" not in out or "throughput_fps" not in out:
        raise ValueError("benchmark_app output has no Median latency / Throughput line:\n" + text[-2000:])
    return out


def parse_perf_counters(csv_text: str) -> list[dict[str, Any]]:
    """Rows of benchmark_app's average_counters CSV that executed: name, layer type, exec type, ms."""
    rows = []
    for line in csv_text.splitlines()[1:]:
        f = line.split(";")
        if len(f) < 6 or f[0] == "Total" or f[1] != "Status.EXECUTED":
            continue
        rows.append({"name": f[0], "layer_type": f[2], "exec_type": f[3], "real_ms": float(f[4])})
    if not rows:
        raise ValueError("performance-counter report has no executed layers")
    return rows


def exec_precision(exec_type: str) -> str:
    """The precision suffix of an exec type: 'brgconv_avx2_I8' -> 'i8', 'jit_uni_f32' -> 'f32'."""
    tail = exec_type.rsplit("_", 1)[-1].lower()
    return tail if tail in ("i8", "u8", "f32", "bf16", "f16", "i32") else "other"


def aggregate_perf(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Time per 'layer type [precision]' (ms, node count), largest first."""
    agg: dict[str, dict[str, float]] = {}
    for r in rows:
        a = agg.setdefault(f"{r['layer_type']} [{exec_precision(r['exec_type'])}]", {"ms": 0.0, "nodes": 0})
        a["ms"] += r["real_ms"]
        a["nodes"] += 1
    return dict(sorted(agg.items(), key=lambda kv: -kv[1]["ms"]))


def run_length(seconds: float, niter: int | None = None) -> list[str]:
    """How long one benchmark_app run lasts: `niter` inferences when given (-niter), else whole seconds (-t)."""
    return ["-niter", str(niter)] if niter else ["-t", str(max(1, round(seconds)))]


def benchmark_app_cmd(xml: str, size: int, seconds: float, hint: str, precision: str | None,
                      device: str = "CPU", batch: int = 1, niter: int | None = None) -> list[str]:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    cmd = [exe, "-m", xml, "-d", device, "-hint", hint, *run_length(seconds, niter),
           "-shape", f"[{batch},3,{size},{size}]"]
    precision = precision or cpu_config(device, None).get("INFERENCE_PRECISION_HINT")  # f32 under an imposed
    if precision:  # ISA without bf16, as on a CPU of that ISA
        cmd += ["-infer_precision", precision]
    return cmd


def run_benchmark_app(cmd: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, float], str]:
    """Run benchmark_app (with `env`, e.g. an imposed ONEDNN_MAX_CPU_ISA) and parse its statistics."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark_app failed ({r.returncode}): {' '.join(cmd)}\n"
                           f"{r.stdout[-1500:]}{r.stderr[-1500:]}")
    return parse_benchmark_app(r.stdout), r.stdout
