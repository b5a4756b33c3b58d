"""Golden regression: tests/golden/*.npz were written by tools/make_golden.py from the NumPy reference.
Both the reference and the torch twin must still reproduce them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import reference_np as rn
from compress.tolerances import GOLDEN_ATOL
from tests.helpers import ALL_VARIANTS, torch_twin
from tools.make_golden import GOLDEN_DIR, golden_weights


def _load(name: str) -> dict[str, np.ndarray]:
    path = Path(GOLDEN_DIR) / f"{name}.npz"
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_golden(name: str) -> None:
    gold = _load(name)
    x = _load("input")["input"].astype(np.float64)
    seed, w = golden_weights(name)
    assert seed == int(gold["weight_seed"])
    assert rn.weights_sha256(w) == str(gold["weights_sha256"]), "random_weights changed: regenerate goldens"
    ref, taps = rn.forward(w, x, return_intermediates=True)
    with torch.no_grad():
        out, ttaps = torch_twin(name, w).forward_intermediates(torch.from_numpy(x))
    gold_taps = {k[4:]: v for k, v in gold.items() if k.startswith("tap/")}
    assert set(gold_taps) == set(taps)
    for got, got_taps in ((ref, taps), (out.numpy(), {k: v.numpy() for k, v in ttaps.items()})):
        assert np.abs(got - gold["logits"]).max() <= GOLDEN_ATOL
        for k, v in gold_taps.items():
            assert np.abs(got_taps[k][:, :v.shape[1]] - v).max() <= GOLDEN_ATOL, k


def test_fixtures_are_small() -> None:
    assert sum(p.stat().st_size for p in Path(GOLDEN_DIR).glob("*.npz")) < 2 * 1024 * 1024
