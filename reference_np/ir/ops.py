"""The IR's ops, one small function each, written from the OpenVINO opset specification, registered by (type,
version) as onnx.reference registers its op classes: `fn(node, *inputs)`, computing in the node's dtype (float64:
the graph's ideal semantics). Each registration (reference_np.ir.registry) declares the op's attributes:
parsed and typed once, when the graph is loaded, with the values this module implements checked there, so an op
this module cannot run is an error at load that names the node, never one in the middle of a run.

This module and reference_np/ops.py (the model's forward) both compute convolutions, GELU and softmax, on
purpose: they are two independent goldens. One runs the architecture from the weights, the other the graph a
converter wrote, so a shared mistake would have to be made twice."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf, expit

from .parse import ELEMENT_TYPES, IRError, Node
from .registry import REQUIRED, Attr, flag, ints, lower, op

NUMPY_BROADCAST = {"auto_broadcast": Attr(lower, "numpy", ("numpy",))}


def _f(n: Node, a: np.ndarray) -> np.ndarray:
    """Floating arrays in the node's precision (its graph's dtype); integers (shapes, indices) stay integers."""
    return a.astype(n.dtype) if np.issubdtype(a.dtype, np.floating) else a


def _scalar(v: np.ndarray) -> int:
    """An axis or count given as a 0-d or one-element tensor."""
    return int(np.asarray(v).reshape(-1)[0])


def _axes(v: np.ndarray, rank: int) -> tuple[int, ...]:
    return tuple(int(a) % rank for a in np.asarray(v).reshape(-1))


# ------------------------------------------------------------------ element-wise
def _binary(type_: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    op(type_, "opset1", **NUMPY_BROADCAST)(lambda n, a, b: fn(a, b))


for _type, _fn in (("Add", np.add), ("Subtract", np.subtract), ("Multiply", np.multiply), ("Maximum", np.maximum),
                   ("Minimum", np.minimum), ("Greater", np.greater), ("Less", np.less), ("Equal", np.equal),
                   ("Mod", np.fmod), ("FloorMod", np.mod)):
    _binary(_type, _fn)


def _unary(type_: str, version: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    op(type_, version)(lambda n, a: fn(_f(n, a)))


for _type, _fn in (("Floor", np.floor), ("Sqrt", np.sqrt), ("Exp", np.exp), ("Tanh", np.tanh), ("Erf", erf),
                   ("Sigmoid", expit), ("Relu", lambda a: np.maximum(a, 0)), ("ReLU", lambda a: np.maximum(a, 0)),
                   ("Abs", np.abs), ("Negative", np.negative)):
    _unary(_type, "opset1", _fn)


@op("Divide", "opset1", m_pythondiv=Attr(flag, True), **NUMPY_BROADCAST)
def _divide(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        # integer division: m_pythondiv floors, else truncates toward zero
        return a // b if n.a["m_pythondiv"] else np.trunc(a / b).astype(a.dtype)
    return _f(n, a) / _f(n, b)


@op("Power", "opset1", **NUMPY_BROADCAST)
def _power(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.power(_f(n, a), _f(n, b))


@op("Convert", "opset1", destination_type=Attr(str, REQUIRED, (*ELEMENT_TYPES, "bf16")))
def _convert(n: Node, a: np.ndarray) -> np.ndarray:
    to = n.a["destination_type"]
    if to in ("f32", "f16", "f64", "bf16"):
        return a.astype(n.dtype)  # decompression (i8/u8/f16 -> float) is exact in float64
    if np.issubdtype(a.dtype, np.floating) and np.issubdtype(ELEMENT_TYPES[to], np.integer):
        info = np.iinfo(ELEMENT_TYPES[to])  # float -> int: round to nearest, saturate (the spec)
        return np.clip(np.rint(a), info.min, info.max).astype(ELEMENT_TYPES[to])
    return a.astype(ELEMENT_TYPES[to])


@op("Gelu", "opset2", "opset7", approximation_mode=Attr(str.upper, "ERF", ("ERF", "TANH")))
def _gelu(n: Node, a: np.ndarray) -> np.ndarray:
    if n.a["approximation_mode"] == "ERF":
        return 0.5 * a * (1 + erf(a / math.sqrt(2)))
    return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


@op("Swish", "opset4")
def _swish(n: Node, a: np.ndarray, beta: np.ndarray | None = None) -> np.ndarray:
    return a * expit(a * (1.0 if beta is None else float(beta)))


@op("Identity", "opset16")
def _identity(n: Node, a: np.ndarray) -> np.ndarray:
    return a


# ------------------------------------------------------------------ shapes and movement
@op("Reshape", "opset1", special_zero=Attr(flag, False))
def _reshape(n: Node, a: np.ndarray, shape: np.ndarray) -> np.ndarray:
    shape = [int(s) for s in shape.reshape(-1)]
    if n.a["special_zero"]:
        shape = [a.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return a.reshape(shape)


@op("Squeeze", "opset1", "opset15")
def _squeeze(n: Node, a: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    if axes is None:
        return np.squeeze(a)
    return np.squeeze(a, axis=tuple(i for i in _axes(axes, a.ndim) if a.shape[i] == 1))


@op("Unsqueeze", "opset1")
def _unsqueeze(n: Node, a: np.ndarray, axes: np.ndarray) -> np.ndarray:
    for ax in sorted(_axes(axes, a.ndim + np.asarray(axes).size)):
        a = np.expand_dims(a, ax)
    return a


@op("Transpose", "opset1")
def _transpose(n: Node, a: np.ndarray, order: np.ndarray) -> np.ndarray:
    order = [int(v) for v in np.asarray(order).reshape(-1)]
    return np.transpose(a, order if order else None)


@op("Concat", "opset1", axis=Attr(int))
def _concat(n: Node, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate([_f(n, x) if np.issubdtype(xs[0].dtype, np.floating) else x for x in xs], axis=n.a["axis"])


@op("Split", "opset1", num_splits=Attr(int))
def _split(n: Node, a: np.ndarray, axis: np.ndarray) -> list[np.ndarray]:
    return np.split(a, n.a["num_splits"], axis=_scalar(axis))


@op("VariadicSplit", "opset1")
def _variadic_split(n: Node, a: np.ndarray, axis: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    ax = _scalar(axis) % a.ndim
    lengths = [int(v) for v in lengths.reshape(-1)]
    if -1 in lengths:
        lengths[lengths.index(-1)] = a.shape[ax] - sum(v for v in lengths if v != -1)
    return np.split(a, np.cumsum(lengths)[:-1], axis=ax)


@op("Slice", "opset8")
def _slice(n: Node, a: np.ndarray, start: np.ndarray, stop: np.ndarray, step: np.ndarray,
           axes: np.ndarray | None = None) -> np.ndarray:
    axes = range(len(start)) if axes is None else _axes(axes, a.ndim)
    index = [slice(None)] * a.ndim
    for ax, b, e, s in zip(axes, start.reshape(-1), stop.reshape(-1), step.reshape(-1), strict=True):
        big = np.iinfo(np.int64).max
        index[ax] = slice(int(b), None if int(e) >= big or int(e) <= -big else int(e), int(s))
    return a[tuple(index)]


@op("Gather", "opset1", "opset7", "opset8", batch_dims=Attr(int, 0, (0,)))
def _gather(n: Node, a: np.ndarray, indices: np.ndarray, axis: np.ndarray) -> np.ndarray:
    ax = _scalar(axis) % a.ndim
    idx = np.where(indices < 0, indices + a.shape[ax], indices)
    return np.take(a, idx, axis=ax)


@op("ShapeOf", "opset1", "opset3", output_type=Attr(str, "i64", ("i32", "i64")))
def _shape_of(n: Node, a: np.ndarray) -> np.ndarray:
    return np.asarray(a.shape, ELEMENT_TYPES[n.a["output_type"]])


@op("Broadcast", "opset1", "opset3", mode=Attr(lower, "numpy", ("numpy", "bidirectional")))
def _broadcast(n: Node, a: np.ndarray, shape: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    shape = [int(v) for v in shape.reshape(-1)]
    if n.a["mode"] == "numpy":
        return np.broadcast_to(a, shape).copy()
    return (a * np.ones(shape, a.dtype)) if a.dtype != np.bool_ else np.broadcast_to(a, np.broadcast_shapes(
        a.shape, tuple(shape))).copy()


# ------------------------------------------------------------------ reductions and normalisation
def _reduce(type_: str, fn: Callable[..., np.ndarray]) -> None:
    @op(type_, "opset1", keep_dims=Attr(flag, False))
    def reduce(n: Node, a: np.ndarray, axes: np.ndarray) -> np.ndarray:
        return fn(_f(n, a), axis=_axes(axes, a.ndim), keepdims=n.a["keep_dims"])


for _type, _fn in (("ReduceMean", np.mean), ("ReduceSum", np.sum), ("ReduceMax", np.max)):
    _reduce(_type, _fn)


@op("MVN", "opset6", eps=Attr(float), normalize_variance=Attr(flag, True),
    eps_mode=Attr(lower, REQUIRED, ("inside_sqrt", "outside_sqrt")))
def _mvn(n: Node, a: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """MVN-6: (x - mean) / sqrt(var + eps) (eps_mode inside_sqrt) or / (sqrt(var) + eps) (outside_sqrt)."""
    ax = _axes(axes, a.ndim)
    x = a - a.mean(axis=ax, keepdims=True)
    if not n.a["normalize_variance"]:
        return x
    eps, var = n.a["eps"], (x * x).mean(axis=ax, keepdims=True)
    return x / np.sqrt(var + eps) if n.a["eps_mode"] == "inside_sqrt" else x / (np.sqrt(var) + eps)


@op("GroupNormalization", "opset12", num_groups=Attr(int), epsilon=Attr(float))
def _group_norm(n: Node, a: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """GroupNormalization-12: normalise each group of channels over (C/G, spatial), then per-channel affine."""
    g, eps = n.a["num_groups"], n.a["epsilon"]
    b, c = a.shape[:2]
    x = a.reshape(b, g, -1)
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    shape = (1, c) + (1,) * (a.ndim - 2)
    return x.reshape(a.shape) * scale.reshape(shape) + bias.reshape(shape)


@op("Softmax", "opset1", "opset8", axis=Attr(int, 1))
def _softmax(n: Node, a: np.ndarray) -> np.ndarray:
    ax = n.a["axis"]
    e = np.exp(a - a.max(axis=ax, keepdims=True))
    return e / e.sum(axis=ax, keepdims=True)


# ------------------------------------------------------------------ convolution, attention, pooling
PADS = {"pads_begin": Attr(ints, []), "pads_end": Attr(ints, []),
        "auto_pad": Attr(lower, "explicit", ("explicit", "notset", "valid"))}
CONV = {"strides": Attr(ints), "dilations": Attr(ints), **PADS}


def _pads(n: Node, spatial: int) -> tuple[list[int], list[int]]:
    if n.a["auto_pad"] == "valid":
        return [0] * spatial, [0] * spatial
    return n.a["pads_begin"], n.a["pads_end"]


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


@op("Convolution", "opset1", **CONV)
def _convolution(n: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    begin, end = _pads(n, 2)
    return conv2d(_f(n, x), _f(n, w)[None], n.a["strides"], begin, end, n.a["dilations"], 1)


@op("GroupConvolution", "opset1", **CONV)
def _group_convolution(n: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    begin, end = _pads(n, 2)
    return conv2d(_f(n, x), _f(n, w), n.a["strides"], begin, end, n.a["dilations"], w.shape[0])


@op("MatMul", "opset1", transpose_a=Attr(flag, False), transpose_b=Attr(flag, False))
def _matmul(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _f(n, a), _f(n, b)
    if n.a["transpose_a"] and a.ndim > 1:
        a = np.swapaxes(a, -1, -2)
    if n.a["transpose_b"] and b.ndim > 1:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


@op("ScaledDotProductAttention", "opset13", causal=Attr(flag, False, (False,)))
def _sdpa(n: Node, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None,
          scale: np.ndarray | None = None) -> np.ndarray:
    """ScaledDotProductAttention-13: softmax(q k^T * scale + mask) v; scale defaults to 1/sqrt(head dim)."""
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(np.asarray(scale).reshape(-1)[0])
    att = np.matmul(q, np.swapaxes(k, -1, -2)) * s
    if mask is not None:
        att = att + (np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask)
    att = np.exp(att - att.max(-1, keepdims=True))
    return np.matmul(att / att.sum(-1, keepdims=True), v)


@op("AvgPool", "opset1", "opset14", kernel=Attr(ints), strides=Attr(ints), **PADS,
    rounding_type=Attr(lower, "floor", ("floor",)), **{"exclude-pad": Attr(flag, False)})
def _avg_pool(n: Node, x: np.ndarray) -> np.ndarray:
    """AvgPool-1/14 with explicit pads and floor rounding; exclude-pad only matters when pads are non-zero."""
    (kh, kw), (sh, sw) = n.a["kernel"], n.a["strides"]
    begin, end = _pads(n, 2)
    if any(begin + end) and n.a["exclude-pad"]:
        raise IRError(f"AvgPool node '{n.name}': exclude-pad with non-zero pads is not supported")
    x = np.pad(x, ((0, 0), (0, 0), (begin[0], end[0]), (begin[1], end[1])))
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return win.mean(axis=(-1, -2))


# ------------------------------------------------------------------ quantization
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


@op("FakeQuantize", "opset1", levels=Attr(int), **NUMPY_BROADCAST)
def _fake_quantize(n: Node, x: np.ndarray, il: np.ndarray, ih: np.ndarray, ol: np.ndarray,
                   oh: np.ndarray) -> np.ndarray:
    if n.a["levels"] < 2:
        raise IRError(f"FakeQuantize node '{n.name}': levels={n.a['levels']} (must be >= 2)")
    return fake_quantize(x, il, ih, ol, oh, n.a["levels"], n.dtype)
