"""The IR's ops, one small function each, written from the OpenVINO opset specification: `fn(node, *inputs)`,
computing in the node's dtype (float64: the graph's ideal semantics)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf, expit

from .parse import ELEMENT_TYPES, IRError, Node


def _f(n: Node, a: np.ndarray) -> np.ndarray:
    """Floating arrays in the node's precision (its graph's dtype); integers (shapes, indices) stay integers."""
    return a.astype(n.dtype) if np.issubdtype(a.dtype, np.floating) else a


def _scalar(v: np.ndarray) -> int:
    """An axis or count given as a 0-d or one-element tensor."""
    return int(np.asarray(v).reshape(-1)[0])


def _bcast(n: Node) -> None:
    if n.attr("auto_broadcast", "numpy") != "numpy":
        raise IRError(f"{n.type} node '{n.name}': auto_broadcast={n.attrs['auto_broadcast']} is not supported")


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def op(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _bcast(n)
        return fn(a, b)
    return op


def _divide(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _bcast(n)
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        # integer division: m_pythondiv floors, else truncates toward zero
        return a // b if n.attr("m_pythondiv", "true") == "true" else np.trunc(a / b).astype(a.dtype)
    return _f(n, a) / _f(n, b)


def _power(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _bcast(n)
    return np.power(_f(n, a), _f(n, b))


def _convert(n: Node, a: np.ndarray) -> np.ndarray:
    to = n.attr("destination_type")
    if to in ("f32", "f16", "f64", "bf16"):
        return a.astype(n.dtype)  # decompression (i8/u8/f16 -> float) is exact in float64
    if to in ELEMENT_TYPES:
        if np.issubdtype(a.dtype, np.floating) and np.issubdtype(ELEMENT_TYPES[to], np.integer):
            info = np.iinfo(ELEMENT_TYPES[to])  # float -> int: round to nearest, saturate (the spec)
            return np.clip(np.rint(a), info.min, info.max).astype(ELEMENT_TYPES[to])
        return a.astype(ELEMENT_TYPES[to])
    raise IRError(f"Convert node '{n.name}': destination type {to} is not supported")


def _reshape(n: Node, a: np.ndarray, shape: np.ndarray) -> np.ndarray:
    shape = [int(s) for s in shape.reshape(-1)]
    if n.attr("special_zero", "false") == "true":
        shape = [a.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return a.reshape(shape)


def _squeeze(n: Node, a: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    if axes is None:
        return np.squeeze(a)
    axes = tuple(int(v) % a.ndim for v in np.asarray(axes).reshape(-1))
    return np.squeeze(a, axis=tuple(i for i in axes if a.shape[i] == 1))


def _unsqueeze(n: Node, a: np.ndarray, axes: np.ndarray) -> np.ndarray:
    out_rank = a.ndim + np.asarray(axes).size
    for ax in sorted(int(v) % out_rank for v in np.asarray(axes).reshape(-1)):
        a = np.expand_dims(a, ax)
    return a


def _transpose(n: Node, a: np.ndarray, order: np.ndarray) -> np.ndarray:
    order = [int(v) for v in np.asarray(order).reshape(-1)]
    return np.transpose(a, order if order else None)


def _concat(n: Node, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate([_f(n, x) if np.issubdtype(xs[0].dtype, np.floating) else x for x in xs],
                          axis=int(n.attr("axis")))


def _split(n: Node, a: np.ndarray, axis: np.ndarray) -> list[np.ndarray]:
    return np.split(a, int(n.attr("num_splits")), axis=_scalar(axis))


def _variadic_split(n: Node, a: np.ndarray, axis: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    ax = _scalar(axis) % a.ndim
    lengths = [int(v) for v in lengths.reshape(-1)]
    if -1 in lengths:
        lengths[lengths.index(-1)] = a.shape[ax] - sum(v for v in lengths if v != -1)
    return np.split(a, np.cumsum(lengths)[:-1], axis=ax)


def _slice(n: Node, a: np.ndarray, start: np.ndarray, stop: np.ndarray, step: np.ndarray,
           axes: np.ndarray | None = None) -> np.ndarray:
    axes = range(len(start)) if axes is None else [int(v) % a.ndim for v in axes.reshape(-1)]
    index = [slice(None)] * a.ndim
    for ax, b, e, s in zip(axes, start.reshape(-1), stop.reshape(-1), step.reshape(-1), strict=True):
        big = np.iinfo(np.int64).max
        index[ax] = slice(int(b), None if int(e) >= big or int(e) <= -big else int(e), int(s))
    return a[tuple(index)]


def _gather(n: Node, a: np.ndarray, indices: np.ndarray, axis: np.ndarray) -> np.ndarray:
    if int(n.attr("batch_dims", "0")) != 0:
        raise IRError(f"Gather node '{n.name}': batch_dims != 0 is not supported")
    ax = _scalar(axis) % a.ndim
    idx = np.where(indices < 0, indices + a.shape[ax], indices)
    return np.take(a, idx, axis=ax)


def _shape_of(n: Node, a: np.ndarray) -> np.ndarray:
    return np.asarray(a.shape, ELEMENT_TYPES[n.attr("output_type", "i64")])


def _broadcast(n: Node, a: np.ndarray, shape: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    mode = n.attr("mode", "numpy")
    shape = [int(v) for v in shape.reshape(-1)]
    if mode == "numpy":
        return np.broadcast_to(a, shape).copy()
    if mode == "bidirectional":
        return (a * np.ones(shape, a.dtype)) if a.dtype != np.bool_ else np.broadcast_to(a, np.broadcast_shapes(
            a.shape, tuple(shape))).copy()
    raise IRError(f"Broadcast node '{n.name}': mode {mode} is not supported")


def _reduce(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def op(n: Node, a: np.ndarray, axes: np.ndarray) -> np.ndarray:
        ax = tuple(int(v) % a.ndim for v in np.asarray(axes).reshape(-1))
        return fn(_f(n, a), axis=ax, keepdims=n.attr("keep_dims", "false") == "true")
    return op


def _mvn(n: Node, a: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """MVN-6: (x - mean) / sqrt(var + eps) (eps_mode inside_sqrt) or / (sqrt(var) + eps) (outside_sqrt)."""
    ax = tuple(int(v) % a.ndim for v in np.asarray(axes).reshape(-1))
    x = a - a.mean(axis=ax, keepdims=True)
    if n.attr("normalize_variance", "true") != "true":
        return x
    eps, var = float(n.attr("eps")), (x * x).mean(axis=ax, keepdims=True)
    mode = n.attr("eps_mode").lower()
    if mode == "inside_sqrt":
        return x / np.sqrt(var + eps)
    if mode == "outside_sqrt":
        return x / (np.sqrt(var) + eps)
    raise IRError(f"MVN node '{n.name}': eps_mode {mode} is not supported")


def _group_norm(n: Node, a: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """GroupNormalization-12: normalise each group of channels over (C/G, spatial), then per-channel affine."""
    g, eps = int(n.attr("num_groups")), float(n.attr("epsilon"))
    b, c = a.shape[:2]
    x = a.reshape(b, g, -1)
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    shape = (1, c) + (1,) * (a.ndim - 2)
    return x.reshape(a.shape) * scale.reshape(shape) + bias.reshape(shape)


def _softmax(n: Node, a: np.ndarray) -> np.ndarray:
    ax = int(n.attr("axis", "1"))
    e = np.exp(a - a.max(axis=ax, keepdims=True))
    return e / e.sum(axis=ax, keepdims=True)


def _gelu(n: Node, a: np.ndarray) -> np.ndarray:
    mode = n.attr("approximation_mode", "ERF").upper()
    if mode == "ERF":
        return 0.5 * a * (1 + erf(a / math.sqrt(2)))
    if mode == "TANH":
        return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))
    raise IRError(f"Gelu node '{n.name}': approximation_mode {mode} is not supported")


def _swish(n: Node, a: np.ndarray, beta: np.ndarray | None = None) -> np.ndarray:
    return a * expit(a * (1.0 if beta is None else float(beta)))


def _pads(n: Node, spatial: int) -> tuple[list[int], list[int]]:
    mode = n.attr("auto_pad", "explicit")
    if mode not in ("explicit", "notset", "valid"):
        raise IRError(f"{n.type} node '{n.name}': auto_pad={mode} is not supported")
    if mode == "valid":
        return [0] * spatial, [0] * spatial
    return n.ints("pads_begin"), n.ints("pads_end")


def conv2d(x: np.ndarray, w: np.ndarray, strides: list[int], begin: list[int], end: list[int],
           dilations: list[int], groups: int) -> np.ndarray:
    """Grouped 2-D cross-correlation: x [B,C,H,W], w [G, O/G, C/G, kh, kw] -> [B,O,Ho,Wo]."""
    bsz, c, _, _ = x.shape
    g, og, cg, kh, kw = w.shape
    if c != g * cg:
        raise IRError(f"convolution input has {c} channels, weights expect {g} x {cg}")
    if any(begin) or any(end):
        x = np.pad(x, ((0, 0), (0, 0), (begin[0], end[0]), (begin[1], end[1])))
    (sh, sw), (dh, dw) = strides, dilations
    ho = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    if kh == kw == 1 and sh == sw == 1:  # pointwise: one matmul per group
        xs = x.reshape(bsz, g, cg, ho * wo)
        return np.matmul(w[None, :, :, :, 0, 0], xs).reshape(bsz, g * og, ho, wo)
    if cg == 1 and og == 1:  # depthwise: one multiply-add per tap
        out = np.zeros((bsz, g, ho, wo), x.dtype)
        for i in range(kh):
            for j in range(kw):
                tap = x[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                out += tap * w[:, 0, 0, i, j][:, None, None]
        return out
    win = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]  # [B, C, Ho, Wo, kh, kw]
    cols = win.reshape(bsz, g, cg, ho, wo, kh, kw)
    out = np.einsum("gocij,bgcxyij->bgoxy", w, cols, optimize=True)
    return out.reshape(bsz, g * og, ho, wo)


def _convolution(n: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    begin, end = _pads(n, 2)
    return conv2d(_f(n, x), _f(n, w)[None], n.ints("strides"), begin, end, n.ints("dilations"), 1)


def _group_convolution(n: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    begin, end = _pads(n, 2)
    return conv2d(_f(n, x), _f(n, w), n.ints("strides"), begin, end, n.ints("dilations"), w.shape[0])


def _matmul(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _f(n, a), _f(n, b)
    if n.attr("transpose_a", "false") == "true" and a.ndim > 1:
        a = np.swapaxes(a, -1, -2)
    if n.attr("transpose_b", "false") == "true" and b.ndim > 1:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


def _sdpa(n: Node, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None,
          scale: np.ndarray | None = None) -> np.ndarray:
    """ScaledDotProductAttention-13: softmax(q k^T * scale + mask) v; scale defaults to 1/sqrt(head dim)."""
    if n.attr("causal", "false") == "true":
        raise IRError(f"ScaledDotProductAttention node '{n.name}': causal=true is not supported")
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(np.asarray(scale).reshape(-1)[0])
    att = np.matmul(q, np.swapaxes(k, -1, -2)) * s
    if mask is not None:
        att = att + (np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask)
    att = np.exp(att - att.max(-1, keepdims=True))
    return np.matmul(att / att.sum(-1, keepdims=True), v)


def _avg_pool(n: Node, x: np.ndarray) -> np.ndarray:
    """AvgPool-1/14 with explicit pads and floor rounding; exclude-pad only matters when pads are non-zero."""
    kh, kw = n.ints("kernel")
    sh, sw = n.ints("strides")
    begin, end = _pads(n, 2)
    if n.attr("rounding_type", "floor").lower() != "floor":
        raise IRError(f"AvgPool node '{n.name}': rounding_type={n.attrs['rounding_type']} is not supported")
    if any(begin + end) and n.attr("exclude-pad", "false") == "true":
        raise IRError(f"AvgPool node '{n.name}': exclude-pad with non-zero pads is not supported")
    x = np.pad(x, ((0, 0), (0, 0), (begin[0], end[0]), (begin[1], end[1])))
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return win.mean(axis=(-1, -2))


def fake_quantize(x: np.ndarray, in_low: np.ndarray, in_high: np.ndarray, out_low: np.ndarray,
                  out_high: np.ndarray, levels: int, dtype: type = np.float64) -> np.ndarray:
    """FakeQuantize-1, the spec's expression element by element (rounding half to even, as the reference
    implementation's nearbyint):
        x <= min(il, ih): ol;  x > max(il, ih): oh;
        else round((x - il) / (ih - il) * (levels - 1)) / (levels - 1) * (oh - ol) + ol"""
    x, il, ih, ol, oh = (np.asarray(v, dtype) for v in (x, in_low, in_high, out_low, out_high))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint((x - il) / (ih - il) * (levels - 1)) / (levels - 1) * (oh - ol) + ol
    q = np.where(x <= np.minimum(il, ih), ol, q)
    return np.where(x > np.maximum(il, ih), oh, q)


def _fake_quantize(n: Node, x: np.ndarray, il: np.ndarray, ih: np.ndarray, ol: np.ndarray,
                   oh: np.ndarray) -> np.ndarray:
    _bcast(n)
    levels = int(n.attr("levels"))
    if levels < 2:
        raise IRError(f"FakeQuantize node '{n.name}': levels={levels} (must be >= 2)")
    return fake_quantize(x, il, ih, ol, oh, levels, n.dtype)


def _identity(n: Node, a: np.ndarray) -> np.ndarray:
    return a


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda n, a: fn(_f(n, a))


OPS: dict[str, Callable[..., Any]] = {
    "Convert": _convert, "Add": _binary(np.add), "Subtract": _binary(np.subtract), "Multiply": _binary(np.multiply),
    "Divide": _divide, "Power": _power, "Maximum": _binary(np.maximum),
    "Minimum": _binary(np.minimum), "Greater": _binary(np.greater), "Less": _binary(np.less),
    "Equal": _binary(np.equal), "Mod": _binary(np.fmod), "FloorMod": _binary(np.mod),
    "Floor": _unary(np.floor), "Sqrt": _unary(np.sqrt), "Exp": _unary(np.exp), "Tanh": _unary(np.tanh),
    "Erf": _unary(erf), "Sigmoid": _unary(expit), "Relu": _unary(lambda a: np.maximum(a, 0)), "ReLU":
    _unary(lambda a: np.maximum(a, 0)), "Abs": _unary(np.abs), "Negative": _unary(np.negative), "Gelu": _gelu,
    "Swish": _swish, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Transpose": _transpose,
    "Concat": _concat, "Split": _split, "VariadicSplit": _variadic_split, "Slice": _slice, "Gather": _gather,
    "ShapeOf": _shape_of, "Broadcast": _broadcast, "ReduceMean": _reduce(np.mean), "ReduceSum": _reduce(np.sum),
    "ReduceMax": _reduce(np.max), "MVN": _mvn, "GroupNormalization": _group_norm, "Softmax": _softmax,
    "Convolution": _convolution, "GroupConvolution": _group_convolution, "MatMul": _matmul,
    "ScaledDotProductAttention": _sdpa, "AvgPool": _avg_pool, "FakeQuantize": _fake_quantize,
    "Identity": _identity,
}
