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

The rooms: `parse` (the .xml and .bin into nodes), `graph` (the executor), `registry` (ops by type and version,
with their attributes typed at load), `ops` (one function per op). The floating type is the graph's, passed to
every op through its node: graphs of different dtypes can run at once. `load(path, overrides={"MVN": {"eps": "1e-05"}})`
changes attributes before they are typed, by op type or node name.
"""

from .graph import Graph, load
from .ops import conv2d, fake_quantize
from .parse import ELEMENT_TYPES, IRError, Node
from .registry import REGISTRY, run_op

__all__ = ["ELEMENT_TYPES", "REGISTRY", "Graph", "IRError", "Node", "conv2d", "fake_quantize", "load", "run_op"]
