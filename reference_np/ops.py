"""One op, one small NumPy function (in the style of the ONNX reference evaluator).

Every function computes in the dtype of its input: float64 in, float64 out; float32 in, float32 out.
Layouts are NCHW, matching PyTorch. Shapes in comments: B batch, C channels, H x W spatial.

reference_np/ir/ops.py computes convolutions, GELU and softmax too, on purpose: the two are independent goldens.
This one runs the architecture from the weights; that one runs the graph a converter wrote, from the OpenVINO
opset specification. Sharing the code would let one mistake pass both checks.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf, expit

from .specs import GN_EPS


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, groups: int = 1) -> np.ndarray:
    """PyTorch Conv2d (cross-correlation, zero padding k//2): [B,Cin,H,W] -> [B,Cout,Ho,Wo]."""
    out_c, in_per_group, k, _ = w.shape
    if k == 1 and stride == 1 and groups == 1:
        return pointwise(x, w, b)
    if groups == x.shape[1] and in_per_group == 1:
        return depthwise_conv2d(x, w, b, stride)
    if groups != 1:
        raise NotImplementedError("only dense, depthwise and 1x1 convolutions occur in CloFormer")
    bsz, c, h, wd = x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :ho, :wo]
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(bsz, c * k * k, ho * wo)  # [B, C*k*k, Ho*Wo]
    return (w.reshape(out_c, -1) @ cols).reshape(bsz, out_c, ho, wo) + b[:, None, None]


def pointwise(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1x1 conv as one matmul: [B,Cin,H,W] -> [B,Cout,H,W]."""
    bsz, c, h, wd = x.shape
    return (w[:, :, 0, 0] @ x.reshape(bsz, c, h * wd)).reshape(bsz, -1, h, wd) + b[:, None, None]


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1) -> np.ndarray:
    """Depthwise conv (groups=C, weight [C,1,k,k]) as k*k multiply-adds: [B,C,H,W] -> [B,C,Ho,Wo]."""
    k = w.shape[-1]
    p = k // 2
    bsz, c, h, wd = x.shape
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    if stride == 1:
        # Flatten each padded channel so each tap is one long contiguous multiply-add (short per-row
        # loops dominate otherwise); output rows keep the padded width Wp, the extra k-1 columns are cut.
        wp = wd + 2 * p
        xp = np.pad(x, ((0, 0), (0, 0), (p, p + 1), (p, p))).reshape(bsz, c, -1)  # spare row: taps in bounds
        n = ho * wp
        taps = [(i * wp + j, w[:, 0, i, j][:, None]) for i in range(k) for j in range(k)]
        out = np.empty((bsz, c, n), dtype=x.dtype)
        out[...] = b[:, None]
        tmp = np.empty_like(out)
        for off, wij in taps:
            np.multiply(xp[:, :, off:off + n], wij, out=tmp)
            out += tmp
        return out.reshape(bsz, c, ho, wp)[:, :, :, :wo]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.empty((bsz, c, ho, wo), dtype=x.dtype)
    out[...] = b[:, None, None]
    tmp = np.empty_like(out)
    for i in range(k):
        for j in range(k):
            tap = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            np.multiply(tap, w[:, 0, i, j][:, None, None], out=tmp)
            out += tmp
    return out


def group_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = GN_EPS) -> np.ndarray:
    """GroupNorm(1, C): per sample over (C, H, W) jointly, biased variance: [B,C,H,W] -> [B,C,H,W]."""
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(1, 2, 3), keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g[:, None, None] + b[:, None, None]


def batch_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, mean: np.ndarray, var: np.ndarray,
               eps: float = GN_EPS) -> np.ndarray:
    """Eval-mode BatchNorm2d with running statistics: [B,C,H,W] -> [B,C,H,W]."""
    return (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps) * g[:, None, None] + b[:, None, None]


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def swish(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x) (MemoryEfficientSwish / SiLU), with scipy's overflow-free logistic."""
    return x * expit(x)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, torch.nn.GELU's default."""
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))  # Python float: keeps float32 (NEP 50)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def avg_pool(x: np.ndarray, ws: int) -> np.ndarray:
    """AvgPool2d(ws, ws), floor mode; identity at ws=1: [B,C,H,W] -> [B,C,H//ws,W//ws]."""
    if ws == 1:
        return x
    bsz, c, h, w = x.shape
    ho, wo = h // ws, w // ws
    return x[:, :, :ho * ws, :wo * ws].reshape(bsz, c, ho, ws, wo, ws).mean(axis=(3, 5))


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[B, Cin] -> [B, Cout]."""
    return x @ w.T + b
