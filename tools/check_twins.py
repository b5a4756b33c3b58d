"""Build a CloFormer, run the NumPy reference and the torch model on the embedded golden input,
and print their agreement (float64 and float32) per variant.

    python -m tools.check_twins [--models cloformer_xxs ...] [--size 224]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import reference_np as rn
from compress.tolerances import FLOAT32_REL, FLOAT64_ATOL
from compress.verification import twin_error
from reference_np.specs import VARIANTS, plan_from_spec
from tools.make_golden import GOLDEN_DIR, WEIGHT_SEED


def twin_errors(name: str, x: np.ndarray) -> tuple[float, float, float]:
    """(float64 max |delta|, float32 max |delta|, float32 max |logit|) for seeded random weights."""
    w = rn.random_weights(plan_from_spec(VARIANTS[name]), WEIGHT_SEED)
    scale = float(np.abs(rn.forward(rn.cast_weights(w, np.float32), x.astype(np.float32))).max())
    return twin_error(w, x, np.float64), twin_error(w, x, np.float32), scale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=sorted(VARIANTS), choices=sorted(VARIANTS))
    ap.add_argument("--size", type=int, default=None, help="resample the embedded 64x64 input to this size")
    args = ap.parse_args(argv)
    with np.load(GOLDEN_DIR / "input.npz") as z:
        x = z["input"].astype(np.float64)
    if args.size:
        rn.specs.check_input_size(args.size, args.size)
        idx = np.arange(args.size) * x.shape[-1] // args.size
        x = x[:, :, idx][:, :, :, idx]
    print(f"input {tuple(x.shape)}; tolerances: float64 {FLOAT64_ATOL:g} abs, float32 {FLOAT32_REL:g} x max|logit|")
    print(f"{'model':22s} {'float64 max|d|':>15s} {'float32 max|d|':>15s} {'f32 rel':>9s}  ok")
    ok = True
    for name in args.models:
        e64, e32, scale = twin_errors(name, x)
        good = e64 <= FLOAT64_ATOL and e32 <= FLOAT32_REL * scale
        ok &= good
        print(f"{name:22s} {e64:15.2e} {e32:15.2e} {e32 / scale:9.1e}  {'yes' if good else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
