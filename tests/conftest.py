"""Shared fixtures. Random weights come from the NumPy reference (reference_np.random_weights) with
documented seeds, so no test depends on torch's RNG."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cloformer
import reference_np as rn
from reference_np.specs import VARIANTS, plan_from_spec

TESTS = Path(__file__).resolve().parent  # tests mirror the packages: tests/<package>/..., stories apart
ROOT = TESTS.parent  # the checkout


def pytest_report_header(config: pytest.Config) -> str:
    """The ISA this run's kernels use (an imposed ONEDNN_MAX_CPU_ISA, else the CPU's newest) and the OpenVINO
    default precision: every bound on what oneDNN computes is only as good as the ISAs it was run under."""
    from compress.isa import probe_kernel
    from compress.runtime import cpu_isa, default_precision, imposed_isa, own_isa

    how = "imposed by ONEDNN_MAX_CPU_ISA" if imposed_isa() else "native"
    return (f"ISA: {own_isa()} ({how}); a convolution runs {probe_kernel()}; OpenVINO default precision: "
            f"{default_precision()}; CPU flags: {cpu_isa()}")


# the longest files, scheduled first: pytest-xdist's loadfile hands whole files to workers in collection order, so a
# long file collected last would run alone at the end while the other worker idles
FIRST = ("test_qat_targets.py", "test_install.py", "test_library.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: the rest keep their order


def pytest_configure(config: pytest.Config) -> None:
    import compress

    compress.prepare_process()  # as every command does first (the tests call the jobs as a library)
    """Under pytest-xdist (the README's test command) each worker gets its share of the cores for torch, in this
    process and in the commands it starts: torch's OpenMP threads spin while they wait, so two workers of two
    threads each on two cores slowed torch-bound tests up to 6x (distillation: 19 s alone, 120 s beside another
    worker). OpenVINO's thread pool does not spin and keeps its default."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# The fast end-to-end INT8 runs (16 calibration images, 48 proxy-val crops) held to their measured figures (48 of 48
# agree, 22.3-22.4 dB on AVX2 and AVX-512 VNNI/BF16) with room for one image and 3 dB: test_quantize, test_library
FAST_INT8_MIN_AGREEMENT = 100 * (1 - 1 / 48)
FAST_INT8_MIN_SQNR_DB = 19

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


@pytest.fixture(autouse=True)
def _torch_determinism():
    torch.manual_seed(0)
    yield


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
