"""Quantization-aware training of the deploy graph (the QAT job's stages in compress.quantize.job call these):
NNCF's post-training quantization of the torch deploy graph, with the same settings and calibration images as PTQ;
distillation from the FP32 deploy graph with the weights, biases and quantizer ranges trainable (NNCF's
FakeQuantize modules have gradients); then ov.convert_model of the trained graph, an IR that holds FakeQuantize
and goes through every stage a PTQ IR goes through.

NNCF's torch backend addresses ops by (module, function, call index) and hooks them while the model runs, so the
graph OpenVINO traces must call the same functions in the same order as eager torch (cloformer.deploy keeps
integer shape arithmetic out of the traced graph for this reason).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cloformer.deploy import WithTaps

from .. import export as E
from ..data import Images
from ..distill import finetune
from ..errors import InputError
from ..loading import LoadedModel
from ..settings import QatSettings, QuantSettings

# The ignored scope is written against the OpenVINO graph (PTQ's); NNCF's torch graph names its ops by the torch
# functions the deploy graph calls. OpenVINO type -> those functions (ScaledDotProductAttention is what OpenVINO
# fuses q @ k^T, softmax and @ v into). Types with no one-to-one torch function are refused by name.
TORCH_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "ScaledDotProductAttention": ("matmul", "softmax"), "Multiply": ("mul",), "MVN": ("layer_norm",),
    "Swish": ("silu",), "Gelu": ("gelu",), "Add": ("add",), "Concat": ("cat",), "Tanh": ("tanh",),
    "ReduceMean": ("mean",), "MatMul": ("matmul", "linear"), "Softmax": ("softmax",)}
FAST_BIAS_NOTE = ("QAT starts from NNCF's torch PTQ with fast bias correction (NNCF's full bias correction has no "
                  "torch backend); training corrects the biases after it")


def torch_ignored_scope(settings: QuantSettings) -> Any:
    """settings.ignored_scope (written for the OpenVINO graph) as NNCF's torch graph addresses it: patterns as
    they are (the torch graph's names hold the same module path, `stem`, `layers/0/0/attn`), types through
    TORCH_FUNCTIONS; names (OpenVINO node names) have no torch counterpart and are refused."""
    import nncf

    types: list[str] = []
    for e in settings.ignored_scope:
        if e.kind == "name":
            raise InputError(f"ignored_scope '{e}': QAT quantizes the torch graph, where OpenVINO node names do not "
                             "exist; name the ops with pattern: (module paths such as .*layers.0.0.attn.*) or "
                             "type:", field="ignored_scope")
        if e.kind == "type":
            if e.value not in TORCH_FUNCTIONS:
                raise InputError(f"ignored_scope '{e}': QAT has no torch counterpart of OpenVINO type {e.value} "
                                 f"(types it maps: {', '.join(sorted(TORCH_FUNCTIONS))}); use pattern:",
                                 field="ignored_scope")
            types += TORCH_FUNCTIONS[e.value]
    return nncf.IgnoredScope(patterns=settings.scope("pattern"), types=sorted(set(types)), validate=False)


def check_torch_scope(settings: QuantSettings, loaded: LoadedModel) -> None:
    """Every pattern must match a node of the torch graph too (as check_ignored_scope does for OpenVINO's)."""
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    torch_ignored_scope(settings)  # refuses what cannot be translated
    patterns = settings.scope("pattern")
    if not patterns:
        return
    graph = build_nncf_graph(WithTaps(loaded.deploy()).eval(), torch.zeros(1, 3, loaded.input_size, loaded.input_size))
    names = [n.node_name for n in graph.get_all_nodes()]
    for p in patterns:
        if not any(re.fullmatch(p, n) for n in names):
            raise InputError(f"ignored_scope 'pattern:{p}' matches no node of the torch deploy graph (QAT; names "
                             f"look like {names[len(names) // 2]})", field="ignored_scope")


def quantize(loaded: LoadedModel, calib: list[np.ndarray], settings: QuantSettings) -> torch.nn.Module:
    """NNCF's PTQ of the torch deploy graph (with its taps): the QAT model before training."""
    import nncf

    kw = settings.nncf_kwargs()
    kw["ignored_scope"] = torch_ignored_scope(settings)
    if kw["fast_bias_correction"] is False:
        kw["fast_bias_correction"] = True  # FAST_BIAS_NOTE
    model = WithTaps(loaded.deploy()).eval()
    return nncf.quantize(model, nncf.Dataset([torch.from_numpy(x) for x in calib]), **kw)


class Logits(torch.nn.Module):
    """A taps model's first output: what distillation compares."""

    def __init__(self, taps: torch.nn.Module) -> None:
        super().__init__()
        self.taps = taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.taps(x)[0]


def ranges(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The quantizers' trainable range parameters (NNCF's scale, or input_low/input_range), by name."""
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()
            if "__nncf_hooks" in n and p.requires_grad}


@dataclass
class Trained:
    losses: list[float]
    ranges_changed: int  # quantizer range tensors that training moved
    ranges: int  # of that many
    max_range_change: float  # the largest relative change of one range value
    seconds: float  # the fine-tuning alone


def train(model: torch.nn.Module, teacher: LoadedModel, images: Images, settings: QatSettings) -> Trained:
    """Distillation of the quantized taps model from the FP32 deploy graph on `images` (compress.distill)."""
    before, t0 = ranges(model), time.perf_counter()
    losses = finetune(Logits(model), Logits(WithTaps(teacher.deploy())), images, settings)
    model.eval()
    after = ranges(model)
    changes = [float(np.max(np.abs(after[k] - v) / np.maximum(np.abs(v), 1e-12))) for k, v in before.items()]
    return Trained(losses, sum(c > 0 for c in changes), len(changes), max(changes, default=0.0),
                   round(time.perf_counter() - t0, 2))


def convert(model: torch.nn.Module, loaded: LoadedModel) -> Any:
    """The trained taps model through OpenVINO's PyTorch frontend (reshapeable, as the FP32 export), read back
    from an IR, its outputs named as the FP32 export's: NNCF's quantizers become FakeQuantize nodes."""
    model.eval()
    taps = E.convert_reshapeable(model, loaded.input_size)
    E.name_taps(taps, loaded)
    return taps
