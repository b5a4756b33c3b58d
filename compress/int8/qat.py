"""Quantization-aware training of the deploy graph (the QAT stages in compress.int8.stages call these):
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
from . import ptq

# The ignored scope is written against the OpenVINO graph (PTQ's); NNCF's torch graph names its ops by the torch
# functions the deploy graph calls. OpenVINO type -> those functions (ScaledDotProductAttention is what OpenVINO
# fuses q @ k^T, softmax and @ v into). Types with no one-to-one torch function are refused by name.
TORCH_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "ScaledDotProductAttention": ("matmul", "softmax"), "Multiply": ("mul",), "MVN": ("layer_norm",),
    "Swish": ("silu",), "Gelu": ("gelu",), "Add": ("add",), "Concat": ("cat",), "Tanh": ("tanh",),
    "ReduceMean": ("mean",), "MatMul": ("matmul", "linear"), "Softmax": ("softmax",)}
# NNCF's full bias correction has no torch backend: QAT quantizes in torch with the fast one, then takes the PTQ
# IR's biases (start_from_ptq_biases): without them QAT would start several dB below the PTQ it is compared to
PTQ_BIASES_NOTE = ("QAT starts from NNCF's torch PTQ with the biases of the PTQ IR beside it ({n} convolution and "
                   "linear biases; NNCF's full bias correction has no torch backend)")
# the bias Add of a convolution or linear layer of the OpenVINO graph traced from the taps model: its module path
BIAS_ADD = re.compile(r"__module\.(?P<path>[\w.]+)/aten::(_convolution|linear)/Add")


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
    """Every pattern must match an op of the torch graph too (as check_ignored_scope does for OpenVINO's). Ops
    only: a pattern that matches just a weight's name (`model.stem.convs.0.weight`) would keep nothing in float."""
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph
    from nncf.torch.graph.operator_metatypes import PTConstNoopMetatype, PTInputNoopMetatype, PTOutputNoopMetatype

    torch_ignored_scope(settings)  # refuses what cannot be translated
    patterns = settings.scope("pattern")
    if not patterns:
        return
    graph = build_nncf_graph(WithTaps(loaded.deploy()).eval(), torch.zeros(1, 3, loaded.input_size, loaded.input_size))
    names = [n.node_name for n in graph.get_all_nodes()
             if n.metatype not in (PTConstNoopMetatype, PTInputNoopMetatype, PTOutputNoopMetatype)]
    for p in patterns:
        if not any(re.fullmatch(p, n) for n in names):
            raise InputError(f"ignored_scope 'pattern:{p}' matches no node of the torch deploy graph (QAT; names "
                             f"look like {names[len(names) // 2]})", field="ignored_scope")


# Calibration images per forward pass of NNCF's torch statistics: its hooks cost per pass, not per image, so one image
# a pass makes the statistics the longest part of QAT's start. Batched statistics aggregate a little differently
# (ranges within about a tenth of the per-image ones); QAT trains the ranges from there, and PTQ beside it keeps
# OpenVINO's per-image statistics.
STAT_BATCH = 32


def quantize(loaded: LoadedModel, calib: list[np.ndarray], settings: QuantSettings) -> torch.nn.Module:
    """NNCF's PTQ of the torch deploy graph (with its taps): the QAT model before training."""
    import nncf

    kw = ptq.nncf_kwargs(settings)
    kw["ignored_scope"] = torch_ignored_scope(settings)
    if kw["fast_bias_correction"] is False:
        kw["fast_bias_correction"] = True  # then start_from_ptq_biases
    kw["advanced_parameters"].batchwise_statistics = True
    batches = [torch.from_numpy(np.concatenate(calib[i:i + STAT_BATCH])) for i in range(0, len(calib), STAT_BATCH)]
    kw["subset_size"] = len(batches)  # NNCF counts dataset items, here batches: every image, once
    model = WithTaps(loaded.deploy()).eval()
    return nncf.quantize(model, nncf.Dataset(batches), **kw)


def start_from_ptq_biases(model: torch.nn.Module, ptq_taps: Any) -> int:
    """Sets the biases of the torch QAT model (quantize's) to those of `ptq_taps`, the OpenVINO PTQ of the same
    settings and calibration (NNCF's full bias correction); returns how many. Both graphs are traced from the
    same taps model, so a bias Add named `__module.<path>/aten::_convolution/Add` is module <path>'s bias."""
    modules = dict(model.named_modules())
    done = 0
    for node in ptq_taps.get_ordered_ops():
        hit = BIAS_ADD.fullmatch(node.get_friendly_name()) if node.get_type_name() == "Add" else None
        if hit is None:
            continue
        consts = [node.input_value(i).get_node() for i in range(2)
                  if node.input_value(i).get_node().get_type_name() == "Constant"]
        module = modules.get(hit["path"])
        bias = getattr(module, "bias", None)
        if len(consts) != 1 or not isinstance(bias, torch.Tensor) or consts[0].get_data().size != bias.numel():
            raise RuntimeError(f"QAT: the PTQ IR's bias {node.get_friendly_name()} has no counterpart of its size "
                               f"in the torch graph (module {hit['path']})")
        with torch.no_grad():
            bias.copy_(torch.from_numpy(consts[0].get_data().reshape(bias.shape).astype(np.float32)))
        done += 1
    return done


# the trainable range tensors of NNCF's two quantizer kinds (nncf.torch.quantization.layers)
RANGE_STORAGE = {"SymmetricQuantizer": ("_scale_param_storage",),
                 "AsymmetricQuantizer": ("input_low", "_input_range_param_storage")}


def equalise_shared_inputs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Quantizers that read one tensor get one range (their mean); returns how many were set.

    NNCF's torch backend quantizes each consumer's input apart (a block's output feeds the next MVN and the next
    residual Add: two quantizers), with equal ranges from equal statistics, as PTQ's IR has them. Trained, they
    drift apart by a few parts in 1e5, and then OpenVINO no longer treats the two FakeQuantize as one: the CPU
    plugin runs each on its own with Reorders around it (336 executed nodes against PTQ's 295 on the proxy XXS;
    295 once equal). Run after training, before export."""
    seen: dict[tuple[int, tuple[int, ...], tuple[int, ...]], list[torch.nn.Module]] = {}
    keep: list[torch.Tensor] = []  # held to the end of the pass, so no freed storage is reused by a later tensor

    def record(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        t = args[0]
        keep.append(t)
        seen.setdefault((t.data_ptr(), tuple(t.shape), tuple(t.stride())), []).append(module)

    handles = [q.register_forward_pre_hook(record) for _, q in quantizers(model)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    def config(q: torch.nn.Module) -> tuple[Any, ...]:
        return type(q), q.levels, q.scale_shape, getattr(q, "signed", None)

    equalised = 0
    for group in seen.values():
        first = group[0]
        alike = [q for q in group if config(q) == config(first)]
        if len(alike) < 2:
            continue
        with torch.no_grad():
            for attr in RANGE_STORAGE.get(type(first).__name__, ()):
                mean = torch.stack([getattr(q, attr).data for q in alike]).mean(0)
                for q in alike:
                    getattr(q, attr).data.copy_(mean)
        equalised += len(alike) - 1
    return equalised


def noise_ratio(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Noise-to-signal power of s against t: 10 ** (-SQNR / 10), the quantity the INT8 targets measure in dB."""
    return ((s - t) ** 2).mean() / (t ** 2).mean().clamp_min(1e-12)


def matching_loss(s: tuple[torch.Tensor, ...], t: tuple[torch.Tensor, ...], y: torch.Tensor | None) -> torch.Tensor:
    """QAT's distillation loss (compress.distill.Loss): the logits' noise ratio against the FP32 graph's, plus
    the mean of the taps' (attention, ConvFFN and block outputs: feature distillation). Labels are not used:
    the INT8 model is judged by agreement with its FP32 model, not by the labels."""
    feats = torch.stack([noise_ratio(a, b) for a, b in zip(s[1:], t[1:], strict=True)]).mean()
    return noise_ratio(s[0], t[0]) + feats


def quantizers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """NNCF's quantizer hooks by name: `pre_hooks.<op>__<port>` (an op's input), `post_hooks.<op>__<port>` (its
    output); op names are module paths (model/layers/0/0/attn/conv2d/0)."""
    from nncf.torch.function_hook import get_hook_storage

    return list(get_hook_storage(model).named_hooks())


def ranges(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The quantizers' trainable range parameters (NNCF's scale, or input_low/input_range), by name."""
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()
            if "__nncf_hooks" in n and p.requires_grad}


PROBE_IMAGES = 32  # the first QAT images, unaugmented: the loss before and after training, on the same batch


@dataclass
class Trained:
    losses: list[float]  # per step, each on its own augmented batch
    probe_loss: tuple[float, float]  # matching_loss on the PROBE_IMAGES before and after training
    ranges_changed: int  # quantizer range tensors that training moved
    ranges: int  # of that many
    max_range_change: float  # the largest relative change of one range value
    seconds: float  # the fine-tuning alone


def probe_loss(model: torch.nn.Module, teacher: torch.nn.Module, x: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float(matching_loss(model(x), teacher(x), None))


def train(model: torch.nn.Module, teacher_loaded: LoadedModel, images: Images, settings: QatSettings) -> Trained:
    """Distillation of the quantized taps model from the FP32 deploy graph on `images` (compress.distill) by
    matching_loss."""
    teacher = WithTaps(teacher_loaded.deploy()).eval()
    probe = torch.from_numpy(images.xs[:PROBE_IMAGES])
    before, loss0, t0 = ranges(model), probe_loss(model, teacher, probe), time.perf_counter()
    losses = finetune(model, teacher, images, settings, loss_fn=matching_loss)
    seconds = round(time.perf_counter() - t0, 2)
    after = ranges(model)
    changes = [float(np.max(np.abs(after[k] - v) / np.maximum(np.abs(v), 1e-12))) for k, v in before.items()]
    return Trained(losses, (loss0, probe_loss(model, teacher, probe)), sum(c > 0 for c in changes), len(changes),
                   max(changes, default=0.0), seconds)


def convert(model: torch.nn.Module, loaded: LoadedModel) -> Any:
    """The trained taps model through OpenVINO's PyTorch frontend (reshapeable, as the FP32 export), read back
    from an IR, its outputs named as the FP32 export's. Sets the quantizers that read one tensor to one range
    in `model` first (equalise_shared_inputs), then nncf.strip (NNCF's export path): its quantizers become
    torch's FakeQuantize, which convert to FakeQuantize nodes on the grid they trained on. Traced unstripped, the
    weights' quantizers export another grid, several dB further from the torch graph
    (tests/compress/quantize/test_qat.py holds both)."""
    import nncf

    model.eval()
    size = loaded.input_size
    equalise_shared_inputs(model, torch.zeros(1, 3, size, size))
    stripped = nncf.strip(model, do_copy=True, example_input=torch.zeros(1, 3, size, size))
    taps = E.convert_reshapeable(stripped, size)
    E.name_taps(taps, loaded)
    return taps
