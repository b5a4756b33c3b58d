"""The NumPy IR executor's speed against the NumPy reference, side by side (issue target: the XXS INT8 IR at
224, batch 1, in <= 3x the time of reference_np.forward).

    python -m tools.bench_ir [--ir outputs/RUN/model_int8.xml] [--size 224] [--rounds 5]

Without --ir, the proxy model is quantized at --size with the default settings into a temporary folder.
Both run in float64 (the executor's semantics; the reference in its float64 mode) and in float32; rounds
alternate, medians and ratios are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import reference_np as rn
from cloformer.registry import SHIPPED
from reference_np import ir


def _time(fn, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def quantized_proxy(size: int, folder: Path) -> Path:

    from compress import export, loading
    from compress.data.sources import resolve_source
    from compress.int8 import steps as quantization
    from compress.settings import QuantSettings

    loaded = loading.load("cloformer_xxs", "proxy", size)
    settings = QuantSettings(subset_size=64)
    exported = export.export(loaded, folder)
    calibration = quantization.calibrate(resolve_source("sample", size), settings)
    return quantization.quantize_deploy(exported, calibration, settings).xml


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ir", type=Path, default=None)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args(argv)
    weights = rn.load_weights(SHIPPED["proxy"][1])
    with tempfile.TemporaryDirectory() as tmp:
        xml = args.ir or quantized_proxy(args.size, Path(tmp))
        x = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size))
        rows = []
        for dtype in (np.float64, np.float32):
            graph = ir.load(xml, dtype)
            w = rn.cast_weights(weights, dtype)
            xd = x.astype(dtype)
            t_ir, t_ref = [], []
            for _ in range(args.rounds):
                t_ir.append(_time(lambda: graph(xd), args.reps))  # noqa: B023
                t_ref.append(_time(lambda: rn.forward(w, xd), args.reps))  # noqa: B023
            rows.append((np.dtype(dtype).name, statistics.median(t_ir) * 1e3, statistics.median(t_ref) * 1e3))
    print(f"{xml.name if args.ir else 'proxy XXS INT8 IR'} at {args.size}, batch 1; medians of {args.rounds} "
          f"alternating rounds x {args.reps}")
    for name, a, b in rows:
        print(f"  {name}: NumPy IR executor {a:8.1f} ms, reference_np.forward {b:8.1f} ms, ratio {a / b:.2f}x "
              "(target <= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
