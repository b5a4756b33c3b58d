"""Per-channel equalisation of three activations of every block, folded into the weights around them (no node added).

Three 1x1 convolutions of a Clo block read an activation that no non-linearity separates, channel by channel, from
the layer producing it:
- the ConvFFN's fc2 reads dwconv's output (fc2(dwconv(gelu(fc1(x))))): each channel is one depthwise channel;
- the attention's proj reads the concatenation of the local groups' tanh(gate) * v and the global branch's
  softmax(q k^T) v: each channel is linear in one channel of v, which the local group's depthwise convolution
  (`convs.i`, the last third of its channels) or the global key/value convolution (`global_kv`, its second half)
  produces;
- each local group's gate starts with an FC (`act_blocks.i.act_block.0`) on q * k: each channel is linear in one
  channel of q (the first third of `convs.i`).
So for any positive per-channel s, those producers' weights and biases divided by s and the consumer's input columns
multiplied by s are the same function. The consumer's per-tensor input quantizer then sees the activation divided
by s. Its channels' ranges differ many-fold (the largest over the median, ten and more in the later stages), and a
per-tensor grid sized for the largest leaves the others a few levels; choosing s = a^alpha / w^(1 - alpha), as
SmoothQuant does (a: a channel's largest |activation| on the calibration images, w: the largest |weight| of its
input column), moves that spread into the consumer's weights, whose quantizers are per output channel. Unlike
NNCF's SmoothQuant nothing is inserted: the graph keeps its nodes and per-tensor activation quantizers, and the FP32
function is unchanged (the float64 reference gives the folded weights' logits as the original ones')."""

from __future__ import annotations

import copy
import dataclasses
import re

import numpy as np
import torch

from ..loading import LoadedModel

CONSUMER = re.compile(r"(?P<block>layers\.\d+\.blocks\.\d+)\."
                      r"(?P<name>mlp\.fc2|attn\.proj|attn\.act_blocks\.(?P<group>\d+)\.act_block\.0)")
BATCH = 50  # calibration images per forward pass (eval mode: batching does not change an image's activations)


def input_ranges(loaded: LoadedModel, calib: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The input of every consumer (fc2, proj, each gate's first FC): the largest |value| per channel over the
    calibration images, by module path (`layers.i.blocks.j.mlp.fc2`, `...attn.proj`,
    `...attn.act_blocks.k.act_block.0`). float64 [input channels]."""
    model = loaded.model.eval()
    found: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if CONSUMER.fullmatch(name):
            def record(_: torch.nn.Module, args: tuple[torch.Tensor, ...], key: str = name) -> None:
                a = args[0].detach().abs().amax(dim=(0, 2, 3))
                found[key] = torch.maximum(found[key], a) if key in found else a
            hooks.append(module.register_forward_pre_hook(record))
    xs = np.concatenate(calib)
    try:
        with torch.no_grad():
            for i in range(0, len(xs), BATCH):
                model(torch.from_numpy(xs[i:i + BATCH]))
    finally:
        for h in hooks:
            h.remove()
    return {k: a.double().numpy() for k, a in found.items()}


def scales(act: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """s = a^alpha / w^(1-alpha) per input channel, normalised to a geometric mean of 1 (a common factor would
    only move the whole activation range into the weights)."""
    w = np.abs(weight).max(axis=(0, 2, 3))  # [O, C, 1, 1] -> [C]: the largest weight each channel feeds
    s = np.maximum(act, 1e-6) ** alpha / np.maximum(w, 1e-6) ** (1.0 - alpha)
    return s / np.exp(np.mean(np.log(s)))


def producers(weights: dict[str, np.ndarray], consumer: str) -> list[tuple[str, slice]]:
    """Where each input channel of `consumer` comes from, in its input order: (official key prefix of the producing
    convolution, its output channels), one per part of the input."""
    block, name, group = CONSUMER.fullmatch(consumer).group("block", "name", "group")  # type: ignore[union-attr]
    if name == "mlp.fc2":
        return [(f"{block}.mlp.dwconv", slice(None))]
    if group is not None:  # the gate's first FC reads q * k: linear in q, the first third of the group's channels
        c = weights[f"{block}.attn.convs.{group}.weight"].shape[0] // 3
        return [(f"{block}.attn.convs.{group}", slice(0, c))]
    out = []
    i = 0
    while f"{block}.attn.convs.{i}.weight" in weights:  # local groups: q | k | v, v last
        c = weights[f"{block}.attn.convs.{i}.weight"].shape[0] // 3
        out.append((f"{block}.attn.convs.{i}", slice(2 * c, 3 * c)))
        i += 1
    if f"{block}.attn.global_kv.weight" in weights:  # global: k | v, v last
        g = weights[f"{block}.attn.global_kv.weight"].shape[0] // 2
        out.append((f"{block}.attn.global_kv", slice(g, 2 * g)))
    return out


def fold_weights(weights: dict[str, np.ndarray], ranges: dict[str, np.ndarray], alpha: float,
                 dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The official-key weights with the input of each consumer in `ranges` (input_ranges) equalised at `alpha`:
    computed in float64, returned as `dtype` (float64: exactly the same function, what the reference checks)."""
    out = dict(weights)
    for consumer, act in ranges.items():
        w = out[f"{consumer}.weight"].astype(np.float64)
        s = scales(act, w, alpha)
        out[f"{consumer}.weight"] = (w * s[None, :, None, None]).astype(dtype)
        start = 0
        for prefix, channels in producers(weights, consumer):
            # (from `out`: a local group's convolution produces both q, for its gate, and v, for proj)
            pw, pb = out[f"{prefix}.weight"].astype(np.float64), out[f"{prefix}.bias"].astype(np.float64)
            part = s[start:start + len(pb[channels])]
            start += len(part)
            pw[channels] /= part[:, None, None, None]
            pb[channels] /= part
            out[f"{prefix}.weight"], out[f"{prefix}.bias"] = pw.astype(dtype), pb.astype(dtype)
        if start != len(s):
            raise RuntimeError(f"equalise: {consumer} reads {len(s)} channels, its producers give {start}")
    return out


def fold(loaded: LoadedModel, calib: list[np.ndarray], alpha: float) -> LoadedModel:
    """`loaded` with the inputs of every consumer equalised at `alpha` (0: by the weights' ranges only, 1: by
    the activations' only) on the calibration images: a copy, the same function, other float32 weights."""
    weights = fold_weights(loaded.weights, input_ranges(loaded, calib), alpha)
    model = copy.deepcopy(loaded.model)
    params = model.state_dict()  # (the model's own tensors: copying into them sets its weights)
    with torch.no_grad():
        for k, v in weights.items():
            if v is not loaded.weights[k]:
                params[k].copy_(torch.from_numpy(v))
    return dataclasses.replace(loaded, model=model.eval(), weights=weights)
