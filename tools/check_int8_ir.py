"""OpenVINO's INT8 against the NumPy run of the same IR (reference_np.ir, the graph's ideal semantics) on a whole
data set; the main job does the same on 32 images.

    python -m tools.check_int8_ir outputs/RUN/model_int8.xml [--data proxy-val] [--limit N] [--device CPU]

Prints logit max |delta|, SQNR and top-1 agreement for the f32 hint and the device's default precision, and
the yardstick: the same graph run by NumPy in float32 against float64 (how far arithmetic precision alone moves
this graph). Issue targets (f32 hint): SQNR >= 35 dB, agreement >= 99.5%.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from compress import verification
from compress.data import Images
from compress.data.sources import resolve_source
from compress.evaluate.job import read_ir
from compress.targets import TARGET_MIN_GRAPH_AGREEMENT_PCT, TARGET_MIN_GRAPH_SQNR_DB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ir", type=Path)
    ap.add_argument("--data", default="proxy-val")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--device", default="CPU")
    args = ap.parse_args(argv)
    size = int(read_ir(args.ir).input(0).get_shape()[-1])
    data = Images.of(resolve_source(args.data, size, args.limit))
    x = np.asarray(data.xs)
    print(f"{args.ir} on {data.name}: {len(x)} images at {size}px")
    with tempfile.TemporaryDirectory() as tmp:
        run = verification.graph_run(args.ir, None, [], x, Path(tmp))  # the NumPy side once, for both precisions
        for precision in ("f32", None):
            g = verification.runtime_vs_graph(run, args.ir, None, args.device, precision)
            print(f"  {args.device} {g.precision:8s}: logit max |d| {g.max_abs:.3g}, SQNR {g.sqnr_db:.1f} dB, top-1 "
                  f"agreement {g.top1_agreement:.2f}% ({g.disagreements} differ); NumPy float32 vs float64 on the "
                  f"same graph: {g.graph_f32_sqnr_db:.1f} dB")
    print(f"targets (f32 hint): SQNR >= {TARGET_MIN_GRAPH_SQNR_DB} dB, agreement >= {TARGET_MIN_GRAPH_AGREEMENT_PCT}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
