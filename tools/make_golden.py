"""Regenerate the golden-output fixtures under tests/golden/ FROM THE NUMPY REFERENCE ONLY.

    python -m tools.make_golden            # all variants
    python -m tools.make_golden --check    # recompute and compare with the files, write nothing

tests/golden/input.npz holds the shared input (float32 values, run in float64). Each
tests/golden/<variant>.npz holds the seed that makes the weights (reference_np.random_weights), the
sha256 of those weights, the float64 logits, and the first TAP_CHANNELS channels of every named
intermediate (all of them, sliced, to keep the fixtures under 2 MB in all).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import reference_np as rn
from compress.tolerances import GOLDEN_ATOL
from reference_np.specs import VARIANTS, plan_from_spec

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
GOLDEN_SHAPE = (2, 3, 64, 64)
WEIGHT_SEED = 20230330  # CloFormer's arXiv date; + variant index
INPUT_SEED = 7
TAP_CHANNELS = 2  # channels kept of each intermediate: tap[:, :TAP_CHANNELS]


def golden_input() -> np.ndarray:
    return np.random.default_rng(INPUT_SEED).standard_normal(GOLDEN_SHAPE).astype(np.float32)


def golden_weights(name: str) -> tuple[int, dict[str, np.ndarray]]:
    seed = WEIGHT_SEED + sorted(VARIANTS).index(name)
    return seed, rn.random_weights(plan_from_spec(VARIANTS[name]), seed)


def golden_case(name: str) -> dict[str, np.ndarray]:
    seed, w = golden_weights(name)
    logits, taps = rn.forward(w, golden_input().astype(np.float64), return_intermediates=True)
    case = {"weight_seed": np.array(seed), "weights_sha256": np.array(rn.weights_sha256(w)), "logits": logits}
    case.update({f"tap/{k}": v[:, :TAP_CHANNELS] for k, v in taps.items()})
    return case


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=GOLDEN_DIR)
    ap.add_argument("--check", action="store_true", help="compare with existing files, write nothing")
    ap.add_argument("variants", nargs="*", default=sorted(VARIANTS))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    bad = 0
    cases = [("input", {"input": golden_input()})] + [(n, golden_case(n)) for n in args.variants]
    for name, case in cases:
        path = args.out / f"{name}.npz"
        if args.check:
            with np.load(path) as old:
                diff = max(float(np.abs(old[k] - case[k]).max()) for k in case if case[k].dtype.kind == "f")
                same = set(old.files) == set(case) and all(
                    str(old[k]) == str(case[k]) for k in case if case[k].dtype.kind != "f")
            print(f"{name}: max |delta| {diff:.2e}, keys/sha {'match' if same else 'DIFFER'}")
            bad += (not same) or diff > GOLDEN_ATOL
            continue
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **case)
        os.replace(tmp, path)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
