"""The executor: a parsed IR run node by node in topological order, in the graph's own floating type."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import ops  # noqa: F401  (importing it registers every op)
from .parse import IRError, Node, parse
from .registry import REGISTRY, STRUCTURAL, bind


class Graph:
    """A loaded IR. Calling it runs every node in topological order and returns the first output.

    dtype float64 (default) gives the graph's ideal semantics; float32 evaluates the same graph in float32,
    which measures how sensitive an INT8 graph is to arithmetic precision alone (values next to a rounding
    threshold of a FakeQuantize land one step away)."""

    def __init__(self, path: Path, nodes: dict[str, Node], order: list[str], dtype: type = np.float64,
                 overrides: dict[str, dict[str, str]] | None = None) -> None:
        self.path, self.nodes, self.order, self.dtype = path, nodes, order, np.dtype(dtype).type
        self._bind(overrides or {})
        for n in nodes.values():  # each op computes in its node's dtype: no global state, thread-safe
            n.dtype = self.dtype
        self.parameters = [i for i in order if nodes[i].type == "Parameter"]
        self.results = [i for i in order if nodes[i].type == "Result"]
        if len(self.parameters) != 1:
            raise IRError(f"{path}: expected one input (Parameter), found {len(self.parameters)}")
        self._fold_constants()

    def _bind(self, overrides: dict[str, dict[str, str]]) -> None:
        """Every node's op looked up by (type, version) and its attributes typed, before anything runs: an op or an
        attribute value this module does not implement is an error here, naming each such node."""
        unknown = sorted({f"{n.type} ({n.version})" for n in self.nodes.values()
                          if n.type not in STRUCTURAL and (n.type, n.version) not in REGISTRY})
        if unknown:
            raise IRError(f"{self.path}: op types reference_np.ir does not implement: {', '.join(unknown)}")
        unused = set(overrides) - {k for n in self.nodes.values() for k in (n.name, n.type)}
        if unused:
            raise IRError(f"{self.path}: overrides name no node or op type of the graph: {', '.join(sorted(unused))}")
        for n in self.nodes.values():
            if n.type not in STRUCTURAL:
                try:
                    bind(n, {**overrides.get(n.type, {}), **overrides.get(n.name, {})})
                except IRError as e:
                    raise IRError(f"{self.path}: {e}") from None

    def _fold_constants(self) -> None:
        """Evaluate once every node computed from constants only (weight decompression, shape arithmetic)."""
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
        try:
            out = REGISTRY[(n.type, n.version)].fn(n, *args)
        except IRError as e:
            raise IRError(f"{self.path}: {e}") from None
        except Exception as e:  # NumPy's own errors (shapes, dtypes) named with the node that raised them
            shapes = ", ".join(str(list(np.shape(a))) for a in args)
            raise IRError(f"{self.path}: {n.type} ({n.version}) node '{n.name}' failed on inputs {shapes}: "
                          f"{type(e).__name__}: {e}") from e
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
                values[nid] = [x.astype(self.dtype) if np.issubdtype(x.dtype, np.floating) else x]
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


def load(path: str | os.PathLike, dtype: type = np.float64, overrides: dict[str, dict[str, str]] | None = None
         ) -> Graph:
    """Parse `path` (.xml) and its .bin (constants are read and checked here) into a graph computing in `dtype`.
    `overrides` replace attributes before they are typed, by node name or by op type: {"MVN": {"eps": "1e-05"}}."""
    return Graph(*parse(path), dtype, overrides)
