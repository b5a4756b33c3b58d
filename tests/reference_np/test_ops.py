"""NumPy ops against hand-computed cases and a naive direct loop (independent of torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference_np import ops


def naive_conv(x, w, b, stride, groups):
    bsz, _, h, wd = x.shape
    o, cg, k, _ = w.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    out = np.zeros((bsz, o, ho, wo))
    og = o // groups
    for n in range(bsz):
        for oc in range(o):
            g = oc // og
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, g * cg:(g + 1) * cg, i * stride:i * stride + k, j * stride:j * stride + k]
                    out[n, oc, i, j] = (patch * w[oc]).sum() + b[oc]
    return out


@pytest.mark.parametrize("k,stride,groups,hw", [(3, 2, 1, (9, 7)), (5, 2, 1, (8, 8)), (1, 1, 1, (5, 6)),
                                                 (3, 1, 6, (7, 5)), (5, 2, 6, (9, 8)), (9, 1, 6, (4, 4))])
def test_conv_matches_naive_loop(k: int, stride: int, groups: int, hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    cin, cout = 6, 6 if groups > 1 else 4
    x = rng.standard_normal((2, cin, *hw))
    w = rng.standard_normal((cout, cin // groups, k, k))
    b = rng.standard_normal(cout)
    got = ops.conv2d(x, w, b, stride, groups)
    assert np.abs(got - naive_conv(x, w, b, stride, groups)).max() < 1e-12


def test_group_norm_hand_case() -> None:
    x = np.arange(8, dtype=np.float64).reshape(1, 2, 2, 2)  # mean 3.5, biased var 5.25 over C,H,W
    y = ops.group_norm(x, np.array([1.0, 2.0]), np.array([0.0, 1.0]), eps=0.0)
    z = (np.arange(8) - 3.5) / math.sqrt(5.25)
    assert np.allclose(y.ravel(), np.concatenate([z[:4], 2 * z[4:] + 1]), atol=1e-15)


def test_activations_hand_values() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    assert np.allclose(ops.gelu(x), [-0.15865525393145707, 0.0, 1.9544997361036416], atol=1e-15)
    assert np.allclose(ops.swish(x), [-0.2689414213699951, 0.0, 1.7615941559557649], atol=1e-15)
    s = ops.softmax(np.array([[1000.0, 1000.0, 1000.0 - math.log(2)]]))  # no overflow: max subtracted
    assert np.allclose(s, [[0.4, 0.4, 0.2]], atol=1e-15)


def test_avg_pool_and_batch_norm() -> None:
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    assert np.array_equal(ops.avg_pool(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert ops.avg_pool(x, 1) is x
    y = ops.batch_norm(x, np.array([2.0]), np.array([1.0]), np.array([1.0]), np.array([4.0]), eps=0.0)
    assert np.allclose(y, (x - 1) / 2 * 2 + 1)
