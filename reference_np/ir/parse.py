"""Parsing an OpenVINO IR: the .xml's layers and edges into nodes in topological order, every constant read from
the .bin and checked against its size (truncated or damaged weights are errors naming the node)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class IRError(ValueError):
    """A problem with an IR: unreadable file, truncated .bin, unknown op or unsupported attribute."""


ELEMENT_TYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i8": np.int8, "u8": np.uint8,
                 "i32": np.int32, "i64": np.int64, "u32": np.uint32, "u64": np.uint64, "boolean": np.bool_}


@dataclass
class Node:
    id: str
    name: str
    type: str
    version: str
    attrs: dict[str, str]  # as the .xml writes them
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (layer id, output port), in input-port order
    outputs: list[str] = field(default_factory=list)  # output port ids
    names: dict[str, set[str]] = field(default_factory=dict)  # output port -> tensor names
    value: list[np.ndarray] | None = None  # constants (and nodes folded from constants)
    dtype: type = np.float64  # the floating type its graph computes in (set by the Graph; ops read it here)
    a: dict[str, Any] = field(default_factory=dict)  # its op's attributes, parsed and typed at load (ops.bind)

    def attr(self, key: str, default: str | None = None) -> str:
        """An attribute's text as the .xml has it (parsing the file; ops read the typed `a`)."""
        if key in self.attrs:
            return self.attrs[key]
        if default is None:
            raise IRError(f"{self.type} node '{self.name}' lacks attribute '{key}'")
        return default


def parse(path: str | os.PathLike) -> tuple[Path, dict[str, Node], list[str]]:
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
    return xml, nodes, _toposort(nodes, xml)


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
