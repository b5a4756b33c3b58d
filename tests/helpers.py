"""Helpers the tests share: paths, seeded random weights and inputs (from the NumPy reference, with documented seeds,
so no test depends on torch's RNG), the torch twin of a set of weights, image folders, and the fast INT8 runs'
measured bounds."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import cloformer
import reference_np as rn
from reference_np.specs import VARIANTS, plan_from_spec

TESTS = Path(__file__).resolve().parent  # tests mirror the packages: tests/<package>/..., stories apart
ROOT = TESTS.parent  # the checkout

# NNCF's quick settings (QuantSettings keywords) where a test's subject is not the ranges or biases (the graph, its
# ops, where the quantizers sit): the default full bias correction and histogram ranges double the quantize time and
# place the same quantizers
QUICK_QUANT = {"fast_bias_correction": True, "activation_range": "minmax"}

# The fast end-to-end INT8 runs (16 calibration images, 48 proxy-val crops; test_quantize, test_library) held to their
# measured figures with room for one image and about 3 dB: on the converged proxy 48 of 48 agree at 16.7 dB, both
# natively on AMX (bf16) and on the AVX2 row (f32); docs/results/proxy.md
FAST_INT8_MIN_AGREEMENT = 100 * (1 - 1 / 48)
FAST_INT8_MIN_SQNR_DB = 14

TEST_SEED = 1234  # weights of variant v: random_weights(plan, TEST_SEED + sorted index of v)
INPUT_SEED = 99
ALL_VARIANTS = sorted(VARIANTS)


@functools.cache
def np_weights(name: str, seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    return rn.random_weights(plan_from_spec(VARIANTS[name]), seed + ALL_VARIANTS.index(name))


def to_torch(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}


def torch_twin(name: str, weights: dict[str, np.ndarray], dtype: torch.dtype = torch.float64) -> cloformer.CloFormer:
    model = cloformer.create_model(name, num_classes=weights["head.weight"].shape[0]).to(dtype)
    model.load_state_dict(to_torch(weights), strict=True)  # copies into the params' dtype: cast first
    return model.eval()


def test_input(shape: tuple[int, ...], seed: int = INPUT_SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


test_input.__test__ = False  # a helper, not a test


def write_images(folder, names, size=(40, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(names))
    for n in names:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / n)


def random_scores(plan, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for i, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            z = sum(b.local_channels) + b.global_heads * b.dim_head
            out[f"layers.{i}.blocks.{j}"] = (rng.random(b.hidden), rng.random(z))
    return out


def exit_code(main, argv: list[str]) -> int:
    """A command's exit status, whether argparse exits (SystemExit) or main returns it."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
