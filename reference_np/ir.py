"""Run an OpenVINO IR (xml + bin) with NumPy alone: the INT8 golden reference.

    graph = reference_np.ir.load("outputs/run/model_int8.xml")
    logits = graph(x)                                   # x: [B,3,H,W]; the first output, float64
    taps = graph.run(x, outputs=["layers.0.blocks.0.attn"])   # any named tensor (or node name)

Every op is one small function written from the OpenVINO opset specification, computing in float64 (the
graph's ideal semantics: an FP32 IR run here agrees with `reference_np.forward` to 1e-10). FakeQuantize
follows the spec's formula with the reference implementation's rounding (nearbyint: half to even).
Constants stored as f32, f16, i8, u8, i32 or i64 are read from the .bin and decompressed by the graph's own
Convert/Subtract/Multiply nodes. An op or attribute value this module does not implement is an error that
names the op type, the node and the IR file; no node is ever skipped. Standard library, NumPy and SciPy
(erf) only: no OpenVINO import.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf, expit

FLOAT = np.float64  # the executor's floating type while a graph runs (float64: the graph's ideal semantics)


class IRError(ValueError):
    """A problem with an IR: unreadable file, truncated .bin, unknown op or unsupported attribute."""


ELEMENT_TYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i8": np.int8, "u8": np.uint8,
                 "i32": np.int32, "i64": np.int64, "u32": np.uint32, "u64": np.uint64, "boolean": np.bool_}


# ------------------------------------------------------------------ the graph
@dataclass
class Node:
    id: str
    name: str
    type: str
    version: str
    attrs: dict[str, str]
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (layer id, output port), in input-port order
    outputs: list[str] = field(default_factory=list)  # output port ids
    names: dict[str, set[str]] = field(default_factory=dict)  # output port -> tensor names
    value: list[np.ndarray] | None = None  # constants (and nodes folded from constants)

    def attr(self, key: str, default: str | None = None) -> str:
        if key in self.attrs:
            return self.attrs[key]
        if default is None:
            raise IRError(f"{self.type} node '{self.name}' lacks attribute '{key}'")
        return default

    def ints(self, key: str) -> list[int]:
        text = self.attr(key)
        return [int(v) for v in text.split(",") if v.strip()] if text.strip() else []


class Graph:
    """A loaded IR. Calling it runs every node in topological order and returns the first output.

    dtype float64 (default) gives the graph's ideal semantics; float32 evaluates the same graph in float32,
    which measures how sensitive an INT8 graph is to arithmetic precision alone (values next to a rounding
    threshold of a FakeQuantize land one step away)."""

    def __init__(self, path: Path, nodes: dict[str, Node], order: list[str], dtype: type = np.float64) -> None:
        self.path, self.nodes, self.order, self.dtype = path, nodes, order, np.dtype(dtype).type
        self.parameters = [i for i in order if nodes[i].type == "Parameter"]
        self.results = [i for i in order if nodes[i].type == "Result"]
        if len(self.parameters) != 1:
            raise IRError(f"{path}: expected one input (Parameter), found {len(self.parameters)}")
        self._fold_constants()

    def _fold_constants(self) -> None:
        """Evaluate once every node computed from constants only (weight decompression, shape arithmetic)."""
        with _precision(self.dtype):
            self._fold()

    def _fold(self) -> None:
        for nid in self.order:
            n = self.nodes[nid]
            if n.value is not None or n.type in ("Parameter", "Result") or not n.inputs:
                continue
            if all(self.nodes[src].value is not None for src, _ in n.inputs):
                args = [self.nodes[src].value[int(self._port_index(src, port))] for src, port in n.inputs]
                n.value = self._execute(n, args)

    def _port_index(self, nid: str, port: str) -> int:
        return self.nodes[nid].outputs.index(port)

    def _execute(self, n: Node, args: list[np.ndarray]) -> list[np.ndarray]:
        fn = OPS.get(n.type)
        if fn is None:
            raise IRError(f"{self.path}: node '{n.name}' has op type {n.type} ({n.version}), which reference_np.ir "
                          f"does not implement (known: {', '.join(sorted(OPS))})")
        try:
            out = fn(n, *args)
        except IRError as e:
            raise IRError(f"{self.path}: {e}") from None
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def tensor_names(self) -> dict[str, tuple[str, int]]:
        """Every tensor name (and node name) -> (node id, output index)."""
        out: dict[str, tuple[str, int]] = {}
        for nid in self.order:
            n = self.nodes[nid]
            for k, port in enumerate(n.outputs):
                for name in n.names.get(port, ()):
                    out.setdefault(name, (nid, k))
            if n.outputs:
                out.setdefault(n.name, (nid, 0))
        return out

    def run(self, x: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """The named tensors (tensor names or node names; default: every Result, by its name) for input x."""
        if outputs is None:
            targets = {self.nodes[r].name: self._source(r) for r in self.results}
        else:
            names = self.tensor_names()
            missing = [o for o in outputs if o not in names]
            if missing:
                raise KeyError(f"{self.path}: no tensor or node named {', '.join(missing)}")
            targets = {o: names[o] for o in outputs}
        return self._run(x, targets)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The first output (the logits) as float64."""
        return np.asarray(self._run(x, {"out": self._source(self.results[0])})["out"], dtype=np.float64)

    def _source(self, result: str) -> tuple[str, int]:
        src, port = self.nodes[result].inputs[0]
        return src, self._port_index(src, port)

    def _run(self, x: np.ndarray, targets: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
        with _precision(self.dtype):
            return self._run_nodes(x, targets)

    def _run_nodes(self, x: np.ndarray, targets: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
        x = np.asarray(x)
        param = self.nodes[self.parameters[0]]
        # batch and spatial size are read off the input, as after model.reshape: the graphs compute their shapes
        # with ShapeOf; only the rank and the channels are fixed by the file
        want = [d.strip() for d in param.attrs.get("shape", "").split(",") if d.strip()]
        if want and (len(want) != x.ndim or (x.ndim == 4 and want[1] not in ("?", "-1", str(x.shape[1])))):
            raise ValueError(f"{self.path}: input must have shape [{','.join(want)}] (batch and size free); "
                             f"got {list(x.shape)}")
        needed = self._ancestors({nid for nid, _ in targets.values()})
        values: dict[str, list[np.ndarray]] = {}
        for nid in self.order:
            if nid not in needed:
                continue
            n = self.nodes[nid]
            if n.value is not None:
                values[nid] = n.value
            elif n.type == "Parameter":
                values[nid] = [x.astype(FLOAT) if np.issubdtype(x.dtype, np.floating) else x]
            elif n.type != "Result":
                values[nid] = self._execute(n, [values[src][self._port_index(src, p)] for src, p in n.inputs])
        return {k: np.asarray(values[nid][i]) for k, (nid, i) in targets.items()}

    def _ancestors(self, ids: set[str]) -> set[str]:
        seen, stack = set(), list(ids)
        while stack:
            nid = stack.pop()
            if nid not in seen:
                seen.add(nid)
                stack += [src for src, _ in self.nodes[nid].inputs]
        return seen


@contextmanager
def _precision(dtype: type) -> Iterator[None]:
    global FLOAT
    old, FLOAT = FLOAT, dtype
    try:
        yield
    finally:
        FLOAT = old


def load(path: str | os.PathLike, dtype: type = np.float64) -> Graph:
    """Parse `path` (.xml) and its .bin; constants are read (and checked against the .bin's size) here."""
    xml = Path(path)
    if not xml.is_file():
        raise FileNotFoundError(f"IR not found: {xml}")
    bin_path = xml.with_suffix(".bin")
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise IRError(f"{xml}: not valid XML ({e})") from None
    blob = bin_path.read_bytes() if bin_path.is_file() else None
    nodes: dict[str, Node] = {}
    for layer in root.iter("layer"):
        data = layer.find("data")
        n = Node(layer.get("id"), layer.get("name", ""), layer.get("type", ""), layer.get("version", ""),
                 dict(data.attrib) if data is not None else {})
        out = layer.find("output")
        for port in (out if out is not None else []):
            n.outputs.append(port.get("id"))
            if port.get("names"):
                n.names[port.get("id")] = {s.strip() for s in port.get("names").split(",")}
        if n.type == "Const":
            n.value = [_read_const(n, blob, xml, bin_path)]
        nodes[n.id] = n
    edges: dict[str, list[tuple[int, str, str]]] = {}
    for e in root.iter("edge"):
        edges.setdefault(e.get("to-layer"), []).append((int(e.get("to-port")), e.get("from-layer"),
                                                        e.get("from-port")))
    for nid, ins in edges.items():
        nodes[nid].inputs = [(src, port) for _, src, port in sorted(ins)]
    return Graph(xml, nodes, _toposort(nodes, xml), dtype)


def _read_const(n: Node, blob: bytes | None, xml: Path, bin_path: Path) -> np.ndarray:
    et = n.attr("element_type")
    if et not in ELEMENT_TYPES:
        raise IRError(f"{xml}: Const '{n.name}' has element type {et}, which reference_np.ir does not read")
    shape = [int(d) for d in n.attr("shape", "").split(",") if d.strip()]
    offset, size = int(n.attr("offset")), int(n.attr("size"))
    if blob is None:
        raise FileNotFoundError(f"IR {xml} has no weights file {bin_path.name} beside it")
    if offset + size > len(blob):
        raise IRError(f"{bin_path} is truncated: Const '{n.name}' needs bytes {offset}..{offset + size}, the file has "
                      f"{len(blob)}")
    dtype = np.dtype(ELEMENT_TYPES[et])
    count = int(np.prod(shape)) if shape else 1
    if count * dtype.itemsize != size:
        raise IRError(f"{xml}: Const '{n.name}' of shape {shape} {et} needs {count * dtype.itemsize} bytes, not {size}")
    value = np.frombuffer(blob, dtype, count, offset).reshape(shape).copy()
    if dtype.kind == "f" and not np.all(np.isfinite(value)):  # weights are finite; NaN/Inf means damaged bytes
        raise IRError(f"{bin_path} is corrupted: Const '{n.name}' ({et}, bytes {offset}..{offset + size}) holds "
                      f"{int(np.sum(~np.isfinite(value)))} NaN/Inf values")
    return value


def _toposort(nodes: dict[str, Node], xml: Path) -> list[str]:
    indeg = {nid: len(n.inputs) for nid, n in nodes.items()}
    users: dict[str, list[str]] = {}
    for nid, n in nodes.items():
        for src, _ in n.inputs:
            if src not in nodes:
                raise IRError(f"{xml}: node '{n.name}' reads from a missing layer {src}")
            users.setdefault(src, []).append(nid)
    ready = sorted((nid for nid, d in indeg.items() if d == 0), key=int)
    order = []
    while ready:
        nid = ready.pop(0)
        order.append(nid)
        for u in users.get(nid, []):
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) != len(nodes):
        raise IRError(f"{xml}: the graph has a cycle")
    return order


# ------------------------------------------------------------------ ops: one small function each
def _f(a: np.ndarray) -> np.ndarray:
    """Floating arrays in the executor's precision; integers (shapes, indices) stay integers."""
    return a.astype(FLOAT) if np.issubdtype(a.dtype, np.floating) else a


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
    return _f(a) / _f(b)


def _convert(n: Node, a: np.ndarray) -> np.ndarray:
    to = n.attr("destination_type")
    if to in ("f32", "f16", "f64", "bf16"):
        return a.astype(FLOAT)  # decompression (i8/u8/f16 -> float) is exact in float64
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
    return np.concatenate([_f(x) if np.issubdtype(xs[0].dtype, np.floating) else x for x in xs],
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
        return fn(_f(a), axis=ax, keepdims=n.attr("keep_dims", "false") == "true")
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
    return conv2d(_f(x), _f(w)[None], n.ints("strides"), begin, end, n.ints("dilations"), 1)


def _group_convolution(n: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    begin, end = _pads(n, 2)
    return conv2d(_f(x), _f(w), n.ints("strides"), begin, end, n.ints("dilations"), w.shape[0])


def _matmul(n: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _f(a), _f(b)
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
                  out_high: np.ndarray, levels: int) -> np.ndarray:
    """FakeQuantize-1, the spec's expression element by element (rounding half to even, as the reference
    implementation's nearbyint):
        x <= min(il, ih): ol;  x > max(il, ih): oh;
        else round((x - il) / (ih - il) * (levels - 1)) / (levels - 1) * (oh - ol) + ol"""
    x, il, ih, ol, oh = (_f(np.asarray(v)) for v in (x, in_low, in_high, out_low, out_high))
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
    return fake_quantize(x, il, ih, ol, oh, levels)


def _identity(n: Node, a: np.ndarray) -> np.ndarray:
    return a


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda n, a: fn(_f(a))


OPS: dict[str, Callable[..., Any]] = {
    "Convert": _convert, "Add": _binary(np.add), "Subtract": _binary(np.subtract), "Multiply": _binary(np.multiply),
    "Divide": _divide, "Power": _binary(lambda a, b: np.power(_f(a), _f(b))), "Maximum": _binary(np.maximum),
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
